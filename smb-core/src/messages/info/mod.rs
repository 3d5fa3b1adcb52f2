//! MS-FSCC information classes carried by QUERY_DIRECTORY, QUERY_INFO and SET_INFO:
//! directory entries (2.4 query-directory classes), file classes, file-system classes, and
//! a minimal self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6).
//!
//! Each structure has `encode(&self, out)` and `read(buf)` where `buf` is the info buffer
//! itself (not a whole message). A buffer longer than the structure is accepted for the
//! fixed-size classes (senders may pad to 8 bytes); a shorter one is a [`DecodeError`].
//!
//! One file per family: `directory.rs` (QUERY_DIRECTORY entries), `file.rs` (InfoType FILE),
//! `filesystem.rs` (InfoType FILESYSTEM), `security.rs` (InfoType SECURITY). Their public
//! items are all re-exported here, so a caller names them `messages::info::Item`.

use std::fmt;

use super::len_u32;
use crate::codec::{from_utf16le, slice_at, DecodeError, InvalidReason, Reader, Writer};
use crate::header::wire_enum;

mod directory;
mod file;
mod filesystem;
mod security;
#[cfg(test)]
mod tests;

pub use directory::*;
pub use file::*;
pub use filesystem::*;
pub use security::*;

wire_enum! {
    /// FileInformationClass values for QUERY_DIRECTORY and QUERY_INFO/SET_INFO with
    /// InfoType FILE (MS-FSCC 2.4).
    FileInfoClass(u8) {
        DIRECTORY = 1,
        FULL_DIRECTORY = 2,
        BOTH_DIRECTORY = 3,
        BASIC = 4,
        STANDARD = 5,
        INTERNAL = 6,
        EA = 7,
        ACCESS = 8,
        NAME = 9,
        RENAME = 10,
        NAMES = 12,
        DISPOSITION = 13,
        POSITION = 14,
        FULL_EA = 15,
        MODE = 16,
        ALIGNMENT = 17,
        ALL = 18,
        ALLOCATION = 19,
        END_OF_FILE = 20,
        ALTERNATE_NAME = 21,
        STREAM = 22,
        COMPRESSION = 28,
        NETWORK_OPEN = 34,
        ATTRIBUTE_TAG = 35,
        ID_BOTH_DIRECTORY = 37,
        ID_FULL_DIRECTORY = 38,
        NORMALIZED_NAME = 48,
        DISPOSITION_EX = 64,
    }
}

wire_enum! {
    /// FsInformationClass values for QUERY_INFO with InfoType FILESYSTEM (MS-FSCC 2.5).
    FsInfoClass(u8) {
        VOLUME = 1,
        SIZE = 3,
        DEVICE = 4,
        ATTRIBUTE = 5,
        CONTROL = 6,
        FULL_SIZE = 7,
        OBJECT_ID = 8,
        SECTOR_SIZE = 11,
    }
}

pub(super) fn utf16_name(
    r: &mut Reader,
    len: usize,
    what: &'static str,
) -> Result<String, DecodeError> {
    from_utf16le(r.take(len, what)?, what)
}

/// Starts the next entry of a NextEntryOffset chain that begins at `base` in `out`: pads to
/// an 8-byte boundary from `base` (MS-FSCC 2.4: entries are 8-byte aligned) and points the
/// previous entry's NextEntryOffset (at `prev`) to it. Returns where the new entry starts.
pub(super) fn start_chain_entry(out: &mut Vec<u8>, base: usize, prev: Option<usize>) -> usize {
    let start = base + super::align8(out.len() - base);
    out.resize(start, 0);
    if let Some(p) = prev {
        out.patch_u32(p, len_u32(start - p));
    }
    start
}

/// Walks a NextEntryOffset chain, each entry parsed from its own bytes.
pub(super) fn decode_chain<T>(
    buf: &[u8],
    mut read: impl FnMut(&[u8]) -> Result<(T, u32), DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    const W: &str = "NextEntryOffset chain";
    let mut out = Vec::new();
    let mut pos = 0usize;
    if buf.is_empty() {
        return Ok(out);
    }
    loop {
        let rest = slice_at(buf, pos, buf.len().saturating_sub(pos), W)?;
        let (entry, next) = read(rest)?;
        out.push(entry);
        if next == 0 {
            return Ok(out);
        }
        let next = next as usize;
        // Each entry is at least 4 bytes of NextEntryOffset: `next` must move forward and
        // the following entry must start inside the buffer.
        if next < 4 || next >= rest.len() {
            return Err(DecodeError::invalid(
                W,
                InvalidReason::BadNextOffset { next },
            ));
        }
        pos += next;
    }
}
