//! SMB2 QUERY_INFO request and response (MS-SMB2 2.2.37, 2.2.38). The buffers hold the
//! MS-FSCC classes of [`super::info`].

use std::fmt;

use super::query_directory::{encode_output_buffer, read_output_buffer};
use super::{body_impl, buffer, len_u16, len_u32, FileId};
use crate::codec::{DecodeError, Writer};
use crate::header::{wire_enum, HEADER_LEN};

wire_enum! {
    /// InfoType (2.2.37).
    InfoType(u8) {
        FILE = 0x01,
        FILESYSTEM = 0x02,
        SECURITY = 0x03,
        QUOTA = 0x04,
    }
}

/// QUERY_INFO Flags (2.2.37), for FileFullEaInformation.
pub mod query_info_flags {
    /// QUERY_INFO Flags: `RESTART_SCAN` = 0x0000_0001 (2.2.37).
    pub const RESTART_SCAN: u32 = 0x0000_0001;
    /// QUERY_INFO Flags: `RETURN_SINGLE_ENTRY` = 0x0000_0002 (2.2.37).
    pub const RETURN_SINGLE_ENTRY: u32 = 0x0000_0002;
    /// QUERY_INFO Flags: `INDEX_SPECIFIED` = 0x0000_0004 (2.2.37).
    pub const INDEX_SPECIFIED: u32 = 0x0000_0004;
}

/// SMB2 QUERY_INFO request (2.2.37).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryInfoRequest {
    /// InfoType (2.2.37): FILE, FILESYSTEM, SECURITY or QUOTA.
    pub info_type: InfoType,
    /// A FileInfoClass or FsInfoClass value depending on `info_type`; 0 for SECURITY.
    pub file_info_class: u8,
    /// OutputBufferLength: the most bytes the server may return.
    pub output_buffer_length: u32,
    /// Input for QUOTA and FileFullEaInformation queries; usually empty.
    pub input_buffer: Vec<u8>,
    /// SECURITY: the security_information bits; FILE: 0 (or EA flags).
    pub additional_information: u32,
    /// Flags (2.2.37): SL_* bits for EA queries, else 0.
    pub flags: u32,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
}

impl QueryInfoRequest {
    /// StructureSize the spec fixes for this body (2.2.37); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 41;
    const FIXED_END: usize = HEADER_LEN + 40;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.info_type.0);
        out.put_u8(self.file_info_class);
        out.put_u32(self.output_buffer_length);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(0);
        out.put_u32(len_u32(self.input_buffer.len()));
        out.put_u32(self.additional_information);
        out.put_u32(self.flags);
        self.file_id.encode(out);
        let off = super::put_buffer(out, &self.input_buffer);
        if !self.input_buffer.is_empty() {
            out.patch_u16(off_at, len_u16(off));
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "QUERY_INFO request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let info_type = InfoType(r.u8(W)?);
        let file_info_class = r.u8(W)?;
        let output_buffer_length = r.u32(W)?;
        let off = usize::from(r.u16(W)?);
        r.skip(2, W)?;
        let len = r.u32(W)? as usize;
        let additional_information = r.u32(W)?;
        let flags = r.u32(W)?;
        let file_id = FileId::read(&mut r)?;
        let input_buffer = buffer(message, off, len, Self::FIXED_END, "QUERY_INFO input")?.to_vec();
        Ok(QueryInfoRequest {
            info_type,
            file_info_class,
            output_buffer_length,
            input_buffer,
            additional_information,
            flags,
            file_id,
        })
    }
}

body_impl!(QueryInfoRequest, QUERY_INFO);

/// SMB2 QUERY_INFO response (2.2.38): the raw info buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryInfoResponse {
    /// The information returned (2.2.38), raw.
    pub buffer: Vec<u8>,
}

impl QueryInfoResponse {
    /// StructureSize the spec fixes for this body (2.2.38); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_output_buffer(out, &self.buffer);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        Ok(QueryInfoResponse {
            buffer: read_output_buffer(message, "QUERY_INFO response")?,
        })
    }
}

body_impl!(QueryInfoResponse, QUERY_INFO);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::info::{FileInfoClass, FileStandardInformation};
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let q = QueryInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: FileInfoClass::STANDARD.0,
            output_buffer_length: 24,
            input_buffer: vec![],
            additional_information: 0,
            flags: 0,
            file_id: FileId {
                persistent: 8,
                volatile: 9,
            },
        };
        let msg = build(&req(Command::QUERY_INFO), &q);
        assert_eq!(msg.len(), 64 + 41);
        assert_eq!(QueryInfoRequest::read(&msg).unwrap(), q);
        let q2 = QueryInfoRequest {
            info_type: InfoType::QUOTA,
            input_buffer: vec![1; 24],
            ..q
        };
        let msg = build(&req(Command::QUERY_INFO), &q2);
        assert_eq!(QueryInfoRequest::read(&msg).unwrap(), q2);

        let mut buf = Vec::new();
        FileStandardInformation {
            end_of_file: 3,
            number_of_links: 1,
            ..Default::default()
        }
        .encode(&mut buf);
        let r = QueryInfoResponse { buffer: buf };
        let msg = build(&resp(Command::QUERY_INFO), &r);
        assert_eq!(QueryInfoResponse::read(&msg).unwrap(), r);
    }
}
