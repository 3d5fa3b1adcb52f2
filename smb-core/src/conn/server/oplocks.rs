//! Oplocks and leases across every connection of a server (MS-SMB2 3.3.5.9, 3.3.5.9.8,
//! 3.3.4.6, 3.3.4.7, 3.3.5.22; the object store's rules are MS-FSA 2.1.5.17 and 2.1.4.12).
//!
//! [`OplockTable`] (shared in [`super::ServerConfig`], beside the sharing table) holds every
//! open of every file with what it caches: an oplock level (II, exclusive, batch) or a lease
//! (R, RW, RH, RWH; a lease is shared by every open made with its key by one client).
//!
//! - A CREATE gets what it asks for when nothing conflicts: batch or exclusive when it is the
//!   file's only open, level II beside other opens that cache no writes; a lease without W
//!   beside opens of other leases, with W when every open of the file is its lease's.
//! - A CREATE that conflicts breaks the others first: exclusive and batch oplocks go to level
//!   II (NONE when the new open overwrites), leases lose W (everything on an overwrite).
//!   Each holder's connection gets a break notification through its outbox and waker; a break
//!   that needs an acknowledgment keeps the CREATE pending (asynchronous, see `breaks.rs`)
//!   until the holder acknowledges, closes, goes away, or the break times out.
//! - A CREATE that fails with STATUS_SHARING_VIOLATION first breaks batch oplocks to level
//!   II and strips H from leases (MS-SMB2 3.3.5.9), waits the same way, then checks sharing
//!   again: it succeeds if the holder closed its handle.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use super::notify::Waker;
use super::sharing::FileKey;
use crate::messages::create::OplockLevel;
use crate::messages::lease::{lease_flags, lease_state, LeaseContext, LeaseKey, LeaseV2};
use crate::messages::negotiate::Guid;

/// A lease's identity: ClientGuid and LeaseKey (MS-SMB2 3.3.1.4 LeaseTable per client).
pub(crate) type LeaseId = ([u8; 16], LeaseKey);

/// What an open asks for on CREATE.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    None,
    Oplock(OplockLevel),
    Lease(LeaseContext),
}

/// What one open caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    Nothing,
    /// Level and, while a break waits for its acknowledgment, the level it breaks to.
    Oplock {
        level: OplockLevel,
        breaking_to: Option<OplockLevel>,
    },
    Lease(LeaseId),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    conn: u64,
    open: u64,
    holds: Holds,
}

#[derive(Debug, Clone)]
struct Lease {
    file: FileKey,
    state: u32,
    /// The state a break goes to, while it waits for the acknowledgment.
    breaking_to: Option<u32>,
    epoch: u16,
    version: u8,
    parent: Option<LeaseKey>,
    /// The connection that receives this lease's breaks (the last one that opened with it).
    conn: u64,
}

/// A break for a connection to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    Oplock {
        open: u64,
        level: OplockLevel,
    },
    Lease {
        key: LeaseKey,
        current: u32,
        new: u32,
        epoch: u16,
        version: u8,
        ack_required: bool,
    },
}

#[derive(Default)]
struct Slot {
    waker: Option<Waker>,
    outbox: Vec<Notice>,
    /// The connection has CREATEs waiting for breaks to end.
    waits: bool,
}

/// Every oplock and lease of a server, shared in [`super::ServerConfig`].
#[derive(Default)]
pub struct OplockTable {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    files: HashMap<FileKey, Vec<Entry>>,
    leases: HashMap<LeaseId, Lease>,
    conns: HashMap<u64, Slot>,
}

impl fmt::Debug for OplockTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.lock();
        f.debug_struct("OplockTable")
            .field("files", &t.files.len())
            .field("leases", &t.leases.len())
            .finish()
    }
}

/// The level an oplock request is granted (MS-FSA 2.1.5.17): what the open asked for when
/// it is alone, at most level II beside opens that do not cache writes, else nothing.
fn oplock_grant(want: OplockLevel, alone: bool, others_exclusive: bool) -> OplockLevel {
    match want {
        OplockLevel::BATCH | OplockLevel::EXCLUSIVE if alone => want,
        OplockLevel::BATCH | OplockLevel::EXCLUSIVE | OplockLevel::II if !others_exclusive => {
            OplockLevel::II
        }
        _ => OplockLevel::NONE,
    }
}

/// What an acknowledgment may keep: the break level or less (NONE < II < EXCLUSIVE).
fn oplock_rank(l: OplockLevel) -> u8 {
    match l {
        OplockLevel::II => 1,
        OplockLevel::EXCLUSIVE => 2,
        OplockLevel::BATCH => 3,
        _ => 0,
    }
}

/// The result of an oplock break acknowledgment (MS-SMB2 3.3.5.22.1).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OplockAck {
    Done(OplockLevel),
    /// "If Open.OplockState is not Breaking": STATUS_INVALID_DEVICE_STATE.
    NotBreaking,
    /// A level above the one broken to: STATUS_INVALID_OPLOCK_PROTOCOL.
    TooHigh,
}

/// The result of a lease break acknowledgment (MS-SMB2 3.3.5.22.2).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LeaseAck {
    Done(u32),
    /// No such lease: STATUS_OBJECT_NAME_NOT_FOUND.
    Unknown,
    /// No break in progress: STATUS_UNSUCCESSFUL.
    NotBreaking,
    /// A state the break did not offer: STATUS_REQUEST_NOT_ACCEPTED.
    NotAccepted,
}

impl OplockTable {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection, numbered by the sharing table.
    pub(crate) fn register(&self, conn: u64) {
        self.lock().conns.insert(conn, Slot::default());
    }

    pub(crate) fn set_waker(&self, conn: u64, waker: Waker) {
        self.lock().conns.entry(conn).or_default().waker = Some(waker);
    }

    /// The connection has (or no longer has) CREATEs waiting for breaks.
    pub(crate) fn set_waits(&self, conn: u64, waits: bool) {
        self.lock().conns.entry(conn).or_default().waits = waits;
    }

    /// The breaks this connection must send, oldest first.
    pub(crate) fn take_notices(&self, conn: u64) -> Vec<Notice> {
        self.lock()
            .conns
            .get_mut(&conn)
            .map(|s| std::mem::take(&mut s.outbox))
            .unwrap_or_default()
    }

    /// MS-SMB2 3.3.5.9.8: a lease key already used by this client for another file fails the
    /// CREATE with STATUS_INVALID_PARAMETER.
    pub(crate) fn lease_elsewhere(&self, id: &LeaseId, file: &FileKey) -> bool {
        self.lock().leases.get(id).is_some_and(|l| &l.file != file)
    }

    /// A new open of `file`: records it and starts the breaks it causes. Returns true when a
    /// break it must wait for is under way (the CREATE goes pending).
    pub(crate) fn open(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        lease: Option<LeaseId>,
        overwrite: bool,
        stat: bool,
    ) -> bool {
        let mut wake = Vec::new();
        let waits = {
            let mut t = self.lock();
            let t = &mut *t;
            let entries = t.files.entry(file.clone()).or_default();
            // An attributes-only open (`stat`) breaks nothing.
            for e in entries.iter_mut().filter(|_| !stat) {
                match &mut e.holds {
                    Holds::Oplock { level, breaking_to } => {
                        let to = if overwrite {
                            OplockLevel::NONE
                        } else {
                            OplockLevel::II
                        };
                        if oplock_rank(*level) <= oplock_rank(to) {
                            continue;
                        }
                        if *level == OplockLevel::II {
                            // Level II breaks to none and is never acknowledged (2.2.24.1).
                            *level = OplockLevel::NONE;
                        } else if breaking_to.is_none_or(|b| oplock_rank(to) < oplock_rank(b)) {
                            *breaking_to = Some(to);
                        } else {
                            continue;
                        }
                        if let Some(slot) = t.conns.get_mut(&e.conn) {
                            slot.outbox.push(Notice::Oplock {
                                open: e.open,
                                level: to,
                            });
                            wake.extend(slot.waker.clone());
                        }
                    }
                    Holds::Lease(id) if Some(*id) != lease => {
                        let Some(l) = t.leases.get_mut(id) else {
                            continue;
                        };
                        let strip = if overwrite {
                            lease_state::ALL
                        } else {
                            lease_state::WRITE_CACHING
                        };
                        let current = l.breaking_to.unwrap_or(l.state);
                        let new = current & !strip;
                        if new == current {
                            continue;
                        }
                        // MS-SMB2 3.3.4.7: a break from a state that caches writes or handles
                        // must be acknowledged; R to none need not be.
                        let ack_required = l.state & !lease_state::READ_CACHING != 0;
                        if l.version == 2 {
                            l.epoch = l.epoch.wrapping_add(1);
                        }
                        let notice = Notice::Lease {
                            key: id.1,
                            current: l.state,
                            new,
                            epoch: l.epoch,
                            version: l.version,
                            ack_required,
                        };
                        if ack_required {
                            l.breaking_to = Some(new);
                        } else {
                            l.state = new;
                        }
                        if let Some(slot) = t.conns.get_mut(&l.conn) {
                            slot.outbox.push(notice);
                            wake.extend(slot.waker.clone());
                        }
                    }
                    _ => {}
                }
            }
            entries.push(Entry {
                conn,
                open,
                holds: Holds::Nothing,
            });
            Self::breaking(t, file)
        };
        wake.into_iter().for_each(|w| w());
        waits
    }

    /// MS-SMB2 3.3.5.9 / MS-FSA 2.1.5.1.2: a new open of `file` failed with
    /// STATUS_SHARING_VIOLATION. Batch oplocks break to level II and leases lose Handle
    /// caching, so a holder that only caches its handle can close it; returns true when a
    /// break is under way (the CREATE waits, then checks sharing again).
    pub(crate) fn break_for_sharing(&self, file: &FileKey) -> bool {
        let mut wake = Vec::new();
        let waits = {
            let mut t = self.lock();
            let t = &mut *t;
            let Some(entries) = t.files.get_mut(file) else {
                return false;
            };
            for e in entries.iter_mut() {
                let notice = match &mut e.holds {
                    Holds::Oplock { level, breaking_to }
                        if *level == OplockLevel::BATCH && breaking_to.is_none() =>
                    {
                        *breaking_to = Some(OplockLevel::II);
                        (
                            e.conn,
                            Notice::Oplock {
                                open: e.open,
                                level: OplockLevel::II,
                            },
                        )
                    }
                    Holds::Lease(id) => {
                        let Some(l) = t.leases.get_mut(id) else {
                            continue;
                        };
                        let current = l.breaking_to.unwrap_or(l.state);
                        if current & lease_state::HANDLE_CACHING == 0 {
                            continue;
                        }
                        let new = current & !lease_state::HANDLE_CACHING;
                        if l.version == 2 {
                            l.epoch = l.epoch.wrapping_add(1);
                        }
                        l.breaking_to = Some(new);
                        (
                            l.conn,
                            Notice::Lease {
                                key: id.1,
                                current: l.state,
                                new,
                                epoch: l.epoch,
                                version: l.version,
                                ack_required: true,
                            },
                        )
                    }
                    _ => continue,
                };
                if let Some(slot) = t.conns.get_mut(&notice.0) {
                    slot.outbox.push(notice.1);
                    wake.extend(slot.waker.clone());
                }
            }
            Self::breaking(t, file)
        };
        wake.into_iter().for_each(|w| w());
        waits
    }

    /// True while a break on `file` waits for its acknowledgment.
    fn breaking(t: &Inner, file: &FileKey) -> bool {
        t.files.get(file).is_some_and(|entries| {
            entries.iter().any(|e| match e.holds {
                Holds::Oplock { breaking_to, .. } => breaking_to.is_some(),
                Holds::Lease(id) => t.leases.get(&id).is_some_and(|l| l.breaking_to.is_some()),
                Holds::Nothing => false,
            })
        })
    }

    pub(crate) fn is_breaking(&self, file: &FileKey) -> bool {
        Self::breaking(&self.lock(), file)
    }

    /// The break timeout passed (MS-SMB2 3.3.2.1, Oplock Break Acknowledgment Timer): every
    /// break on `file` completes as if acknowledged at the level it broke to.
    pub(crate) fn expire(&self, file: &FileKey) {
        let mut t = self.lock();
        let t = &mut *t;
        let Some(entries) = t.files.get_mut(file) else {
            return;
        };
        for e in entries.iter_mut() {
            match &mut e.holds {
                Holds::Oplock { level, breaking_to } => {
                    if let Some(to) = breaking_to.take() {
                        *level = to;
                    }
                }
                Holds::Lease(id) => {
                    if let Some(l) = t.leases.get_mut(id) {
                        if let Some(to) = l.breaking_to.take() {
                            l.state = to;
                        }
                    }
                }
                Holds::Nothing => {}
            }
        }
    }

    /// What the open `open` of `file` is granted, once no break is under way (called when
    /// the CREATE completes). `client` is the ClientGuid (leases), `dialect_v2` whether
    /// version 2 leases are allowed (3.x).
    pub(crate) fn grant(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        want: Want,
        client: &Guid,
        lease_v2: bool,
    ) -> (OplockLevel, Option<LeaseContext>) {
        let mut t = self.lock();
        let t = &mut *t;
        let Some(entries) = t.files.get(file) else {
            return (OplockLevel::NONE, None);
        };
        let others: Vec<Holds> = entries
            .iter()
            .filter(|e| (e.conn, e.open) != (conn, open))
            .map(|e| e.holds)
            .collect();
        let others_exclusive = others.iter().any(|h| match h {
            Holds::Oplock { level, .. } => oplock_rank(*level) >= 2,
            Holds::Lease(id) => t
                .leases
                .get(id)
                .is_some_and(|l| l.state & lease_state::WRITE_CACHING != 0),
            Holds::Nothing => false,
        });
        let (holds, result) = match want {
            Want::None => (Holds::Nothing, (OplockLevel::NONE, None)),
            Want::Oplock(level) => {
                let granted = oplock_grant(level, others.is_empty(), others_exclusive);
                let holds = if granted == OplockLevel::NONE {
                    Holds::Nothing
                } else {
                    Holds::Oplock {
                        level: granted,
                        breaking_to: None,
                    }
                };
                (holds, (granted, None))
            }
            Want::Lease(req) => {
                let id: LeaseId = (client.0, req.key);
                // Only opens of this same lease may sit beside a W lease; any other
                // oplock holder keeps H and R from being meaningful, as Windows grants.
                let only_mine = others.iter().all(|h| *h == Holds::Lease(id));
                let oplocked = others
                    .iter()
                    .any(|h| matches!(h, Holds::Oplock { level, .. } if oplock_rank(*level) >= 2));
                let mut allowed = lease_state::READ_CACHING | lease_state::HANDLE_CACHING;
                if only_mine {
                    allowed |= lease_state::WRITE_CACHING;
                }
                if oplocked || others_exclusive && !only_mine {
                    allowed = 0;
                }
                // R, RH, RW, RWH: W or H without R grants nothing (MS-FSA 2.1.5.17).
                let asked = if req.state & lease_state::READ_CACHING == 0 {
                    0
                } else {
                    req.state & lease_state::ALL
                };
                let v2 = lease_v2 && req.v2.is_some();
                let lease = t.leases.entry(id).or_insert_with(|| Lease {
                    file: file.clone(),
                    state: 0,
                    breaking_to: None,
                    // 3.3.5.9.8: a new v2 lease starts at the client's epoch + 1.
                    epoch: req.v2.map_or(0, |v| v.epoch),
                    version: if v2 { 2 } else { 1 },
                    parent: None,
                    conn,
                });
                lease.conn = conn;
                if v2 {
                    if let Some(p) = req.v2 {
                        if req.flags & lease_flags::PARENT_LEASE_KEY_SET != 0 {
                            lease.parent = Some(p.parent_key);
                        }
                    }
                }
                // A new lease gets what it asks for that nothing conflicts with. An existing
                // one (not breaking) moves only to a superset of its state that can be
                // granted whole: RH asked for RW stays RH, R asked for RWH beside another
                // lease stays R (smbtorture smb2.lease.upgrade*, break, as Windows). Each
                // change of state moves a v2 lease's epoch on.
                if lease.breaking_to.is_none() {
                    let new = if lease.state == 0 {
                        asked & allowed
                    } else if asked & lease.state == lease.state && asked & !allowed == 0 {
                        asked
                    } else {
                        lease.state
                    };
                    if new != lease.state {
                        lease.state = new;
                        if lease.version == 2 {
                            lease.epoch = lease.epoch.wrapping_add(1);
                        }
                    }
                }
                let mut flags = 0;
                if lease.breaking_to.is_some() {
                    flags |= lease_flags::BREAK_IN_PROGRESS;
                }
                let v2_out = (lease.version == 2).then(|| {
                    if lease.parent.is_some() {
                        flags |= lease_flags::PARENT_LEASE_KEY_SET;
                    }
                    LeaseV2 {
                        parent_key: lease.parent.unwrap_or_default(),
                        epoch: lease.epoch,
                    }
                });
                let ctx = LeaseContext {
                    key: req.key,
                    state: lease.state,
                    flags,
                    duration: 0,
                    v2: v2_out,
                };
                (Holds::Lease(id), (OplockLevel::LEASE, Some(ctx)))
            }
        };
        if let Some(entries) = t.files.get_mut(file) {
            if let Some(e) = entries
                .iter_mut()
                .find(|e| (e.conn, e.open) == (conn, open))
            {
                e.holds = holds;
            }
        }
        result
    }

    /// An open closed: it stops caching; a lease with no open left goes. Connections that
    /// wait for breaks are woken (the break they wait for may be over).
    pub(crate) fn close(&self, file: &FileKey, conn: u64, open: u64) {
        let wake = {
            let mut t = self.lock();
            Self::remove(&mut t, |(f, e)| {
                f == file && (e.conn, e.open) == (conn, open)
            });
            Self::waiters(&t)
        };
        wake.into_iter().for_each(|w| w());
    }

    /// A connection went away: all its opens and its slot.
    pub(crate) fn close_connection(&self, conn: u64) {
        let wake = {
            let mut t = self.lock();
            Self::remove(&mut t, |(_, e)| e.conn == conn);
            t.conns.remove(&conn);
            Self::waiters(&t)
        };
        wake.into_iter().for_each(|w| w());
    }

    fn remove(t: &mut Inner, pred: impl Fn((&FileKey, &Entry)) -> bool) {
        let mut used: Vec<LeaseId> = Vec::new();
        t.files.retain(|f, entries| {
            entries.retain(|e| !pred((f, e)));
            used.extend(entries.iter().filter_map(|e| match e.holds {
                Holds::Lease(id) => Some(id),
                _ => None,
            }));
            !entries.is_empty()
        });
        t.leases.retain(|id, _| used.contains(id));
    }

    fn waiters(t: &Inner) -> Vec<Waker> {
        t.conns
            .values()
            .filter(|s| s.waits)
            .filter_map(|s| s.waker.clone())
            .collect()
    }

    /// A rename moves the file's entries (and its leases) with it.
    pub(crate) fn rename(&self, share: usize, from: &[String], to: &[String]) {
        let mut t = self.lock();
        let moved: Vec<FileKey> = t
            .files
            .keys()
            .filter(|(s, p)| *s == share && p.starts_with(from))
            .cloned()
            .collect();
        for key in moved {
            if let Some(e) = t.files.remove(&key) {
                let mut p = to.to_vec();
                p.extend_from_slice(&key.1[from.len()..]);
                let new: FileKey = (share, p);
                for l in t.leases.values_mut().filter(|l| l.file == key) {
                    l.file = new.clone();
                }
                t.files.insert(new, e);
            }
        }
    }

    /// MS-SMB2 3.3.5.22.1: the client acknowledges an oplock break of `open`.
    pub(crate) fn ack_oplock(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        level: OplockLevel,
    ) -> OplockAck {
        let result = {
            let mut t = self.lock();
            let Some(e) = t
                .files
                .get_mut(file)
                .and_then(|es| es.iter_mut().find(|e| (e.conn, e.open) == (conn, open)))
            else {
                return OplockAck::NotBreaking;
            };
            match &mut e.holds {
                Holds::Oplock {
                    level: held,
                    breaking_to: breaking @ Some(_),
                } => {
                    let to = breaking.take().unwrap_or(OplockLevel::NONE);
                    // "If the OplockLevel in the acknowledgment is greater than the level
                    // the oplock was broken to ... STATUS_INVALID_OPLOCK_PROTOCOL", and the
                    // open keeps no oplock.
                    if oplock_rank(level) > oplock_rank(to)
                        || !matches!(level, OplockLevel::NONE | OplockLevel::II)
                    {
                        e.holds = Holds::Nothing;
                        OplockAck::TooHigh
                    } else {
                        *held = level;
                        if level == OplockLevel::NONE {
                            e.holds = Holds::Nothing;
                        }
                        OplockAck::Done(level)
                    }
                }
                _ => return OplockAck::NotBreaking,
            }
        };
        self.wake_waiters();
        result
    }

    /// MS-SMB2 3.3.5.22.2: the client acknowledges a lease break.
    pub(crate) fn ack_lease(&self, id: &LeaseId, state: u32) -> LeaseAck {
        let result = {
            let mut t = self.lock();
            let Some(l) = t.leases.get_mut(id) else {
                return LeaseAck::Unknown;
            };
            let Some(to) = l.breaking_to else {
                return LeaseAck::NotBreaking;
            };
            // "If LeaseState is not a subset of Lease.BreakToLeaseState, the server MUST
            // fail the request with STATUS_REQUEST_NOT_ACCEPTED."
            if state & !to != 0 {
                return LeaseAck::NotAccepted;
            }
            l.state = state;
            l.breaking_to = None;
            LeaseAck::Done(state)
        };
        self.wake_waiters();
        result
    }

    fn wake_waiters(&self) {
        let wake = Self::waiters(&self.lock());
        wake.into_iter().for_each(|w| w());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: &str) -> FileKey {
        (1, vec![n.to_string()])
    }

    #[test]
    fn oplock_grants_follow_ms_fsa() {
        use OplockLevel as L;
        assert_eq!(oplock_grant(L::BATCH, true, false), L::BATCH);
        assert_eq!(oplock_grant(L::EXCLUSIVE, false, false), L::II);
        assert_eq!(oplock_grant(L::BATCH, false, true), L::NONE);
        assert_eq!(oplock_grant(L::II, true, false), L::II);
        assert_eq!(oplock_grant(L::NONE, true, false), L::NONE);
    }

    #[test]
    fn batch_breaks_to_level_two_and_acks() {
        let t = OplockTable::default();
        let (a, b) = (1, 2);
        t.register(a);
        t.register(b);
        let f = file("x");
        let g = Guid([1; 16]);
        assert!(!t.open(&f, a, 1, None, false, false));
        let got = t.grant(&f, a, 1, Want::Oplock(OplockLevel::BATCH), &g, true);
        assert_eq!(got.0, OplockLevel::BATCH);
        assert!(
            t.open(&f, b, 1, None, false, false),
            "the second open waits"
        );
        assert_eq!(
            t.take_notices(a),
            vec![Notice::Oplock {
                open: 1,
                level: OplockLevel::II
            }]
        );
        assert_eq!(
            t.ack_oplock(&f, b, 1, OplockLevel::II),
            OplockAck::NotBreaking
        );
        assert_eq!(
            t.ack_oplock(&f, a, 1, OplockLevel::II),
            OplockAck::Done(OplockLevel::II)
        );
        assert!(!t.is_breaking(&f));
        let got = t.grant(&f, b, 1, Want::Oplock(OplockLevel::BATCH), &g, true);
        assert_eq!(got.0, OplockLevel::II);
        t.close_connection(a);
        t.close_connection(b);
        assert!(t.lock().files.is_empty());
    }
}
