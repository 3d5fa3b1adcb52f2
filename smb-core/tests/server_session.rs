//! NEGOTIATE, SESSION_SETUP and signing policy of the sans-IO server.

mod server_util;

use server_util::{config, Client, PASSWORD, USER};
use smb_core::auth::Credentials;
use smb_core::conn::server::{LogonRefusal, ServerEvent};
use smb_core::header::{Command, Dialect, NtStatus};
use smb_core::messages::echo::EchoRequest;
use smb_core::messages::negotiate::NegotiateResponse;
use smb_core::messages::smb1_negotiate::Smb1Negotiate;
use smb_core::policy::{SIGNING_ENABLED, SIGNING_REQUIRED};
use smb_core::signing::Algorithm;

#[test]
fn negotiates_each_dialect_and_signs_the_session() {
    for dialect in Dialect::ALL {
        for require in [true, false] {
            let (cfg, _) = config(require);
            let mut c = Client::new(cfg);
            let resp = c.negotiate(&[dialect], &[Algorithm::AesGmac]);
            assert_eq!(resp.dialect_revision, dialect);
            let want_mode = if require {
                SIGNING_ENABLED | SIGNING_REQUIRED
            } else {
                SIGNING_ENABLED
            };
            assert_eq!(resp.security_mode, want_mode);
            assert!(!resp.security_buffer.is_empty(), "SPNEGO NegTokenInit2");
            assert_eq!(c.login(), NtStatus::SUCCESS, "{dialect:?}");
            let expected_alg = match dialect {
                Dialect::SMB311 => Algorithm::AesGmac,
                Dialect::SMB30 | Dialect::SMB302 => Algorithm::AesCmac,
                _ => Algorithm::HmacSha256,
            };
            let established = c
                .events
                .iter()
                .find_map(|e| match e {
                    ServerEvent::SessionEstablished {
                        algorithm,
                        signed,
                        dialect: d,
                        ..
                    } => Some((*algorithm, *signed, *d)),
                    _ => None,
                })
                .expect("SessionEstablished");
            assert_eq!(established, (Some(expected_alg), require, dialect));
            assert_eq!(
                c.events.iter().any(|e| matches!(
                    e,
                    ServerEvent::SessionUnsigned {
                        reason: "client did not require signing",
                        ..
                    }
                )),
                !require
            );
            // A signed request gets a signed response whose signature verifies (checked in send).
            let r = c.call(Command::ECHO, &EchoRequest);
            assert_eq!(r.hdr.status, NtStatus::SUCCESS);
            assert!(Client::is_signed(&r));
        }
    }
}

#[test]
fn signing_algorithm_is_the_servers_first_choice_among_the_clients() {
    let (cfg, _) = config(true);
    let mut cfg = (*cfg).clone();
    cfg.signing_algorithms = vec![Algorithm::AesCmac, Algorithm::AesGmac];
    let cfg = std::sync::Arc::new(cfg);
    let mut c = Client::new(cfg.clone());
    c.negotiate(
        &[Dialect::SMB311],
        &[Algorithm::AesGmac, Algorithm::AesCmac],
    );
    assert_eq!(c.algorithm, Some(Algorithm::AesCmac));
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[Algorithm::HmacSha256]);
    // No overlap: AES-CMAC, the 3.1.1 default.
    assert_eq!(c.algorithm, Some(Algorithm::AesCmac));
}

#[test]
fn client_requiring_signing_makes_the_session_signed() {
    let (cfg, _) = config(false);
    let mut c = Client::new(cfg);
    c.security_mode = SIGNING_ENABLED | SIGNING_REQUIRED;
    c.negotiate(&[Dialect::SMB311], &[Algorithm::AesCmac]);
    assert_eq!(c.login(), NtStatus::SUCCESS);
    assert!(c
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::SessionEstablished { signed: true, .. })));
    assert!(!c
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::SessionUnsigned { .. })));
}

#[test]
fn wrong_password_is_logon_failure() {
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[]);
    assert_eq!(
        c.session_setup(Credentials::password(USER, "", "wrong")),
        NtStatus::LOGON_FAILURE
    );
    assert!(c
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::LogonFailed { user, .. } if user == USER)));
    // The failed session is gone; a fresh one with the right password works.
    c.session_id = 0;
    assert_eq!(
        c.session_setup(Credentials::password(USER, "", PASSWORD)),
        NtStatus::SUCCESS
    );
    // Re-authenticating unsigned on the signing-required session is itself refused.
    assert_eq!(
        c.session_setup(Credentials::password("mallory", "", "x")),
        NtStatus::ACCESS_DENIED
    );
}

#[test]
fn guest_is_refused_when_signing_is_required_and_allowed_otherwise() {
    for require in [true, false] {
        let (cfg, _) = config(require);
        let mut cfg = (*cfg).clone();
        cfg.allow_guest = true;
        let mut c = Client::new(std::sync::Arc::new(cfg));
        c.negotiate(&[Dialect::SMB311], &[]);
        let status = c.session_setup(Credentials::password("nobody", "", "whatever"));
        if require {
            assert_eq!(status, NtStatus::LOGON_FAILURE);
            assert!(c.events.iter().any(|e| matches!(
                e,
                ServerEvent::LogonFailed {
                    reason: LogonRefusal::UnsignableSession,
                    ..
                }
            )));
        } else {
            assert_eq!(status, NtStatus::SUCCESS);
            assert!(c.key.is_none(), "guest sessions have no key");
            assert!(c.events.iter().any(|e| matches!(
                e,
                ServerEvent::SessionEstablished {
                    guest: true,
                    signed: false,
                    ..
                }
            )));
        }
    }
    // Without allow_guest an unknown user is a plain logon failure.
    let (cfg, _) = config(false);
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[]);
    assert_eq!(
        c.session_setup(Credentials::password("nobody", "", "x")),
        NtStatus::LOGON_FAILURE
    );
}

#[test]
fn smb1_negotiate_gets_an_smb2_wildcard_answer_and_is_audited() {
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg);
    let mut smb1 = Vec::new();
    Smb1Negotiate {
        dialects: vec!["NT LM 0.12".into(), "SMB 2.002".into(), "SMB 2.???".into()],
    }
    .encode(&mut smb1);
    let out = c.raw(&smb1);
    assert_eq!(out.len(), 1);
    let resp = NegotiateResponse::read(&out[0]).unwrap();
    assert_eq!(resp.dialect_revision, Dialect::WILDCARD);
    assert!(c.events.iter().any(|e| matches!(
        e,
        ServerEvent::Smb1Attempt {
            answered: Some(Dialect::WILDCARD),
            ..
        }
    )));
    // The SMB2 NEGOTIATE that follows uses MessageId 1.
    c.next_id = 1;
    c.negotiate(&[Dialect::SMB21, Dialect::SMB311], &[Algorithm::AesCmac]);
    assert_eq!(c.dialect, Dialect::SMB311);
    assert_eq!(c.login(), NtStatus::SUCCESS);

    // Only old dialects: answered with 2.0.2, or dropped when SMB1 only.
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg.clone());
    let mut smb1 = Vec::new();
    Smb1Negotiate {
        dialects: vec!["NT LM 0.12".into(), "SMB 2.002".into()],
    }
    .encode(&mut smb1);
    let out = c.raw(&smb1);
    assert_eq!(
        NegotiateResponse::read(&out[0]).unwrap().dialect_revision,
        Dialect::SMB202
    );
    let mut c = Client::new(cfg);
    let mut smb1 = Vec::new();
    Smb1Negotiate {
        dialects: vec!["NT LM 0.12".into()],
    }
    .encode(&mut smb1);
    assert!(c.raw(&smb1).is_empty());
    assert!(c.disconnected());
}

#[test]
fn logoff_then_a_new_session_on_the_same_connection() {
    use smb_core::messages::logoff::LogoffRequest;
    for dialect in [Dialect::SMB311, Dialect::SMB30, Dialect::SMB21] {
        let (cfg, _) = config(true);
        let mut c = Client::new(cfg);
        c.negotiate(&[dialect], &[Algorithm::AesGmac]);
        assert_eq!(c.login(), NtStatus::SUCCESS);
        let r = c.call(Command::LOGOFF, &LogoffRequest);
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
        assert!(Client::is_signed(&r));
        // The old session is gone.
        let r = c.call(Command::ECHO, &EchoRequest);
        assert_eq!(r.hdr.status, NtStatus::USER_SESSION_DELETED, "{dialect:?}");
        c.session_id = 0;
        c.key = None;
        assert_eq!(c.login(), NtStatus::SUCCESS, "{dialect:?}");
        let r = c.call(Command::ECHO, &EchoRequest);
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    }
}

#[test]
fn credits_granted_are_bounded_by_max_credits() {
    let (cfg, _) = config(true);
    let max = u32::from(cfg.limits.max_credits);
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[]);
    assert_eq!(c.login(), NtStatus::SUCCESS);
    let mut grants = Vec::new();
    for _ in 0..5 {
        let mut h = c.header(Command::ECHO);
        h.credits = u16::MAX;
        let mut msg = smb_core::messages::build(&h, &EchoRequest);
        c.key.as_ref().unwrap().sign(&mut msg).unwrap();
        let r = c.send(&msg).unwrap();
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
        grants.push(u32::from(r.hdr.credits));
    }
    // The first answer fills the window up to the limit; after that each request only
    // gets back the one credit it used.
    assert!(grants[0] > 1 && grants[0] < max, "{grants:?}");
    assert_eq!(&grants[1..], &[1, 1, 1, 1]);
}
