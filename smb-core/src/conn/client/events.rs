//! What the client state machine reports: [`ClientEvent`]s, and the decoded answers they
//! carry.

use bytes::Bytes;

use crate::header::{Command, Dialect, NtStatus};
use crate::messages::create::{CreateAction, OplockLevel};
use crate::messages::lease::{LeaseContext, LeaseKey};
use crate::messages::FileId;
use crate::signing::Algorithm;

use super::error::SignatureFailure;

/// Output of the state machine, read with
/// [`ClientConnection::poll_event`](super::ClientConnection::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The answer to a request (its final response; interim STATUS_PENDING is absorbed).
    Response {
        /// The id the request method returned.
        id: u64,
        /// The request's command.
        command: Command,
        /// The response's status.
        status: NtStatus,
        /// What the response says, decoded.
        body: ResponseBody,
    },
    /// Audit (client side of event 31998's spirit): the server's NEGOTIATE did not set
    /// SIGNING_REQUIRED. Sessions are then signed only if this client requires it.
    ServerDoesNotRequireSigning {
        /// [`ClientConfig::server_name`](super::ClientConfig::server_name).
        server: String,
        /// The negotiated dialect.
        dialect: Dialect,
    },
    /// A session is up.
    SessionEstablished {
        /// The negotiated dialect.
        dialect: Dialect,
        /// The algorithm the session signs with; `None` when it is not signed.
        algorithm: Option<Algorithm>,
        /// Whether requests and responses of the session are signed.
        signed: bool,
        /// A guest session (never signed).
        guest: bool,
        /// An anonymous (null) session (never signed).
        anonymous: bool,
    },
    /// A response was rejected for its signature; the connection has failed.
    SignatureRejected {
        /// The response's MessageId.
        message_id: u64,
        /// The response's command.
        command: Command,
        /// Why it was rejected.
        reason: SignatureFailure,
    },
    /// An oplock break notification (MS-SMB2 2.2.23.1, unsigned by design) for an open that
    /// holds an oplock. With `ack_required`, the server waits for
    /// [`acknowledge_oplock_break`](super::ClientConnection::acknowledge_oplock_break) (after
    /// the caller wrote back whatever it cached) before it lets the conflicting open proceed.
    OplockBreak {
        /// The open.
        file_id: FileId,
        /// Its tree.
        tree_id: u32,
        /// The level held until now.
        from: OplockLevel,
        /// The most the server lets the client keep.
        to: OplockLevel,
        /// Whether an acknowledgement is expected (breaks from exclusive or batch).
        ack_required: bool,
    },
    /// A lease break notification (MS-SMB2 2.2.23.2, unsigned by design) for a lease this
    /// client holds. With `ack_required`, answer with
    /// [`acknowledge_lease_break`](super::ClientConnection::acknowledge_lease_break).
    LeaseBreak {
        /// The lease.
        key: LeaseKey,
        /// CurrentLeaseState as this client held it.
        from: u32,
        /// NewLeaseState: the most the client may keep.
        to: u32,
        /// NewEpoch (version 2 leases).
        epoch: u16,
        /// SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED.
        ack_required: bool,
    },
}

/// What the NEGOTIATE settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateInfo {
    /// The dialect the server chose.
    pub dialect: Dialect,
    /// The server's SecurityMode (SIGNING_ENABLED / SIGNING_REQUIRED).
    pub server_security_mode: u16,
    /// SIGNING_REQUIRED is set in the server's SecurityMode.
    pub server_requires_signing: bool,
    /// ServerGuid.
    pub server_guid: [u8; 16],
    /// The server's Capabilities.
    pub server_capabilities: u32,
    /// The algorithm sessions will sign with (3.1.1: negotiated, or CMAC when none was).
    pub signing_algorithm: Algorithm,
    /// Whether the 3.1.1 server answered SIGNING_CAPABILITIES.
    pub signing_algorithm_negotiated: bool,
    /// MaxReadSize.
    pub max_read_size: u32,
    /// MaxWriteSize.
    pub max_write_size: u32,
    /// MaxTransactSize.
    pub max_transact_size: u32,
}

/// The decoded part of a response that a caller needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// An error status (or a command whose response carries nothing useful).
    None,
    /// NEGOTIATE.
    Negotiate(NegotiateInfo),
    /// The final SESSION_SETUP.
    SessionSetup {
        /// SessionId.
        session_id: u64,
        /// A guest session.
        guest: bool,
        /// An anonymous session.
        anonymous: bool,
        /// Whether the session is signed.
        signed: bool,
    },
    /// TREE_CONNECT.
    TreeConnect {
        /// TreeId, to pass to the file requests.
        tree_id: u32,
        /// ShareType (1 disk, 2 pipe, 3 print).
        share_type: u8,
    },
    /// CREATE.
    Create {
        /// The open's FileId.
        file_id: FileId,
        /// Whether the file was opened, created, overwritten...
        create_action: CreateAction,
        /// FileAttributes.
        file_attributes: u32,
        /// EndOfFile (the size in bytes).
        end_of_file: u64,
        /// LastWriteTime (FILETIME).
        last_write_time: u64,
        /// The oplock granted (LEASE when a lease was granted instead).
        oplock_level: OplockLevel,
        /// The lease granted (its RqLs response context), when `oplock_level` is LEASE.
        lease: Option<LeaseContext>,
    },
    /// CLOSE (with SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB).
    Close {
        /// FileAttributes.
        file_attributes: u32,
        /// EndOfFile.
        end_of_file: u64,
        /// LastWriteTime (FILETIME).
        last_write_time: u64,
    },
    /// READ.
    Read {
        /// The bytes read: a slice of the received frame, not a copy.
        data: Bytes,
    },
    /// WRITE.
    Write {
        /// Bytes written.
        count: u32,
    },
    /// QUERY_DIRECTORY entries (STATUS_NO_MORE_FILES ends a listing, with `None`).
    Directory {
        /// The entries of this response.
        entries: Vec<DirEntry>,
    },
    /// The response to an oplock break acknowledgement.
    OplockBreak {
        /// The open.
        file_id: FileId,
        /// The level the server now grants.
        oplock_level: OplockLevel,
    },
    /// The response to a lease break acknowledgement.
    LeaseBreak {
        /// The lease.
        key: LeaseKey,
        /// The state the server now grants.
        state: u32,
    },
    /// A CHANGE_NOTIFY answer: FILE_NOTIFY_INFORMATION entries (MS-FSCC 2.4.42), raw.
    ChangeNotify {
        /// OutputBuffer.
        buffer: Vec<u8>,
    },
    /// A QUERY_INFO output buffer, to decode with `messages::info`.
    Info {
        /// OutputBuffer.
        buffer: Vec<u8>,
    },
}

/// One QUERY_DIRECTORY entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name (no path).
    pub name: String,
    /// FileAttributes.
    pub attributes: u32,
    /// EndOfFile (the size in bytes).
    pub size: u64,
    /// CreationTime (FILETIME).
    pub creation_time: u64,
    /// LastWriteTime (FILETIME).
    pub last_write_time: u64,
}
