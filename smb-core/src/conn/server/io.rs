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
    open_or_create, CreateAction, DirEntry, Disposition, FileInfo, FsInfo, Kind, ShareBackend,
    ShareResult,
};
use crate::header::NtStatus;

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

pub(super) enum Op {
    /// CREATE: dispositions on top of the primitives; a directory opened delete-on-close
    /// must be empty.
    Create {
        share: Share,
        path: Vec<String>,
        disposition: Disposition,
        kind: Kind,
        must_be_empty_dir: bool,
    },
    /// CLOSE: delete (delete-on-close) then stat (POSTQUERY_ATTRIB), either optional.
    Close {
        share: Share,
        path: Vec<String>,
        delete: bool,
        stat: bool,
    },
    /// READ into the response buffer `buf` (header and fixed part already in place).
    Read {
        share: Share,
        path: Vec<String>,
        offset: u64,
        len: u32,
        buf: Vec<u8>,
    },
    /// WRITE of a slice of the received frame; `offset: None` appends.
    Write {
        share: Share,
        path: Vec<String>,
        offset: Option<u64>,
        data: Bytes,
    },
    Flush {
        share: Share,
        path: Vec<String>,
    },
    Stat {
        share: Share,
        path: Vec<String>,
    },
    FsInfo {
        share: Share,
    },
    /// One page of a listing; with `dots`, also stats "." and "..".
    List {
        share: Share,
        path: Vec<String>,
        dots: bool,
        after: Option<String>,
        pattern: String,
        max: usize,
    },
    /// Whether a directory has no entries (SET_INFO disposition).
    IsEmpty {
        share: Share,
        path: Vec<String>,
    },
    Rename {
        share: Share,
        from: Vec<String>,
        to: Vec<String>,
        replace: bool,
    },
    SetLen {
        share: Share,
        path: Vec<String>,
        len: u64,
    },
    /// Deletes of delete-on-close opens dropped by LOGOFF or TREE_DISCONNECT; errors are
    /// ignored, as at CLOSE.
    DeleteAll(Vec<(Share, Vec<String>)>),
}

/// One page of a directory listing, "." and ".." (when asked) first.
#[derive(Debug)]
pub(super) struct Page {
    pub(super) dots: Option<(FileInfo, FileInfo)>,
    pub(super) entries: Vec<DirEntry>,
}

#[derive(Debug)]
pub(super) enum Outcome {
    Created(ShareResult<(FileInfo, CreateAction)>),
    Closed(Option<FileInfo>),
    Read {
        buf: Vec<u8>,
        result: ShareResult<()>,
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
            } => Outcome::Created(
                open_or_create(share.as_ref(), &path, disposition, kind).and_then(
                    |(info, action)| {
                        // As Samba and NTFS do: a non-empty directory cannot be opened
                        // delete-on-close (otherwise `rmdir` would "succeed" and leave it).
                        if must_be_empty_dir && info.is_dir && !is_empty(share.as_ref(), &path)? {
                            return Err(NtStatus::DIRECTORY_NOT_EMPTY);
                        }
                        Ok((info, action))
                    },
                ),
            ),
            Op::Close {
                share,
                path,
                delete,
                stat,
            } => {
                if delete {
                    let _ = share.delete(&path);
                }
                Outcome::Closed(stat.then(|| share.stat(&path).ok()).flatten())
            }
            Op::Read {
                share,
                path,
                offset,
                len,
                mut buf,
            } => {
                let result = share.read_into(&path, offset, len, &mut buf);
                Outcome::Read { buf, result }
            }
            Op::Write {
                share,
                path,
                offset,
                data,
            } => Outcome::Written((|| {
                // Offset 0xFFFFFFFFFFFFFFFF means "at the end of the file" (MS-SMB2 2.2.21).
                let offset = match offset {
                    Some(o) => o,
                    None => share.stat(&path)?.size,
                };
                share.write(&path, offset, &data)
            })()),
            Op::Flush { share, path } => Outcome::Done(share.flush(&path)),
            Op::Stat { share, path } => Outcome::Info(share.stat(&path)),
            Op::FsInfo { share } => Outcome::Fs(share.fs_info()),
            Op::List {
                share,
                path,
                dots,
                after,
                pattern,
                max,
            } => Outcome::Listed((|| {
                let dots = if dots {
                    let this = share.stat(&path)?;
                    let parent = match path.split_last() {
                        Some((_, p)) => share.stat(p).unwrap_or(this),
                        None => this,
                    };
                    Some((this, parent))
                } else {
                    None
                };
                let entries = share.list_page(&path, after.as_deref(), &pattern, max)?;
                Ok(Page { dots, entries })
            })()),
            Op::IsEmpty { share, path } => Outcome::Empty(is_empty(share.as_ref(), &path)),
            Op::Rename {
                share,
                from,
                to,
                replace,
            } => Outcome::Done(share.rename(&from, &to, replace)),
            Op::SetLen { share, path, len } => Outcome::Done(share.set_len(&path, len)),
            Op::DeleteAll(items) => {
                for (share, path) in items {
                    let _ = share.delete(&path);
                }
                Outcome::Done(Ok(()))
            }
        })
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

fn is_empty(share: &dyn ShareBackend, path: &[String]) -> ShareResult<bool> {
    Ok(share.list_page(path, None, "*", 1)?.is_empty())
}
