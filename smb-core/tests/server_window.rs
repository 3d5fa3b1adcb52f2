//! Issue 12, attack 1, replayed in memory: a client that leaves a hole in the MessageId
//! sequence must not make the server remember an unbounded set of used ids, nor keep
//! granting credits above the hole (MS-SMB2 3.3.1.1, 3.3.5.2.3).

mod server_util;

use server_util::{config, Client};
use smb_core::header::{Command, Dialect, Header, NtStatus};
use smb_core::messages::build;
use smb_core::messages::echo::EchoRequest;
use smb_core::signing::Algorithm;

/// NEGOTIATE asking for 512 credits, never MessageId 1, then unauthenticated ECHOs of
/// CreditCharge 511 that each ask for 511 more, at the ids the attack used (2, 513, 1024, ...).
#[test]
fn a_hole_in_the_message_ids_stops_the_grants_and_then_the_connection() {
    let (cfg, _) = config(true);
    let max = cfg.limits.max_credits;
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[Algorithm::AesGmac]);
    // negotiate() asked for 64 credits: ids 1..=64. Id 1 is never used.
    let mut high = 65u64;
    let mut granted_total = 64u64;
    let mut id = 2u64;
    let mut answered = 0;
    for _ in 0..2000 {
        let mut h = Header::request(Command::ECHO, id, 0, 0);
        // The largest charge the grants so far allow (at least 1: past the window).
        h.credit_charge = high.saturating_sub(id).clamp(1, 511) as u16;
        h.credits = 511;
        let out = c.raw(&build(&h, &EchoRequest));
        if c.disconnected() {
            break;
        }
        let resp = Header::parse(&out[0]).unwrap();
        assert_eq!(resp.status, NtStatus::SUCCESS);
        granted_total += u64::from(resp.credits);
        high += u64::from(resp.credits);
        answered += 1;
        id += u64::from(h.credit_charge);
    }
    assert!(answered >= 2, "the requests inside the window are served");
    assert!(
        c.disconnected(),
        "ids far above the hole end the connection"
    );
    // Everything granted stays within one window above the hole: the server never handed
    // out more than max_credits ids beyond the oldest unused one.
    assert!(
        granted_total <= u64::from(max) + 1,
        "granted {granted_total} credits over {answered} answers with a hole at id 1"
    );
}

/// The honest client that fills its holes late is served throughout.
#[test]
fn out_of_order_ids_within_the_window_are_served() {
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[Algorithm::AesGmac]);
    assert_eq!(c.login(), NtStatus::SUCCESS);
    let key = c.key.clone().unwrap();
    let sid = c.session_id;
    let base = c.next_id;
    // Send base+3, base+2, base+1 before base.
    for off in [3u64, 2, 1, 0] {
        let mut h = Header::request(Command::ECHO, base + off, sid, 0);
        h.credits = 4;
        let mut msg = build(&h, &EchoRequest);
        key.sign(&mut msg).unwrap();
        let r = c.send(&msg).expect("served");
        assert_eq!(r.hdr.status, NtStatus::SUCCESS, "id {}", base + off);
    }
    // A replay of any of them ends the connection.
    let mut h = Header::request(Command::ECHO, base + 2, sid, 0);
    h.credits = 1;
    let mut msg = build(&h, &EchoRequest);
    key.sign(&mut msg).unwrap();
    assert!(c.raw(&msg).is_empty());
    assert!(c.disconnected());
}

/// Issue 12 (lesser finding): a session without a key (guest, anonymous, or a relayed
/// logon whose key the peer does not hold) keeps the pre-authentication message limit;
/// only a keyed session lifts it.
#[test]
fn keyless_sessions_keep_the_pre_auth_message_limit() {
    use smb_core::auth::Credentials;
    use smb_core::conn::server::UNAUTHENTICATED_MAX_MESSAGE;
    let (cfg, _) = config(false);
    let full = cfg.limits.max_message_size;
    let mut guest_cfg = (*cfg).clone();
    guest_cfg.allow_guest = true;
    let mut c = Client::new(std::sync::Arc::new(guest_cfg));
    c.negotiate(&[Dialect::SMB311], &[]);
    assert_eq!(c.conn.max_message_size(), UNAUTHENTICATED_MAX_MESSAGE);
    let st = c.session_setup(Credentials::password("nobody", "", "whatever"));
    assert_eq!(st, NtStatus::SUCCESS);
    assert!(c.key.is_none(), "a guest session");
    assert_eq!(c.conn.max_message_size(), UNAUTHENTICATED_MAX_MESSAGE);
    // A keyed logon on the same connection lifts it.
    c.session_id = 0;
    assert_eq!(c.login(), NtStatus::SUCCESS);
    assert!(c.key.is_some());
    assert_eq!(c.conn.max_message_size(), full);
}
