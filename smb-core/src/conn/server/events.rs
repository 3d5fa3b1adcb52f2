//! What a server connection reports to its driver: audit records and the disconnect order.

use std::fmt;

use crate::header::{Command, Dialect};
use crate::signing::Algorithm;

/// Why a request was refused before it was executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No signature on a session that requires one (SIGNED flag absent).
    Unsigned,
    /// A signature that does not verify (tampered, or signed with another key).
    BadSignature,
    /// A MessageId already used, or outside the granted window.
    Replay,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Unsigned => "unsigned",
            RejectReason::BadSignature => "bad signature",
            RejectReason::Replay => "replay",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event for the driver: audit records (in the spirit of Windows events 3021 and
/// 31998) and `Disconnect`, after which the driver closes the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// An SMB1 NEGOTIATE arrived. SMB1 is never spoken; `answered` is the SMB2 dialect
    /// the server replied with (0x02FF or 0x0202), `None` if it only offered SMB1.
    Smb1Attempt {
        client_addr: Option<String>,
        dialects: Vec<String>,
        answered: Option<Dialect>,
    },
    /// A session finished authenticating.
    SessionEstablished {
        session_id: u64,
        user: String,
        dialect: Dialect,
        /// The signing algorithm of the session's key (`None` for guest/anonymous).
        algorithm: Option<Algorithm>,
        /// Whether every request and response of the session must be signed.
        signed: bool,
        guest: bool,
        anonymous: bool,
    },
    /// The session runs unsigned because neither side required signing.
    SessionUnsigned {
        session_id: u64,
        user: String,
        client_addr: Option<String>,
        reason: &'static str,
    },
    /// Authentication failed (wrong password, unknown user, guest refused...).
    LogonFailed {
        user: String,
        client_addr: Option<String>,
        reason: String,
    },
    /// A request was refused and not executed.
    RequestRejected {
        command: Command,
        message_id: u64,
        session_id: u64,
        reason: RejectReason,
    },
    /// A session logged off.
    LoggedOff { session_id: u64, user: String },
    /// The driver must close the connection (protocol violation, bad signature, replay).
    Disconnect { reason: String },
}

impl ServerEvent {
    /// A short stable name, for logs and JSON (`"session_unsigned"`...).
    pub fn kind(&self) -> &'static str {
        match self {
            ServerEvent::Smb1Attempt { .. } => "smb1_attempt",
            ServerEvent::SessionEstablished { .. } => "session_established",
            ServerEvent::SessionUnsigned { .. } => "session_unsigned",
            ServerEvent::LogonFailed { .. } => "logon_failed",
            ServerEvent::RequestRejected { .. } => "request_rejected",
            ServerEvent::LoggedOff { .. } => "logged_off",
            ServerEvent::Disconnect { .. } => "disconnect",
        }
    }
}
