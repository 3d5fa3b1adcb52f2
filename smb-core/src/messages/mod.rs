//! SMB2 message bodies (MS-SMB2 2.2.x), one file per command.
//!
//! Every body type has the same two functions:
//! - `encode(&self, out: &mut Vec<u8>)`: `out` already holds exactly this message's 64-byte
//!   header at `out[0]`, so an offset field is `out.len()` at the point its buffer is written.
//! - `read(message: &[u8]) -> Result<Self, DecodeError>`: `message` is the whole single message
//!   starting at its header; the body starts at byte 64 and every offset is resolved against
//!   `message` with [`slice_at`].
//!
//! Decoding rules, the same for every command:
//! - StructureSize must be the one the spec gives for the command;
//! - an offset/length pair that points outside the message (or back into the header or the
//!   fixed part of the body) is a [`DecodeError`];
//! - whatever follows a body is ignored, fixed-size (even StructureSize) or not: Samba
//!   (`smbd_smb2_request_verify_sizes`) takes the bytes after the fixed part as a dynamic part
//!   that a fixed-size request simply does not read, and MS-SMB2 3.3.5.2.6 only fails
//!   requests that "do not conform to the structures outlined in section 2", which extra
//!   bytes do not make them (alignment padding of a compound chain is the common case);
//! - reserved fields are skipped, whatever their value; lengths longer than the structure
//!   they carry are accepted where Windows and Samba accept them (negotiate contexts, the
//!   VALIDATE_NEGOTIATE_INFO input); a length or count that runs past the data is an error.
//!
//! Encoding always writes at least one Buffer byte for an odd StructureSize, because Samba
//! rejects a request whose dynamic part is empty (`smbd_smb2_request_verify_sizes`).

use crate::codec::{slice_at, DecodeError, InvalidReason, Reader, Writer};
use crate::header::{Command, Header, HEADER_LEN};

pub mod cancel;
pub mod change_notify;
pub mod close;
pub mod create;
pub mod echo;
pub mod error;
pub mod flush;
pub mod info;
pub mod ioctl;
pub mod lease;
pub mod lock;
pub mod logoff;
pub mod negotiate;
pub mod oplock_break;
pub mod query_directory;
pub mod query_info;
pub mod read;
pub mod session_setup;
pub mod set_info;
pub mod smb1_negotiate;
pub mod tree_connect;
pub mod tree_disconnect;
pub mod write;

/// A message body that can be appended after its header.
pub trait EncodeBody {
    /// The command this body belongs to (checked against the header in debug builds);
    /// `None` for the ERROR response, which answers any command.
    const COMMAND: Option<Command>;
    /// Appends the body; `out` holds exactly the message's header at `out[0]`.
    fn encode_body(&self, out: &mut Vec<u8>);
}

/// Implements [`EncodeBody`] by forwarding to the type's own `encode`.
macro_rules! body_impl {
    ($ty:ty, $cmd:ident) => {
        impl $crate::messages::EncodeBody for $ty {
            const COMMAND: Option<$crate::header::Command> = Some($crate::header::Command::$cmd);
            fn encode_body(&self, out: &mut Vec<u8>) {
                self.encode(out)
            }
        }
    };
}
pub(crate) use body_impl;

/// Implements [`EncodeBody`] for a body that may answer any command (the ERROR response).
macro_rules! body_impl_any {
    ($ty:ty) => {
        impl $crate::messages::EncodeBody for $ty {
            const COMMAND: Option<$crate::header::Command> = None;
            fn encode_body(&self, out: &mut Vec<u8>) {
                self.encode(out)
            }
        }
    };
}
pub(crate) use body_impl_any;

/// Declares a body that is only StructureSize 4 and a Reserved u16 (LOGOFF, TREE_DISCONNECT,
/// ECHO, CANCEL, FLUSH response...).
macro_rules! empty_body {
    ($(#[$m:meta])* $name:ident, $cmd:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;
        impl $name {
            /// StructureSize the spec fixes for this body; `read` rejects any other.
            pub const STRUCTURE_SIZE: u16 = 4;
            /// Appends the wire form to `out`.
            pub fn encode(&self, out: &mut Vec<u8>) {
                $crate::codec::Writer::put_u16(out, Self::STRUCTURE_SIZE);
                $crate::codec::Writer::put_u16(out, 0);
            }
            /// Parses the body of a whole message (header included), checking StructureSize.
            pub fn read(message: &[u8]) -> Result<Self, $crate::codec::DecodeError> {
                let mut r = $crate::messages::body(message, Self::STRUCTURE_SIZE, $what)?;
                r.skip(2, $what)?; // Reserved
                $crate::messages::end_fixed(&r, $what)?;
                Ok($name)
            }
        }
        $crate::messages::body_impl!($name, $cmd);
    };
}
pub(crate) use empty_body;

/// One whole message: `header` then `body`.
pub fn build<B: EncodeBody>(header: &Header, body: &B) -> Vec<u8> {
    debug_assert!(
        B::COMMAND.is_none_or(|c| c == header.command),
        "body for {:?} under a {:?} header",
        B::COMMAND,
        header.command
    );
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    header.encode(&mut out);
    body.encode_body(&mut out);
    out
}

/// The FileId of an open (MS-SMB2 2.2.14.1): persistent and volatile halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId {
    /// Persistent half: survives reconnects of a durable open.
    pub persistent: u64,
    /// Volatile half: may change when the open is reestablished.
    pub volatile: u64,
}

impl FileId {
    /// All ones: "the file of the preceding CREATE in this compound" (MS-SMB2 3.2.4.1.4).
    pub const RELATED: FileId = FileId {
        persistent: u64::MAX,
        volatile: u64::MAX,
    };

    /// Reads the wire form from `r`.
    pub fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FileId {
            persistent: r.u64("FileId")?,
            volatile: r.u64("FileId")?,
        })
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.persistent);
        out.put_u64(self.volatile);
    }
}

/// Starts reading the body of `message`: skips the header and checks StructureSize.
/// MS-SMB2 3.3.5.2.6: "If the server receives a request that does not conform to the
/// structures outlined in section 2, the server MUST fail the request ... with the error
/// code STATUS_INVALID_PARAMETER"; a wrong StructureSize is the first such check.
pub(crate) fn body<'a>(
    message: &'a [u8],
    structure_size: u16,
    what: &'static str,
) -> Result<Reader<'a>, DecodeError> {
    let mut r = Reader::new(message);
    r.skip(HEADER_LEN, what)?;
    let size = r.u16(what)?;
    if size != structure_size {
        return Err(DecodeError::invalid(
            what,
            InvalidReason::StructureSize {
                found: size,
                expected: structure_size,
            },
        ));
    }
    Ok(r)
}

/// Ends a fixed-size body. Whatever follows is ignored, as Samba ignores the dynamic part of
/// a fixed-size request (see the module documentation); kept as a call so every fixed-size
/// reader says where its structure ends.
pub(crate) fn end_fixed(_r: &Reader, _what: &'static str) -> Result<(), DecodeError> {
    Ok(())
}

/// Resolves a variable buffer given by `offset`/`len` (from the header start).
/// An empty buffer is empty whatever its offset says; a non-empty one must lie after the
/// fixed part of the body (`min_offset`) and inside the message.
pub(crate) fn buffer<'a>(
    message: &'a [u8],
    offset: usize,
    len: usize,
    min_offset: usize,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    if len == 0 {
        return Ok(&[]);
    }
    if offset < min_offset {
        return Err(DecodeError::invalid(
            what,
            InvalidReason::OffsetTooSmall {
                offset,
                min: min_offset,
            },
        ));
    }
    slice_at(message, offset, len, what)
}

/// Writes a variable buffer for an odd-StructureSize body: at least one byte (MS-SMB2 2.2:
/// the StructureSize counts one Buffer byte). Returns the offset where `data` starts.
pub(crate) fn put_buffer(out: &mut Vec<u8>, data: &[u8]) -> usize {
    let at = out.len();
    if data.is_empty() {
        out.put_u8(0);
    } else {
        out.put_bytes(data);
    }
    at
}

/// Converts a length to a wire u16, saturating is never right: callers keep buffers small
/// enough (a message is at most 16 MiB), so this only guards against programming errors.
pub(crate) fn len_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Converts a length or offset to a wire u32 (see [`len_u16`]).
pub(crate) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Rounds up to a multiple of 8.
pub(crate) fn align8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use crate::header::NtStatus;

    /// A request header for `command` (message id 7, session 0x11, tree 3).
    pub fn req(command: Command) -> Header {
        Header::request(command, 7, 0x11, 3)
    }

    /// A response header for `command`.
    pub fn resp(command: Command) -> Header {
        req(command).response(NtStatus::SUCCESS)
    }
}
