//! Byte-range locks (MS-SMB2 3.3.5.14, MS-FSA 2.1.5.7): shared and exclusive, fail-immediately
//! and waiting, across every connection of a server.
//!
//! A waiting lock (one element without SMB2_LOCKFLAG_FAIL_IMMEDIATELY) goes asynchronous like
//! CHANGE_NOTIFY: an unsigned interim STATUS_PENDING response with an AsyncId, then a signed
//! final response when the range is granted, STATUS_CANCELLED on CANCEL, or
//! STATUS_RANGE_NOT_LOCKED when its handle is closed. An unlock or close on any connection
//! wakes the connections that wait (their waker), which retry on `handle_wakeup`.
//!
//! READ and WRITE honor the locks of other opens (STATUS_FILE_LOCK_CONFLICT), as Windows does.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::notify::Waker;
use super::{Ctx, HandlerResult, Reply, ServerConnection};
use crate::header::{Command, Header, NtStatus};
use crate::messages::error::ErrorResponse;
use crate::messages::lock::{lock_flags, LockElement, LockRequest, LockResponse};
use crate::messages::{build, EncodeBody};
use crate::signing::SigningKey;

/// STATUS_LOCK_NOT_GRANTED.
pub const LOCK_NOT_GRANTED: NtStatus = NtStatus(0xC000_0055);
/// STATUS_FILE_LOCK_CONFLICT.
pub const FILE_LOCK_CONFLICT: NtStatus = NtStatus(0xC000_0054);
/// STATUS_RANGE_NOT_LOCKED.
pub const RANGE_NOT_LOCKED: NtStatus = NtStatus(0xC000_007E);
/// STATUS_INVALID_LOCK_RANGE.
pub const INVALID_LOCK_RANGE: NtStatus = NtStatus(0xC000_01A1);

/// Locks one open may hold, and waiting locks one connection may have.
const MAX_LOCKS_PER_FILE: usize = 4096;
const MAX_WAITING: usize = 64;

/// A file across connections: its share's backend address and its path.
pub(crate) type FileKey = (usize, Vec<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    conn: u64,
    open: u64,
    offset: u64,
    length: u64,
    exclusive: bool,
}

impl Held {
    /// Zero-length ranges never overlap anything (they only test a position).
    fn overlaps(&self, offset: u64, length: u64) -> bool {
        self.length > 0
            && length > 0
            && offset < self.offset.saturating_add(self.length)
            && self.offset < offset.saturating_add(length)
    }
}

/// Every byte-range lock of a server, shared in [`super::ServerConfig`].
#[derive(Default)]
pub struct LockTable {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_conn: u64,
    files: HashMap<FileKey, Vec<Held>>,
    /// Connections with waiting locks, woken when anything is released.
    waiting: HashMap<u64, Waker>,
}

impl fmt::Debug for LockTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockTable")
            .field("files", &self.lock().files.len())
            .finish()
    }
}

impl LockTable {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connection(&self) -> u64 {
        let mut t = self.lock();
        t.next_conn += 1;
        t.next_conn
    }

    /// MS-FSA 2.1.5.7: an exclusive lock conflicts with any overlapping lock; a shared one
    /// with an overlapping exclusive lock of another open.
    fn conflicts(held: &[Held], conn: u64, open: u64, e: &LockElement) -> bool {
        let exclusive = e.flags & lock_flags::EXCLUSIVE_LOCK != 0;
        held.iter().any(|h| {
            h.overlaps(e.offset, e.length)
                && (exclusive || h.exclusive && (h.conn, h.open) != (conn, open))
        })
    }

    /// Takes every lock of `elements` or none of them.
    fn lock_all(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        elements: &[LockElement],
    ) -> Result<(), NtStatus> {
        let mut t = self.lock();
        let held = t.files.entry(file.clone()).or_default();
        let before = held.len();
        for e in elements {
            if Self::conflicts(held, conn, open, e) || held.len() >= MAX_LOCKS_PER_FILE {
                held.truncate(before);
                return Err(LOCK_NOT_GRANTED);
            }
            held.push(Held {
                conn,
                open,
                offset: e.offset,
                length: e.length,
                exclusive: e.flags & lock_flags::EXCLUSIVE_LOCK != 0,
            });
        }
        Ok(())
    }

    /// Removes one lock; each unlock must name a lock exactly (MS-FSA 2.1.5.8).
    fn unlock(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        e: &LockElement,
    ) -> Result<(), NtStatus> {
        let wake = {
            let mut t = self.lock();
            let held = t.files.get_mut(file).ok_or(RANGE_NOT_LOCKED)?;
            let i = held
                .iter()
                .position(|h| {
                    (h.conn, h.open, h.offset, h.length) == (conn, open, e.offset, e.length)
                })
                .ok_or(RANGE_NOT_LOCKED)?;
            held.remove(i);
            if held.is_empty() {
                t.files.remove(file);
            }
            t.waiting.values().cloned().collect::<Vec<_>>()
        };
        wake.into_iter().for_each(|w| w());
        Ok(())
    }

    /// Drops every lock of an open (`Some`) or of a whole connection (`None`).
    fn release(&self, conn: u64, open: Option<u64>) {
        let wake = {
            let mut t = self.lock();
            let mut any = false;
            t.files.retain(|_, held| {
                let n = held.len();
                held.retain(|h| h.conn != conn || open.is_some_and(|o| h.open != o));
                any |= held.len() != n;
                !held.is_empty()
            });
            if open.is_none() {
                t.waiting.remove(&conn);
            }
            if any {
                t.waiting.values().cloned().collect::<Vec<_>>()
            } else {
                Vec::new()
            }
        };
        wake.into_iter().for_each(|w| w());
    }

    /// MS-SMB2 3.3.5.12 / 3.3.5.13: a READ conflicts with another open's exclusive lock, a
    /// WRITE with any lock but the writer's own exclusive ones.
    fn check_io(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        offset: u64,
        length: u64,
        write: bool,
    ) -> Result<(), NtStatus> {
        let t = self.lock();
        let Some(held) = t.files.get(file) else {
            return Ok(());
        };
        let conflict = held.iter().any(|h| {
            let own = (h.conn, h.open) == (conn, open);
            h.overlaps(offset, length)
                && if write {
                    !own || !h.exclusive
                } else {
                    !own && h.exclusive
                }
        });
        if conflict {
            Err(FILE_LOCK_CONFLICT)
        } else {
            Ok(())
        }
    }

    fn set_waiting(&self, conn: u64, waker: Option<Waker>) {
        let mut t = self.lock();
        match waker {
            Some(w) => {
                t.waiting.insert(conn, w);
            }
            None => {
                t.waiting.remove(&conn);
            }
        }
    }
}

/// A LOCK waiting for its range.
#[derive(Debug)]
struct Waiting {
    async_id: u64,
    message_id: u64,
    session_id: u64,
    credit_charge: u16,
    open: u64,
    file: FileKey,
    element: LockElement,
    key: Option<SigningKey>,
}

/// One connection's side of the lock table.
pub(crate) struct Locks {
    table: Arc<LockTable>,
    conn: u64,
    waker: Option<Waker>,
    waiting: Vec<Waiting>,
}

impl fmt::Debug for Locks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locks")
            .field("conn", &self.conn)
            .field("waiting", &self.waiting)
            .finish()
    }
}

impl Drop for Locks {
    fn drop(&mut self) {
        self.table.release(self.conn, None);
    }
}

impl Locks {
    pub(crate) fn new(table: Arc<LockTable>) -> Locks {
        let conn = table.connection();
        Locks {
            table,
            conn,
            waker: None,
            waiting: Vec::new(),
        }
    }

    pub(crate) fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(waker);
        if !self.waiting.is_empty() {
            self.table.set_waiting(self.conn, self.waker.clone());
        }
    }

    pub(crate) fn check_io(
        &self,
        file: &FileKey,
        open: u64,
        offset: u64,
        length: u64,
        write: bool,
    ) -> Result<(), NtStatus> {
        self.table
            .check_io(file, self.conn, open, offset, length, write)
    }

    /// The open was closed: its locks go, its waiting LOCKs end with STATUS_RANGE_NOT_LOCKED.
    pub(crate) fn closed(&mut self, open: u64) -> Vec<Vec<u8>> {
        self.table.release(self.conn, Some(open));
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.open == open);
        self.waiting = kept;
        self.update_waiting();
        gone.iter()
            .map(|w| final_response(w, RANGE_NOT_LOCKED, &ErrorResponse::default()))
            .collect()
    }

    /// MS-SMB2 3.3.5.16 for a waiting LOCK.
    pub(crate) fn cancel(&mut self, hdr: &Header, session_id: u64) -> Option<Vec<u8>> {
        let i = self.waiting.iter().position(|w| {
            w.session_id == session_id
                && match hdr.async_id {
                    Some(id) => w.async_id == id,
                    None => w.message_id == hdr.message_id,
                }
        })?;
        let w = self.waiting.remove(i);
        self.update_waiting();
        Some(final_response(
            &w,
            NtStatus::CANCELLED,
            &ErrorResponse::default(),
        ))
    }

    /// Drops the waiting LOCK `async_id` without answering it.
    pub(crate) fn forget(&mut self, async_id: u64) {
        self.waiting.retain(|w| w.async_id != async_id);
        self.update_waiting();
    }

    pub(crate) fn set_key(&mut self, async_id: u64, key: Option<SigningKey>) {
        if let Some(w) = self.waiting.iter_mut().find(|w| w.async_id == async_id) {
            w.key = key;
        }
    }

    /// Retries the waiting locks, in arrival order; returns the final responses of those
    /// granted.
    pub(crate) fn retry(&mut self) -> Vec<Vec<u8>> {
        if self.waiting.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut kept = Vec::new();
        for w in std::mem::take(&mut self.waiting) {
            match self
                .table
                .lock_all(&w.file, self.conn, w.open, std::slice::from_ref(&w.element))
            {
                Ok(()) => out.push(final_response(&w, NtStatus::SUCCESS, &LockResponse)),
                Err(_) => kept.push(w),
            }
        }
        self.waiting = kept;
        self.update_waiting();
        out
    }

    fn update_waiting(&self) {
        let waker = (!self.waiting.is_empty())
            .then(|| self.waker.clone())
            .flatten();
        self.table.set_waiting(self.conn, waker);
    }
}

/// The final response of a waiting LOCK: async header, no credits, signed when the request
/// was.
fn final_response<B: EncodeBody>(w: &Waiting, status: NtStatus, body: &B) -> Vec<u8> {
    let mut hdr = Header::request(Command::LOCK, w.message_id, w.session_id, 0).response(status);
    hdr.credit_charge = w.credit_charge;
    hdr.credits = 0;
    hdr.async_id = Some(w.async_id);
    let mut msg = if status.is_error() {
        build(&hdr, &ErrorResponse::default())
    } else {
        build(&hdr, body)
    };
    if let Some(key) = &w.key {
        let _ = key.sign(&mut msg);
    }
    msg
}

/// The lock flags MS-SMB2 3.3.5.14.2 allows on a lock (not unlock) element.
fn valid_lock_flags(flags: u32) -> bool {
    let kind = flags & !lock_flags::FAIL_IMMEDIATELY;
    kind == lock_flags::SHARED_LOCK || kind == lock_flags::EXCLUSIVE_LOCK
}

impl ServerConnection {
    /// MS-SMB2 3.3.5.14: LOCK.
    pub(super) fn lock(&mut self, ctx: &mut Ctx) -> HandlerResult {
        // "If the LockCount field ... is zero, the server MUST fail the request with
        // STATUS_INVALID_PARAMETER" (checked by the codec).
        let req = LockRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let id = self.open_id(ctx, req.file_id)?;
        let open = self.opens.get(id).ok_or(NtStatus::FILE_CLOSED)?;
        // MS-FSA 2.1.5.7: byte-range locks are for data streams only.
        if open.is_dir || open.pipe.is_some() {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        let file: FileKey = (super::files::share_key(&open.share), open.path.clone());
        let first = req.locks[0].flags;
        if first & lock_flags::UNLOCK != 0 {
            // 3.3.5.14.1: an unlock array holds only unlocks; each must name a held range.
            if req.locks.iter().any(|l| l.flags != lock_flags::UNLOCK) {
                return Err(NtStatus::INVALID_PARAMETER);
            }
            for l in &req.locks {
                self.locks.table.unlock(&file, self.locks.conn, id, l)?;
            }
            return Ok(Reply::new(ctx.hdr, &LockResponse));
        }
        // 3.3.5.14.2: every element a shared or exclusive lock; with more than one element,
        // each must also say SMB2_LOCKFLAG_FAIL_IMMEDIATELY.
        let many = req.locks.len() > 1;
        if req.locks.iter().any(|l| {
            !valid_lock_flags(l.flags) || many && l.flags & lock_flags::FAIL_IMMEDIATELY == 0
        }) {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        // MS-FSA 2.1.5.7: a range whose last byte is past 2^64 - 1.
        if req
            .locks
            .iter()
            .any(|l| l.length > 0 && l.offset.checked_add(l.length - 1).is_none())
        {
            return Err(INVALID_LOCK_RANGE);
        }
        match self
            .locks
            .table
            .lock_all(&file, self.locks.conn, id, &req.locks)
        {
            Ok(()) => Ok(Reply::new(ctx.hdr, &LockResponse)),
            Err(status) if first & lock_flags::FAIL_IMMEDIATELY != 0 => Err(status),
            Err(_) => {
                if self.locks.waiting.len() >= MAX_WAITING {
                    return Err(NtStatus::INSUFFICIENT_RESOURCES);
                }
                let async_id = self.notifier.alloc_async_id();
                self.locks.waiting.push(Waiting {
                    async_id,
                    message_id: ctx.hdr.message_id,
                    session_id: ctx.session_id,
                    credit_charge: ctx.hdr.credit_charge,
                    open: id,
                    file,
                    element: req.locks[0],
                    key: None,
                });
                self.locks.update_waiting();
                let mut reply = Reply::new(ctx.hdr, &LockResponse);
                reply.async_id = Some(async_id);
                Ok(reply)
            }
        }
    }
}
