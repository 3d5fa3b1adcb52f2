//! Byte-range LOCK (issue 9) across two connections of one server, in memory: shared and
//! exclusive, fail-immediately and waiting; a waiting LOCK goes asynchronous (unsigned interim
//! STATUS_PENDING) and completes, signed, when the range is released on the other connection,
//! with STATUS_CANCELLED on a signed CANCEL, or STATUS_RANGE_NOT_LOCKED when its handle closes;
//! READ and WRITE honor the other open's locks; MS-SMB2 3.3.5.14's rejections.

mod server_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use server_util::{combos, config, Client};
use smb_core::conn::server::ServerConfig;
use smb_core::header::{flags, Command, Dialect, Header, NtStatus};
use smb_core::messages::cancel::CancelRequest;
use smb_core::messages::close::CloseRequest;
use smb_core::messages::create::{
    access, create_options, share_access, CreateDisposition, CreateRequest, CreateResponse,
};
use smb_core::messages::lock::{lock_flags, LockElement, LockRequest};
use smb_core::messages::read::ReadRequest;
use smb_core::messages::write::WriteRequest;
use smb_core::messages::FileId;
use smb_core::signing::Algorithm;

const LOCK_NOT_GRANTED: NtStatus = NtStatus(0xC000_0055);
const FILE_LOCK_CONFLICT: NtStatus = NtStatus(0xC000_0054);
const RANGE_NOT_LOCKED: NtStatus = NtStatus(0xC000_007E);
const INVALID_LOCK_RANGE: NtStatus = NtStatus(0xC000_01A1);

const EX: u32 = lock_flags::EXCLUSIVE_LOCK;
const SH: u32 = lock_flags::SHARED_LOCK;
const FI: u32 = lock_flags::FAIL_IMMEDIATELY;
const UN: u32 = lock_flags::UNLOCK;

fn connect(cfg: Arc<ServerConfig>, dialect: Dialect, alg: Algorithm) -> Client {
    let mut c = Client::new(cfg);
    c.negotiate(&[dialect], &[alg]);
    assert_eq!(c.login(), NtStatus::SUCCESS);
    assert_eq!(c.tree_connect("data").0, NtStatus::SUCCESS);
    c
}

fn open(c: &mut Client, name: &str, dir: bool) -> FileId {
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_ALL,
            share_access: share_access::READ | share_access::WRITE | share_access::DELETE,
            create_disposition: CreateDisposition::OPEN_IF,
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

fn lock_msg(c: &mut Client, f: FileId, locks: &[(u64, u64, u32)]) -> Vec<u8> {
    c.build(
        Command::LOCK,
        &LockRequest {
            lock_sequence: 0,
            file_id: f,
            locks: locks
                .iter()
                .map(|&(offset, length, flags)| LockElement {
                    offset,
                    length,
                    flags,
                })
                .collect(),
        },
    )
}

fn lock(c: &mut Client, f: FileId, locks: &[(u64, u64, u32)]) -> NtStatus {
    let msg = lock_msg(c, f, locks);
    c.send(&msg).expect("a LOCK response").hdr.status
}

fn read(c: &mut Client, f: FileId, offset: u64, length: u32) -> NtStatus {
    let r = c.call(
        Command::READ,
        &ReadRequest {
            length,
            offset,
            file_id: f,
            ..Default::default()
        },
    );
    r.hdr.status
}

fn write(c: &mut Client, f: FileId, offset: u64, len: usize) -> NtStatus {
    let r = c.call(
        Command::WRITE,
        &WriteRequest {
            offset,
            file_id: f,
            data: vec![7; len],
            ..Default::default()
        },
    );
    r.hdr.status
}

/// Sends a waiting LOCK and checks the interim response; returns (MessageId, AsyncId).
fn wait_lock(c: &mut Client, f: FileId, offset: u64, length: u64, kind: u32) -> (u64, u64) {
    let msg = lock_msg(c, f, &[(offset, length, kind)]);
    let out = c.raw(&msg);
    assert_eq!(out.len(), 1);
    let h = Header::parse(&out[0]).unwrap();
    assert_eq!(h.status, NtStatus::PENDING);
    assert!(h.flags & flags::ASYNC_COMMAND != 0 && !h.is_signed());
    (h.message_id, h.async_id.unwrap())
}

fn check_final(c: &Client, msg: &[u8], mid: u64, async_id: u64, status: NtStatus) {
    let h = Header::parse(msg).unwrap();
    assert_eq!(
        (h.command, h.message_id, h.async_id, h.status),
        (Command::LOCK, mid, Some(async_id), status)
    );
    assert!(h.is_signed());
    c.key
        .as_ref()
        .unwrap()
        .verify(msg)
        .expect("final LOCK response verifies");
}

/// Two connections on one server, each with the same file open, 100 bytes in it.
fn two(dialect: Dialect, alg: Algorithm) -> (Client, FileId, Client, FileId, Arc<AtomicUsize>) {
    let (cfg, _) = config(true);
    let mut a = connect(cfg.clone(), dialect, alg);
    let fa = open(&mut a, "f.bin", false);
    assert_eq!(write(&mut a, fa, 0, 100), NtStatus::SUCCESS);
    let mut b = connect(cfg, dialect, alg);
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    b.conn.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    let fb = open(&mut b, "f.bin", false);
    (a, fa, b, fb, woken)
}

#[test]
fn shared_and_exclusive_locks_conflict_as_ms_fsa_says() {
    let (mut a, fa, mut b, fb, _) = two(Dialect::SMB311, Algorithm::AesGmac);
    assert_eq!(lock(&mut a, fa, &[(0, 10, EX | FI)]), NtStatus::SUCCESS);
    assert_eq!(lock(&mut b, fb, &[(5, 10, SH | FI)]), LOCK_NOT_GRANTED);
    assert_eq!(
        lock(&mut b, fb, &[(10, 10, EX | FI)]),
        NtStatus::SUCCESS,
        "adjacent"
    );
    // I/O against another open's exclusive lock; the holder's own I/O passes.
    assert_eq!(read(&mut b, fb, 0, 5), FILE_LOCK_CONFLICT);
    assert_eq!(write(&mut b, fb, 8, 4), FILE_LOCK_CONFLICT);
    assert_eq!(read(&mut a, fa, 0, 10), NtStatus::SUCCESS);
    assert_eq!(write(&mut a, fa, 0, 10), NtStatus::SUCCESS);
    // Shared locks coexist; nobody writes under them; everybody reads.
    assert_eq!(lock(&mut a, fa, &[(50, 10, SH | FI)]), NtStatus::SUCCESS);
    assert_eq!(lock(&mut b, fb, &[(55, 10, SH | FI)]), NtStatus::SUCCESS);
    assert_eq!(write(&mut a, fa, 50, 1), FILE_LOCK_CONFLICT);
    assert_eq!(read(&mut b, fb, 50, 10), NtStatus::SUCCESS);
    assert_eq!(lock(&mut a, fa, &[(60, 1, EX | FI)]), LOCK_NOT_GRANTED);
    // An array is all or nothing: the first range is not kept when the second fails.
    assert_eq!(
        lock(&mut b, fb, &[(80, 5, EX | FI), (0, 1, EX | FI)]),
        LOCK_NOT_GRANTED
    );
    assert_eq!(lock(&mut a, fa, &[(80, 5, EX | FI)]), NtStatus::SUCCESS);
    // Unlock names a held range exactly.
    assert_eq!(lock(&mut a, fa, &[(0, 9, UN)]), RANGE_NOT_LOCKED);
    assert_eq!(
        lock(&mut b, fb, &[(0, 10, UN)]),
        RANGE_NOT_LOCKED,
        "not b's"
    );
    assert_eq!(lock(&mut a, fa, &[(0, 10, UN)]), NtStatus::SUCCESS);
    assert_eq!(read(&mut b, fb, 0, 5), NtStatus::SUCCESS);
    // Closing a handle drops its locks.
    let r = a.call(
        Command::CLOSE,
        &CloseRequest {
            flags: 0,
            file_id: fa,
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    assert_eq!(lock(&mut b, fb, &[(80, 5, EX | FI)]), NtStatus::SUCCESS);
    // A dropped connection drops its locks too.
    drop(b);
    let fa = open(&mut a, "f.bin", false);
    assert_eq!(lock(&mut a, fa, &[(0, 100, EX | FI)]), NtStatus::SUCCESS);
}

#[test]
fn what_3_3_5_14_rejects_is_rejected() {
    let (mut a, fa, _, _, _) = two(Dialect::SMB311, Algorithm::AesCmac);
    // Unlock mixed with lock, two kinds at once, no kind, waiting elements in an array.
    for locks in [
        vec![(0, 1, UN), (2, 1, EX | FI)],
        vec![(0, 1, EX | SH | FI)],
        vec![(0, 1, FI)],
        vec![(0, 1, EX), (5, 1, EX)],
        vec![(0, 1, UN | FI)],
    ] {
        assert_eq!(
            lock(&mut a, fa, &locks),
            NtStatus::INVALID_PARAMETER,
            "{locks:?}"
        );
    }
    assert_eq!(
        lock(&mut a, fa, &[(u64::MAX, 2, EX | FI)]),
        INVALID_LOCK_RANGE
    );
    let d = open(&mut a, "d", true);
    assert_eq!(
        lock(&mut a, d, &[(0, 1, EX | FI)]),
        NtStatus::INVALID_PARAMETER
    );
}

#[test]
fn a_waiting_lock_is_granted_when_the_range_is_released_elsewhere() {
    for (dialect, alg) in combos() {
        let (mut a, fa, mut b, fb, woken) = two(dialect, alg);
        assert_eq!(lock(&mut a, fa, &[(0, 10, EX | FI)]), NtStatus::SUCCESS);
        let (mid, async_id) = wait_lock(&mut b, fb, 5, 10, SH);
        assert_eq!(lock(&mut a, fa, &[(0, 10, UN)]), NtStatus::SUCCESS);
        assert!(
            woken.load(Ordering::SeqCst) > 0,
            "{dialect:?}: the waiter is woken"
        );
        b.conn.handle_wakeup();
        let done = b.conn.poll_transmit().expect("the final LOCK response");
        check_final(&b, &done, mid, async_id, NtStatus::SUCCESS);
        // b holds it now.
        assert_eq!(lock(&mut a, fa, &[(5, 1, EX | FI)]), LOCK_NOT_GRANTED);
    }
}

#[test]
fn a_waiting_lock_is_cancelled_or_ends_with_its_handle() {
    for (dialect, alg) in combos() {
        for async_form in [true, false] {
            let (mut a, fa, mut b, fb, _) = two(dialect, alg);
            assert_eq!(lock(&mut a, fa, &[(0, 10, EX | FI)]), NtStatus::SUCCESS);
            let (mid, async_id) = wait_lock(&mut b, fb, 0, 1, EX);
            // An unsigned CANCEL on this signing-required session cancels nothing.
            let mut h = Header::request(Command::CANCEL, mid, b.session_id, b.tree_id);
            h.async_id = async_form.then_some(async_id);
            let unsigned = smb_core::messages::build(&h, &CancelRequest);
            assert!(b.raw(&unsigned).is_empty());
            let mut signed = unsigned.clone();
            b.key.as_ref().unwrap().sign(&mut signed).unwrap();
            let out = b.raw(&signed);
            assert_eq!(out.len(), 1, "{dialect:?} {alg:?}");
            check_final(&b, &out[0], mid, async_id, NtStatus::CANCELLED);
            // Released later: nothing more is sent for the cancelled request.
            assert_eq!(lock(&mut a, fa, &[(0, 10, UN)]), NtStatus::SUCCESS);
            b.conn.handle_wakeup();
            assert!(b.conn.poll_transmit().is_none());
        }
        // Closing the handle ends its waiting lock, before the CLOSE response.
        let (mut a, fa, mut b, fb, _) = two(dialect, alg);
        assert_eq!(lock(&mut a, fa, &[(0, 10, EX | FI)]), NtStatus::SUCCESS);
        let (mid, async_id) = wait_lock(&mut b, fb, 0, 1, EX);
        let msg = b.build(
            Command::CLOSE,
            &CloseRequest {
                flags: 0,
                file_id: fb,
            },
        );
        let out = b.raw(&msg);
        assert_eq!(out.len(), 2);
        check_final(&b, &out[0], mid, async_id, RANGE_NOT_LOCKED);
        assert_eq!(Header::parse(&out[1]).unwrap().command, Command::CLOSE);
    }
}
