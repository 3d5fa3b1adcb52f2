//! Oplocks and leases (issue 9) across two connections of one server, in memory: what a
//! CREATE is granted when nothing conflicts (level II, exclusive, batch; leases R, RH, RW,
//! RWH, v1 on 2.1 and v2 with epochs on 3.x, one lease shared by the opens of one key), the
//! breaks a conflicting CREATE from another connection (or lease key) sends (unsigned,
//! MessageId 0xFFFFFFFFFFFFFFFF), the CREATE that waits asynchronously (unsigned interim
//! STATUS_PENDING) until the signed acknowledgment, the holder's CLOSE or disconnect, or the
//! break timeout, CANCEL of that CREATE (STATUS_CANCELLED, signed), and MS-SMB2 3.3.5.22's
//! rejections; for every dialect and signing algorithm.

mod server_util;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use server_util::{combos, config, Client, NOW};
use smb_core::conn::server::ServerConfig;
use smb_core::env::Clock;
use smb_core::header::{flags, Command, Dialect, Header, NtStatus};
use smb_core::messages::cancel::CancelRequest;
use smb_core::messages::close::CloseRequest;
use smb_core::messages::create::{
    access, create_options, share_access, CreateDisposition, CreateRequest, CreateResponse,
    OplockLevel,
};
use smb_core::messages::lease::{lease_flags, lease_state, LeaseContext, LeaseKey, LeaseV2};
use smb_core::messages::oplock_break::{
    lease_break_flags, LeaseBreakAck, LeaseBreakNotification, OplockBreak,
};
use smb_core::messages::FileId;
use smb_core::signing::Algorithm;

const INVALID_DEVICE_STATE: NtStatus = NtStatus(0xC000_0184);
const INVALID_OPLOCK_PROTOCOL: NtStatus = NtStatus(0xC000_00E3);
const R: u32 = lease_state::READ_CACHING;
const W: u32 = lease_state::WRITE_CACHING;
const H: u32 = lease_state::HANDLE_CACHING;

fn lease_combos() -> Vec<(Dialect, Algorithm)> {
    combos()
        .into_iter()
        .filter(|(d, _)| *d != Dialect::SMB202)
        .collect()
}

fn connect(cfg: Arc<ServerConfig>, dialect: Dialect, alg: Algorithm) -> (Client, Arc<AtomicUsize>) {
    let mut c = Client::new(cfg);
    c.negotiate(&[dialect], &[alg]);
    assert_eq!(c.login(), NtStatus::SUCCESS);
    assert_eq!(c.tree_connect("data").0, NtStatus::SUCCESS);
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    c.conn.set_waker(Arc::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    (c, woken)
}

/// Two connections on one server: `a` holds a batch oplock on `f` (its FileId is returned
/// with it), `b` comes to contend for the file (`woken` counts its waker calls).
fn batch_held(
    cfg: Arc<ServerConfig>,
    dialect: Dialect,
    alg: Algorithm,
) -> (Client, FileId, Client, Arc<AtomicUsize>) {
    let (mut a, _) = connect(cfg.clone(), dialect, alg);
    let (b, woken) = connect(cfg, dialect, alg);
    let fa = create(&mut a, "f", OplockLevel::BATCH, None).file_id;
    (a, fa, b, woken)
}

fn key(n: u8) -> LeaseKey {
    [n; 16]
}

fn lease(dialect: Dialect, k: LeaseKey, state: u32, epoch: u16) -> LeaseContext {
    LeaseContext {
        key: k,
        state,
        flags: 0,
        duration: 0,
        // 3.x clients send v2, 2.1 clients v1.
        v2: (dialect >= Dialect::SMB30).then_some(LeaseV2 {
            parent_key: [0; 16],
            epoch,
        }),
    }
}

fn create_msg(
    c: &mut Client,
    name: &str,
    level: OplockLevel,
    lease: Option<LeaseContext>,
    disposition: CreateDisposition,
) -> Vec<u8> {
    c.build(
        Command::CREATE,
        &CreateRequest {
            requested_oplock_level: level,
            desired_access: access::GENERIC_READ | access::GENERIC_WRITE,
            share_access: share_access::READ | share_access::WRITE | share_access::DELETE,
            create_disposition: disposition,
            create_options: create_options::NON_DIRECTORY_FILE,
            name: name.into(),
            contexts: lease.map(|l| vec![l.to_context()]).unwrap_or_default(),
            ..Default::default()
        },
    )
}

/// A CREATE answered at once.
fn create(
    c: &mut Client,
    name: &str,
    level: OplockLevel,
    lease: Option<LeaseContext>,
) -> CreateResponse {
    let msg = create_msg(c, name, level, lease, CreateDisposition::OPEN_IF);
    let r = c.send(&msg).expect("a CREATE response");
    assert_eq!(r.hdr.status, NtStatus::SUCCESS, "CREATE {name}");
    assert!(r.hdr.async_id.is_none());
    CreateResponse::read(&r.msg).unwrap()
}

/// Sends a CREATE that must wait for a break; checks the interim; returns (MessageId, AsyncId).
fn create_pending(c: &mut Client, msg: &[u8]) -> (u64, u64) {
    let out = c.raw(msg);
    assert_eq!(out.len(), 1, "only the interim response");
    let h = Header::parse(&out[0]).unwrap();
    assert_eq!((h.command, h.status), (Command::CREATE, NtStatus::PENDING));
    assert!(h.flags & flags::ASYNC_COMMAND != 0 && !h.is_signed());
    (h.message_id, h.async_id.unwrap())
}

/// The final response of a pending CREATE: async, signed, verifies.
fn check_final(c: &Client, msg: &[u8], mid: u64, async_id: u64, status: NtStatus) -> Header {
    let h = Header::parse(msg).unwrap();
    assert_eq!(
        (h.command, h.message_id, h.async_id, h.status),
        (Command::CREATE, mid, Some(async_id), status)
    );
    assert!(h.is_signed());
    c.key
        .as_ref()
        .unwrap()
        .verify(msg)
        .expect("final CREATE response verifies");
    h
}

/// What the connection sends when woken (break notifications, completions).
fn wakeup(c: &mut Client) -> Vec<Vec<u8>> {
    c.conn.handle_wakeup();
    let mut out = Vec::new();
    while let Some(t) = c.conn.poll_transmit() {
        out.push(t.into_vec());
    }
    out
}

/// A break notification: unsigned, MessageId all ones, SessionId 0, TreeId 0.
fn check_notification(msg: &[u8]) {
    let h = Header::parse(msg).unwrap();
    assert_eq!(h.command, Command::OPLOCK_BREAK);
    assert_eq!(h.message_id, u64::MAX);
    assert_eq!(
        (h.session_id, h.tree_id, h.status),
        (0, 0, NtStatus::SUCCESS)
    );
    assert!(h.is_response() && !h.is_signed() && h.async_id.is_none());
}

fn ack_oplock(c: &mut Client, fid: FileId, level: OplockLevel) -> (NtStatus, Option<OplockBreak>) {
    let r = c.call(
        Command::OPLOCK_BREAK,
        &OplockBreak {
            oplock_level: level,
            file_id: fid,
        },
    );
    assert!(r.hdr.is_signed(), "the acknowledgment's response is signed");
    (r.hdr.status, OplockBreak::read(&r.msg).ok())
}

fn ack_lease(c: &mut Client, k: LeaseKey, state: u32) -> (NtStatus, Option<LeaseBreakAck>) {
    let r = c.call(
        Command::OPLOCK_BREAK,
        &LeaseBreakAck {
            flags: 0,
            key: k,
            state,
            duration: 0,
        },
    );
    assert!(r.hdr.is_signed(), "the acknowledgment's response is signed");
    (r.hdr.status, LeaseBreakAck::read(&r.msg).ok())
}

fn close(c: &mut Client, fid: FileId) {
    let r = c.call(
        Command::CLOSE,
        &CloseRequest {
            flags: 0,
            file_id: fid,
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
}

fn granted_lease(r: &CreateResponse) -> LeaseContext {
    assert_eq!(r.oplock_level, OplockLevel::LEASE);
    LeaseContext::find(&r.contexts)
        .expect("an RqLs response context")
        .unwrap()
}

#[test]
fn oplocks_are_granted_when_nothing_conflicts() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let (mut a, _) = connect(cfg.clone(), dialect, alg);
        for (name, level) in [
            ("b", OplockLevel::BATCH),
            ("e", OplockLevel::EXCLUSIVE),
            ("2", OplockLevel::II),
            ("n", OplockLevel::NONE),
        ] {
            let r = create(&mut a, name, level, None);
            assert_eq!(r.oplock_level, level, "{dialect:?} {name}");
        }
        // Beside an open that caches no writes: level II, at once, for batch or II asked.
        let (mut b, _) = connect(cfg, dialect, alg);
        for level in [OplockLevel::BATCH, OplockLevel::II] {
            let r = create(&mut b, "2", level, None);
            assert_eq!(r.oplock_level, OplockLevel::II, "{dialect:?}");
        }
        let r = create(&mut b, "n", OplockLevel::EXCLUSIVE, None);
        assert_eq!(r.oplock_level, OplockLevel::II, "{dialect:?}");
        assert!(wakeup(&mut a).is_empty(), "nothing was broken");
    }
}

#[test]
fn a_batch_oplock_breaks_to_level_two_and_the_create_waits_for_the_ack() {
    for (dialect, alg) in combos() {
        for level in [OplockLevel::BATCH, OplockLevel::EXCLUSIVE] {
            let (cfg, _) = config(true);
            let (mut a, woken_a) = connect(cfg.clone(), dialect, alg);
            let (mut b, woken_b) = connect(cfg.clone(), dialect, alg);
            let fa = create(&mut a, "f", level, None).file_id;
            let msg = create_msg(
                &mut b,
                "f",
                OplockLevel::BATCH,
                None,
                CreateDisposition::OPEN,
            );
            let (mid, async_id) = create_pending(&mut b, &msg);
            assert!(woken_a.load(Ordering::SeqCst) > 0, "the holder is woken");
            let out = wakeup(&mut a);
            assert_eq!(out.len(), 1, "{dialect:?}: one break notification");
            check_notification(&out[0]);
            let n = OplockBreak::read(&out[0]).unwrap();
            assert_eq!((n.oplock_level, n.file_id), (OplockLevel::II, fa));
            assert!(wakeup(&mut b).is_empty(), "still waiting");
            // The acknowledgment (signed, verified) ends the break.
            let (status, resp) = ack_oplock(&mut a, fa, OplockLevel::II);
            assert_eq!(status, NtStatus::SUCCESS, "{dialect:?} {alg:?}");
            assert_eq!(resp.unwrap().oplock_level, OplockLevel::II);
            assert!(woken_b.load(Ordering::SeqCst) > 0, "the waiter is woken");
            let out = wakeup(&mut b);
            assert_eq!(out.len(), 1);
            check_final(&b, &out[0], mid, async_id, NtStatus::SUCCESS);
            let r = CreateResponse::read(&out[0]).unwrap();
            assert_eq!(r.oplock_level, OplockLevel::II, "{dialect:?}");
            // A second acknowledgment: no break in progress.
            assert_eq!(
                ack_oplock(&mut a, fa, OplockLevel::II).0,
                INVALID_DEVICE_STATE
            );
            // Both hold level II; an overwrite breaks them to none without waiting.
            let (mut c, _) = connect(cfg.clone(), dialect, alg);
            let msg = create_msg(
                &mut c,
                "f",
                OplockLevel::NONE,
                None,
                CreateDisposition::OVERWRITE_IF,
            );
            let r = c.send(&msg).unwrap();
            assert_eq!(r.hdr.status, NtStatus::SUCCESS, "no wait for level II");
            for (x, fid) in [(&mut a, fa), (&mut b, r_file(&out[0]))] {
                let out = wakeup(x);
                assert_eq!(out.len(), 1);
                check_notification(&out[0]);
                let n = OplockBreak::read(&out[0]).unwrap();
                assert_eq!((n.oplock_level, n.file_id), (OplockLevel::NONE, fid));
                // Level II breaks are not acknowledged (2.2.24.1).
                assert_eq!(
                    ack_oplock(x, fid, OplockLevel::NONE).0,
                    INVALID_DEVICE_STATE
                );
            }
        }
    }
}

fn r_file(msg: &[u8]) -> FileId {
    CreateResponse::read(msg).unwrap().file_id
}

#[test]
fn oplock_acknowledgment_rejections() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let (mut a, fa, mut b, _) = batch_held(cfg, dialect, alg);
        // Not breaking: STATUS_INVALID_DEVICE_STATE; an unknown handle: FILE_CLOSED.
        assert_eq!(
            ack_oplock(&mut a, fa, OplockLevel::II).0,
            INVALID_DEVICE_STATE
        );
        let bogus = FileId {
            persistent: 1,
            volatile: 99,
        };
        assert_eq!(
            ack_oplock(&mut a, bogus, OplockLevel::II).0,
            NtStatus::FILE_CLOSED
        );
        let msg = create_msg(
            &mut b,
            "f",
            OplockLevel::NONE,
            None,
            CreateDisposition::OPEN,
        );
        let (mid, async_id) = create_pending(&mut b, &msg);
        assert_eq!(wakeup(&mut a).len(), 1);
        // Acknowledging a level above the one broken to (MS-SMB2 3.3.5.22.1).
        assert_eq!(
            ack_oplock(&mut a, fa, OplockLevel::EXCLUSIVE).0,
            INVALID_OPLOCK_PROTOCOL,
            "{dialect:?}"
        );
        // ... which still ends the break: the open keeps no oplock.
        let out = wakeup(&mut b);
        assert_eq!(out.len(), 1);
        check_final(&b, &out[0], mid, async_id, NtStatus::SUCCESS);
        // A lease acknowledgment on 2.0.2, or for a lease nobody holds.
        let status = ack_lease(&mut a, key(9), R).0;
        if dialect == Dialect::SMB202 {
            assert_eq!(status, NtStatus::INVALID_PARAMETER);
        } else {
            assert_eq!(status, NtStatus::OBJECT_NAME_NOT_FOUND);
        }
    }
}

#[test]
fn leases_are_granted_when_nothing_conflicts() {
    for (dialect, alg) in lease_combos() {
        let v2 = dialect >= Dialect::SMB30;
        let (cfg, _) = config(true);
        let (mut a, _) = connect(cfg.clone(), dialect, alg);
        for (i, state) in [R, R | H, R | W, R | W | H].into_iter().enumerate() {
            let name = format!("l{i}");
            let r = create(
                &mut a,
                &name,
                OplockLevel::LEASE,
                Some(lease(dialect, key(i as u8 + 1), state, 3)),
            );
            let l = granted_lease(&r);
            assert_eq!((l.key, l.state), (key(i as u8 + 1), state), "{dialect:?}");
            assert_eq!(l.version(), if v2 { 2 } else { 1 }, "{dialect:?}");
            if let Some(v) = l.v2 {
                assert_eq!(v.epoch, 4, "a new v2 lease is the client's epoch + 1");
            }
        }
        // W or H without R: nothing is cached.
        let r = create(
            &mut a,
            "wh",
            OplockLevel::LEASE,
            Some(lease(dialect, key(20), W | H, 0)),
        );
        assert_eq!(granted_lease(&r).state, 0);
        // The same key on another open of the same file shares (and may upgrade) the lease.
        let r = create(
            &mut a,
            "l0",
            OplockLevel::LEASE,
            Some(lease(dialect, key(1), R | W | H, 4)),
        );
        let l = granted_lease(&r);
        assert_eq!(l.state, R | W | H, "{dialect:?}: upgraded");
        // Only to a superset: RH asked for RW stays RH (smbtorture smb2.lease.upgrade).
        let r = create(
            &mut a,
            "l1",
            OplockLevel::LEASE,
            Some(lease(dialect, key(2), R | W, 0)),
        );
        assert_eq!(granted_lease(&r).state, R | H, "{dialect:?}: no sidegrade");
        if let Some(v) = l.v2 {
            assert_eq!(v.epoch, 5, "the upgrade moves the epoch");
        }
        // A key this client uses for another file: STATUS_INVALID_PARAMETER (3.3.5.9.8).
        let msg = create_msg(
            &mut a,
            "other",
            OplockLevel::LEASE,
            Some(lease(dialect, key(1), R, 0)),
            CreateDisposition::OPEN_IF,
        );
        assert_eq!(
            a.send(&msg).unwrap().hdr.status,
            NtStatus::INVALID_PARAMETER
        );
        // A malformed RqLs (neither 32 nor 52 bytes) too.
        let mut bad = lease(dialect, key(30), R, 0).to_context();
        bad.data.push(0);
        let msg = a.build(
            Command::CREATE,
            &CreateRequest {
                requested_oplock_level: OplockLevel::LEASE,
                desired_access: access::GENERIC_READ,
                create_disposition: CreateDisposition::OPEN_IF,
                name: "bad".into(),
                contexts: vec![bad],
                ..Default::default()
            },
        );
        assert_eq!(
            a.send(&msg).unwrap().hdr.status,
            NtStatus::INVALID_PARAMETER
        );
        // Beside another lease, no W.
        let (mut b, _) = connect(cfg, dialect, alg);
        let r = create(
            &mut b,
            "l1",
            OplockLevel::LEASE,
            Some(lease(dialect, key(40), R | W | H, 0)),
        );
        assert_eq!(granted_lease(&r).state, R | H, "{dialect:?}");
        assert!(wakeup(&mut a).is_empty(), "RH beside RH breaks nothing");
    }
}

#[test]
fn leases_on_2_0_2_are_not_granted() {
    let (cfg, _) = config(true);
    let (mut a, _) = connect(cfg, Dialect::SMB202, Algorithm::HmacSha256);
    let r = create(
        &mut a,
        "f",
        OplockLevel::LEASE,
        Some(lease(Dialect::SMB21, key(1), R | W | H, 0)),
    );
    assert_eq!(r.oplock_level, OplockLevel::NONE);
    assert!(r.contexts.is_empty());
}

#[test]
fn a_write_lease_breaks_for_another_key_and_the_create_waits_for_the_ack() {
    for (dialect, alg) in lease_combos() {
        let v2 = dialect >= Dialect::SMB30;
        let (cfg, _) = config(true);
        let (mut a, _) = connect(cfg.clone(), dialect, alg);
        let (mut b, woken_b) = connect(cfg.clone(), dialect, alg);
        let r = create(
            &mut a,
            "f",
            OplockLevel::LEASE,
            Some(lease(dialect, key(1), R | W | H, 0)),
        );
        let epoch = granted_lease(&r).v2.map_or(0, |v| v.epoch);
        let msg = create_msg(
            &mut b,
            "f",
            OplockLevel::LEASE,
            Some(lease(dialect, key(2), R | W | H, 0)),
            CreateDisposition::OPEN,
        );
        let (mid, async_id) = create_pending(&mut b, &msg);
        let out = wakeup(&mut a);
        assert_eq!(out.len(), 1, "{dialect:?}");
        check_notification(&out[0]);
        let n = LeaseBreakNotification::read(&out[0]).unwrap();
        assert_eq!(n.key, key(1));
        assert_eq!((n.current_state, n.new_state), (R | W | H, R | H));
        assert_eq!(n.flags, lease_break_flags::ACK_REQUIRED);
        assert_eq!(n.new_epoch, if v2 { epoch + 1 } else { 0 }, "{dialect:?}");
        // Acknowledging more than offered: STATUS_REQUEST_NOT_ACCEPTED, still breaking.
        assert_eq!(
            ack_lease(&mut a, key(1), R | W | H).0,
            NtStatus::REQUEST_NOT_ACCEPTED
        );
        assert!(wakeup(&mut b).is_empty());
        let (status, resp) = ack_lease(&mut a, key(1), R | H);
        assert_eq!(status, NtStatus::SUCCESS, "{dialect:?} {alg:?}");
        assert_eq!(resp.unwrap().state, R | H);
        assert!(woken_b.load(Ordering::SeqCst) > 0);
        let out = wakeup(&mut b);
        assert_eq!(out.len(), 1);
        check_final(&b, &out[0], mid, async_id, NtStatus::SUCCESS);
        let l = granted_lease(&CreateResponse::read(&out[0]).unwrap());
        assert_eq!((l.key, l.state), (key(2), R | H), "{dialect:?}");
        assert_eq!(l.flags & lease_flags::BREAK_IN_PROGRESS, 0);
        // Not breaking any more.
        assert_eq!(ack_lease(&mut a, key(1), R).0, NtStatus::UNSUCCESSFUL);
        // An overwrite takes everything; R-only breaks need no acknowledgment, RH ones do.
        let (mut c, _) = connect(cfg.clone(), dialect, alg);
        let msg = create_msg(
            &mut c,
            "f",
            OplockLevel::NONE,
            None,
            CreateDisposition::OVERWRITE_IF,
        );
        let (mid, async_id) = create_pending(&mut c, &msg);
        for (x, k) in [(&mut a, key(1)), (&mut b, key(2))] {
            let out = wakeup(x);
            assert_eq!(out.len(), 1);
            let n = LeaseBreakNotification::read(&out[0]).unwrap();
            assert_eq!((n.key, n.current_state, n.new_state), (k, R | H, 0));
            assert_eq!(ack_lease(x, k, 0).0, NtStatus::SUCCESS);
        }
        let out = wakeup(&mut c);
        assert_eq!(out.len(), 1, "{dialect:?}");
        check_final(&c, &out[0], mid, async_id, NtStatus::SUCCESS);
    }
}

#[test]
fn cancel_of_a_create_waiting_for_a_break() {
    for (dialect, alg) in combos() {
        for async_form in [true, false] {
            let (cfg, _) = config(true);
            let (mut a, fa, mut b, _) = batch_held(cfg, dialect, alg);
            let msg = create_msg(
                &mut b,
                "f",
                OplockLevel::NONE,
                None,
                CreateDisposition::OPEN,
            );
            let (mid, async_id) = create_pending(&mut b, &msg);
            let mut h = Header::request(Command::CANCEL, mid, b.session_id, b.tree_id);
            h.async_id = async_form.then_some(async_id);
            // Unsigned on a signing-required session: cancels nothing.
            let unsigned = smb_core::messages::build(&h, &CancelRequest);
            assert!(b.raw(&unsigned).is_empty());
            let mut signed = unsigned.clone();
            b.key.as_ref().unwrap().sign(&mut signed).unwrap();
            let out = b.raw(&signed);
            assert_eq!(out.len(), 1, "{dialect:?} {alg:?}");
            check_final(&b, &out[0], mid, async_id, NtStatus::CANCELLED);
            // The acknowledgment later completes nothing more on b.
            assert_eq!(wakeup(&mut a).len(), 1);
            assert_eq!(ack_oplock(&mut a, fa, OplockLevel::II).0, NtStatus::SUCCESS);
            assert!(wakeup(&mut b).is_empty());
            // The cancelled CREATE's open is gone: a new batch request on a is alone again
            // after a closes.
            close(&mut a, fa);
            let r = create(&mut a, "f", OplockLevel::BATCH, None);
            assert_eq!(r.oplock_level, OplockLevel::BATCH, "{dialect:?}");
        }
    }
}

#[test]
fn the_holders_close_or_disconnect_ends_the_break() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let (mut a, fa, mut b, woken) = batch_held(cfg.clone(), dialect, alg);
        let msg = create_msg(
            &mut b,
            "f",
            OplockLevel::BATCH,
            None,
            CreateDisposition::OPEN,
        );
        let (mid, async_id) = create_pending(&mut b, &msg);
        assert_eq!(wakeup(&mut a).len(), 1);
        // Closing instead of acknowledging (what a client with nothing cached does).
        close(&mut a, fa);
        assert!(woken.load(Ordering::SeqCst) > 0);
        let out = wakeup(&mut b);
        assert_eq!(out.len(), 1);
        check_final(&b, &out[0], mid, async_id, NtStatus::SUCCESS);
        assert_eq!(
            CreateResponse::read(&out[0]).unwrap().oplock_level,
            OplockLevel::BATCH,
            "{dialect:?}: alone now"
        );
        // A holder whose connection goes away.
        let fb = r_file(&out[0]);
        let msg = create_msg(
            &mut a,
            "f",
            OplockLevel::NONE,
            None,
            CreateDisposition::OPEN,
        );
        let (mid, async_id) = create_pending(&mut a, &msg);
        let _ = fb;
        drop(b);
        let out = wakeup(&mut a);
        assert_eq!(out.len(), 1, "{dialect:?}");
        check_final(&a, &out[0], mid, async_id, NtStatus::SUCCESS);
    }
}

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[test]
fn a_break_nobody_acknowledges_times_out() {
    for (dialect, alg) in combos() {
        let (base, _) = config(true);
        let clock = Arc::new(TestClock(AtomicU64::new(NOW)));
        let cfg = Arc::new(ServerConfig {
            clock: clock.clone(),
            break_timeout: Duration::from_secs(2),
            ..(*base).clone()
        });
        let (mut a, fa, mut b, _) = batch_held(cfg, dialect, alg);
        let msg = create_msg(
            &mut b,
            "f",
            OplockLevel::BATCH,
            None,
            CreateDisposition::OPEN,
        );
        let (mid, async_id) = create_pending(&mut b, &msg);
        assert_eq!(b.conn.next_timeout(), Some(Duration::from_secs(2)));
        clock.0.fetch_add(10_000_000, Ordering::SeqCst); // 1 s
        assert!(wakeup(&mut b).is_empty(), "not yet");
        assert_eq!(b.conn.next_timeout(), Some(Duration::from_secs(1)));
        clock.0.fetch_add(10_000_000, Ordering::SeqCst);
        let out = wakeup(&mut b);
        assert_eq!(out.len(), 1, "{dialect:?}");
        check_final(&b, &out[0], mid, async_id, NtStatus::SUCCESS);
        assert_eq!(
            CreateResponse::read(&out[0]).unwrap().oplock_level,
            OplockLevel::II
        );
        assert_eq!(b.conn.next_timeout(), None);
        // The late acknowledgment finds no break.
        assert_eq!(wakeup(&mut a).len(), 1);
        assert_eq!(
            ack_oplock(&mut a, fa, OplockLevel::II).0,
            INVALID_DEVICE_STATE
        );
    }
}

#[test]
fn a_create_that_would_wait_inside_a_compound_is_cancelled_and_its_open_closed() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let (mut a, fa, mut b, _) = batch_held(cfg, dialect, alg);
        // CREATE (breaks a's batch oplock) then ECHO: going async is for the last request of
        // a chain only (MS-SMB2 3.3.4.2), so the CREATE ends at once with STATUS_CANCELLED.
        let m1 = create_msg(
            &mut b,
            "f",
            OplockLevel::NONE,
            None,
            CreateDisposition::OPEN,
        );
        let m2 = smb_core::messages::build(
            &b.header(Command::ECHO),
            &smb_core::messages::echo::EchoRequest,
        );
        // create_msg signed m1 alone; the chain is signed again as a whole.
        let mut chain = smb_core::compound::build_chain(&[m1, m2]);
        b.key.as_ref().unwrap().sign_chain(&mut chain).unwrap();
        let out = b.raw(&chain);
        assert_eq!(out.len(), 1, "{dialect:?}: one chained answer");
        let parts = smb_core::compound::split_chain(&out[0]).unwrap();
        let h1 = Header::parse(&out[0][parts[0].clone()]).unwrap();
        let h2 = Header::parse(&out[0][parts[1].clone()]).unwrap();
        assert_eq!((h1.status, h1.async_id), (NtStatus::CANCELLED, None));
        assert_eq!((h2.command, h2.status), (Command::ECHO, NtStatus::SUCCESS));
        b.key.as_ref().unwrap().verify_chain(&out[0]).unwrap();
        // The break went out; once acknowledged and closed, a is alone again: b's open is gone.
        assert_eq!(wakeup(&mut a).len(), 1);
        assert_eq!(ack_oplock(&mut a, fa, OplockLevel::II).0, NtStatus::SUCCESS);
        assert!(wakeup(&mut b).is_empty());
        close(&mut a, fa);
        let r = create(&mut a, "f", OplockLevel::BATCH, None);
        assert_eq!(r.oplock_level, OplockLevel::BATCH, "{dialect:?}");
    }
}

/// A CREATE with the given ShareAccess (OPEN_IF, read and write access).
fn create_shared_msg(
    c: &mut Client,
    name: &str,
    level: OplockLevel,
    lease: Option<LeaseContext>,
    share: u32,
) -> Vec<u8> {
    c.build(
        Command::CREATE,
        &CreateRequest {
            requested_oplock_level: level,
            desired_access: access::GENERIC_READ | access::GENERIC_WRITE,
            share_access: share,
            create_disposition: CreateDisposition::OPEN_IF,
            create_options: create_options::NON_DIRECTORY_FILE,
            name: name.into(),
            contexts: lease.map(|l| vec![l.to_context()]).unwrap_or_default(),
            ..Default::default()
        },
    )
}

#[test]
fn a_sharing_violation_breaks_a_batch_oplock_first() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let (mut a, _) = connect(cfg.clone(), dialect, alg);
        let (mut b, woken_b) = connect(cfg.clone(), dialect, alg);
        // The holder shares nothing: every other open is a sharing violation.
        let msg = create_shared_msg(&mut a, "s", OplockLevel::BATCH, None, 0);
        let r = a.send(&msg).unwrap();
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
        let fa = r_file(&r.msg);
        let all = share_access::READ | share_access::WRITE | share_access::DELETE;
        let msg = create_shared_msg(&mut b, "s", OplockLevel::BATCH, None, all);
        let (mid, async_id) = create_pending(&mut b, &msg);
        let out = wakeup(&mut a);
        assert_eq!(out.len(), 1, "{dialect:?}: one break notification");
        check_notification(&out[0]);
        let n = OplockBreak::read(&out[0]).unwrap();
        assert_eq!((n.oplock_level, n.file_id), (OplockLevel::II, fa));
        assert!(wakeup(&mut b).is_empty(), "still waiting");
        // The holder closes on the break (batch3): the CREATE succeeds, alone.
        close(&mut a, fa);
        assert!(woken_b.load(Ordering::SeqCst) > 0, "the waiter is woken");
        let out = wakeup(&mut b);
        assert_eq!(out.len(), 1);
        check_final(&b, &out[0], mid, async_id, NtStatus::SUCCESS);
        let r = CreateResponse::read(&out[0]).unwrap();
        assert_eq!(r.oplock_level, OplockLevel::BATCH, "{dialect:?}");
        close(&mut b, r.file_id);

        // The holder only acknowledges: the CREATE fails with the sharing violation.
        let msg = create_shared_msg(&mut a, "s", OplockLevel::BATCH, None, 0);
        let r = a.send(&msg).unwrap();
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
        let fa = r_file(&r.msg);
        let msg = create_shared_msg(&mut b, "s", OplockLevel::NONE, None, all);
        let (mid, async_id) = create_pending(&mut b, &msg);
        assert_eq!(wakeup(&mut a).len(), 1);
        let (status, _) = ack_oplock(&mut a, fa, OplockLevel::II);
        assert_eq!(status, NtStatus::SUCCESS);
        let out = wakeup(&mut b);
        assert_eq!(out.len(), 1);
        check_final(&b, &out[0], mid, async_id, NtStatus::SHARING_VIOLATION);
        // Level II is not broken for sharing: the next CREATE fails at once.
        let msg = create_shared_msg(&mut b, "s", OplockLevel::NONE, None, all);
        let r = b.send(&msg).unwrap();
        assert_eq!(r.hdr.status, NtStatus::SHARING_VIOLATION, "{dialect:?}");
        assert!(r.hdr.async_id.is_none());
        assert!(wakeup(&mut a).is_empty(), "nothing more was broken");
        // An exclusive oplock is not broken for sharing either.
        let msg = create_shared_msg(&mut a, "x", OplockLevel::EXCLUSIVE, None, 0);
        assert_eq!(a.send(&msg).unwrap().hdr.status, NtStatus::SUCCESS);
        let msg = create_shared_msg(&mut b, "x", OplockLevel::NONE, None, all);
        let r = b.send(&msg).unwrap();
        assert_eq!(r.hdr.status, NtStatus::SHARING_VIOLATION, "{dialect:?}");
        assert!(wakeup(&mut a).is_empty());
    }
}

#[test]
fn a_sharing_violation_breaks_a_handle_lease_first() {
    for (dialect, alg) in lease_combos() {
        let (cfg, _) = config(true);
        let (mut a, _) = connect(cfg.clone(), dialect, alg);
        let (mut b, _) = connect(cfg.clone(), dialect, alg);
        let all = share_access::READ | share_access::WRITE | share_access::DELETE;
        for closes in [true, false] {
            let l = lease(dialect, key(1), R | W | H, 0);
            let msg = create_shared_msg(&mut a, "l", OplockLevel::LEASE, Some(l), 0);
            let r = a.send(&msg).unwrap();
            assert_eq!(r.hdr.status, NtStatus::SUCCESS);
            let resp = CreateResponse::read(&r.msg).unwrap();
            assert_eq!(granted_lease(&resp).state, R | W | H);
            let msg = create_shared_msg(&mut b, "l", OplockLevel::NONE, None, all);
            let (mid, async_id) = create_pending(&mut b, &msg);
            let out = wakeup(&mut a);
            assert_eq!(out.len(), 1, "{dialect:?}");
            check_notification(&out[0]);
            let n = LeaseBreakNotification::read(&out[0]).unwrap();
            assert_eq!((n.current_state, n.new_state), (R | W | H, R | W));
            assert_eq!(n.flags, lease_break_flags::ACK_REQUIRED);
            let status = if closes {
                close(&mut a, resp.file_id);
                NtStatus::SUCCESS
            } else {
                assert_eq!(ack_lease(&mut a, key(1), R | W).0, NtStatus::SUCCESS);
                NtStatus::SHARING_VIOLATION
            };
            let out = wakeup(&mut b);
            assert_eq!(out.len(), 1, "{dialect:?} closes={closes}");
            check_final(&b, &out[0], mid, async_id, status);
            if closes {
                close(&mut b, r_file(&out[0]));
            } else {
                close(&mut a, resp.file_id);
            }
        }
    }
}

#[test]
fn an_attributes_only_open_breaks_nothing_unless_it_overwrites() {
    for (dialect, alg) in combos() {
        let (cfg, _) = config(true);
        let (mut a, _) = connect(cfg.clone(), dialect, alg);
        let (mut b, _) = connect(cfg.clone(), dialect, alg);
        assert_eq!(
            create(&mut a, "e", OplockLevel::EXCLUSIVE, None).oplock_level,
            OplockLevel::EXCLUSIVE
        );
        let stat = |c: &mut Client, disposition| {
            c.build(
                Command::CREATE,
                &CreateRequest {
                    requested_oplock_level: OplockLevel::EXCLUSIVE,
                    desired_access: access::FILE_READ_ATTRIBUTES
                        | access::FILE_WRITE_ATTRIBUTES
                        | access::SYNCHRONIZE,
                    share_access: share_access::READ | share_access::WRITE,
                    create_disposition: disposition,
                    name: "e".into(),
                    ..Default::default()
                },
            )
        };
        // exclusive4: no break, and no oplock beside the exclusive one.
        let msg = stat(&mut b, CreateDisposition::OPEN_IF);
        let r = b.send(&msg).unwrap();
        assert_eq!(r.hdr.status, NtStatus::SUCCESS, "{dialect:?}");
        let resp = CreateResponse::read(&r.msg).unwrap();
        assert_eq!(resp.oplock_level, OplockLevel::NONE);
        assert!(wakeup(&mut a).is_empty(), "{dialect:?}: nothing was broken");
        // exclusive5: with OVERWRITE_IF it breaks the exclusive oplock to none, and waits
        // for the acknowledgment.
        let msg = stat(&mut b, CreateDisposition::OVERWRITE_IF);
        let _ = create_pending(&mut b, &msg);
        let out = wakeup(&mut a);
        assert_eq!(out.len(), 1, "{dialect:?}: the overwrite breaks");
        let n = OplockBreak::read(&out[0]).unwrap();
        assert_eq!(n.oplock_level, OplockLevel::NONE);
    }
}
