//! File commands: CREATE, CLOSE, READ, WRITE, FLUSH, QUERY_DIRECTORY, QUERY_INFO,
//! SET_INFO and IOCTL, on disk shares and IPC$.

use std::collections::HashMap;
use std::sync::Arc;

use super::io::{Op, Outcome, Page};
use super::notify::{action as change, Change, Registered};
use super::oplocks::OplockTable;
use super::rpc::Pipe;
use super::sharing::{FileKey, FileTable};
use super::{Ctx, HandlerResult, Reply, ServerConnection, Step, StepResult, Tree};
use crate::codec::Writer;
use crate::conn::share::{
    wildcard_match, DirEntry, FileInfo, FsInfo, Handle, ShareBackend, ShareHandle, ShareResult,
};
use crate::header::{Command, NtStatus, HEADER_LEN};
use crate::messages::change_notify::{ChangeNotifyRequest, ChangeNotifyResponse};
use crate::messages::close::{close_flags, CloseRequest, CloseResponse};
use crate::messages::create::{access, CreateResponse};
use crate::messages::flush::{FlushRequest, FlushResponse};
use crate::messages::info::FileInfoClass;
use crate::messages::read::{ReadRequest, ReadResponse};
use crate::messages::write::{WriteRequest, WriteResponse};
use crate::messages::FileId;
use crate::signing::TailDigest;

/// A file to delete once its last open is gone (delete-on-close), and its share.
pub(super) type Delete = (Arc<dyn ShareBackend>, Vec<String>);

/// What to do with a share request's outcome: the state a command keeps while the driver
/// does its file-system work.
#[derive(Debug)]
pub(crate) enum Then {
    /// The reply is ready; the work (deletes after LOGOFF / TREE_DISCONNECT) only had to
    /// happen before it is sent.
    Ready(Box<Reply>),
    Create(Box<super::create::CreateThen>),
    Close {
        postquery: bool,
        /// The file deleted on this close (delete-pending), for CHANGE_NOTIFY.
        removed: Option<Change>,
    },
    Read {
        minimum_count: u32,
        length: u32,
    },
    Write {
        share: Arc<dyn ShareBackend>,
        path: Vec<String>,
    },
    Flush,
    Directory(Box<DirectoryThen>),
    FileInfo {
        id: u64,
        class: u8,
        max_out: usize,
    },
    FsInfo {
        class: u8,
        max_out: usize,
        label: String,
    },
    /// SET_INFO disposition on a directory: it must be empty.
    DeleteDirectory {
        id: u64,
    },
    Renamed {
        share: Arc<dyn ShareBackend>,
        from: Vec<String>,
        to: Vec<String>,
        is_dir: bool,
    },
    /// SET_INFO end-of-file: the file changed (CHANGE_NOTIFY).
    Resized {
        share: Arc<dyn ShareBackend>,
        path: Vec<String>,
    },
}

/// QUERY_DIRECTORY's state while the share lists a page.
#[derive(Debug)]
pub(crate) struct DirectoryThen {
    pub(super) id: u64,
    pub(super) class: FileInfoClass,
    pub(super) output_len: usize,
    pub(super) first: bool,
    pub(super) single: bool,
}

/// Access bits that allow writing data.
pub(super) const WRITE_ACCESS: u32 = access::FILE_WRITE_DATA
    | access::FILE_APPEND_DATA
    | access::GENERIC_WRITE
    | access::GENERIC_ALL
    | access::MAXIMUM_ALLOWED;
/// Access bits that allow reading data.
const READ_ACCESS: u32 = access::FILE_READ_DATA
    | access::GENERIC_READ
    | access::GENERIC_ALL
    | access::MAXIMUM_ALLOWED
    | access::GENERIC_EXECUTE
    | access::FILE_EXECUTE;
/// Access bits that allow deleting or renaming.
pub(crate) const DELETE_ACCESS: u32 =
    access::DELETE | access::GENERIC_ALL | access::MAXIMUM_ALLOWED;

/// The connection's open files, by volatile FileId.
#[derive(Debug)]
pub(crate) struct OpenTable {
    opens: HashMap<u64, Open>,
    next: u64,
    /// Sharing and delete-pending state across connections, and this connection's id there.
    pub(super) table: Arc<FileTable>,
    pub(super) conn: u64,
    /// Oplocks and leases across connections (same connection id as `table`).
    pub(super) oplocks: Arc<OplockTable>,
    /// Opens closed since the last [`OpenTable::take_closed`] (their CHANGE_NOTIFYs end).
    closed: Vec<u64>,
    /// Files deleted on close since the last [`OpenTable::take_removed`].
    removed: Vec<Change>,
}

/// A share's identity across connections: the address of its backend.
pub(super) fn share_key(share: &Arc<dyn ShareBackend>) -> usize {
    Arc::as_ptr(share) as *const () as usize
}

#[derive(Debug)]
pub(crate) struct Open {
    pub(super) session_id: u64,
    pub(super) tree_id: u32,
    pub(super) share: Arc<dyn ShareBackend>,
    /// Share-relative path; updated by rename. Only CHANGE_NOTIFY, sharing, rename and
    /// delete use it: the open's I/O goes through `handle`.
    pub(super) path: Vec<String>,
    /// The object held since CREATE (its descriptor on disk).
    pub(super) handle: Handle,
    pub(super) is_dir: bool,
    pub(super) access: u32,
    pub(super) delete_on_close: bool,
    /// QUERY_DIRECTORY state: where the enumeration goes on (a cursor, not a snapshot).
    pub(super) listing: Option<Listing>,
    /// Set for a named pipe on IPC$ (then `share` is [`NoFiles`]).
    pub(super) pipe: Option<Box<Pipe>>,
}

/// The "file system" behind a named pipe: every file operation is invalid on it.
#[derive(Debug)]
pub(crate) struct NoFiles;

impl ShareBackend for NoFiles {
    fn stat(&self, _: &[String]) -> ShareResult<FileInfo> {
        Ok(FileInfo {
            allocation_size: 4096,
            ..FileInfo::default()
        })
    }
    fn create_file(&self, _: &[String]) -> ShareResult<FileInfo> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn mkdir(&self, _: &[String]) -> ShareResult<FileInfo> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn read_into(&self, _: &[String], _: u64, _: u32, _: &mut Vec<u8>) -> ShareResult<()> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn write(&self, _: &[String], _: u64, _: &[u8]) -> ShareResult<u32> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn set_len(&self, _: &[String], _: u64) -> ShareResult<()> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn list(&self, _: &[String]) -> ShareResult<Vec<DirEntry>> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn delete(&self, _: &[String]) -> ShareResult<()> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn rename(&self, _: &[String], _: &[String], _: bool) -> ShareResult<()> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn flush(&self, _: &[String]) -> ShareResult<()> {
        Ok(())
    }
    fn fs_info(&self) -> ShareResult<FsInfo> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn open(&self, _: &[String], _: bool) -> ShareResult<Handle> {
        Ok(Arc::new(NoFiles))
    }
}

impl ShareHandle for NoFiles {
    fn stat(&self) -> ShareResult<FileInfo> {
        ShareBackend::stat(self, &[])
    }
    fn read_into(&self, _: u64, _: u32, _: &mut Vec<u8>) -> ShareResult<()> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn write(&self, _: u64, _: &[u8]) -> ShareResult<u32> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn set_len(&self, _: u64) -> ShareResult<()> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
    fn flush(&self) -> ShareResult<()> {
        Ok(())
    }
    fn list_page(&self, _: Option<&str>, _: &str, _: usize) -> ShareResult<Vec<DirEntry>> {
        Err(NtStatus::INVALID_DEVICE_REQUEST)
    }
}

/// Takes up to `max` pending pipe bytes: STATUS_BUFFER_OVERFLOW when more remain
/// (MS-SMB2 3.3.5.12, named pipes), nothing pending is STATUS_PIPE_EMPTY.
pub(super) fn drain_pipe(pipe: &mut Pipe, max: usize) -> Result<(NtStatus, Vec<u8>), NtStatus> {
    if pipe.output.is_empty() {
        return Err(PIPE_EMPTY);
    }
    let n = pipe.output.len().min(max);
    let data: Vec<u8> = pipe.output.drain(..n).collect();
    let status = if pipe.output.is_empty() {
        NtStatus::SUCCESS
    } else {
        NtStatus::BUFFER_OVERFLOW
    };
    Ok((status, data))
}

/// STATUS_PIPE_EMPTY.
const PIPE_EMPTY: NtStatus = NtStatus(0xC000_00D9);

/// A directory enumeration in progress: the pattern and a cursor into the sorted names.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(super) pattern: String,
    /// How many of "." and ".." (which come first) were sent or skipped: 0, 1 or 2.
    pub(super) dots: u8,
    /// The last name sent; the next page starts after it.
    pub(super) after: Option<String>,
}

impl Open {
    pub(super) fn can(&self, bits: u32) -> bool {
        self.access & bits != 0
    }
}

/// The FileId.Persistent that goes with a volatile id: derived, so a FileId from another
/// connection's numbering does not match by accident.
pub(super) fn persistent_id(volatile: u64) -> u64 {
    volatile ^ 0x5A5A_0000_0000_0000
}

impl Drop for OpenTable {
    /// A connection that goes away closes its opens (MS-SMB2 3.3.7.1), which ends their
    /// sharing and may delete a delete-pending file.
    fn drop(&mut self) {
        // No driver runs share requests any more: the delete (a connection dropped with a
        // delete-pending file open) is done here, on the dropping thread.
        let ids: Vec<u64> = self.opens.keys().copied().collect();
        for id in ids {
            if let Some((open, true)) = self.close(id) {
                let _ = open.share.delete(&open.path);
            }
        }
        self.oplocks.close_connection(self.conn);
    }
}

impl OpenTable {
    pub(crate) fn new(table: Arc<FileTable>, oplocks: Arc<OplockTable>) -> OpenTable {
        let conn = table.connection();
        oplocks.register(conn);
        OpenTable {
            opens: HashMap::new(),
            next: 0,
            table,
            conn,
            oplocks,
            closed: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// The volatile id the next open will have.
    pub(super) fn reserve_id(&mut self) -> u64 {
        self.next = self.next.wrapping_add(1);
        self.next
    }

    /// Stores a new open under a reserved id (or the next one) and returns its FileId.
    pub(super) fn insert_with(&mut self, id: Option<u64>, open: Open) -> FileId {
        let id = id.unwrap_or_else(|| self.reserve_id());
        self.opens.insert(id, open);
        FileId {
            persistent: persistent_id(id),
            volatile: id,
        }
    }

    pub(super) fn insert(&mut self, open: Open) -> FileId {
        self.insert_with(None, open)
    }

    /// The cross-connection key of an open's file (`None` for a pipe).
    pub(crate) fn file_key(open: &Open) -> Option<FileKey> {
        open.pipe
            .is_none()
            .then(|| (share_key(&open.share), open.path.clone()))
    }

    /// FileDispositionInformation: the file is (or is no longer) delete-pending for every
    /// connection.
    pub(crate) fn set_delete_pending(&self, id: u64, pending: bool) {
        if let Some(key) = self.opens.get(&id).and_then(Self::file_key) {
            self.table.set_delete_pending(&key, pending);
        }
    }

    /// Drops the session's opens; returns the files to delete (delete-on-close).
    pub(crate) fn close_session(&mut self, session_id: u64) -> Vec<Delete> {
        self.close_where(|o| o.session_id == session_id)
    }

    /// Drops the tree's opens; returns the files to delete (delete-on-close).
    pub(crate) fn close_tree(&mut self, session_id: u64, tree_id: u32) -> Vec<Delete> {
        self.close_where(|o| o.session_id == session_id && o.tree_id == tree_id)
    }

    fn close_where(&mut self, pred: impl Fn(&Open) -> bool) -> Vec<Delete> {
        let ids: Vec<u64> = self
            .opens
            .iter()
            .filter(|(_, o)| pred(o))
            .map(|(k, _)| *k)
            .collect();
        let mut deletes = Vec::new();
        for id in ids {
            if let Some((open, true)) = self.close(id) {
                self.removed.push(Change::new(
                    share_key(&open.share),
                    &open.path,
                    change::REMOVED,
                    open.is_dir,
                ));
                deletes.push((open.share, open.path));
            }
        }
        deletes
    }

    /// Removes an open. True with it when the file must now be deleted: MS-FSA 2.1.5.4,
    /// the last close of a file with DeletePending deletes it (a directory that became
    /// non-empty stays: Windows refuses earlier, at SET_INFO).
    fn close(&mut self, id: u64) -> Option<(Open, bool)> {
        let open = self.opens.remove(&id)?;
        self.closed.push(id);
        let Some(key) = Self::file_key(&open) else {
            return Some((open, false));
        };
        // The last close on any connection of a delete-pending file (see `sharing.rs`).
        let delete = self.table.close(&key, self.conn, id, open.delete_on_close);
        self.oplocks.close(&key, self.conn, id);
        Some((open, delete))
    }

    /// Closes an open the client never learnt of (a cancelled CREATE); a delete-on-close
    /// file is deleted here, on this thread.
    pub(crate) fn abandon(&mut self, id: u64) {
        if let Some((open, true)) = self.close(id) {
            let _ = open.share.delete(&open.path);
        }
        self.closed.retain(|c| *c != id);
    }

    pub(crate) fn take_closed(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.closed)
    }

    pub(crate) fn take_removed(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.removed)
    }

    pub(crate) fn len(&self) -> usize {
        self.opens.len()
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Open> {
        self.opens.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Open> {
        self.opens.get_mut(&id)
    }

    /// After a rename, every open on the same share at or under `from` follows it.
    pub(crate) fn renamed(
        &mut self,
        share: &Arc<dyn ShareBackend>,
        from: &[String],
        to: &[String],
    ) {
        self.table.rename(share_key(share), from, to);
        self.oplocks.rename(share_key(share), from, to);
        for o in self.opens.values_mut() {
            let same_share = std::ptr::addr_eq(Arc::as_ptr(&o.share), Arc::as_ptr(share));
            if same_share && o.path.starts_with(from) {
                let mut p = to.to_vec();
                p.extend_from_slice(&o.path[from.len()..]);
                o.path = p;
            }
        }
    }
}

/// Where READ data starts in the response: header and the 16-byte fixed part.
pub(super) const READ_DATA_AT: usize = HEADER_LEN + 16;

/// READ's reply once the data is in `buf`: MS-SMB2 3.3.5.12, nothing (or less than
/// MinimumCount) at the offset is END_OF_FILE.
fn read_done(
    mut buf: Vec<u8>,
    result: ShareResult<()>,
    digest: Option<TailDigest>,
    minimum_count: u32,
    length: u32,
) -> HandlerResult {
    result?;
    let n = buf.len().saturating_sub(READ_DATA_AT);
    if n == 0 && length > 0 || (n as u64) < u64::from(minimum_count) {
        return Err(NtStatus::END_OF_FILE);
    }
    if n == 0 {
        // An empty READ still carries one (zero) byte of buffer, as the codec writes it.
        buf.push(0);
    }
    buf.patch_u32(HEADER_LEN + 4, n as u32);
    Ok(Reply {
        tail: digest,
        ..Reply::from_msg(buf)
    })
}

/// The FileId in a successful CREATE response (for related operations).
pub(crate) fn created_file_id(msg: &[u8]) -> Option<FileId> {
    CreateResponse::read(msg).ok().map(|r| r.file_id)
}

impl ServerConnection {
    pub(super) fn file_command(&mut self, ctx: &mut Ctx, tree: &Tree) -> StepResult {
        match ctx.hdr.command {
            Command::CREATE => self.create(ctx, tree),
            Command::CLOSE => self.close(ctx),
            Command::READ => self.read(ctx),
            Command::WRITE => self.write(ctx),
            Command::FLUSH => self.flush(ctx),
            Command::CHANGE_NOTIFY => self.change_notify(ctx).map(Step::Reply),
            Command::LOCK => self.lock(ctx).map(Step::Reply),
            Command::OPLOCK_BREAK => self.oplock_break(ctx).map(Step::Reply),
            _ => self.file_command_more(ctx, tree),
        }
    }

    /// Interprets a share request's outcome for the command that asked for it.
    pub(super) fn finish(&mut self, then: Then, outcome: Outcome, ctx: &Ctx) -> HandlerResult {
        match (then, outcome) {
            (Then::Ready(reply), _) => Ok(*reply),
            (Then::Create(c), Outcome::Created(r)) => self.create_done(ctx, *c, r),
            (Then::Close { postquery, removed }, Outcome::Closed(info)) => {
                if let Some(change) = removed {
                    self.notifier.changed(change);
                }
                let mut body = CloseResponse::default();
                if let (true, Some(info)) = (postquery, info) {
                    body = CloseResponse {
                        flags: close_flags::POSTQUERY_ATTRIB,
                        creation_time: info.created,
                        last_access_time: info.accessed,
                        last_write_time: info.written,
                        change_time: info.changed,
                        allocation_size: info.allocation_size,
                        end_of_file: info.size,
                        file_attributes: info.attributes(),
                    };
                }
                Ok(Reply::new(ctx.hdr, &body))
            }
            (
                Then::Read {
                    minimum_count,
                    length,
                },
                Outcome::Read {
                    buf,
                    result,
                    digest,
                },
            ) => read_done(buf, result, digest, minimum_count, length),
            (Then::Write { share, path }, Outcome::Written(r)) => {
                let count = r?;
                let modified = Change::new(share_key(&share), &path, change::MODIFIED, false);
                self.notifier.changed(modified);
                Ok(Reply::new(
                    ctx.hdr,
                    &WriteResponse {
                        count,
                        remaining: 0,
                    },
                ))
            }
            (Then::Flush, Outcome::Done(r)) => {
                r?;
                Ok(Reply::new(ctx.hdr, &FlushResponse))
            }
            (Then::Directory(d), Outcome::Listed(page)) => self.directory_done(ctx, &d, page?),
            (Then::FileInfo { id, class, max_out }, Outcome::Info(info)) => {
                self.file_info_done(ctx, id, class, max_out, info?)
            }
            (
                Then::FsInfo {
                    class,
                    max_out,
                    label,
                },
                Outcome::Fs(fs),
            ) => super::query::fs_info_done(ctx, class, max_out, label, fs?),
            (Then::DeleteDirectory { id }, Outcome::Empty(empty)) => {
                // MS-FSA 2.1.5.14.3: a non-empty directory cannot be marked for deletion.
                if !empty? {
                    return Err(NtStatus::DIRECTORY_NOT_EMPTY);
                }
                let open = self.opens.get_mut(id).ok_or(NtStatus::FILE_CLOSED)?;
                open.delete_on_close = true;
                self.opens.set_delete_pending(id, true);
                Ok(Reply::new(
                    ctx.hdr,
                    &crate::messages::set_info::SetInfoResponse,
                ))
            }
            (
                Then::Renamed {
                    share,
                    from,
                    to,
                    is_dir,
                },
                Outcome::Done(r),
            ) => {
                r?;
                let key = share_key(&share);
                for (path, what) in [
                    (&from, change::RENAMED_OLD_NAME),
                    (&to, change::RENAMED_NEW_NAME),
                ] {
                    self.notifier.changed(Change::new(key, path, what, is_dir));
                }
                if !is_dir {
                    // As Samba does, after Windows: a renamed file also reports its
                    // attributes and creation time changed, under the new name.
                    self.notifier
                        .changed(Change::new(key, &to, change::MODIFIED, false));
                }
                self.opens.renamed(&share, &from, &to);
                Ok(Reply::new(
                    ctx.hdr,
                    &crate::messages::set_info::SetInfoResponse,
                ))
            }
            (Then::Resized { share, path }, Outcome::Done(r)) => {
                r?;
                let modified = Change::new(share_key(&share), &path, change::MODIFIED, false);
                self.notifier.changed(modified);
                Ok(Reply::new(
                    ctx.hdr,
                    &crate::messages::set_info::SetInfoResponse,
                ))
            }
            _ => Err(NtStatus::INTERNAL_ERROR),
        }
    }

    /// The open named by `fid` (or by the previous CREATE in a related chain), checked
    /// against the request's session and tree (MS-SMB2 3.3.5.9 ff: FILE_CLOSED otherwise).
    pub(super) fn open_id(&self, ctx: &Ctx, fid: FileId) -> Result<u64, NtStatus> {
        let fid = if fid == FileId::RELATED {
            ctx.related_file.ok_or(NtStatus::FILE_CLOSED)?
        } else {
            fid
        };
        match self.opens.opens.get(&fid.volatile) {
            Some(o)
                if persistent_id(fid.volatile) == fid.persistent
                    && o.session_id == ctx.session_id
                    && o.tree_id == ctx.tree_id =>
            {
                Ok(fid.volatile)
            }
            _ => Err(NtStatus::FILE_CLOSED),
        }
    }

    pub(super) fn open_mut(&mut self, ctx: &Ctx, fid: FileId) -> Result<&mut Open, NtStatus> {
        let id = self.open_id(ctx, fid)?;
        self.opens.opens.get_mut(&id).ok_or(NtStatus::FILE_CLOSED)
    }

    /// MS-SMB2 3.3.5.10: the open goes now; the share is asked only to delete
    /// (delete-on-close) or stat (POSTQUERY_ATTRIB).
    fn close(&mut self, ctx: &mut Ctx) -> StepResult {
        let req = CloseRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let id = self.open_id(ctx, req.file_id)?;
        let (open, delete) = self.opens.close(id).ok_or(NtStatus::FILE_CLOSED)?;
        let postquery = req.flags & close_flags::POSTQUERY_ATTRIB != 0;
        if !delete && !postquery {
            return Ok(Step::Reply(Reply::new(ctx.hdr, &CloseResponse::default())));
        }
        let removed = delete.then(|| {
            Change::new(
                share_key(&open.share),
                &open.path,
                change::REMOVED,
                open.is_dir,
            )
        });
        let op = Op::Close {
            share: open.share,
            path: open.path,
            file: open.handle,
            delete,
            stat: postquery,
        };
        Ok(Step::Io(op, Then::Close { postquery, removed }))
    }

    /// MS-SMB2 3.3.5.19: CHANGE_NOTIFY. Answered at once when changes are buffered on the
    /// open, otherwise it goes asynchronous (see `notify.rs`).
    fn change_notify(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let req = ChangeNotifyRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        // "If OutputBufferLength is greater than Connection.MaxTransactSize, the server MUST
        // fail the request with STATUS_INVALID_PARAMETER."
        if req.output_buffer_length > self.max_io() {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        let id = self.open_id(ctx, req.file_id)?;
        let open = self.opens.get(id).ok_or(NtStatus::FILE_CLOSED)?;
        // "If the open is not a directory, the server MUST fail the request with
        // STATUS_INVALID_PARAMETER." (A pipe is not one either.)
        if !open.is_dir || open.pipe.is_some() {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        let (share, dir) = (share_key(&open.share), open.path.clone());
        match self
            .notifier
            .register(id, share, &dir, &req, ctx.hdr, ctx.session_id)?
        {
            Registered::Now(status, body) => Ok(Reply::with_status(ctx.hdr, status, &body)),
            Registered::Pending(async_id) => {
                let mut reply = Reply::new(ctx.hdr, &ChangeNotifyResponse::default());
                reply.async_id = Some(async_id);
                Ok(reply)
            }
        }
    }

    /// MS-SMB2 3.3.5.12 / 3.3.5.13: "If the read [write] range conflicts with a byte-range
    /// lock" of another open, STATUS_FILE_LOCK_CONFLICT.
    fn check_locks(
        &self,
        ctx: &Ctx,
        fid: FileId,
        offset: u64,
        length: u64,
        write: bool,
    ) -> Result<(), NtStatus> {
        let id = self.open_id(ctx, fid)?;
        match self.opens.get(id) {
            Some(open) if !open.is_dir && open.pipe.is_none() => {
                let file = (share_key(&open.share), open.path.clone());
                self.locks.check_io(&file, id, offset, length, write)
            }
            _ => Ok(()),
        }
    }

    /// MS-SMB2 3.3.5.12: the data is read straight into the response buffer, behind the
    /// header and the fixed part, and signed there.
    fn read(&mut self, ctx: &mut Ctx) -> StepResult {
        let req = ReadRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        if req.length > self.max_io() {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        self.check_locks(ctx, req.file_id, req.offset, u64::from(req.length), false)?;
        let open = self.open_mut(ctx, req.file_id)?;
        if let Some(pipe) = open.pipe.as_mut() {
            let (status, data) = drain_pipe(pipe, req.length as usize)?;
            let body = ReadResponse {
                data_remaining: 0,
                flags: 0,
                data,
            };
            return Ok(Step::Reply(Reply::with_status(ctx.hdr, status, &body)));
        }
        if open.is_dir {
            return Err(NtStatus::INVALID_DEVICE_REQUEST);
        }
        if !open.can(READ_ACCESS) {
            return Err(NtStatus::ACCESS_DENIED);
        }
        let mut buf = Vec::with_capacity(READ_DATA_AT + req.length as usize);
        ctx.hdr.response(NtStatus::SUCCESS).encode(&mut buf);
        buf.put_u16(ReadResponse::STRUCTURE_SIZE);
        buf.put_u8(ReadResponse::DATA_OFFSET);
        buf.put_u8(0); // Reserved
        buf.put_u32(0); // DataLength, set when the data is in
        buf.put_u32(0); // DataRemaining
        buf.put_u32(0); // Flags
        let op = Op::Read {
            file: open.handle.clone(),
            offset: req.offset,
            len: req.length,
            buf,
            // Set by the pipeline when it knows the response's key (`digest_data_with`).
            digest: None,
        };
        let then = Then::Read {
            minimum_count: req.minimum_count,
            length: req.length,
        };
        Ok(Step::Io(op, then))
    }

    /// MS-SMB2 3.3.5.13: the data goes to the share as a slice of the received frame.
    fn write(&mut self, ctx: &mut Ctx) -> StepResult {
        let (req, data) =
            WriteRequest::read_parts(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        if data.len() > self.max_io() as usize {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        self.check_locks(ctx, req.file_id, req.offset, data.len() as u64, true)?;
        let data = ctx.msg.slice_ref(data);
        let open = self.open_mut(ctx, req.file_id)?;
        if let Some(pipe) = open.pipe.as_mut() {
            pipe.write(&data).map_err(|_| NtStatus::INVALID_PARAMETER)?;
            let count = data.len() as u32;
            return Ok(Step::Reply(Reply::new(
                ctx.hdr,
                &WriteResponse {
                    count,
                    remaining: 0,
                },
            )));
        }
        if open.is_dir {
            return Err(NtStatus::INVALID_DEVICE_REQUEST);
        }
        if !open.can(WRITE_ACCESS) {
            return Err(NtStatus::ACCESS_DENIED);
        }
        let op = Op::Write {
            file: open.handle.clone(),
            // Offset 0xFFFFFFFFFFFFFFFF means "at the end of the file" (MS-SMB2 2.2.21).
            offset: (req.offset != u64::MAX).then_some(req.offset),
            data,
        };
        let then = Then::Write {
            share: open.share.clone(),
            path: open.path.clone(),
        };
        Ok(Step::Io(op, then))
    }

    /// MS-SMB2 3.3.5.11.
    fn flush(&mut self, ctx: &mut Ctx) -> StepResult {
        let req = FlushRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let open = self.open_mut(ctx, req.file_id)?;
        if open.is_dir {
            return Ok(Step::Reply(Reply::new(ctx.hdr, &FlushResponse)));
        }
        let op = Op::Flush {
            file: open.handle.clone(),
        };
        Ok(Step::Io(op, Then::Flush))
    }

    /// MS-SMB2 3.3.5.18, after the share listed a page: ".", ".." (while not yet sent),
    /// then the page's entries, as many as fit; the cursor moves past what was sent.
    fn directory_done(&mut self, ctx: &Ctx, d: &DirectoryThen, page: Page) -> HandlerResult {
        let open = self.opens.get_mut(d.id).ok_or(NtStatus::FILE_CLOSED)?;
        let listing = open.listing.as_mut().ok_or(NtStatus::INTERNAL_ERROR)?;
        let mut names: Vec<(Option<u8>, String, FileInfo)> = Vec::new();
        if let Some((this, parent)) = page.dots {
            for (i, (name, info)) in [(".", this), ("..", parent)].into_iter().enumerate() {
                let i = i as u8;
                if i >= listing.dots && wildcard_match(&listing.pattern, name) {
                    names.push((Some(i), name.to_string(), info));
                }
            }
        }
        names.extend(
            page.entries
                .into_iter()
                .map(|e: DirEntry| (None, e.name, e.info)),
        );
        if names.is_empty() {
            // MS-SMB2 3.3.5.18: nothing matched at all -> NO_SUCH_FILE; enumeration done ->
            // NO_MORE_FILES.
            listing.dots = 2;
            return Err(if d.first {
                NtStatus::NO_SUCH_FILE
            } else {
                NtStatus::NO_MORE_FILES
            });
        }
        let take = if d.single { 1 } else { names.len() };
        let entries: Vec<_> = names[..take]
            .iter()
            .map(|(_, name, info)| super::query::dir_entry(name, info))
            .collect();
        let (buffer, count) =
            crate::messages::info::encode_directory_entries(d.class, &entries, d.output_len)
                .map_err(|_| NtStatus::INVALID_INFO_CLASS)?;
        if count == 0 {
            return Err(NtStatus::BUFFER_TOO_SMALL);
        }
        // The next unsent "." or ".." (if any) is where the dots resume; names resume
        // after the last one sent.
        listing.dots = match names.get(count) {
            Some((Some(i), _, _)) => *i,
            _ => 2,
        };
        if let Some((None, name, _)) = names[..count].last() {
            listing.after = Some(name.clone());
        }
        Ok(Reply::new(
            ctx.hdr,
            &crate::messages::query_directory::QueryDirectoryResponse { buffer },
        ))
    }

    pub(super) fn max_io(&self) -> u32 {
        match self.dialect() {
            Some(crate::header::Dialect::SMB202) => super::SMB202_MAX_IO,
            _ => self.config.limits.max_io_size,
        }
    }
}
