//! Sharing modes and delete-pending state across every connection of a server (MS-SMB2
//! 3.3.5.9 hands both to the object store; MS-FSA 2.1.5.1.2 "Check Sharing Access",
//! 2.1.5.4 close, 2.1.5.14.3 FileDispositionInformation).
//!
//! - A CREATE whose access is not allowed by the ShareAccess of the file's other opens, or
//!   whose ShareAccess does not allow their access, fails with STATUS_SHARING_VIOLATION.
//! - Once a file is marked delete-pending (FileDispositionInformation, or the close of an
//!   open made with FILE_DELETE_ON_CLOSE), new opens fail with STATUS_DELETE_PENDING and the
//!   file is deleted when its last open, on whatever connection, closes.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use crate::header::NtStatus;
use crate::messages::create::{access, share_access};

/// A file across connections: its share's backend address and its path.
pub(crate) type FileKey = (usize, Vec<String>);

const READ_BITS: u32 = access::FILE_READ_DATA
    | access::FILE_EXECUTE
    | access::GENERIC_READ
    | access::GENERIC_EXECUTE
    | access::GENERIC_ALL;
const WRITE_BITS: u32 = access::FILE_WRITE_DATA
    | access::FILE_APPEND_DATA
    | access::GENERIC_WRITE
    | access::GENERIC_ALL;
const DELETE_BITS: u32 = access::DELETE | access::GENERIC_ALL;

#[derive(Debug, Clone, Copy)]
struct Shared {
    conn: u64,
    open: u64,
    access: u32,
    share: u32,
}

#[derive(Debug, Default)]
struct Entry {
    opens: Vec<Shared>,
    delete_pending: bool,
}

/// Every open of a server's disk shares, shared in [`super::ServerConfig`].
#[derive(Default)]
pub struct FileTable {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_conn: u64,
    files: HashMap<FileKey, Entry>,
}

impl fmt::Debug for FileTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileTable")
            .field("files", &self.lock().files.len())
            .finish()
    }
}

/// MS-FSA 2.1.5.1.2: does an open with `access`/`share` coexist with `other`? Opens that
/// ask for none of read, write, execute or delete (attributes only) take no part in sharing,
/// as in Windows' IoCheckShareAccess.
fn compatible(access: u32, share: u32, other: &Shared) -> bool {
    let data = READ_BITS | WRITE_BITS | DELETE_BITS;
    if access & data == 0 || other.access & data == 0 {
        return true;
    }
    let uses = |a: u32, bits: u32| a & bits != 0;
    let allows = |s: u32, bit: u32| s & bit != 0;
    let pairs = [
        (READ_BITS, share_access::READ),
        (WRITE_BITS, share_access::WRITE),
        (DELETE_BITS, share_access::DELETE),
    ];
    pairs.iter().all(|&(bits, bit)| {
        (!uses(other.access, bits) || allows(share, bit))
            && (!uses(access, bits) || allows(other.share, bit))
    })
}

impl FileTable {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn connection(&self) -> u64 {
        let mut t = self.lock();
        t.next_conn += 1;
        t.next_conn
    }

    /// Checks delete-pending and sharing, then records the open (atomically).
    pub(crate) fn open(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        access: u32,
        share: u32,
    ) -> Result<(), NtStatus> {
        let mut t = self.lock();
        let entry = t.files.entry(file.clone()).or_default();
        if entry.delete_pending {
            return Err(NtStatus::DELETE_PENDING);
        }
        if !entry.opens.iter().all(|o| compatible(access, share, o)) {
            return Err(NtStatus::SHARING_VIOLATION);
        }
        entry.opens.push(Shared {
            conn,
            open,
            access,
            share,
        });
        Ok(())
    }

    /// Sets or clears the file's delete-pending state (FileDispositionInformation).
    pub(crate) fn set_delete_pending(&self, file: &FileKey, pending: bool) {
        if let Some(e) = self.lock().files.get_mut(file) {
            e.delete_pending = pending;
        }
    }

    /// Forgets an open; `delete_on_close` marks the file delete-pending first. True when this
    /// was the last open of a delete-pending file: the caller deletes it.
    pub(crate) fn close(
        &self,
        file: &FileKey,
        conn: u64,
        open: u64,
        delete_on_close: bool,
    ) -> bool {
        let mut t = self.lock();
        let Some(e) = t.files.get_mut(file) else {
            return delete_on_close;
        };
        e.opens.retain(|o| (o.conn, o.open) != (conn, open));
        e.delete_pending |= delete_on_close;
        if e.opens.is_empty() {
            let pending = e.delete_pending;
            t.files.remove(file);
            return pending;
        }
        false
    }

    /// A rename moves every open at or under `from` (same share) to `to`.
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
                t.files.insert((share, p), e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(access: u32, share: u32) -> Shared {
        Shared {
            conn: 1,
            open: 1,
            access,
            share,
        }
    }

    #[test]
    fn sharing_follows_ms_fsa() {
        let rw = share_access::READ | share_access::WRITE;
        let read = access::FILE_READ_DATA;
        let write = access::FILE_WRITE_DATA;
        assert!(compatible(read, rw, &o(read, share_access::READ)));
        assert!(
            !compatible(write, rw, &o(read, share_access::READ)),
            "no SHARE_WRITE"
        );
        assert!(
            !compatible(read, 0, &o(read, rw)),
            "the new open shares nothing"
        );
        assert!(
            compatible(access::FILE_READ_ATTRIBUTES, 0, &o(read, 0)),
            "attributes only"
        );
        assert!(
            !compatible(access::DELETE, rw, &o(read, rw)),
            "no SHARE_DELETE"
        );
        assert!(!compatible(access::GENERIC_ALL, 7, &o(read, rw)));
    }
}
