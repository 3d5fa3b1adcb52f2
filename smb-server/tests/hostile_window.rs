//! Hostile clients against the real server binary: MessageIds, credits, signatures and
//! compound chains (issue 12, attack 1 and its relatives).

mod hostile_util;

use std::io::Write;
use std::time::{Duration, Instant};

use hostile_util::{Raw, Server, MIB, PASSWORD, USER};
use smb_core::header::{flags, Command as Cmd, Header, NtStatus};
use smb_core::messages::build;
use smb_core::messages::echo::EchoRequest;

/// Attack 1 as filed: NEGOTIATE asking for 512 credits, MessageId 1 never used, then
/// unauthenticated ECHOs at 2, 513, 1024, ... each with CreditCharge 511 and CreditRequest
/// 511, sent as fast as possible. The old window kept granting (+376 MiB in 1.6 s); now the
/// grants stop at the hole and the next id above the window ends the connection.
#[test]
fn message_id_hole_does_not_grow_memory() {
    let srv = Server::start(&[]);
    let (rss0, _) = srv.memory();
    let mut c = Raw::connect(srv.addr, None);
    c.credits_asked = 512;
    c.negotiate();
    let t = Instant::now();
    let mut id = 2u64;
    let mut sent = 0u64;
    let mut batch = Vec::new();
    while t.elapsed() < Duration::from_secs(3) && sent < 20_000 {
        batch.clear();
        for _ in 0..64 {
            let mut h = Header::request(Cmd::ECHO, id, 0, 0);
            h.credit_charge = 511;
            h.credits = 511;
            smb_core::framing::encode_frame(&build(&h, &EchoRequest), &mut batch);
            id += 511;
            sent += 1;
        }
        if c.s.write_all(&batch).is_err() {
            break;
        }
    }
    let closed = c.closed();
    let (rss, _) = srv.memory();
    eprintln!(
        "attack 1: {sent} ECHOs in {:?}, server RSS {} -> {} MiB, closed={closed}",
        t.elapsed(),
        rss0 / MIB,
        rss / MIB
    );
    assert!(closed, "ids beyond the window end the connection");
    assert!(
        rss < rss0 + 16 * MIB,
        "{sent} ECHOs grew the server by {} MiB",
        (rss - rss0) / MIB
    );
    srv.assert_serves_others();
}

/// Replayed and out-of-window MessageIds on a signed session end the connection.
#[test]
fn replayed_and_out_of_window_ids_disconnect() {
    let srv = Server::start(&[]);
    for case in ["replay", "ahead", "wrapped"] {
        let mut c = Raw::connect(srv.addr, None);
        c.login(USER, PASSWORD).unwrap();
        assert_eq!(c.call(Cmd::ECHO, &EchoRequest).0.status, NtStatus::SUCCESS);
        match case {
            "replay" => c.next_id -= 1,
            "ahead" => c.next_id += 100_000,
            _ => c.next_id = u64::MAX - 1,
        }
        let msg = c.build(Cmd::ECHO, &EchoRequest);
        c.send_raw(&msg);
        assert!(c.recv().is_none(), "{case}: no answer");
        assert!(c.closed(), "{case}: disconnected");
    }
    srv.assert_serves_others();
}

/// A request signed with another session's key (a session of another connection, or of
/// the same connection) is never executed.
#[test]
fn signature_from_another_session_is_refused() {
    let srv = Server::start(&[]);
    let mut a = Raw::connect(srv.addr, None);
    a.login(USER, PASSWORD).unwrap();
    a.tree_connect("data");
    let mut b = Raw::connect(srv.addr, None);
    b.login(USER, PASSWORD).unwrap();
    // A's request (its session and tree) signed with B's key.
    let h = a.header(Cmd::CREATE);
    let req = smb_core::messages::create::CreateRequest {
        desired_access: smb_core::messages::create::access::GENERIC_WRITE,
        create_disposition: smb_core::messages::create::CreateDisposition::CREATE,
        name: "planted".into(),
        ..Default::default()
    };
    let msg = b.sign(build(&h, &req));
    a.send_raw(&msg);
    match a.recv() {
        None => {}
        Some(r) => {
            let h = Header::parse(&r).unwrap();
            assert_ne!(h.status, NtStatus::SUCCESS);
        }
    }
    assert!(!srv.share().join("planted").exists(), "never executed");
    // B's own signed message replayed onto A's connection: unknown session there.
    let msg = b.build(Cmd::ECHO, &EchoRequest);
    let mut c = Raw::connect(srv.addr, None);
    c.login(USER, PASSWORD).unwrap();
    c.send_raw(&msg);
    if let Some(r) = c.recv() {
        assert_ne!(Header::parse(&r).unwrap().status, NtStatus::SUCCESS);
    }
    srv.assert_serves_others();
}

/// Credit exhaustion: asking for 65535 credits gets at most max-credits; spending them all
/// without asking for more still leaves one; spending beyond them ends the connection.
#[test]
fn credits_are_bounded_and_never_exhausted() {
    let srv = Server::start(&["--max-credits", "128"]);
    let mut c = Raw::connect(srv.addr, None);
    c.login(USER, PASSWORD).unwrap();
    c.credits_asked = u16::MAX;
    let (h, _) = c.call(Cmd::ECHO, &EchoRequest);
    let held = u64::from(h.credits);
    assert!(held <= 128, "granted {held}");
    c.credits_asked = 0;
    // Pipeline every credit held, asking for none back.
    let mut batch = Vec::new();
    for _ in 0..held {
        let m = c.build(Cmd::ECHO, &EchoRequest);
        smb_core::framing::encode_frame(&m, &mut batch);
    }
    c.s.write_all(&batch).unwrap();
    let mut last = 0;
    for _ in 0..held {
        let r = c.recv().expect("answered");
        last = Header::parse(&r).unwrap().credits;
    }
    assert!(last >= 1, "the last answer leaves the client a credit");
    // Now one beyond what was granted.
    c.next_id += 1000;
    let m = c.build(Cmd::ECHO, &EchoRequest);
    c.send_raw(&m);
    assert!(c.closed());
}

/// Compound bombs: thousands of ECHOs in one chain (before and after logon) cost the server
/// no more than they cost the client (the pre-auth message limit bounds the first); a
/// NextCommand past the end or not 8-aligned ends the connection. A chain cannot point
/// backwards, so it cannot loop.
#[test]
fn compound_bombs_and_bad_next_commands() {
    let srv = Server::start(&[]);
    let (rss0, _) = srv.memory();
    for logged_on in [false, true] {
        let mut c = Raw::connect(srv.addr, None);
        if logged_on {
            c.login(USER, PASSWORD).unwrap();
        } else {
            c.negotiate();
        }
        let mut msgs = Vec::new();
        let n = if logged_on { 60_000 } else { 1_500 };
        for i in 0..n {
            let mut h = c.header(Cmd::ECHO);
            if i > 0 {
                h.flags |= flags::RELATED_OPERATIONS;
            }
            msgs.push(build(&h, &EchoRequest));
        }
        let mut chain = smb_core::compound::build_chain(&msgs);
        if let Some(k) = &c.key {
            k.sign_chain(&mut chain).unwrap();
        }
        c.send_raw(&chain);
        // Credits granted inside the chain pay for the next message, so it is answered as
        // one chain (or refused); never more than about the bytes that came in.
        let answered = c.recv().map_or(0, |r| r.len());
        assert!(
            answered <= 2 * chain.len(),
            "logged_on={logged_on}: {answered} bytes answered to {}",
            chain.len()
        );
    }
    // NextCommand beyond the end, and not a multiple of 8.
    for bad in [0x1000_0000u32, 0x44] {
        let mut c = Raw::connect(srv.addr, None);
        c.negotiate();
        let h = c.header(Cmd::ECHO);
        let mut m = build(&h, &EchoRequest);
        m[20..24].copy_from_slice(&bad.to_le_bytes());
        m.resize(m.len() + 64, 0);
        c.send_raw(&m);
        let _ = c.recv();
        assert!(c.closed(), "NextCommand {bad:#x}");
    }
    let (rss, _) = srv.memory();
    assert!(rss < rss0 + 64 * MIB, "grew {} MiB", (rss - rss0) / MIB);
    srv.assert_serves_others();
}
