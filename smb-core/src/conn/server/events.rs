//! What a server connection reports to its driver: audit records and the disconnect order.

use std::fmt;

use crate::auth::AuthError;
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
    /// The audit log's word for it (`"unsigned"`, `"bad signature"`, `"replay"`).
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

/// Why a logon was refused ([`ServerEvent::LogonFailed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogonRefusal {
    /// The authentication exchange failed: a malformed token, an unknown user, a wrong
    /// password, NTLMv1... ([`AuthError`] says which).
    Auth(AuthError),
    /// A guest or anonymous session, which has no key, on a server or with a client that
    /// requires signing: refused, as Windows does.
    UnsignableSession,
    /// A guest or anonymous session on a server that allows neither.
    GuestDisabled,
}

impl fmt::Display for LogonRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogonRefusal::Auth(e) => write!(f, "{e}"),
            LogonRefusal::UnsignableSession => {
                f.write_str("guest or anonymous session refused: signing is required")
            }
            LogonRefusal::GuestDisabled => f.write_str("guest and anonymous access are disabled"),
        }
    }
}

/// An event for the driver: audit records (in the spirit of Windows events 3021 and
/// 31998) and `Disconnect`, after which the driver closes the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// An SMB1 NEGOTIATE arrived. SMB1 is never spoken; `answered` is the SMB2 dialect
    /// the server replied with (0x02FF or 0x0202), `None` if it only offered SMB1.
    Smb1Attempt {
        /// The client's address, as the driver gave it.
        client_addr: Option<String>,
        /// The SMB1 dialect strings it offered ("NT LM 0.12", "SMB 2.002", ...).
        dialects: Vec<String>,
        /// The SMB2 dialect answered, if any.
        answered: Option<Dialect>,
    },
    /// A session finished authenticating.
    SessionEstablished {
        /// SessionId.
        session_id: u64,
        /// The account as the client sent it (`DOMAIN\user`, empty when anonymous).
        user: String,
        /// The connection's dialect.
        dialect: Dialect,
        /// The signing algorithm of the session's key (`None` for guest/anonymous).
        algorithm: Option<Algorithm>,
        /// Whether every request and response of the session must be signed.
        signed: bool,
        /// A guest session (unknown user mapped to guest): no key.
        guest: bool,
        /// An anonymous (null) session: no key.
        anonymous: bool,
    },
    /// The session runs unsigned because neither side required signing.
    SessionUnsigned {
        /// SessionId.
        session_id: u64,
        /// The account as the client sent it.
        user: String,
        /// The client's address, as the driver gave it.
        client_addr: Option<String>,
        /// Why it is unsigned, in words for the audit log.
        reason: &'static str,
    },
    /// Authentication failed (wrong password, unknown user, guest refused...).
    LogonFailed {
        /// The account as the client sent it (empty when unknown).
        user: String,
        /// The client's address, as the driver gave it.
        client_addr: Option<String>,
        /// Why.
        reason: LogonRefusal,
    },
    /// A request was refused and not executed.
    RequestRejected {
        /// The refused request's command.
        command: Command,
        /// Its MessageId.
        message_id: u64,
        /// The session it was sent on (for a related request, the previous request's).
        session_id: u64,
        /// Why it was refused.
        reason: RejectReason,
    },
    /// A session logged off.
    LoggedOff {
        /// SessionId.
        session_id: u64,
        /// The session's account.
        user: String,
    },
    /// The driver must close the connection (protocol violation, bad signature, replay).
    Disconnect {
        /// What the peer did, in words for the log (the rule broken and the values seen).
        reason: String,
    },
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
