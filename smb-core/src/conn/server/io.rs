//! File-system work the state machine hands to its driver.
//!
//! A command that needs the share (CREATE, READ, WRITE, QUERY_DIRECTORY, ...) does not
//! call the [`ShareBackend`] itself: it becomes a [`ShareRequest`], the chain it belongs
//! to is suspended, and the driver runs [`ShareOp::run`] where blocking is harmless (a
//! thread pool, `spawn_blocking`) and hands the [`ShareOutcome`] back through
//! [`ServerConnection::handle_share_result`](super::ServerConnection::handle_share_result).
//! Each op is one blocking job; the state that interprets its outcome stays inside the
//! state machine.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::conn::share::{
    open_or_create_handle, CreateAction, DirEntry, Disposition, FileInfo, FsInfo, Handle, Kind,
    ShareBackend, ShareHandle, ShareResult,
};
use crate::header::NtStatus;
use crate::signing::{Algorithm, SigningKey, TailDigest};

use super::files::READ_DATA_AT;

/// One piece of file-system work for the driver; answer it with
/// [`ServerConnection::handle_share_result`](super::ServerConnection::handle_share_result)
/// and the same `id`.
#[derive(Debug)]
pub struct ShareRequest {
    /// Identifies the request in the answer.
    pub id: u64,
    /// The work; [`ShareOp::run`] does it (blocking).
    pub op: ShareOp,
}

/// File-system work, opaque to the driver except for its name; run it with
/// [`ShareOp::run`].
pub struct ShareOp(pub(super) Op);

/// What [`ShareOp::run`] produced, for
/// [`ServerConnection::handle_share_result`](super::ServerConnection::handle_share_result).
#[derive(Debug)]
pub struct ShareOutcome(pub(super) Outcome);

type Share = Arc<dyn ShareBackend>;

/// Which open a share request works on ([`ShareOp::writes_to`]): equal for requests on the
/// same open (its share handle) while one of them is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandleKey(usize);

pub(super) enum Op {
    /// CREATE: dispositions on top of the primitives, then the object opened and held
    /// (with write access when `write`); a directory opened delete-on-close must be empty.
    Create {
        share: Share,
        path: Vec<String>,
        disposition: Disposition,
        kind: Kind,
        must_be_empty_dir: bool,
        write: bool,
    },
    /// CLOSE: delete (delete-on-close, by name) or stat of the held object
    /// (POSTQUERY_ATTRIB), either optional.
    Close {
        share: Share,
        path: Vec<String>,
        file: Handle,
        delete: bool,
        stat: bool,
    },
    /// READ into the response buffer `buf` (header and fixed part already in place); with
    /// `digest`, the data's part of the response's MAC is taken right after the read, on
    /// the same thread, while the data is in that core's cache (AES-GMAC only).
    Read {
        file: Handle,
        offset: u64,
        len: u32,
        buf: Vec<u8>,
        digest: Option<SigningKey>,
    },
    /// WRITE of a slice of the received frame; `offset: None` appends.
    Write {
        file: Handle,
        offset: Option<u64>,
        data: Bytes,
    },
    Flush {
        file: Handle,
    },
    Stat {
        file: Handle,
    },
    FsInfo {
        share: Share,
    },
    /// One page of the open directory `file`; with `dots`, also stats "." and ".." (the
    /// parent by name: `share`, `path`).
    List {
        share: Share,
        path: Vec<String>,
        file: Handle,
        dots: bool,
        after: Option<String>,
        pattern: String,
        max: usize,
    },
    /// Whether the open directory has no entries (SET_INFO disposition).
    IsEmpty {
        file: Handle,
    },
    Rename {
        share: Share,
        from: Vec<String>,
        to: Vec<String>,
        replace: bool,
    },
    SetLen {
        file: Handle,
        len: u64,
    },
    /// Deletes of delete-on-close opens dropped by LOGOFF or TREE_DISCONNECT; errors are
    /// ignored, as at CLOSE.
    DeleteAll(Vec<(Share, Vec<String>)>),
}

impl Op {
    /// Lets a READ digest its data for the response's signature (`key`, when the response
    /// will be signed with it). A no-op for every other op and key.
    pub(super) fn digest_data_with(&mut self, key: Option<&SigningKey>) {
        if let Op::Read { digest, .. } = self {
            *digest = key.filter(|k| k.algorithm() == Algorithm::AesGmac).cloned();
        }
    }
}

/// One page of a directory listing, "." and ".." (when asked) first.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) dots: Option<(FileInfo, FileInfo)>,
    pub(super) entries: Vec<DirEntry>,
}

#[derive(Debug)]
pub(super) enum Outcome {
    Created(ShareResult<(FileInfo, CreateAction, Handle)>),
    Closed(Option<FileInfo>),
    Read {
        buf: Vec<u8>,
        result: ShareResult<()>,
        /// The data's part of the response's MAC (see `Op::Read`).
        digest: Option<TailDigest>,
    },
    Written(ShareResult<u32>),
    Info(ShareResult<FileInfo>),
    Fs(ShareResult<FsInfo>),
    Listed(ShareResult<Page>),
    Empty(ShareResult<bool>),
    Done(ShareResult<()>),
}

impl Op {
    /// Work that may run beside other requests of the connection: a READ, or a WRITE at a
    /// given offset (an append depends on the size the writes before it leave).
    pub(super) fn runs_beside(&self) -> bool {
        matches!(
            self,
            Op::Read { .. }
                | Op::Write {
                    offset: Some(_),
                    ..
                }
        )
    }
}

impl ShareOp {
    /// Does the work, blocking the calling thread.
    pub fn run(self) -> ShareOutcome {
        ShareOutcome(match self.0 {
            Op::Create {
                share,
                path,
                disposition,
                kind,
                must_be_empty_dir,
                write,
            } => Outcome::Created(
                open_or_create_handle(share.as_ref(), &path, disposition, kind, write).and_then(
                    |(info, action, file)| {
                        // As Samba and NTFS do: a non-empty directory cannot be opened
                        // delete-on-close (otherwise `rmdir` would "succeed" and leave it).
                        if must_be_empty_dir && info.is_dir && !is_empty(file.as_ref())? {
                            return Err(NtStatus::DIRECTORY_NOT_EMPTY);
                        }
                        Ok((info, action, file))
                    },
                ),
            ),
            Op::Close {
                share,
                path,
                file,
                delete,
                stat,
            } => {
                if delete {
                    let _ = share.delete(&path);
                    // What was deleted has no attributes left to report.
                    Outcome::Closed(stat.then(|| share.stat(&path).ok()).flatten())
                } else {
                    Outcome::Closed(stat.then(|| file.stat().ok()).flatten())
                }
            }
            Op::Read {
                file,
                offset,
                len,
                mut buf,
                digest,
            } => {
                let result = file.read_into(offset, len, &mut buf);
                let data = buf.get(READ_DATA_AT..).unwrap_or_default();
                let digest = match (&result, digest) {
                    (Ok(()), Some(key)) if !data.is_empty() => key.tail_digest(data),
                    _ => None,
                };
                Outcome::Read {
                    buf,
                    result,
                    digest,
                }
            }
            Op::Write { file, offset, data } => Outcome::Written((|| {
                // Offset 0xFFFFFFFFFFFFFFFF means "at the end of the file" (MS-SMB2 2.2.21).
                let offset = match offset {
                    Some(o) => o,
                    None => file.stat()?.size,
                };
                file.write(offset, &data)
            })()),
            Op::Flush { file } => Outcome::Done(file.flush()),
            Op::Stat { file } => Outcome::Info(file.stat()),
            Op::FsInfo { share } => Outcome::Fs(share.fs_info()),
            Op::List {
                share,
                path,
                file,
                dots,
                after,
                pattern,
                max,
            } => Outcome::Listed((|| {
                let dots = if dots {
                    let this = file.stat()?;
                    let parent = match path.split_last() {
                        Some((_, p)) => share.stat(p).unwrap_or(this),
                        None => this,
                    };
                    Some((this, parent))
                } else {
                    None
                };
                let entries = file.list_page(after.as_deref(), &pattern, max)?;
                Ok(Page { dots, entries })
            })()),
            Op::IsEmpty { file } => Outcome::Empty(is_empty(file.as_ref())),
            Op::Rename {
                share,
                from,
                to,
                replace,
            } => Outcome::Done(share.rename(&from, &to, replace)),
            Op::SetLen { file, len } => Outcome::Done(file.set_len(len)),
            Op::DeleteAll(items) => {
                for (share, path) in items {
                    let _ = share.delete(&path);
                }
                Outcome::Done(Ok(()))
            }
        })
    }

    /// For a WRITE, the file it writes to. The file system runs writes to one file one at
    /// a time anyway (the inode lock), so a driver may queue them behind each other and
    /// save the threads that would wait, or spin, on that lock. `None` for every other op.
    pub fn writes_to(&self) -> Option<HandleKey> {
        match &self.0 {
            Op::Write { file, .. } => Some(HandleKey(Arc::as_ptr(file).cast::<()>() as usize)),
            _ => None,
        }
    }

    /// A short name for logs and traces ("read", "write", "list", ...).
    pub fn name(&self) -> &'static str {
        match &self.0 {
            Op::Create { .. } => "create",
            Op::Close { .. } => "close",
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Flush { .. } => "flush",
            Op::Stat { .. } => "stat",
            Op::FsInfo { .. } => "fs-info",
            Op::List { .. } => "list",
            Op::IsEmpty { .. } => "is-empty",
            Op::Rename { .. } => "rename",
            Op::SetLen { .. } => "set-len",
            Op::DeleteAll(_) => "delete",
        }
    }
}

impl fmt::Debug for ShareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShareOp").field(&self.name()).finish()
    }
}

fn is_empty(dir: &dyn ShareHandle) -> ShareResult<bool> {
    Ok(dir.list_page(None, "*", 1)?.is_empty())
}
