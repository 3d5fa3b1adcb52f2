//! One connection's side of oplocks and leases: granting on CREATE, the CREATE that waits
//! for a break (asynchronous), the break notifications this connection sends, and the
//! OPLOCK_BREAK acknowledgments it receives (MS-SMB2 3.3.4.6, 3.3.4.7, 3.3.5.22). The state
//! shared by all connections is in `oplocks.rs`.
//!
//! - A CREATE that starts a break which needs an acknowledgment goes asynchronous like a
//!   waiting LOCK: an unsigned interim STATUS_PENDING response with an AsyncId, then the
//!   signed CREATE response once the break is over (acknowledged, the holder's open closed,
//!   its connection gone, or [`super::ServerConfig::break_timeout`] passed), or
//!   STATUS_CANCELLED on CANCEL (the open it made is closed).
//! - Break notifications are unsigned, with MessageId 0xFFFFFFFFFFFFFFFF, SessionId 0 and
//!   TreeId 0 (3.3.4.6, 3.3.4.7); the acknowledgment is verified like any request and its
//!   response signed.

use std::time::Duration;

use super::create::Retry;
use super::oplocks::{LeaseAck, LeaseId, Notice, OplockAck, Want};
use super::sharing::FileKey;
use super::{Ctx, HandlerResult, Reply, ServerConnection};
use crate::header::{Command, Dialect, Header, NtStatus};
use crate::messages::create::{access, CreateResponse};
use crate::messages::error::ErrorResponse;
use crate::messages::oplock_break::{
    break_structure_size, lease_break_flags, LeaseBreakAck, LeaseBreakNotification, OplockBreak,
};
use crate::messages::{build, EncodeBody, FileId};
use crate::signing::SigningKey;

/// STATUS_INVALID_DEVICE_STATE.
pub const INVALID_DEVICE_STATE: NtStatus = NtStatus(0xC000_0184);
/// STATUS_INVALID_OPLOCK_PROTOCOL.
pub const INVALID_OPLOCK_PROTOCOL: NtStatus = NtStatus(0xC000_00E3);
/// CREATEs one connection may have waiting for breaks.
const MAX_PENDING: usize = 64;

/// A CREATE waiting for breaks on its file to end.
#[derive(Debug)]
pub(crate) struct PendingCreate {
    async_id: u64,
    message_id: u64,
    session_id: u64,
    credit_charge: u16,
    key: Option<SigningKey>,
    /// FILETIME after which the breaks are taken as acknowledged.
    deadline: u64,
    file: FileKey,
    open: u64,
    want: Want,
    body: CreateResponse,
    /// Set while the CREATE waits for a break its sharing violation started: the open is
    /// not recorded yet and sharing is checked again when the break is over.
    retry: Option<Box<Retry>>,
}

/// The CREATEs of one connection that wait for breaks.
#[derive(Debug, Default)]
pub(crate) struct PendingCreates {
    list: Vec<PendingCreate>,
}

/// The final response of a pending CREATE: async header, no credits, signed when the
/// request was (MS-SMB2 3.3.4.1.1).
fn final_response<B: EncodeBody>(p: &PendingCreate, status: NtStatus, body: &B) -> Vec<u8> {
    let mut hdr = Header::request(Command::CREATE, p.message_id, p.session_id, 0).response(status);
    hdr.credit_charge = p.credit_charge;
    hdr.credits = 0;
    hdr.async_id = Some(p.async_id);
    let mut msg = if status.is_error() {
        build(&hdr, &ErrorResponse::default())
    } else {
        build(&hdr, body)
    };
    if let Some(key) = &p.key {
        let _ = key.sign(&mut msg);
    }
    msg
}

/// A break notification: MessageId 0xFFFFFFFFFFFFFFFF, SessionId 0, TreeId 0, unsigned.
fn notification<B: EncodeBody>(body: &B) -> Vec<u8> {
    let mut hdr =
        Header::request(Command::OPLOCK_BREAK, u64::MAX, 0, 0).response(NtStatus::SUCCESS);
    hdr.credit_charge = 0;
    hdr.credits = 0;
    build(&hdr, body)
}

impl ServerConnection {
    /// After the share opened the file: records the open in the oplock table (breaking what
    /// conflicts), then answers now with what is granted, or goes asynchronous until the
    /// breaks it started are over.
    pub(super) fn oplock_create(
        &mut self,
        ctx: &Ctx,
        file: FileKey,
        open: u64,
        want: Want,
        overwrite: bool,
        body: CreateResponse,
    ) -> HandlerResult {
        let (table, conn) = (self.opens.oplocks.clone(), self.opens.conn);
        // MS-FSA 2.1.5.1.2 (as Windows and Samba do): an open for attributes, EAs or the
        // security descriptor only, that does not overwrite, breaks no oplock or lease.
        const DATA: u32 = access::FILE_READ_DATA
            | access::FILE_WRITE_DATA
            | access::FILE_APPEND_DATA
            | access::FILE_EXECUTE
            | access::DELETE
            | access::GENERIC_ALL
            | access::GENERIC_EXECUTE
            | access::GENERIC_WRITE
            | access::GENERIC_READ;
        let stat = !overwrite && self.opens.get(open).is_some_and(|o| o.access & DATA == 0);
        let waits = table.open(&file, conn, open, self.lease_id(want), overwrite, stat);
        // The holders on this connection learn of their breaks first.
        self.queue_notices();
        if !waits || self.pending.list.len() >= MAX_PENDING {
            let body = self.granted(&file, open, want, body)?;
            return Ok(Reply::new(ctx.hdr, &body));
        }
        self.create_pending(ctx, file, open, want, body, None)
    }

    /// A CREATE whose sharing violation started a break waits for it (see `retry_create`).
    pub(super) fn create_waits_for_sharing(&mut self, ctx: &Ctx, r: Box<Retry>) -> HandlerResult {
        if self.pending.list.len() >= MAX_PENDING {
            return Err(NtStatus::SHARING_VIOLATION);
        }
        // The holders on this connection learn of their breaks first.
        self.queue_notices();
        let (file, open, want) = r.file();
        let file = file.clone();
        self.create_pending(ctx, file, open, want, CreateResponse::default(), Some(r))
    }

    /// The CREATE goes asynchronous: an interim response now, the final one from
    /// [`Self::complete_creates`].
    fn create_pending(
        &mut self,
        ctx: &Ctx,
        file: FileKey,
        open: u64,
        want: Want,
        body: CreateResponse,
        retry: Option<Box<Retry>>,
    ) -> HandlerResult {
        let async_id = self.notifier.alloc_async_id();
        let timeout = self.break_ticks();
        self.pending.list.push(PendingCreate {
            async_id,
            message_id: ctx.hdr.message_id,
            session_id: ctx.session_id,
            credit_charge: ctx.hdr.credit_charge,
            key: None,
            deadline: self.config.clock.now().saturating_add(timeout),
            file,
            open,
            want,
            body,
            retry,
        });
        self.opens.oplocks.set_waits(self.opens.conn, true);
        let mut reply = Reply::new(ctx.hdr, &CreateResponse::default());
        reply.async_id = Some(async_id);
        Ok(reply)
    }

    /// The lease a CREATE asks for, by ClientGuid and LeaseKey.
    fn lease_id(&self, want: Want) -> Option<LeaseId> {
        match want {
            Want::Lease(l) => self.negotiated().ok().map(|n| (n.client_guid.0, l.key)),
            _ => None,
        }
    }

    /// The break timeout in FILETIME units.
    fn break_ticks(&self) -> u64 {
        u64::try_from(self.config.break_timeout.as_nanos() / 100).unwrap_or(u64::MAX)
    }

    /// The CREATE response with the oplock or lease granted now.
    fn granted(
        &self,
        file: &FileKey,
        open: u64,
        want: Want,
        mut body: CreateResponse,
    ) -> Result<CreateResponse, NtStatus> {
        let n = self.negotiated()?;
        let v2 = !matches!(n.dialect, Dialect::SMB202 | Dialect::SMB21);
        let (level, lease) =
            self.opens
                .oplocks
                .grant(file, self.opens.conn, open, want, &n.client_guid, v2);
        body.oplock_level = level;
        if let Some(l) = lease {
            body.contexts.push(l.to_context());
        }
        Ok(body)
    }

    /// Queues the break notifications other connections (or this one) left for this one.
    pub(super) fn queue_notices(&mut self) {
        let notices = self.opens.oplocks.take_notices(self.opens.conn);
        let mut out = Vec::new();
        for n in notices {
            match n {
                Notice::Oplock { open, level } => {
                    // The open may have closed since; then there is nothing to break.
                    if self.opens.get(open).is_none() {
                        continue;
                    }
                    let file_id = FileId {
                        persistent: super::files::persistent_id(open),
                        volatile: open,
                    };
                    out.push(notification(&OplockBreak {
                        oplock_level: level,
                        file_id,
                    }));
                }
                Notice::Lease {
                    key,
                    current,
                    new,
                    epoch,
                    version,
                    ack_required,
                } => out.push(notification(&LeaseBreakNotification {
                    new_epoch: if version == 2 { epoch } else { 0 },
                    flags: if ack_required {
                        lease_break_flags::ACK_REQUIRED
                    } else {
                        0
                    },
                    key,
                    current_state: current,
                    new_state: new,
                    ..Default::default()
                })),
            }
        }
        self.queue_messages(out);
    }

    /// Completes the pending CREATEs whose breaks are over or timed out.
    pub(super) fn complete_creates(&mut self) -> Vec<Vec<u8>> {
        if self.pending.list.is_empty() {
            return Vec::new();
        }
        let now = self.config.clock.now();
        let table = self.opens.oplocks.clone();
        let mut out = Vec::new();
        for p in std::mem::take(&mut self.pending.list) {
            let breaking = table.is_breaking(&p.file);
            if breaking && now < p.deadline {
                self.pending.list.push(p);
                continue;
            }
            if breaking {
                // MS-SMB2 3.3.2.1 (Oplock Break Acknowledgment Timer): the holder did not
                // answer in time; its oplock or lease is taken to the level it broke to.
                table.expire(&p.file);
            }
            let mut p = p;
            if let Some(r) = p.retry.take() {
                match self.retry_create(p.session_id, *r) {
                    Ok(body) => {
                        // The open is recorded now; it may have breaks of its own to wait for.
                        let conn = self.opens.conn;
                        let lease = self.lease_id(p.want);
                        if table.open(&p.file, conn, p.open, lease, false, false) {
                            p.body = body;
                            p.deadline = now.saturating_add(self.break_ticks());
                            self.queue_notices();
                            self.pending.list.push(p);
                            continue;
                        }
                        p.body = body;
                    }
                    Err(status) => {
                        out.push(final_response(&p, status, &ErrorResponse::default()));
                        continue;
                    }
                }
            }
            let msg = match self.granted(&p.file, p.open, p.want, p.body.clone()) {
                Ok(body) => final_response(&p, NtStatus::SUCCESS, &body),
                Err(status) => final_response(&p, status, &ErrorResponse::default()),
            };
            out.push(msg);
        }
        table.set_waits(self.opens.conn, !self.pending.list.is_empty());
        out
    }

    /// How long until the earliest pending CREATE's break times out: the driver calls
    /// [`ServerConnection::handle_wakeup`] then (`None`: nothing waits).
    pub fn next_timeout(&self) -> Option<Duration> {
        let now = self.config.clock.now();
        self.pending
            .list
            .iter()
            .map(|p| Duration::from_nanos(p.deadline.saturating_sub(now).saturating_mul(100)))
            .min()
    }

    pub(super) fn set_create_key(&mut self, async_id: u64, key: Option<SigningKey>) {
        if let Some(p) = self
            .pending
            .list
            .iter_mut()
            .find(|p| p.async_id == async_id)
        {
            p.key = key;
        }
    }

    /// A pending CREATE inside a chain (not last) is cancelled at once; its open goes.
    pub(super) fn forget_create(&mut self, async_id: u64) {
        if let Some(i) = self
            .pending
            .list
            .iter()
            .position(|p| p.async_id == async_id)
        {
            let p = self.pending.list.remove(i);
            self.opens.abandon(p.open);
        }
    }

    /// MS-SMB2 3.3.5.16: CANCEL of a pending CREATE: STATUS_CANCELLED, and the open it made
    /// is closed (the client never learns its FileId).
    pub(super) fn cancel_create(&mut self, hdr: &Header, session_id: u64) -> Option<Vec<u8>> {
        let i = self.pending.list.iter().position(|p| {
            p.session_id == session_id
                && match hdr.async_id {
                    Some(id) => p.async_id == id,
                    None => p.message_id == hdr.message_id,
                }
        })?;
        let p = self.pending.list.remove(i);
        self.opens.abandon(p.open);
        self.opens
            .oplocks
            .set_waits(self.opens.conn, !self.pending.list.is_empty());
        Some(final_response(
            &p,
            NtStatus::CANCELLED,
            &ErrorResponse::default(),
        ))
    }

    /// The open of a pending CREATE was closed under it (LOGOFF, TREE_DISCONNECT): the
    /// CREATE is dropped.
    pub(super) fn create_closed(&mut self, open: u64) {
        self.pending.list.retain(|p| p.open != open);
    }

    /// MS-SMB2 3.3.5.22: OPLOCK_BREAK from the client, an oplock break acknowledgment
    /// (StructureSize 24) or a lease break acknowledgment (36).
    pub(super) fn oplock_break(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let size = break_structure_size(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        if size == OplockBreak::STRUCTURE_SIZE {
            let req = OplockBreak::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
            let id = self.open_id(ctx, req.file_id)?;
            let open = self.opens.get(id).ok_or(NtStatus::FILE_CLOSED)?;
            let file = super::files::OpenTable::file_key(open).ok_or(INVALID_DEVICE_STATE)?;
            let table = self.opens.oplocks.clone();
            return match table.ack_oplock(&file, self.opens.conn, id, req.oplock_level) {
                OplockAck::Done(level) => Ok(Reply::new(
                    ctx.hdr,
                    &OplockBreak {
                        oplock_level: level,
                        file_id: req.file_id,
                    },
                )),
                OplockAck::NotBreaking => Err(INVALID_DEVICE_STATE),
                OplockAck::TooHigh => Err(INVALID_OPLOCK_PROTOCOL),
            };
        }
        let n = self.negotiated()?;
        // A lease acknowledgment on 2.0.2 (no leases) or a notification sent to the server.
        if size != LeaseBreakAck::STRUCTURE_SIZE || n.dialect == Dialect::SMB202 {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        let req = LeaseBreakAck::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let id = (n.client_guid.0, req.key);
        match self.opens.oplocks.ack_lease(&id, req.state) {
            LeaseAck::Done(state) => Ok(Reply::new(
                ctx.hdr,
                &LeaseBreakAck {
                    flags: 0,
                    key: req.key,
                    state,
                    duration: 0,
                },
            )),
            LeaseAck::Unknown => Err(NtStatus::OBJECT_NAME_NOT_FOUND),
            LeaseAck::NotBreaking => Err(NtStatus::UNSUCCESSFUL),
            LeaseAck::NotAccepted => Err(NtStatus::REQUEST_NOT_ACCEPTED),
        }
    }
}
