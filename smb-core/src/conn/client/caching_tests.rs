//! Oplock state transitions of the client on a signed session, against hand-built (and
//! hand-signed) server messages: the unsolicited break is accepted unsigned, the
//! acknowledgement goes out signed, its response is verified, and forgeries are refused.

use super::state::{Phase, Session};
use super::*;
use crate::header::{flags, Command, Header, NtStatus};
use crate::messages::build;
use crate::messages::close::CloseResponse;
use crate::messages::create::{CreateAction, CreateRequest, CreateResponse, OplockLevel};
use crate::messages::echo::EchoResponse;
use crate::messages::lease::{lease_state, LeaseContext, LeaseKey, LeaseV2};
use crate::messages::negotiate::{HashAlgorithm, NegotiateContext, NegotiateResponse};
use crate::messages::oplock_break::{
    lease_break_flags, LeaseBreakAck, LeaseBreakNotification, OplockBreak,
};
use crate::messages::FileId;
use crate::policy::{SIGNING_ENABLED, SIGNING_REQUIRED};
use crate::signing::{Algorithm, SigningKey};

const SID: u64 = 0x0000_0400_0000_0011;
const TREE: u32 = 7;
const KEY: [u8; 16] = [0x5a; 16];
const FILE: FileId = FileId {
    persistent: 0x11,
    volatile: 0x22,
};

/// Each signing algorithm with a dialect that uses it.
const CASES: [(Dialect, Algorithm); 3] = [
    (Dialect::SMB21, Algorithm::HmacSha256),
    (Dialect::SMB302, Algorithm::AesCmac),
    (Dialect::SMB311, Algorithm::AesGmac),
];

/// A connection with an established session that requires signing, keyed with [`KEY`].
fn signed_session(dialect: Dialect, alg: Algorithm) -> (ClientConnection, SigningKey) {
    let mut config = ClientConfig::new("server", Credentials::password("alice", "", "pw"));
    config.dialects = vec![dialect];
    config.signing_algorithms = vec![alg];
    let mut c = ClientConnection::new(config);
    c.negotiate().unwrap();
    c.poll_transmit().unwrap();
    let contexts = if dialect == Dialect::SMB311 {
        vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HashAlgorithm::SHA512],
                salt: vec![1; 32],
            },
            NegotiateContext::Signing {
                algorithms: vec![alg.id()],
            },
        ]
    } else {
        vec![]
    };
    let body = NegotiateResponse {
        security_mode: SIGNING_REQUIRED | SIGNING_ENABLED,
        dialect_revision: dialect,
        max_transact_size: 1 << 16,
        max_read_size: 1 << 16,
        max_write_size: 1 << 16,
        contexts,
        ..Default::default()
    };
    let mut h = Header::request(Command::NEGOTIATE, 0, 0, 0).response(NtStatus::SUCCESS);
    h.credits = 64;
    c.handle_input(&build(&h, &body)).unwrap();
    while c.poll_event().is_some() {}
    let Phase::Negotiated(n) = c.take_phase() else {
        panic!("not negotiated");
    };
    c.phase = Phase::Established(
        n,
        Box::new(Session {
            id: SID,
            signing_required: true,
            key: Some(SigningKey::new(alg, &KEY).unwrap()),
            guest: false,
            anonymous: false,
            negotiate_validated: true,
        }),
    );
    (c, SigningKey::new(alg, &KEY).unwrap())
}

/// A response to request `id` of the session, signed with `key` (None: unsigned).
fn response<B: crate::messages::EncodeBody>(
    command: Command,
    id: u64,
    status: NtStatus,
    body: &B,
    key: Option<&SigningKey>,
) -> Vec<u8> {
    let mut h = Header::request(command, id, SID, TREE).response(status);
    h.credits = 1;
    let mut m = build(&h, body);
    if let Some(k) = key {
        k.sign(&mut m).unwrap();
    }
    m
}

/// The unsolicited notification: MessageId all ones, never signed.
fn notification(level: OplockLevel, file_id: FileId) -> Vec<u8> {
    let mut h =
        Header::request(Command::OPLOCK_BREAK, u64::MAX, SID, TREE).response(NtStatus::SUCCESS);
    h.credits = 0;
    build(
        &h,
        &OplockBreak {
            oplock_level: level,
            file_id,
        },
    )
}

/// Opens [`FILE`] asking for `want`; the server grants `granted` (signed).
fn open_with(c: &mut ClientConnection, key: &SigningKey, want: OplockLevel, granted: OplockLevel) {
    let open = OpenRequest::read_file("f.txt").with_caching(Caching::Oplock(want));
    let id = c.create(TREE, &open).unwrap();
    let sent = c.poll_transmit().unwrap();
    assert_eq!(
        CreateRequest::read(&sent).unwrap().requested_oplock_level,
        want
    );
    key.verify(&sent).expect("CREATE signed");
    let body = CreateResponse {
        oplock_level: granted,
        create_action: CreateAction::OPENED,
        file_id: FILE,
        ..Default::default()
    };
    c.handle_input(&response(
        Command::CREATE,
        id,
        NtStatus::SUCCESS,
        &body,
        Some(key),
    ))
    .unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Response {
            body: ResponseBody::Create { oplock_level, file_id, .. },
            ..
        }) if oplock_level == granted && file_id == FILE
    ));
    assert_eq!(c.oplock_level(FILE), granted);
}

#[test]
fn unsigned_break_on_a_signed_session_is_accepted_and_the_signed_ack_verified() {
    for (dialect, alg) in CASES {
        let (mut c, key) = signed_session(dialect, alg);
        open_with(&mut c, &key, OplockLevel::BATCH, OplockLevel::BATCH);
        let n = notification(OplockLevel::II, FILE);
        assert!(!Header::parse(&n).unwrap().is_signed());
        c.handle_input(&n)
            .expect("an unsigned break notification is accepted");
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::OplockBreak {
                file_id: FILE,
                tree_id: TREE,
                from: OplockLevel::BATCH,
                to: OplockLevel::II,
                ack_required: true,
            }),
            "{dialect:?}"
        );
        // More than offered is refused before anything is sent.
        assert_eq!(
            c.acknowledge_oplock_break(FILE, OplockLevel::EXCLUSIVE),
            Err(ClientError::State(StateError::AckAboveBreak))
        );
        let id = c.acknowledge_oplock_break(FILE, OplockLevel::II).unwrap();
        let ack = c.poll_transmit().unwrap();
        let h = Header::parse(&ack).unwrap();
        assert_eq!(
            (h.command, h.message_id, h.session_id, h.tree_id),
            (Command::OPLOCK_BREAK, id, SID, TREE)
        );
        assert!(h.is_signed(), "{dialect:?}: the acknowledgement is signed");
        key.verify(&ack).expect("acknowledgement signature");
        assert_eq!(
            OplockBreak::read(&ack).unwrap(),
            OplockBreak {
                oplock_level: OplockLevel::II,
                file_id: FILE
            }
        );
        // A second acknowledgement of the same break is refused.
        assert_eq!(
            c.acknowledge_oplock_break(FILE, OplockLevel::II),
            Err(ClientError::State(StateError::NoBreakPending))
        );
        let body = OplockBreak {
            oplock_level: OplockLevel::II,
            file_id: FILE,
        };
        c.handle_input(&response(
            Command::OPLOCK_BREAK,
            id,
            NtStatus::SUCCESS,
            &body,
            Some(&key),
        ))
        .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Response {
                id,
                command: Command::OPLOCK_BREAK,
                status: NtStatus::SUCCESS,
                body: ResponseBody::OplockBreak {
                    file_id: FILE,
                    oplock_level: OplockLevel::II
                },
            })
        );
        assert_eq!(c.oplock_level(FILE), OplockLevel::II);
        // Level II breaks to none without an acknowledgement.
        c.handle_input(&notification(OplockLevel::NONE, FILE))
            .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::OplockBreak {
                file_id: FILE,
                tree_id: TREE,
                from: OplockLevel::II,
                to: OplockLevel::NONE,
                ack_required: false,
            })
        );
        assert_eq!(c.oplock_level(FILE), OplockLevel::NONE);
        assert_eq!(
            c.acknowledge_oplock_break(FILE, OplockLevel::NONE),
            Err(ClientError::State(StateError::NoBreakPending))
        );
        assert!(c.failure().is_none());
    }
}

#[test]
fn an_unsigned_ack_response_is_refused() {
    for (dialect, alg) in CASES {
        let (mut c, key) = signed_session(dialect, alg);
        open_with(&mut c, &key, OplockLevel::BATCH, OplockLevel::BATCH);
        c.handle_input(&notification(OplockLevel::NONE, FILE))
            .unwrap();
        c.poll_event();
        let id = c.acknowledge_oplock_break(FILE, OplockLevel::NONE).unwrap();
        c.poll_transmit().unwrap();
        let body = OplockBreak {
            oplock_level: OplockLevel::NONE,
            file_id: FILE,
        };
        // The acknowledgement's response claims its MessageId but carries no signature.
        let forged = response(Command::OPLOCK_BREAK, id, NtStatus::SUCCESS, &body, None);
        assert!(
            matches!(
                c.handle_input(&forged),
                Err(ClientError::BadSignature {
                    command: Command::OPLOCK_BREAK,
                    ..
                })
            ),
            "{dialect:?}"
        );
        assert!(matches!(
            c.poll_event(),
            Some(ClientEvent::SignatureRejected { message_id, .. }) if message_id == id
        ));
        assert!(c.failure().is_some());
        // The same with a signature made with another key.
        let (mut c, key) = signed_session(dialect, alg);
        open_with(&mut c, &key, OplockLevel::BATCH, OplockLevel::BATCH);
        c.handle_input(&notification(OplockLevel::NONE, FILE))
            .unwrap();
        let id = c.acknowledge_oplock_break(FILE, OplockLevel::NONE).unwrap();
        let other = SigningKey::new(alg, &[1; 16]).unwrap();
        let forged = response(
            Command::OPLOCK_BREAK,
            id,
            NtStatus::SUCCESS,
            &body,
            Some(&other),
        );
        assert!(matches!(
            c.handle_input(&forged),
            Err(ClientError::BadSignature { .. })
        ));
    }
}

#[test]
fn a_break_claiming_another_message_id_or_command_is_refused() {
    let (dialect, alg) = (Dialect::SMB311, Algorithm::AesGmac);
    // An unsigned OPLOCK_BREAK under a MessageId that is not all ones and not outstanding.
    let (mut c, key) = signed_session(dialect, alg);
    open_with(&mut c, &key, OplockLevel::BATCH, OplockLevel::BATCH);
    let mut n = notification(OplockLevel::II, FILE);
    n[24..32].copy_from_slice(&77u64.to_le_bytes());
    assert!(matches!(
        c.handle_input(&n),
        Err(ClientError::Protocol(ProtocolError::NotOutstanding(77)))
    ));
    assert!(c.failure().is_some());
    // The same notification under the MessageId of an outstanding request (an ECHO): the
    // command does not match, so it is not taken as that request's answer.
    let (mut c, key) = signed_session(dialect, alg);
    open_with(&mut c, &key, OplockLevel::BATCH, OplockLevel::BATCH);
    let echo = c.echo().unwrap();
    let mut n = notification(OplockLevel::II, FILE);
    n[24..32].copy_from_slice(&echo.to_le_bytes());
    assert!(c.handle_input(&n).is_err());
    // An unsolicited message (MessageId all ones) that is not a break.
    let (mut c, _key) = signed_session(dialect, alg);
    let mut h = Header::request(Command::ECHO, u64::MAX, SID, TREE).response(NtStatus::SUCCESS);
    h.flags |= flags::SERVER_TO_REDIR;
    let m = build(&h, &EchoResponse);
    assert!(matches!(
        c.handle_input(&m),
        Err(ClientError::Protocol(ProtocolError::UnsolicitedNotBreak(
            Command::ECHO
        )))
    ));
}

#[test]
fn breaks_for_unknown_or_closed_opens_are_ignored_and_mismatched_ack_responses_fail() {
    let (mut c, key) = signed_session(Dialect::SMB311, Algorithm::AesCmac);
    // No oplock asked: the server grants none, and a break names nothing this client holds.
    open_with(&mut c, &key, OplockLevel::NONE, OplockLevel::NONE);
    c.handle_input(&notification(OplockLevel::NONE, FILE))
        .unwrap();
    assert_eq!(c.poll_event(), None);
    // Granted, then closed: a late break is ignored.
    open_with(&mut c, &key, OplockLevel::EXCLUSIVE, OplockLevel::EXCLUSIVE);
    let id = c.close(TREE, FILE).unwrap();
    c.poll_transmit().unwrap();
    c.handle_input(&response(
        Command::CLOSE,
        id,
        NtStatus::SUCCESS,
        &CloseResponse::default(),
        Some(&key),
    ))
    .unwrap();
    c.poll_event();
    assert_eq!(c.oplock_level(FILE), OplockLevel::NONE);
    c.handle_input(&notification(OplockLevel::NONE, FILE))
        .unwrap();
    assert_eq!(c.poll_event(), None);
    assert!(c.failure().is_none());
    // An acknowledgement answered (signed) for another open fails the connection.
    open_with(&mut c, &key, OplockLevel::BATCH, OplockLevel::BATCH);
    c.handle_input(&notification(OplockLevel::II, FILE))
        .unwrap();
    c.poll_event();
    let id = c.acknowledge_oplock_break(FILE, OplockLevel::II).unwrap();
    let body = OplockBreak {
        oplock_level: OplockLevel::II,
        file_id: FileId {
            persistent: 9,
            volatile: 9,
        },
    };
    assert_eq!(
        c.handle_input(&response(
            Command::OPLOCK_BREAK,
            id,
            NtStatus::SUCCESS,
            &body,
            Some(&key)
        )),
        Err(ClientError::Protocol(ProtocolError::BreakResponseMismatch))
    );
}

#[test]
fn change_notify_goes_async_and_the_signed_cancel_names_its_async_id() {
    use crate::messages::error::ErrorResponse;
    for (dialect, alg) in CASES {
        let (mut c, key) = signed_session(dialect, alg);
        let id = c.change_notify(TREE, FILE, 0x1, true).unwrap();
        let sent = c.poll_transmit().unwrap();
        key.verify(&sent).expect("CHANGE_NOTIFY signed");
        // The interim response: async, STATUS_PENDING, unsigned by design.
        let mut h =
            Header::request(Command::CHANGE_NOTIFY, id, SID, TREE).response(NtStatus::PENDING);
        h.async_id = Some(0x55);
        let interim = build(
            &h,
            &ErrorResponse {
                error_context_count: 0,
                error_data: Vec::new(),
            },
        );
        c.handle_input(&interim).unwrap();
        assert_eq!(c.async_id(id), Some(0x55));
        assert_eq!(c.interim_responses(), 1);
        assert_eq!(c.poll_event(), None);
        let credits = c.credits();
        assert_eq!(c.cancel(id), Ok(true));
        assert_eq!(c.credits(), credits, "CANCEL takes no credit");
        let cancel = c.poll_transmit().unwrap();
        let ch = Header::parse(&cancel).unwrap();
        assert_eq!(
            (ch.command, ch.message_id, ch.async_id, ch.credits),
            (Command::CANCEL, id, Some(0x55), 0)
        );
        assert!(ch.is_signed(), "{dialect:?}: CANCEL is signed");
        key.verify(&cancel)
            .expect("CANCEL signature (GMAC: with the CANCEL bit)");
        if alg == Algorithm::AesGmac {
            // The CANCEL bit is part of the nonce: the same bytes as another command differ.
            let mut as_echo = cancel.clone();
            as_echo[12..14].copy_from_slice(&Command::ECHO.0.to_le_bytes());
            assert!(key.verify(&as_echo).is_err());
        }
        // The final answer, signed, in the async form.
        let mut fin = h.clone();
        fin.status = NtStatus::CANCELLED;
        let unsigned = build(
            &fin,
            &ErrorResponse {
                error_context_count: 0,
                error_data: Vec::new(),
            },
        );
        let mut signed = unsigned.clone();
        key.sign(&mut signed).unwrap();
        c.handle_input(&signed).unwrap();
        assert!(matches!(
            c.poll_event(),
            Some(ClientEvent::Response { id: i, status: NtStatus::CANCELLED, .. }) if i == id
        ));
        assert_eq!(c.cancel(id), Ok(false), "nothing left to cancel");
        // An unsigned final answer is refused like any response.
        let (mut c, _key) = signed_session(dialect, alg);
        let id = c.change_notify(TREE, FILE, 0x1, true).unwrap();
        c.handle_input(&interim).unwrap();
        let mut forged = unsigned.clone();
        forged[24..32].copy_from_slice(&id.to_le_bytes());
        assert!(matches!(
            c.handle_input(&forged),
            Err(ClientError::BadSignature { .. })
        ));
    }
}

/// The unsolicited lease break notification: MessageId all ones, SessionId 0, never signed.
fn lease_notification(key: LeaseKey, from: u32, to: u32, epoch: u16, ack: bool) -> Vec<u8> {
    let mut h = Header::request(Command::OPLOCK_BREAK, u64::MAX, 0, 0).response(NtStatus::SUCCESS);
    h.credits = 0;
    build(
        &h,
        &LeaseBreakNotification {
            new_epoch: epoch,
            flags: if ack {
                lease_break_flags::ACK_REQUIRED
            } else {
                0
            },
            key,
            current_state: from,
            new_state: to,
            ..Default::default()
        },
    )
}

#[test]
fn leases_granted_broken_acknowledged_signed_and_forgotten_on_close() {
    const KEY: LeaseKey = *b"0123456789abcdef";
    let rwh = lease_state::ALL;
    let rh = lease_state::READ_CACHING | lease_state::HANDLE_CACHING;
    for (dialect, alg) in CASES {
        let (mut c, key) = signed_session(dialect, alg);
        let open = OpenRequest::read_file("f.txt").with_caching(Caching::Lease {
            key: KEY,
            state: rwh,
        });
        let id = c.create(TREE, &open).unwrap();
        let sent = c.poll_transmit().unwrap();
        let req = CreateRequest::read(&sent).unwrap();
        assert_eq!(req.requested_oplock_level, OplockLevel::LEASE);
        let asked = LeaseContext::find(&req.contexts).unwrap().unwrap();
        // MS-SMB2 3.2.4.3.8: version 1 on 2.1, version 2 on 3.x.
        assert_eq!(
            asked.version(),
            if dialect == Dialect::SMB21 { 1 } else { 2 }
        );
        assert_eq!((asked.key, asked.state), (KEY, rwh));
        let v2 = asked.v2.map(|_| LeaseV2 {
            parent_key: [0; 16],
            epoch: 1,
        });
        let granted = LeaseContext {
            key: KEY,
            state: rwh,
            flags: 0,
            duration: 0,
            v2,
        };
        let body = CreateResponse {
            oplock_level: OplockLevel::LEASE,
            create_action: CreateAction::OPENED,
            file_id: FILE,
            contexts: vec![granted.to_context()],
            ..Default::default()
        };
        c.handle_input(&response(
            Command::CREATE,
            id,
            NtStatus::SUCCESS,
            &body,
            Some(&key),
        ))
        .unwrap();
        assert!(matches!(
            c.poll_event(),
            Some(ClientEvent::Response {
                body: ResponseBody::Create { oplock_level: OplockLevel::LEASE, lease: Some(l), .. },
                ..
            }) if l.key == KEY && l.state == rwh
        ));
        assert_eq!(c.lease_state(&KEY), rwh);
        // The unsigned notification is accepted on the signed session.
        c.handle_input(&lease_notification(KEY, rwh, rh, 2, true))
            .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::LeaseBreak {
                key: KEY,
                from: rwh,
                to: rh,
                epoch: 2,
                ack_required: true
            })
        );
        assert_eq!(
            c.acknowledge_lease_break(KEY, lease_state::READ_CACHING | lease_state::WRITE_CACHING),
            Err(ClientError::State(StateError::AckAboveBreak))
        );
        let id = c.acknowledge_lease_break(KEY, rh).unwrap();
        let ack = c.poll_transmit().unwrap();
        let h = Header::parse(&ack).unwrap();
        assert_eq!(
            (h.command, h.session_id, h.tree_id),
            (Command::OPLOCK_BREAK, SID, TREE)
        );
        assert!(h.is_signed());
        key.verify(&ack).expect("lease acknowledgement signature");
        assert_eq!(
            LeaseBreakAck::read(&ack).unwrap(),
            LeaseBreakAck {
                flags: 0,
                key: KEY,
                state: rh,
                duration: 0
            }
        );
        let answer = LeaseBreakAck {
            flags: 0,
            key: KEY,
            state: rh,
            duration: 0,
        };
        // Unsigned, it is refused; signed, it is reported.
        let mut probe = holding_acknowledged_lease(dialect, alg, KEY);
        let forged = response(
            Command::OPLOCK_BREAK,
            probe.1,
            NtStatus::SUCCESS,
            &answer,
            None,
        );
        assert!(matches!(
            probe.0.handle_input(&forged),
            Err(ClientError::BadSignature { .. })
        ));
        c.handle_input(&response(
            Command::OPLOCK_BREAK,
            id,
            NtStatus::SUCCESS,
            &answer,
            Some(&key),
        ))
        .unwrap();
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Response {
                id,
                command: Command::OPLOCK_BREAK,
                status: NtStatus::SUCCESS,
                body: ResponseBody::LeaseBreak {
                    key: KEY,
                    state: rh
                },
            })
        );
        assert_eq!(c.lease_state(&KEY), rh);
        // A break without ACK_REQUIRED applies at once and cannot be acknowledged.
        c.handle_input(&lease_notification(
            KEY,
            rh,
            lease_state::READ_CACHING,
            3,
            false,
        ))
        .unwrap();
        assert!(matches!(
            c.poll_event(),
            Some(ClientEvent::LeaseBreak {
                ack_required: false,
                ..
            })
        ));
        assert_eq!(c.lease_state(&KEY), lease_state::READ_CACHING);
        assert_eq!(
            c.acknowledge_lease_break(KEY, lease_state::NONE),
            Err(ClientError::State(StateError::NoBreakPending))
        );
        // Closing the lease's only open forgets the lease; a late break is ignored.
        let id = c.close(TREE, FILE).unwrap();
        c.handle_input(&response(
            Command::CLOSE,
            id,
            NtStatus::SUCCESS,
            &CloseResponse::default(),
            Some(&key),
        ))
        .unwrap();
        c.poll_event();
        assert_eq!(c.lease_state(&KEY), lease_state::NONE);
        c.handle_input(&lease_notification(KEY, rh, lease_state::NONE, 4, true))
            .unwrap();
        assert_eq!(c.poll_event(), None);
        assert!(c.failure().is_none());
    }
}

/// A connection holding lease `key` with a break acknowledged: (connection, the ack's id).
fn holding_acknowledged_lease(
    dialect: Dialect,
    alg: Algorithm,
    lease: LeaseKey,
) -> (ClientConnection, u64) {
    let (mut c, key) = signed_session(dialect, alg);
    let open = OpenRequest::read_file("f.txt").with_caching(Caching::Lease {
        key: lease,
        state: lease_state::ALL,
    });
    let id = c.create(TREE, &open).unwrap();
    let granted = LeaseContext {
        key: lease,
        state: lease_state::ALL,
        ..Default::default()
    };
    let body = CreateResponse {
        oplock_level: OplockLevel::LEASE,
        file_id: FILE,
        contexts: vec![granted.to_context()],
        ..Default::default()
    };
    c.handle_input(&response(
        Command::CREATE,
        id,
        NtStatus::SUCCESS,
        &body,
        Some(&key),
    ))
    .unwrap();
    c.handle_input(&lease_notification(
        lease,
        lease_state::ALL,
        lease_state::READ_CACHING,
        2,
        true,
    ))
    .unwrap();
    let id = c
        .acknowledge_lease_break(lease, lease_state::READ_CACHING)
        .unwrap();
    (c, id)
}

#[test]
fn a_lease_under_another_key_or_on_2_0_2_is_refused() {
    let (mut c, key) = signed_session(Dialect::SMB311, Algorithm::AesGmac);
    let open = OpenRequest::read_file("f.txt").with_caching(Caching::Lease {
        key: [1; 16],
        state: lease_state::ALL,
    });
    let id = c.create(TREE, &open).unwrap();
    let other = LeaseContext {
        key: [2; 16],
        state: lease_state::ALL,
        ..Default::default()
    };
    let body = CreateResponse {
        oplock_level: OplockLevel::LEASE,
        file_id: FILE,
        contexts: vec![other.to_context()],
        ..Default::default()
    };
    assert_eq!(
        c.handle_input(&response(
            Command::CREATE,
            id,
            NtStatus::SUCCESS,
            &body,
            Some(&key)
        )),
        Err(ClientError::Protocol(ProtocolError::LeaseKeyMismatch))
    );
    let (mut c, _) = signed_session(Dialect::SMB202, Algorithm::HmacSha256);
    assert_eq!(
        c.create(TREE, &open),
        Err(ClientError::State(StateError::NoLeasing))
    );
}
