//! CREATE (MS-SMB2 3.3.5.9): the checks, the open or create on the share, sharing modes,
//! then the oplock or lease (see `oplocks.rs` and `breaks.rs`). Moved out of `files.rs`.

use std::sync::Arc;

use super::files::{share_key, NoFiles, Open, Then, DELETE_ACCESS, WRITE_ACCESS};
use super::io::Op;
use super::notify::{action as change, Change};
use super::oplocks::Want;
use super::rpc::{is_srvsvc, Pipe};
use super::sharing::FileKey;
use super::{Ctx, HandlerResult, Reply, ServerConnection, Step, StepResult, Tree, FULL_ACCESS};
use crate::conn::share::{
    split_path, CreateAction as ShareAction, Disposition, FileInfo, Handle, Kind, ShareBackend,
    ShareResult,
};
use crate::header::{Dialect, NtStatus};
use crate::messages::create::{
    access, create_options, find_context, maximal_access_response, on_disk_id_response,
    CreateAction, CreateContext, CreateRequest, CreateResponse, OplockLevel,
};
use crate::messages::lease::LeaseContext;

/// A CREATE that failed on sharing while a break it started is under way: the opened file,
/// kept until sharing is checked again.
#[derive(Debug)]
pub(crate) struct Retry {
    tree_id: u32,
    pub(super) then: CreateThen,
    info: FileInfo,
    action: ShareAction,
    handle: Handle,
}

impl Retry {
    pub(super) fn file(&self) -> (&FileKey, u64, Want) {
        (&self.then.key, self.then.id, self.then.want)
    }
}

/// CREATE's state while the share opens or creates the file.
#[derive(Debug)]
pub(crate) struct CreateThen {
    share: Arc<dyn ShareBackend>,
    path: Vec<String>,
    access: u32,
    delete_on_close: bool,
    maximal_access: bool,
    on_disk_id: bool,
    /// The reserved volatile id, and the file's key in the sharing table.
    id: u64,
    key: FileKey,
    share_access: u32,
    /// Overwrite/supersede: sharing was checked (and the open recorded) before the share ran.
    modifies: bool,
    /// The oplock or lease asked for.
    want: Want,
}

impl ServerConnection {
    /// MS-SMB2 3.3.5.9: checks here, the open or create on the share, then
    /// [`Self::create_done`].
    pub(super) fn create(&mut self, ctx: &mut Ctx, tree: &Tree) -> StepResult {
        let req = CreateRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let Some(share) = &tree.share else {
            // IPC$: srvsvc (share enumeration) is the only named pipe; the others
            // (lsarpc, wkssvc...) do not exist here and clients fall back.
            if !is_srvsvc(&req.name) {
                return Err(NtStatus::OBJECT_NAME_NOT_FOUND);
            }
            return self.open_pipe(ctx).map(Step::Reply);
        };
        let opts = req.create_options;
        if opts & create_options::DIRECTORY_FILE != 0
            && opts & create_options::NON_DIRECTORY_FILE != 0
        {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        let disposition =
            Disposition::from_wire(req.create_disposition.0).ok_or(NtStatus::INVALID_PARAMETER)?;
        let kind = if opts & create_options::DIRECTORY_FILE != 0 {
            // MS-FSA 2.1.5.1: a directory can only be opened or created, never overwritten.
            if !matches!(
                disposition,
                Disposition::Open | Disposition::Create | Disposition::OpenIf
            ) {
                return Err(NtStatus::INVALID_PARAMETER);
            }
            Kind::Directory
        } else if opts & create_options::NON_DIRECTORY_FILE != 0 {
            Kind::File
        } else {
            Kind::Any
        };
        let delete_on_close = opts & create_options::DELETE_ON_CLOSE != 0;
        if delete_on_close && req.desired_access & DELETE_ACCESS == 0 {
            // MS-SMB2 3.3.5.9: DELETE_ON_CLOSE without DELETE access.
            return Err(NtStatus::ACCESS_DENIED);
        }
        if self.opens.len() >= self.config.limits.max_open_files {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        let path = split_path(&req.name)?;
        let access = if req.desired_access & access::MAXIMUM_ALLOWED != 0 {
            FULL_ACCESS
        } else {
            req.desired_access
        };
        // Sharing and delete-pending (MS-FSA 2.1.5.1.2) are checked, and the open recorded,
        // before an existing file is overwritten; for the other dispositions after the name
        // is resolved (in `create_done`), so a collision or a missing file reads as on
        // Windows.
        let key: FileKey = (share_key(&share.backend), path.clone());
        let want = self.wanted(&req, &key)?;
        let id = self.opens.reserve_id();
        let modifies = matches!(
            disposition,
            Disposition::Overwrite | Disposition::OverwriteIf | Disposition::Supersede
        );
        if modifies {
            let conn = self.opens.conn;
            self.opens
                .table
                .open(&key, conn, id, access, req.share_access)?;
        }
        let then = CreateThen {
            share: share.backend.clone(),
            path: path.clone(),
            access,
            delete_on_close,
            maximal_access: find_context(&req.contexts, b"MxAc").is_some(),
            on_disk_id: find_context(&req.contexts, b"QFid").is_some(),
            id,
            key,
            share_access: req.share_access,
            modifies,
            want,
        };
        let op = Op::Create {
            share: share.backend.clone(),
            path,
            disposition,
            kind,
            must_be_empty_dir: delete_on_close,
            write: access & WRITE_ACCESS != 0,
        };
        Ok(Step::Io(op, Then::Create(Box::new(then))))
    }

    pub(super) fn create_done(
        &mut self,
        ctx: &Ctx,
        c: CreateThen,
        result: ShareResult<(FileInfo, ShareAction, Handle)>,
    ) -> HandlerResult {
        let (table, conn) = (self.opens.table.clone(), self.opens.conn);
        let (info, action, handle) = result.inspect_err(|_| {
            // Forgets the open if it was recorded (harmless when it was not).
            table.close(&c.key, conn, c.id, false);
        })?;
        if !c.modifies {
            if let Err(status) = table.open(&c.key, conn, c.id, c.access, c.share_access) {
                // MS-SMB2 3.3.5.9: a sharing violation first breaks the batch oplocks and
                // Handle leases of the file; the CREATE waits and is checked again after.
                if status == NtStatus::SHARING_VIOLATION
                    && !info.is_dir
                    && self.opens.oplocks.break_for_sharing(&c.key)
                {
                    let retry = Retry {
                        tree_id: ctx.tree_id,
                        then: c,
                        info,
                        action,
                        handle,
                    };
                    return self.create_waits_for_sharing(ctx, Box::new(retry));
                }
                return Err(status);
            }
        }
        let (file, id, want, modifies) = (c.key.clone(), c.id, c.want, c.modifies);
        let (body, is_dir) = self.opened(ctx.session_id, ctx.tree_id, c, info, action, handle)?;
        // Directories take no oplock or lease (no SMB2_GLOBAL_CAP_DIRECTORY_LEASING).
        if is_dir {
            return Ok(Reply::new(ctx.hdr, &body));
        }
        self.oplock_create(ctx, file, id, want, modifies, body)
    }

    /// A CREATE that waited for a sharing-violation break checks sharing again: the response
    /// of the now recorded open (the caller adds its oplock), or the error that fails it.
    pub(super) fn retry_create(
        &mut self,
        session_id: u64,
        r: Retry,
    ) -> Result<CreateResponse, NtStatus> {
        let c = &r.then;
        self.opens
            .table
            .open(&c.key, self.opens.conn, c.id, c.access, c.share_access)?;
        Ok(self
            .opened(session_id, r.tree_id, r.then, r.info, r.action, r.handle)?
            .0)
    }

    /// Sharing allowed the open: records it and builds the response (no oplock yet).
    fn opened(
        &mut self,
        session_id: u64,
        tree_id: u32,
        c: CreateThen,
        info: FileInfo,
        action: ShareAction,
        handle: Handle,
    ) -> Result<(CreateResponse, bool), NtStatus> {
        if c.delete_on_close && c.path.is_empty() {
            self.opens.table.close(&c.key, self.opens.conn, c.id, false);
            return Err(NtStatus::ACCESS_DENIED);
        }
        let created = match action {
            ShareAction::Created => Some(change::ADDED),
            ShareAction::Overwritten | ShareAction::Superseded => Some(change::MODIFIED),
            ShareAction::Opened => None,
        };
        if let Some(what) = created {
            self.notifier
                .changed(Change::new(share_key(&c.share), &c.path, what, info.is_dir));
        }
        let file_id = self.opens.insert_with(
            Some(c.id),
            Open {
                session_id,
                tree_id,
                share: c.share,
                path: c.path,
                handle,
                is_dir: info.is_dir,
                access: c.access,
                delete_on_close: c.delete_on_close,
                listing: None,
                pipe: None,
            },
        );
        let mut contexts = Vec::new();
        if c.maximal_access {
            contexts.push(CreateContext::new(
                b"MxAc",
                maximal_access_response(0, FULL_ACCESS),
            ));
        }
        if c.on_disk_id {
            contexts.push(CreateContext::new(
                b"QFid",
                on_disk_id_response(info.file_id, 0x5342_4D32),
            ));
        }
        let body = CreateResponse {
            oplock_level: OplockLevel::NONE,
            flags: 0,
            // The share's CreateAction has the wire values as discriminants.
            create_action: CreateAction(action as u32),
            creation_time: info.created,
            last_access_time: info.accessed,
            last_write_time: info.written,
            change_time: info.changed,
            allocation_size: info.allocation_size,
            end_of_file: info.size,
            file_attributes: info.attributes(),
            file_id,
            contexts,
        };
        Ok((body, info.is_dir))
    }

    /// Opens the srvsvc pipe.
    fn open_pipe(&mut self, ctx: &mut Ctx) -> HandlerResult {
        if self.opens.len() >= self.config.limits.max_open_files {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        let names = self.config.shares.iter().map(|s| s.name.clone());
        let pipe = Box::new(Pipe::new(names));
        let file_id = self.opens.insert(Open {
            session_id: ctx.session_id,
            tree_id: ctx.tree_id,
            share: Arc::new(NoFiles),
            path: vec!["srvsvc".into()],
            handle: Arc::new(NoFiles),
            is_dir: false,
            access: FULL_ACCESS,
            delete_on_close: false,
            listing: None,
            pipe: Some(pipe),
        });
        let body = CreateResponse {
            oplock_level: OplockLevel::NONE,
            create_action: CreateAction::OPENED,
            allocation_size: 4096,
            file_attributes: crate::messages::create::file_attributes::NORMAL,
            file_id,
            ..CreateResponse::default()
        };
        Ok(Reply::new(ctx.hdr, &body))
    }

    /// What the CREATE asks for: RequestedOplockLevel, or with SMB2_OPLOCK_LEVEL_LEASE the
    /// `RqLs` context (2.1 and later; MS-SMB2 3.3.5.9.8: a malformed one fails the CREATE
    /// with STATUS_INVALID_PARAMETER, as does a lease key this client uses for another file).
    fn wanted(&self, req: &CreateRequest, key: &FileKey) -> Result<Want, NtStatus> {
        let n = self.negotiated()?;
        Ok(match req.requested_oplock_level {
            OplockLevel::LEASE if n.dialect != Dialect::SMB202 => {
                match LeaseContext::find(&req.contexts) {
                    None => Want::None,
                    Some(Err(_)) => return Err(NtStatus::INVALID_PARAMETER),
                    Some(Ok(l)) => {
                        if self
                            .opens
                            .oplocks
                            .lease_elsewhere(&(n.client_guid.0, l.key), key)
                        {
                            return Err(NtStatus::INVALID_PARAMETER);
                        }
                        Want::Lease(l)
                    }
                }
            }
            l @ (OplockLevel::II | OplockLevel::EXCLUSIVE | OplockLevel::BATCH) => Want::Oplock(l),
            _ => Want::None,
        })
    }
}
