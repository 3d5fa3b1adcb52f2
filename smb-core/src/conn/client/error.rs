//! `ClientError` and the enums that say precisely why a request or a response was refused.
//!
//! Every reason is a value a caller can match on; `Display` renders the sentence a user reads.

use std::fmt;

use crate::auth::AuthError;
use crate::codec::DecodeError;
use crate::header::{Command, Dialect, NtStatus};
use crate::signing::{SigningAlgorithmId, SigningError};

/// What went wrong. Errors returned by [`handle_input`](super::ClientConnection::handle_input)
/// fail the connection for good: every later call returns [`ClientError::Failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The request is not valid in the connection's current state.
    State(StateError),
    /// Not enough credits granted for this request yet.
    NoCredits {
        /// Credits granted and not yet spent.
        have: u32,
        /// The request's CreditCharge.
        need: u16,
    },
    /// A response whose signature is missing or wrong on a session that requires one.
    BadSignature {
        /// The response's MessageId.
        message_id: u64,
        /// The response's command.
        command: Command,
        /// Why the signature was refused.
        reason: SignatureFailure,
    },
    /// A response that does not follow the protocol (unknown MessageId, bad body, ...).
    Protocol(ProtocolError),
    /// FSCTL_VALIDATE_NEGOTIATE_INFO showed the NEGOTIATE was tampered with.
    ValidateNegotiate(ValidationFailure),
    /// The server offered a guest or anonymous session and this client requires signing.
    UnsignableSessionRefused {
        /// True for a guest session, false for an anonymous one.
        guest: bool,
    },
    /// The authentication failed locally.
    Auth(AuthFailure),
    /// The configured random source failed (no salt for a 3.1.1 NEGOTIATE).
    Random(crate::env::RandomError),
    /// The connection failed earlier for this reason; nothing more is processed.
    Failed(Box<ClientError>),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::State(s) => write!(f, "invalid request in this state: {s}"),
            ClientError::NoCredits { have, need } => {
                write!(f, "not enough credits: have {have}, need {need}")
            }
            ClientError::BadSignature {
                message_id,
                command,
                reason,
            } => write!(
                f,
                "rejected {command} response (MessageId {message_id}): {reason}"
            ),
            ClientError::Protocol(e) => write!(f, "protocol error: {e}"),
            ClientError::ValidateNegotiate(e) => {
                write!(
                    f,
                    "negotiation validation failed (possible downgrade attack): {e}"
                )
            }
            ClientError::UnsignableSessionRefused { guest } => write!(
                f,
                "the server granted {} session, which cannot be signed, and this client \
                 requires signing (RequireSecuritySignature)",
                if *guest { "a guest" } else { "an anonymous" }
            ),
            ClientError::Auth(e) => write!(f, "authentication: {e}"),
            ClientError::Random(e) => write!(f, "no randomness for the salt: {e}"),
            ClientError::Failed(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Protocol(e) => Some(e),
            ClientError::Auth(e) => Some(e),
            ClientError::Failed(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Protocol(ProtocolError::Decode(e))
    }
}

impl From<ProtocolError> for ClientError {
    fn from(e: ProtocolError) -> Self {
        ClientError::Protocol(e)
    }
}

impl From<AuthFailure> for ClientError {
    fn from(e: AuthFailure) -> Self {
        ClientError::Auth(e)
    }
}

/// Why a request cannot be made (or a response handled) in the connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// NEGOTIATE was already sent.
    AlreadyNegotiated,
    /// [`ClientConfig::dialects`](super::ClientConfig::dialects) is empty.
    NoDialect,
    /// This request needs a negotiated connection (and, for SESSION_SETUP, no session or
    /// authentication under way).
    NotNegotiated(Command),
    /// This request needs an established session.
    NoSession,
    /// A WRITE longer than [`max_write_size`](super::ClientConnection::max_write_size).
    WriteTooLarge {
        /// The data's length.
        len: usize,
        /// The largest WRITE allowed.
        max: u32,
    },
    /// A NEGOTIATE response while no NEGOTIATE is outstanding.
    NotNegotiating,
    /// A SESSION_SETUP step while no authentication is under way.
    NotAuthenticating,
    /// An acknowledgement for an open with no break announced (MS-SMB2 3.2.4.24).
    NoBreakPending,
    /// An acknowledgement keeping more than the break notification offered.
    AckAboveBreak,
    /// A lease asked for on SMB 2.0.2, which has none (MS-SMB2 3.2.4.3.8).
    NoLeasing,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::AlreadyNegotiated => f.write_str("NEGOTIATE was already sent"),
            StateError::NoDialect => f.write_str("no dialect to offer"),
            StateError::NotNegotiated(c) => write!(f, "{c} needs a negotiated connection"),
            StateError::NoSession => f.write_str("no established session"),
            StateError::WriteTooLarge { len, max } => write!(
                f,
                "WRITE of {len} bytes is larger than the negotiated MaxWriteSize ({max})"
            ),
            StateError::NotNegotiating => f.write_str("NEGOTIATE response without a NEGOTIATE"),
            StateError::NotAuthenticating => f.write_str("no authentication under way"),
            StateError::NoBreakPending => {
                f.write_str("no oplock break to acknowledge on this open")
            }
            StateError::NoLeasing => f.write_str("SMB 2.0.2 has no leases"),
            StateError::AckAboveBreak => {
                f.write_str("the acknowledgement keeps a higher level than the break offered")
            }
        }
    }
}

impl From<StateError> for ClientError {
    fn from(e: StateError) -> Self {
        ClientError::State(e)
    }
}

/// Why a response's signature was refused (MS-SMB2 3.2.5.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureFailure {
    /// The signature was checked and does not verify (or could not be checked).
    Invalid(SigningError),
    /// The session must be signed but has no key to check with.
    NoKey,
    /// The response is not signed on a session that requires signing; the inner reason is
    /// what checking it anyway gave.
    Unsigned(Box<SignatureFailure>),
    /// The final SESSION_SETUP response, which proves the key, is not signed.
    FinalSessionSetupUnsigned,
}

impl fmt::Display for SignatureFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureFailure::Invalid(e) => e.fmt(f),
            SignatureFailure::NoKey => {
                f.write_str("no signing key for a session that must be signed")
            }
            SignatureFailure::Unsigned(inner) => write!(
                f,
                "response is not signed on a session that requires signing ({inner})"
            ),
            SignatureFailure::FinalSessionSetupUnsigned => {
                f.write_str("final SESSION_SETUP response is not signed")
            }
        }
    }
}

/// A response that breaks the protocol (MS-SMB2 3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A message or body that does not decode.
    Decode(DecodeError),
    /// The server sent a request (SMB2_FLAGS_SERVER_TO_REDIR clear).
    RequestFromServer(Command),
    /// A response to a MessageId this client is not waiting for.
    NotOutstanding(u64),
    /// A response for another command than the request with that MessageId.
    CommandMismatch {
        /// The MessageId.
        message_id: u64,
        /// What this client sent.
        request: Command,
        /// What the server answered.
        response: Command,
    },
    /// A compound chain whose NextCommand offsets leave the frame.
    ChainOutsideFrame,
    /// NEGOTIATE answered with an error status.
    NegotiateFailed(NtStatus),
    /// The server chose a dialect this client did not offer.
    DialectNotOffered(Dialect),
    /// A 3.1.1 NEGOTIATE response without a SHA-512 preauth integrity context (3.2.5.2).
    NoPreauthIntegrity,
    /// The server chose signing algorithms this client did not offer (or not exactly one).
    SigningAlgorithmNotOffered(Vec<SigningAlgorithmId>),
    /// A SESSION_SETUP response for another SessionId than the exchange's.
    SessionIdChanged,
    /// A SESSION_SETUP response without a request in progress.
    UnexpectedSessionSetup,
    /// SMB2_SESSION_FLAG_ENCRYPT_DATA: this client does not implement encryption.
    EncryptionRequired,
    /// A request could not be signed.
    Sign(SigningError),
    /// A message with MessageId 0xFFFFFFFFFFFFFFFF that is not an OPLOCK_BREAK (the only
    /// unsolicited message, MS-SMB2 3.2.5.19).
    UnsolicitedNotBreak(Command),
    /// The response to a break acknowledgement names another open (or lease) or grants more
    /// than was acknowledged.
    BreakResponseMismatch,
    /// A CREATE granted a lease under another key than the one asked for (or none was asked).
    LeaseKeyMismatch,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Decode(e) => e.fmt(f),
            ProtocolError::RequestFromServer(c) => {
                write!(f, "received a request ({c}) from the server")
            }
            ProtocolError::NotOutstanding(id) => {
                write!(f, "response to MessageId {id} which is not outstanding")
            }
            ProtocolError::CommandMismatch {
                message_id,
                request,
                response,
            } => write!(
                f,
                "MessageId {message_id} was {request} but the response is {response}"
            ),
            ProtocolError::ChainOutsideFrame => f.write_str("chain range outside the frame"),
            ProtocolError::NegotiateFailed(s) => write!(f, "NEGOTIATE failed: {s}"),
            ProtocolError::DialectNotOffered(d) => write!(
                f,
                "server chose dialect {} which was not offered",
                d.dotted()
            ),
            ProtocolError::NoPreauthIntegrity => f.write_str(
                "3.1.1 NEGOTIATE response without a SHA-512 preauth integrity context",
            ),
            ProtocolError::SigningAlgorithmNotOffered(ids) => write!(
                f,
                "server chose signing algorithm {ids:?}, which was not offered"
            ),
            ProtocolError::SessionIdChanged => f.write_str("SessionId changed during SESSION_SETUP"),
            ProtocolError::UnexpectedSessionSetup => {
                f.write_str("SESSION_SETUP response without a request")
            }
            ProtocolError::EncryptionRequired => f.write_str(
                "the server requires encryption for this session (SMB2_SESSION_FLAG_ENCRYPT_DATA), \
                 which this client does not implement",
            ),
            ProtocolError::Sign(e) => write!(f, "cannot sign: {e}"),
            ProtocolError::UnsolicitedNotBreak(c) => write!(
                f,
                "{c} with MessageId 0xFFFFFFFFFFFFFFFF (only break notifications are unsolicited)"
            ),
            ProtocolError::LeaseKeyMismatch => {
                f.write_str("the CREATE response grants a lease under another key than asked")
            }
            ProtocolError::BreakResponseMismatch => f.write_str(
                "the break acknowledgement's response does not match the acknowledgement",
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why FSCTL_VALIDATE_NEGOTIATE_INFO failed (MS-SMB2 3.2.5.14.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationFailure {
    /// The server answered STATUS_ACCESS_DENIED.
    AccessDenied,
    /// What the server validated differs from what its NEGOTIATE response said.
    Mismatch(Vec<NegotiateMismatch>),
}

impl fmt::Display for ValidationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationFailure::AccessDenied => {
                f.write_str("the server answered STATUS_ACCESS_DENIED")
            }
            ValidationFailure::Mismatch(fields) => {
                for (i, m) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    m.fmt(f)?;
                }
                Ok(())
            }
        }
    }
}

/// One field of the validation response that contradicts the NEGOTIATE response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiateMismatch {
    /// Capabilities.
    Capabilities {
        /// In the validation response.
        validated: u32,
        /// In the NEGOTIATE response.
        negotiated: u32,
    },
    /// ServerGuid.
    ServerGuid,
    /// SecurityMode.
    SecurityMode {
        /// In the validation response.
        validated: u16,
        /// In the NEGOTIATE response.
        negotiated: u16,
    },
    /// Dialect.
    Dialect {
        /// In the validation response.
        validated: Dialect,
        /// In the NEGOTIATE response.
        negotiated: Dialect,
    },
}

impl fmt::Display for NegotiateMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiateMismatch::Capabilities {
                validated,
                negotiated,
            } => write!(
                f,
                "Capabilities 0x{validated:08x} (NEGOTIATE said 0x{negotiated:08x})"
            ),
            NegotiateMismatch::ServerGuid => f.write_str("ServerGuid differs"),
            NegotiateMismatch::SecurityMode {
                validated,
                negotiated,
            } => write!(
                f,
                "SecurityMode 0x{validated:04x} (NEGOTIATE said 0x{negotiated:04x})"
            ),
            NegotiateMismatch::Dialect {
                validated,
                negotiated,
            } => write!(
                f,
                "Dialect {} (NEGOTIATE said {})",
                validated.dotted(),
                negotiated.dotted()
            ),
        }
    }
}

/// Why authentication failed on this side of the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// The mechanism ([`Authenticator`](super::Authenticator)) refused a token or failed.
    Mechanism(AuthError),
    /// The server wants another leg but the mechanism has nothing to send.
    NoToken,
    /// An authenticated (non-guest, non-anonymous) session without a session key.
    NoSessionKey,
    /// The signing key could not be derived from the session key.
    SigningKey(SigningError),
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Mechanism(e) => e.fmt(f),
            AuthFailure::NoToken => {
                f.write_str("the server wants more but the mechanism has nothing to send")
            }
            AuthFailure::NoSessionKey => f.write_str("no session key"),
            AuthFailure::SigningKey(e) => write!(f, "signing key: {e}"),
        }
    }
}

impl std::error::Error for AuthFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthFailure::Mechanism(e) => Some(e),
            _ => None,
        }
    }
}
