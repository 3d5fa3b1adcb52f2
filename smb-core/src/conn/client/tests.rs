//! Unit tests of the client state machine against hand-built responses (the in-memory pair
//! with a real server is `smb-core/tests/pair.rs`).

use super::*;
use crate::header::{flags, Command, Header, NtStatus};
use crate::messages::build;
use crate::messages::echo::EchoResponse;
use crate::messages::error::ErrorResponse;
use crate::messages::negotiate::{
    Guid, HashAlgorithm, NegotiateContext, NegotiateContextType, NegotiateRequest,
    NegotiateResponse,
};
use crate::policy::SIGNING_REQUIRED;
use crate::signing::Algorithm;

fn error_body() -> ErrorResponse {
    ErrorResponse {
        error_context_count: 0,
        error_data: Vec::new(),
    }
}

fn config(dialects: &[Dialect]) -> ClientConfig {
    let mut c = ClientConfig::new("server", Credentials::password("alice", "", "pw"));
    c.dialects = dialects.to_vec();
    c
}

fn response_header(command: Command, message_id: u64, status: NtStatus) -> Header {
    let mut h = Header::request(command, message_id, 0, 0).response(status);
    h.credits = 8;
    h
}

fn negotiate_response(dialect: Dialect, contexts: Vec<NegotiateContext>) -> Vec<u8> {
    let body = NegotiateResponse {
        security_mode: SIGNING_REQUIRED | crate::policy::SIGNING_ENABLED,
        dialect_revision: dialect,
        server_guid: Guid([7; 16]),
        capabilities: capabilities::LARGE_MTU,
        max_transact_size: 1 << 20,
        max_read_size: 1 << 20,
        max_write_size: 1 << 20,
        contexts,
        ..Default::default()
    };
    build(
        &response_header(Command::NEGOTIATE, 0, NtStatus::SUCCESS),
        &body,
    )
}

fn preauth() -> NegotiateContext {
    NegotiateContext::PreauthIntegrity {
        hash_algorithms: vec![HashAlgorithm::SHA512],
        salt: vec![1; 32],
    }
}

fn negotiated(dialect: Dialect) -> ClientConnection {
    let mut c = ClientConnection::new(config(&Dialect::ALL));
    c.negotiate().unwrap();
    let contexts = if dialect == Dialect::SMB311 {
        vec![preauth()]
    } else {
        vec![]
    };
    c.handle_input(&negotiate_response(dialect, contexts))
        .unwrap();
    c
}

#[test]
fn requests_out_of_order_are_refused() {
    let mut c = ClientConnection::new(config(&Dialect::ALL));
    assert!(matches!(c.session_setup(), Err(ClientError::State(_))));
    assert!(matches!(
        c.tree_connect(r"\\s\x"),
        Err(ClientError::State(_))
    ));
    assert!(matches!(c.echo(), Err(ClientError::State(_))));
    assert_eq!(c.negotiate(), Ok(0));
    assert!(matches!(c.negotiate(), Err(ClientError::State(_))));
    // One credit at the start, spent by NEGOTIATE.
    assert_eq!(c.credits(), 0);
    let sent = c.poll_transmit().unwrap();
    let h = Header::parse(&sent).unwrap();
    assert_eq!(
        (h.command, h.message_id, h.session_id),
        (Command::NEGOTIATE, 0, 0)
    );
    assert!(!h.is_signed());
    assert!(c.poll_transmit().is_none());
}

#[test]
fn negotiate_settles_dialect_algorithm_and_reports_signing_policy() {
    let mut c = ClientConnection::new(config(&Dialect::ALL));
    c.negotiate().unwrap();
    let sent = c.poll_transmit().unwrap();
    let req = NegotiateRequest::read(&sent).unwrap();
    assert_eq!(req.dialects, Dialect::ALL.to_vec());
    assert_eq!(
        req.security_mode,
        SIGNING_REQUIRED | crate::policy::SIGNING_ENABLED
    );
    assert!(matches!(
        req.context(NegotiateContextType::SIGNING_CAPABILITIES),
        Some(NegotiateContext::Signing { algorithms }) if algorithms.len() == 3
    ));
    let resp = negotiate_response(
        Dialect::SMB311,
        vec![
            preauth(),
            NegotiateContext::Signing {
                algorithms: vec![Algorithm::HmacSha256.id()],
            },
        ],
    );
    c.handle_input(&resp).unwrap();
    let info = c.negotiated().unwrap().clone();
    assert_eq!(info.dialect, Dialect::SMB311);
    assert_eq!(info.signing_algorithm, Algorithm::HmacSha256);
    assert!(info.server_requires_signing);
    assert_eq!(c.credits(), 8);
    assert_eq!(
        c.poll_event(),
        Some(ClientEvent::Response {
            id: 0,
            command: Command::NEGOTIATE,
            status: NtStatus::SUCCESS,
            body: ResponseBody::Negotiate(info),
        })
    );
    assert_eq!(
        c.poll_event(),
        None,
        "a server requiring signing raises no audit event"
    );
    // ECHO goes out with the next MessageId.
    assert_eq!(c.echo(), Ok(1));
}

#[test]
fn server_not_requiring_signing_is_reported() {
    let mut c = ClientConnection::new(config(&[Dialect::SMB21]));
    c.negotiate().unwrap();
    let mut resp = negotiate_response(Dialect::SMB21, vec![]);
    resp[66] = crate::policy::SIGNING_ENABLED as u8; // SecurityMode
    c.handle_input(&resp).unwrap();
    assert_eq!(
        c.poll_event(),
        Some(ClientEvent::ServerDoesNotRequireSigning {
            server: "server".into(),
            dialect: Dialect::SMB21
        })
    );
}

#[test]
fn bad_negotiate_answers_fail_the_connection() {
    let offered = [Dialect::SMB30, Dialect::SMB311];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dialect not offered",
            negotiate_response(Dialect::SMB21, vec![]),
        ),
        (
            "3.1.1 without preauth",
            negotiate_response(Dialect::SMB311, vec![]),
        ),
        (
            "algorithm not offered",
            negotiate_response(
                Dialect::SMB311,
                vec![
                    preauth(),
                    NegotiateContext::Signing {
                        algorithms: vec![crate::signing::SigningAlgorithmId(9)],
                    },
                ],
            ),
        ),
        (
            "truncated",
            negotiate_response(Dialect::SMB30, vec![])[..70].to_vec(),
        ),
    ];
    for (what, resp) in cases {
        let mut c = ClientConnection::new(config(&offered));
        c.negotiate().unwrap();
        assert!(
            matches!(c.handle_input(&resp), Err(ClientError::Protocol(_))),
            "{what}"
        );
        assert!(c.failure().is_some(), "{what}");
        assert!(matches!(c.echo(), Err(ClientError::Failed(_))), "{what}");
    }
}

#[test]
fn unexpected_messages_fail_the_connection() {
    // A response to nothing outstanding.
    let mut c = negotiated(Dialect::SMB30);
    let stray = build(
        &response_header(Command::ECHO, 42, NtStatus::SUCCESS),
        &EchoResponse,
    );
    assert!(matches!(
        c.handle_input(&stray),
        Err(ClientError::Protocol(_))
    ));
    // A request coming from the server.
    let mut c = negotiated(Dialect::SMB30);
    let id = c.echo().unwrap();
    let mut h = response_header(Command::ECHO, id, NtStatus::SUCCESS);
    h.flags &= !flags::SERVER_TO_REDIR;
    assert!(c.handle_input(&build(&h, &EchoResponse)).is_err());
    // A response for another command under the right MessageId.
    let mut c = negotiated(Dialect::SMB30);
    let id = c.echo().unwrap();
    let wrong = build(
        &response_header(Command::CLOSE, id, NtStatus::SUCCESS),
        &error_body(),
    );
    assert!(c.handle_input(&wrong).is_err());
    // Garbage.
    let mut c = negotiated(Dialect::SMB30);
    assert!(c.handle_input(&[0xFE, b'S', b'M', b'B', 1, 2]).is_err());
}

#[test]
fn interim_pending_is_absorbed_and_breaks_for_unknown_opens_ignored() {
    let mut c = negotiated(Dialect::SMB30);
    let id = c.echo().unwrap();
    let mut interim = response_header(Command::ECHO, id, NtStatus::PENDING);
    interim.async_id = Some(5);
    c.handle_input(&build(&interim, &EchoResponse)).unwrap();
    assert_eq!(c.interim_responses(), 1);
    let mut brk = response_header(Command::OPLOCK_BREAK, u64::MAX, NtStatus::SUCCESS);
    brk.credits = 0;
    let body = crate::messages::oplock_break::OplockBreak::default();
    c.handle_input(&build(&brk, &body)).unwrap();
    while let Some(ev) = c.poll_event() {
        assert!(
            !matches!(ev, ClientEvent::Response { id: i, .. } if i == id),
            "no answer yet"
        );
    }
    let fin = build(
        &response_header(Command::ECHO, id, NtStatus::SUCCESS),
        &EchoResponse,
    );
    c.handle_input(&fin).unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Response { id: i, status: NtStatus::SUCCESS, .. }) if i == id
    ));
}

#[test]
fn credit_charge_follows_payload_size() {
    assert_eq!(credit_charge(0), 1);
    assert_eq!(credit_charge(1), 1);
    assert_eq!(credit_charge(65_536), 1);
    assert_eq!(credit_charge(65_537), 2);
    assert_eq!(credit_charge(1 << 20), 16);
}

#[test]
fn running_out_of_credits_is_an_error_not_a_hang() {
    let mut c = negotiated(Dialect::SMB30); // 8 credits granted
    for _ in 0..8 {
        c.echo().unwrap();
    }
    assert_eq!(c.echo(), Err(ClientError::NoCredits { have: 0, need: 1 }));
}
