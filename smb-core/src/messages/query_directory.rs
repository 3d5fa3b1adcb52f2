//! SMB2 QUERY_DIRECTORY request and response (MS-SMB2 2.2.33, 2.2.34). The entries in the
//! response buffer are encoded and decoded by [`super::info`].

use super::info::FileInfoClass;
use super::{body_impl, buffer, len_u16, len_u32, put_buffer, FileId};
use crate::codec::{from_utf16le, utf16le, DecodeError, Writer};
use crate::header::HEADER_LEN;

/// QUERY_DIRECTORY Flags (2.2.33).
pub mod query_directory_flags {
    /// QUERY_DIRECTORY Flags: `RESTART_SCANS` = 0x01 (2.2.33).
    pub const RESTART_SCANS: u8 = 0x01;
    /// QUERY_DIRECTORY Flags: `RETURN_SINGLE_ENTRY` = 0x02 (2.2.33).
    pub const RETURN_SINGLE_ENTRY: u8 = 0x02;
    /// QUERY_DIRECTORY Flags: `INDEX_SPECIFIED` = 0x04 (2.2.33).
    pub const INDEX_SPECIFIED: u8 = 0x04;
    /// QUERY_DIRECTORY Flags: `REOPEN` = 0x10 (2.2.33).
    pub const REOPEN: u8 = 0x10;
}

/// SMB2 QUERY_DIRECTORY request (2.2.33).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryDirectoryRequest {
    /// FileInformationClass (2.2.33): the MS-FSCC class of the entries.
    pub file_information_class: FileInfoClass,
    /// Flags (2.2.33): `query_directory_flags` bits (restart, single entry, index, reopen).
    pub flags: u8,
    /// FileIndex: position of the entry in the directory (0 when the server does not keep one).
    pub file_index: u32,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// Search pattern ("*" for everything; empty means "*" per 3.3.5.18).
    pub pattern: String,
    /// OutputBufferLength: the most bytes the server may return.
    pub output_buffer_length: u32,
}

impl QueryDirectoryRequest {
    /// StructureSize the spec fixes for this body (2.2.33); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 33;
    const FIXED_END: usize = HEADER_LEN + 32;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name = utf16le(&self.pattern);
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.file_information_class.0);
        out.put_u8(self.flags);
        out.put_u32(self.file_index);
        self.file_id.encode(out);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(len_u16(name.len()));
        out.put_u32(self.output_buffer_length);
        let off = put_buffer(out, &name);
        if !name.is_empty() {
            out.patch_u16(off_at, len_u16(off));
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "QUERY_DIRECTORY request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let file_information_class = FileInfoClass(r.u8(W)?);
        let flags = r.u8(W)?;
        let file_index = r.u32(W)?;
        let file_id = FileId::read(&mut r)?;
        let off = usize::from(r.u16(W)?);
        let len = usize::from(r.u16(W)?);
        let output_buffer_length = r.u32(W)?;
        let pattern = from_utf16le(
            buffer(message, off, len, Self::FIXED_END, "FileName")?,
            "FileName",
        )?;
        Ok(QueryDirectoryRequest {
            file_information_class,
            flags,
            file_index,
            file_id,
            pattern,
            output_buffer_length,
        })
    }
}

body_impl!(QueryDirectoryRequest, QUERY_DIRECTORY);

/// SMB2 QUERY_DIRECTORY response (2.2.34): the raw entry buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryDirectoryResponse {
    /// The directory entries (2.2.34), raw, in the requested class.
    pub buffer: Vec<u8>,
}

/// Shared shape of the QUERY_DIRECTORY, QUERY_INFO and CHANGE_NOTIFY responses:
/// StructureSize 9, OutputBufferOffset (u16), OutputBufferLength (u32), Buffer.
pub(crate) fn encode_output_buffer(out: &mut Vec<u8>, data: &[u8]) {
    out.put_u16(9);
    let off_at = out.len();
    out.put_u16(0);
    out.put_u32(len_u32(data.len()));
    let off = put_buffer(out, data);
    out.patch_u16(off_at, len_u16(off));
}

pub(crate) fn read_output_buffer(
    message: &[u8],
    what: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let mut r = super::body(message, 9, what)?;
    let off = usize::from(r.u16(what)?);
    let len = r.u32(what)? as usize;
    Ok(buffer(message, off, len, HEADER_LEN + 8, what)?.to_vec())
}

impl QueryDirectoryResponse {
    /// StructureSize the spec fixes for this body (2.2.34); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_output_buffer(out, &self.buffer);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        Ok(QueryDirectoryResponse {
            buffer: read_output_buffer(message, "QUERY_DIRECTORY response")?,
        })
    }
}

body_impl!(QueryDirectoryResponse, QUERY_DIRECTORY);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::info::{
        decode_directory_entries, encode_directory_entries, DirectoryEntry,
    };
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        for pattern in ["*", ""] {
            let q = QueryDirectoryRequest {
                file_information_class: FileInfoClass::ID_BOTH_DIRECTORY,
                flags: query_directory_flags::RESTART_SCANS,
                file_index: 0,
                file_id: FileId {
                    persistent: 1,
                    volatile: 2,
                },
                pattern: pattern.into(),
                output_buffer_length: 65536,
            };
            let msg = build(&req(Command::QUERY_DIRECTORY), &q);
            assert_eq!(QueryDirectoryRequest::read(&msg).unwrap(), q);
        }
        let entries = vec![DirectoryEntry {
            file_name: "a.txt".into(),
            ..Default::default()
        }];
        let (buf, _) = encode_directory_entries(FileInfoClass::NAMES, &entries, 1024).unwrap();
        let r = QueryDirectoryResponse { buffer: buf };
        let msg = build(&resp(Command::QUERY_DIRECTORY), &r);
        let back = QueryDirectoryResponse::read(&msg).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            decode_directory_entries(FileInfoClass::NAMES, &back.buffer).unwrap(),
            entries
        );
        let mut bad = msg;
        bad[68..72].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(QueryDirectoryResponse::read(&bad).is_err());
    }
}
