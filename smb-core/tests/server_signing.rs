//! MS-SMB2 3.3.5.2.3 / 3.3.5.2.4 on the server: unsigned, tampered and replayed requests on
//! a signing-required session are rejected and never executed.

mod server_util;

use server_util::{config, Client};
use smb_core::compound::{build_chain, split_chain};
use smb_core::conn::server::{RejectReason, ServerEvent};
use smb_core::header::Header;
use smb_core::header::{flags, Command, Dialect, NtStatus, SIGNATURE_OFFSET};
use smb_core::messages::build;
use smb_core::messages::close::CloseRequest;
use smb_core::messages::create::{access, CreateDisposition, CreateRequest, CreateResponse};
use smb_core::messages::echo::EchoRequest;
use smb_core::messages::read::{ReadRequest, ReadResponse};
use smb_core::messages::write::WriteRequest;
use smb_core::messages::FileId;

fn create_req(name: &str) -> CreateRequest {
    CreateRequest {
        desired_access: access::GENERIC_READ | access::GENERIC_WRITE,
        create_disposition: CreateDisposition::OVERWRITE_IF,
        name: name.into(),
        ..Default::default()
    }
}

fn rejected(c: &Client, reason: RejectReason) -> usize {
    c.events
        .iter()
        .filter(|e| matches!(e, ServerEvent::RequestRejected { reason: r, .. } if *r == reason))
        .count()
}

#[test]
fn unsigned_request_on_a_signing_required_session_is_denied_and_not_executed() {
    for dialect in Dialect::ALL {
        let (cfg, share) = config(true);
        let mut c = Client::connected(cfg, dialect);
        // The attacker's view: a valid request with SIGNED clear and no signature.
        c.sign = false;
        let r = c.call(Command::CREATE, &create_req("evil.txt"));
        assert_eq!(r.hdr.status, NtStatus::ACCESS_DENIED, "{dialect:?}");
        assert!(
            !share.exists("evil.txt"),
            "a rejected request must have no effect"
        );
        assert_eq!(rejected(&c, RejectReason::Unsigned), 1);
        // SIGNED set but the signature left zero: a bad signature, the connection ends.
        let mut msg = c.build(Command::CREATE, &create_req("evil2.txt"));
        msg[16] |= flags::SIGNED as u8;
        let r = c.send(&msg).expect("ACCESS_DENIED before the disconnect");
        assert_eq!(r.hdr.status, NtStatus::ACCESS_DENIED);
        assert!(!share.exists("evil2.txt"));
        assert_eq!(rejected(&c, RejectReason::BadSignature), 1);
        assert!(c.disconnected() && c.conn.is_failed());
        // A failed connection stays failed: even a well-signed request is ignored now.
        c.sign = true;
        let msg = c.build(Command::CREATE, &create_req("late.txt"));
        assert!(c.send(&msg).is_none());
        assert!(!share.exists("late.txt"));
    }
}

#[test]
fn one_flipped_bit_anywhere_is_rejected() {
    let (cfg, share) = config(true);
    let mut probe = Client::connected(cfg.clone(), Dialect::SMB311);
    let len = probe
        .build(
            Command::WRITE,
            &WriteRequest {
                data: b"payload".to_vec(),
                ..Default::default()
            },
        )
        .len();
    // Flip one bit in the header (outside the signature), in the signature, and in the body.
    for pos in [12, 30, SIGNATURE_OFFSET + 3, 64 + 2, len - 1] {
        let mut c = Client::connected(cfg.clone(), Dialect::SMB311);
        let r = c.call(Command::CREATE, &create_req("f.txt"));
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
        let fid = CreateResponse::read(&r.msg).unwrap().file_id;
        let mut msg = c.build(
            Command::WRITE,
            &WriteRequest {
                file_id: fid,
                data: b"payload".to_vec(),
                ..Default::default()
            },
        );
        msg[pos] ^= 0x10;
        let out = c.raw(&msg);
        assert!(out.len() <= 1);
        assert_eq!(
            share.contents("f.txt").unwrap(),
            b"",
            "byte {pos}: nothing written"
        );
        assert!(c.conn.is_failed(), "byte {pos}");
        // A flipped MessageId bit (byte 30) leaves the credit window before the signature
        // is even checked; every other flip fails the signature.
        let reason = if pos == 30 {
            RejectReason::Replay
        } else {
            RejectReason::BadSignature
        };
        assert_eq!(rejected(&c, reason), 1, "byte {pos}");
    }
}

#[test]
fn replayed_message_id_is_rejected() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let r = c.call(Command::CREATE, &create_req("f.txt"));
    let fid = CreateResponse::read(&r.msg).unwrap().file_id;
    let w = c.build(
        Command::WRITE,
        &WriteRequest {
            file_id: fid,
            offset: 0,
            data: b"once".to_vec(),
            ..Default::default()
        },
    );
    assert_eq!(c.send(&w).unwrap().hdr.status, NtStatus::SUCCESS);
    share.put("f.txt", b"").unwrap();
    // The exact same signed bytes again: a replay, not executed.
    assert!(c.send(&w).is_none());
    assert_eq!(share.contents("f.txt").unwrap(), b"");
    assert_eq!(rejected(&c, RejectReason::Replay), 1);
    assert!(c.conn.is_failed());
}

#[test]
fn message_ids_outside_the_granted_window_are_rejected() {
    let (cfg, _) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    c.next_id += 100_000;
    let msg = c.build(Command::ECHO, &EchoRequest);
    assert!(c.send(&msg).is_none());
    assert_eq!(rejected(&c, RejectReason::Replay), 1);
}

#[test]
fn unsigned_session_accepts_unsigned_requests_but_checks_signed_ones() {
    let (cfg, share) = config(false);
    let mut c = Client::connected(cfg, Dialect::SMB30);
    c.sign = false;
    let r = c.call(Command::CREATE, &create_req("ok.txt"));
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    assert!(
        !Client::is_signed(&r),
        "unsigned request, unsigned response"
    );
    let fid = CreateResponse::read(&r.msg).unwrap().file_id;
    // A signed request gets a signed response.
    c.sign = true;
    let r = c.call(
        Command::WRITE,
        &WriteRequest {
            file_id: fid,
            data: b"abc".to_vec(),
            ..Default::default()
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    assert!(Client::is_signed(&r));
    let r = c.call(
        Command::READ,
        &ReadRequest {
            file_id: fid,
            length: 10,
            ..Default::default()
        },
    );
    assert_eq!(ReadResponse::read(&r.msg).unwrap().data, b"abc");
    // A signed request with a bad signature is refused even here.
    let mut msg = c.build(
        Command::CLOSE,
        &CloseRequest {
            flags: 0,
            file_id: fid,
        },
    );
    msg[SIGNATURE_OFFSET] ^= 1;
    assert_eq!(c.send(&msg).unwrap().hdr.status, NtStatus::ACCESS_DENIED);
    assert!(c.conn.is_failed());
    assert_eq!(share.contents("ok.txt").unwrap(), b"abc");
}

#[test]
fn unsigned_tree_connect_on_311_disconnects_even_when_signing_is_not_required() {
    use smb_core::messages::tree_connect::TreeConnectRequest;
    let request = TreeConnectRequest {
        flags: 0,
        path: "\\\\127.0.0.1\\data".into(),
    };
    for dialect in Dialect::ALL {
        let (cfg, _share) = config(false);
        let mut c = Client::new(cfg);
        c.negotiate(&[dialect], &[]);
        assert_eq!(c.login(), NtStatus::SUCCESS);
        // A relay attacker has the session but not its key: it cannot sign.
        c.sign = false;
        let msg = c.build(Command::TREE_CONNECT, &request);
        let r = c.send(&msg);
        if dialect == Dialect::SMB311 {
            // MS-SMB2 3.3.5.7: the server MUST disconnect.
            assert!(r.is_none_or(|r| r.hdr.status != NtStatus::SUCCESS));
            assert!(c.disconnected() && c.conn.is_failed(), "{dialect:?}");
            assert_eq!(rejected(&c, RejectReason::Unsigned), 1);
        } else {
            // Older dialects run unsigned when neither side requires signing.
            assert_eq!(
                r.expect("a response").hdr.status,
                NtStatus::SUCCESS,
                "{dialect:?}"
            );
        }
    }
}

/// MS-SMB2 3.3.5.2.7.2: a related request belongs to the previous request's session, whatever
/// its own SessionId says. An unsigned related request (SessionId 0, as if it had no session)
/// after a signed CREATE on a signing-required session is refused like any unsigned request.
#[test]
fn unsigned_related_request_is_denied_even_with_session_id_zero() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let key = c.key.clone().unwrap();
    let create = c.build(Command::CREATE, &create_req("chain.txt"));
    let mut h = c.header(Command::WRITE);
    h.flags |= flags::RELATED_OPERATIONS;
    h.session_id = 0;
    h.tree_id = u32::MAX;
    let write = build(
        &h,
        &WriteRequest {
            file_id: FileId::RELATED,
            data: b"unsigned".to_vec(),
            ..Default::default()
        },
    );
    let mut chain = build_chain(&[create, write]);
    // Sign the CREATE alone (its padding included); the WRITE stays unsigned.
    let ranges = split_chain(&chain).unwrap();
    key.sign(&mut chain[ranges[0].clone()]).unwrap();
    let out = c.raw(&chain);
    assert_eq!(out.len(), 1, "one chained response");
    let ranges = split_chain(&out[0]).unwrap();
    let statuses: Vec<NtStatus> = ranges
        .iter()
        .map(|r| Header::parse(&out[0][r.clone()]).unwrap().status)
        .collect();
    assert_eq!(statuses, [NtStatus::SUCCESS, NtStatus::ACCESS_DENIED]);
    assert_eq!(
        share.contents("chain.txt").unwrap(),
        b"",
        "the WRITE never ran"
    );
    assert_eq!(rejected(&c, RejectReason::Unsigned), 1);
}
