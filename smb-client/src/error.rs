//! The client driver's error type: what went wrong in an operation, from the socket, the
//! framing, the sans-IO state machine or the server's answer.

use std::fmt;
use std::io;

use smb_core::conn::client::ClientError;
use smb_core::framing::FramingError;
use smb_core::header::NtStatus;

/// Why an operation failed.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    /// No answer in time.
    Timeout(&'static str),
    /// The server closed the connection.
    Closed,
    Framing(FramingError),
    /// The state machine refused or failed (bad signature, downgrade, ...).
    Connection(ClientError),
    /// The server answered with an error status.
    Status {
        status: NtStatus,
        context: String,
    },
    /// A local problem (e.g. a local file) described in words.
    Local(String),
}

impl Error {
    /// The NT status, when the server gave one.
    pub fn status(&self) -> Option<NtStatus> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `NT_STATUS_ACCESS_DENIED`, smbclient's spelling of a status.
pub fn status_name(status: NtStatus) -> String {
    format!("NT_STATUS_{status:?}")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::Closed => f.write_str("the server closed the connection"),
            Error::Framing(e) => write!(f, "bad frame from the server: {e}"),
            Error::Connection(e) => e.fmt(f),
            Error::Status { status, context } if context.is_empty() => {
                f.write_str(&status_name(*status))
            }
            Error::Status { status, context } => write!(f, "{} {context}", status_name(*status)),
            Error::Local(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error::Connection(e)
    }
}

impl From<FramingError> for Error {
    fn from(e: FramingError) -> Self {
        Error::Framing(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
