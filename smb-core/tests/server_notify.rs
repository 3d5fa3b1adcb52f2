//! CHANGE_NOTIFY going asynchronous, CANCEL and teardown (issue 9), in every dialect and
//! signing algorithm, in memory: the interim STATUS_PENDING response carries an AsyncId and
//! is unsigned (MS-SMB2 3.3.4.2, 3.3.4.1.1); the final response (the changes,
//! STATUS_CANCELLED, STATUS_NOTIFY_CLEANUP) is signed and verifies; a CANCEL is verified with
//! the CANCEL bit in the GMAC nonce, and an unsigned or wrongly signed one cancels nothing;
//! changes made through another connection complete the request after a wakeup.

mod server_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use server_util::{combos, config, Client};
use smb_core::codec::from_utf16le;
use smb_core::conn::server::{ServerConfig, Waker};
use smb_core::header::{flags, Command, Dialect, Header, NtStatus, SIGNATURE_OFFSET};
use smb_core::messages::cancel::CancelRequest;
use smb_core::messages::change_notify::{
    change_notify_flags, completion_filter, ChangeNotifyRequest, ChangeNotifyResponse,
};
use smb_core::messages::close::CloseRequest;
use smb_core::messages::create::{
    access, create_options, share_access, CreateDisposition, CreateRequest, CreateResponse,
};
use smb_core::messages::logoff::LogoffRequest;
use smb_core::messages::tree_disconnect::TreeDisconnectRequest;
use smb_core::messages::FileId;
use smb_core::signing::aes_gmac::{nonce_for, AesGmac};
use smb_core::signing::Algorithm;

const NOTIFY_CLEANUP: NtStatus = NtStatus(0x0000_010B);

fn connect(cfg: Arc<ServerConfig>, dialect: Dialect, alg: Algorithm) -> Client {
    let mut c = Client::new(cfg);
    c.negotiate(&[dialect], &[alg]);
    assert_eq!(c.login(), NtStatus::SUCCESS);
    assert_eq!(c.tree_connect("data").0, NtStatus::SUCCESS);
    assert_eq!(c.key.as_ref().unwrap().algorithm(), alg);
    c
}

fn create(c: &mut Client, name: &str, dir: bool, disposition: CreateDisposition) -> FileId {
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_ALL,
            share_access: share_access::READ | share_access::WRITE | share_access::DELETE,
            create_disposition: disposition,
            create_options: if dir {
                create_options::DIRECTORY_FILE
            } else {
                create_options::NON_DIRECTORY_FILE
            },
            name: name.into(),
            ..Default::default()
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS, "CREATE {name}");
    CreateResponse::read(&r.msg).unwrap().file_id
}

/// Sends a signed CHANGE_NOTIFY on `dir` and checks the interim response. Returns
/// (MessageId, AsyncId).
fn notify(c: &mut Client, dir: FileId, filter: u32, tree: bool) -> (u64, u64) {
    let msg = c.build(
        Command::CHANGE_NOTIFY,
        &ChangeNotifyRequest {
            flags: if tree {
                change_notify_flags::WATCH_TREE
            } else {
                0
            },
            output_buffer_length: 4096,
            file_id: dir,
            completion_filter: filter,
        },
    );
    let mid = Header::parse(&msg).unwrap().message_id;
    let out = c.raw(&msg);
    assert_eq!(out.len(), 1, "one interim response");
    let h = Header::parse(&out[0]).unwrap();
    assert_eq!(h.status, NtStatus::PENDING);
    assert_eq!(h.message_id, mid);
    assert!(h.flags & flags::ASYNC_COMMAND != 0);
    assert!(
        h.flags & flags::SIGNED == 0,
        "interim responses are never signed"
    );
    assert_eq!(h.signature, [0; 16]);
    assert!(h.credits > 0, "the interim response grants the credits");
    (mid, h.async_id.expect("an AsyncId"))
}

/// Checks a final async response: MessageId, AsyncId, status, signed with the session key.
fn check_final(c: &Client, msg: &[u8], mid: u64, async_id: u64, status: NtStatus) {
    let h = Header::parse(msg).unwrap();
    assert_eq!(
        (h.command, h.message_id, h.async_id, h.status),
        (Command::CHANGE_NOTIFY, mid, Some(async_id), status)
    );
    assert!(h.is_signed(), "final async responses are signed");
    c.key
        .as_ref()
        .unwrap()
        .verify(msg)
        .expect("final response verifies");
}

/// (Action, name) of each FILE_NOTIFY_INFORMATION entry.
fn entries(msg: &[u8]) -> Vec<(u32, String)> {
    let buf = ChangeNotifyResponse::read(msg).unwrap().buffer;
    let mut out = Vec::new();
    let mut at = 0usize;
    loop {
        let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().unwrap());
        let (next, action, len) = (u32_at(at), u32_at(at + 4), u32_at(at + 8) as usize);
        let name = from_utf16le(&buf[at + 12..at + 12 + len], "name").unwrap();
        out.push((action, name));
        if next == 0 {
            return out;
        }
        at += next as usize;
    }
}

fn counting_waker() -> (Waker, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    (
        Arc::new(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        }),
        n,
    )
}

#[test]
fn a_change_from_another_connection_completes_the_request_signed() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let mut a = connect(cfg.clone(), dialect, alg);
        let (waker, woken) = counting_waker();
        a.conn.set_waker(waker);
        let root = create(&mut a, "", true, CreateDisposition::OPEN);
        let (mid, async_id) = notify(&mut a, root, completion_filter::FILE_NAME, false);

        let mut b = connect(cfg.clone(), dialect, alg);
        create(&mut b, "new.txt", false, CreateDisposition::CREATE);
        assert!(
            woken.load(Ordering::SeqCst) > 0,
            "{dialect:?}: the watcher is woken"
        );
        assert!(
            a.conn.poll_transmit().is_none(),
            "nothing before the wakeup"
        );
        a.conn.handle_wakeup();
        let done = a.conn.poll_transmit().expect("the final response");
        check_final(&a, &done, mid, async_id, NtStatus::SUCCESS);
        assert_eq!(
            entries(&done),
            vec![(1, "new.txt".to_string())],
            "{dialect:?}"
        );
        assert!(a.conn.poll_transmit().is_none());
    }
}

#[test]
fn own_changes_complete_after_their_response_and_are_buffered_between_requests() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let mut a = connect(cfg, dialect, alg);
        let root = create(&mut a, "", true, CreateDisposition::OPEN);
        let sub = create(&mut a, "sub", true, CreateDisposition::CREATE);
        let (mid, async_id) = notify(&mut a, root, completion_filter::FILE_NAME, true);
        // A file created inside a subdirectory of a recursive watch, on this connection:
        // the CREATE response, then the completion.
        let msg = a.build(
            Command::CREATE,
            &CreateRequest {
                desired_access: access::GENERIC_ALL,
                create_disposition: CreateDisposition::CREATE,
                name: "sub\\x.bin".into(),
                ..Default::default()
            },
        );
        let out = a.raw(&msg);
        assert_eq!(out.len(), 2, "{dialect:?}");
        assert_eq!(Header::parse(&out[0]).unwrap().command, Command::CREATE);
        check_final(&a, &out[1], mid, async_id, NtStatus::SUCCESS);
        assert_eq!(entries(&out[1]), vec![(1, "sub\\x.bin".to_string())]);
        // Changes while no request waits are kept for the next one, answered at once.
        let x = CreateResponse::read(&out[0]).unwrap().file_id;
        let r = a.call(
            Command::CLOSE,
            &CloseRequest {
                flags: 0,
                file_id: sub,
            },
        );
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
        create(&mut a, "later.txt", false, CreateDisposition::CREATE);
        let r = a.call(
            Command::CHANGE_NOTIFY,
            &ChangeNotifyRequest {
                flags: change_notify_flags::WATCH_TREE,
                output_buffer_length: 4096,
                file_id: root,
                completion_filter: completion_filter::FILE_NAME,
            },
        );
        assert_eq!(r.hdr.status, NtStatus::SUCCESS, "{dialect:?}");
        assert!(r.hdr.async_id.is_none() && r.hdr.is_signed());
        assert_eq!(entries(&r.msg), vec![(1, "later.txt".to_string())]);
        let _ = x;
    }
}

/// A CANCEL for the request `mid`/`async_id`, signed unless `sign` is false.
fn cancel_msg(c: &mut Client, mid: u64, async_id: Option<u64>, sign: bool) -> Vec<u8> {
    let mut h = Header::request(Command::CANCEL, mid, c.session_id, c.tree_id);
    h.async_id = async_id;
    h.credits = 0;
    let mut msg = smb_core::messages::build(&h, &CancelRequest);
    if sign {
        c.key.as_ref().unwrap().sign(&mut msg).unwrap();
    }
    msg
}

#[test]
fn cancel_completes_with_status_cancelled_signed_in_both_forms() {
    for (dialect, alg) in combos() {
        for async_form in [true, false] {
            let (cfg, _) = config(true);
            let mut a = connect(cfg, dialect, alg);
            let root = create(&mut a, "", true, CreateDisposition::OPEN);
            let (mid, async_id) = notify(&mut a, root, completion_filter::FILE_NAME, false);
            let msg = cancel_msg(&mut a, mid, async_form.then_some(async_id), true);
            let out = a.raw(&msg);
            assert_eq!(
                out.len(),
                1,
                "{dialect:?} {alg:?}: one response, to the notify"
            );
            check_final(&a, &out[0], mid, async_id, NtStatus::CANCELLED);
            // Nothing left to complete: a later change answers nothing.
            let m = a.build(
                Command::CREATE,
                &CreateRequest {
                    desired_access: access::GENERIC_ALL,
                    create_disposition: CreateDisposition::CREATE,
                    name: "after.txt".into(),
                    ..Default::default()
                },
            );
            let out = a.raw(&m);
            assert_eq!(out.len(), 1, "only the CREATE response");
        }
    }
}

#[test]
fn an_unsigned_or_wrongly_signed_cancel_cancels_nothing() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let mut a = connect(cfg, dialect, alg);
        let root = create(&mut a, "", true, CreateDisposition::OPEN);
        let (mid, async_id) = notify(&mut a, root, completion_filter::FILE_NAME, false);
        let unsigned = cancel_msg(&mut a, mid, Some(async_id), false);
        assert!(
            a.raw(&unsigned).is_empty(),
            "{dialect:?}: unsigned CANCEL ignored"
        );
        assert!(!a.conn.is_failed());
        if alg == Algorithm::AesGmac {
            // Signed as if it were not a CANCEL (the CANCEL bit clear in the nonce): does not
            // verify, cancels nothing, and ends the connection as any bad signature does.
            let mut msg = cancel_msg(&mut a, mid, Some(async_id), false);
            let mut fl = u32::from_le_bytes(msg[16..20].try_into().unwrap());
            fl |= flags::SIGNED;
            msg[16..20].copy_from_slice(&fl.to_le_bytes());
            let key: [u8; 16] = a.key_bytes[..16].try_into().unwrap();
            let mut mac = AesGmac::new(&key, &nonce_for(mid, false, false));
            mac.update(&msg);
            let tag = mac.finalize();
            msg[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 16].copy_from_slice(&tag);
            assert!(
                a.raw(&msg).is_empty(),
                "GMAC without the CANCEL bit is refused"
            );
            assert!(a.conn.is_failed());
            // The same MAC with the CANCEL bit is what the server accepts.
            let mut good = cancel_msg(&mut a, mid, Some(async_id), true);
            let sig = good[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 16].to_vec();
            good[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 16].fill(0);
            let mut mac = AesGmac::new(&key, &nonce_for(mid, false, true));
            mac.update(&good);
            assert_eq!(mac.finalize().to_vec(), sig);
            continue;
        }
        // CLOSE ends the request with STATUS_NOTIFY_CLEANUP, before the CLOSE response.
        let msg = a.build(
            Command::CLOSE,
            &CloseRequest {
                flags: 0,
                file_id: root,
            },
        );
        let out = a.raw(&msg);
        assert_eq!(out.len(), 2, "{dialect:?}");
        check_final(&a, &out[0], mid, async_id, NOTIFY_CLEANUP);
        assert_eq!(Header::parse(&out[1]).unwrap().command, Command::CLOSE);
    }
}

#[test]
fn tree_disconnect_and_logoff_clean_up_pending_requests() {
    for (dialect, alg) in combos() {
        for logoff in [false, true] {
            let (cfg, _) = config(true);
            let mut a = connect(cfg, dialect, alg);
            let root = create(&mut a, "", true, CreateDisposition::OPEN);
            let (mid, async_id) = notify(&mut a, root, completion_filter::DIR_NAME, false);
            let msg = if logoff {
                a.build(Command::LOGOFF, &LogoffRequest)
            } else {
                a.build(Command::TREE_DISCONNECT, &TreeDisconnectRequest)
            };
            let out = a.raw(&msg);
            assert_eq!(out.len(), 2, "{dialect:?} logoff={logoff}");
            check_final(&a, &out[0], mid, async_id, NOTIFY_CLEANUP);
            let h = Header::parse(&out[1]).unwrap();
            assert_eq!(h.status, NtStatus::SUCCESS);
        }
    }
}

#[test]
fn notify_rules_of_3_3_5_19() {
    let (cfg, _) = config(true);
    let mut a = connect(cfg, Dialect::SMB311, Algorithm::AesGmac);
    // Not a directory: STATUS_INVALID_PARAMETER.
    let f = create(&mut a, "f.txt", false, CreateDisposition::CREATE);
    let req = |file_id, len| ChangeNotifyRequest {
        flags: 0,
        output_buffer_length: len,
        file_id,
        completion_filter: completion_filter::FILE_NAME,
    };
    let r = a.call(Command::CHANGE_NOTIFY, &req(f, 4096));
    assert_eq!(r.hdr.status, NtStatus::INVALID_PARAMETER);
    // OutputBufferLength above MaxTransactSize: STATUS_INVALID_PARAMETER.
    let root = create(&mut a, "", true, CreateDisposition::OPEN);
    let r = a.call(Command::CHANGE_NOTIFY, &req(root, u32::MAX));
    assert_eq!(r.hdr.status, NtStatus::INVALID_PARAMETER);
    // An unknown handle: STATUS_FILE_CLOSED.
    let bogus = FileId {
        persistent: 1,
        volatile: 99,
    };
    let r = a.call(Command::CHANGE_NOTIFY, &req(bogus, 4096));
    assert_eq!(r.hdr.status, NtStatus::FILE_CLOSED);
    // Changes that do not fit OutputBufferLength: STATUS_NOTIFY_ENUM_DIR, no entries.
    let (mid, async_id) = {
        let msg = a.build(Command::CHANGE_NOTIFY, &req(root, 8));
        let out = a.raw(&msg);
        let h = Header::parse(&out[0]).unwrap();
        assert_eq!(h.status, NtStatus::PENDING);
        (h.message_id, h.async_id.unwrap())
    };
    let msg = a.build(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_ALL,
            create_disposition: CreateDisposition::CREATE,
            name: "a-long-name.txt".into(),
            ..Default::default()
        },
    );
    let out = a.raw(&msg);
    check_final(&a, &out[1], mid, async_id, NtStatus::NOTIFY_ENUM_DIR);
    assert!(ChangeNotifyResponse::read(&out[1])
        .unwrap()
        .buffer
        .is_empty());
}

/// Signs and chains `bodies` (built by the caller) as one compound.
fn chain(c: &Client, msgs: Vec<Vec<u8>>) -> Vec<u8> {
    let mut chain = smb_core::compound::build_chain(&msgs);
    c.key.as_ref().unwrap().sign_chain(&mut chain).unwrap();
    chain
}

#[test]
fn compounds_go_async_only_at_their_end() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let mut a = connect(cfg.clone(), dialect, alg);
        let root = create(&mut a, "", true, CreateDisposition::OPEN);
        let req = |file_id| ChangeNotifyRequest {
            flags: 0,
            output_buffer_length: 4096,
            file_id,
            completion_filter: completion_filter::FILE_NAME,
        };
        // CHANGE_NOTIFY inside a chain: cancelled at once, the chain goes on (Samba's rule).
        let m1 = smb_core::messages::build(&a.header(Command::CHANGE_NOTIFY), &req(root));
        let m2 = smb_core::messages::build(
            &a.header(Command::ECHO),
            &smb_core::messages::echo::EchoRequest,
        );
        let out = a.raw(&chain(&a, vec![m1, m2]));
        assert_eq!(out.len(), 1, "{dialect:?}: one chained answer");
        let parts = smb_core::compound::split_chain(&out[0]).unwrap();
        let h1 = Header::parse(&out[0][parts[0].clone()]).unwrap();
        let h2 = Header::parse(&out[0][parts[1].clone()]).unwrap();
        assert_eq!((h1.status, h1.async_id), (NtStatus::CANCELLED, None));
        assert_eq!((h2.command, h2.status), (Command::ECHO, NtStatus::SUCCESS));
        a.key.as_ref().unwrap().verify_chain(&out[0]).unwrap();

        // CREATE + related CHANGE_NOTIFY: the notify, last, goes async inside the answer.
        let c1 = smb_core::messages::build(
            &a.header(Command::CREATE),
            &CreateRequest {
                desired_access: access::FILE_LIST_DIRECTORY,
                share_access: share_access::READ | share_access::WRITE | share_access::DELETE,
                create_disposition: CreateDisposition::OPEN,
                create_options: create_options::DIRECTORY_FILE,
                name: "".into(),
                ..Default::default()
            },
        );
        let mut h = a.header(Command::CHANGE_NOTIFY);
        h.flags |= flags::RELATED_OPERATIONS;
        let c2 = smb_core::messages::build(&h, &req(FileId::RELATED));
        let out = a.raw(&chain(&a, vec![c1, c2]));
        assert_eq!(out.len(), 1);
        let parts = smb_core::compound::split_chain(&out[0]).unwrap();
        let created = &out[0][parts[0].clone()];
        let interim = Header::parse(&out[0][parts[1].clone()]).unwrap();
        assert_eq!(Header::parse(created).unwrap().status, NtStatus::SUCCESS);
        a.key.as_ref().unwrap().verify(created).unwrap();
        assert_eq!(interim.status, NtStatus::PENDING);
        assert!(!interim.is_signed());
        let async_id = interim.async_id.unwrap();
        let mut b = connect(cfg, dialect, alg);
        create(&mut b, "late.txt", false, CreateDisposition::CREATE);
        a.conn.handle_wakeup();
        let done = a.conn.poll_transmit().expect("final");
        check_final(&a, &done, interim.message_id, async_id, NtStatus::SUCCESS);
        assert_eq!(entries(&done), vec![(1, "late.txt".to_string())]);
    }
}
