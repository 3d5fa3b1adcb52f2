//! SMB2 READ request and response (MS-SMB2 2.2.19, 2.2.20).

use std::ops::Range;

use super::{body_impl, buffer, len_u16, len_u32, put_buffer, FileId};
use crate::codec::{DecodeError, Writer};
use crate::header::HEADER_LEN;

/// READ request Flags (2.2.19).
pub mod read_flags {
    /// READ request Flags: `UNBUFFERED` = 0x01 (2.2.19).
    pub const UNBUFFERED: u8 = 0x01;
    /// READ request Flags: `REQUEST_COMPRESSED` = 0x02 (2.2.19).
    pub const REQUEST_COMPRESSED: u8 = 0x02;
}

/// SMB2 READ request (2.2.19).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadRequest {
    /// Requested offset of the data in the response (0x50 asks for data right after it).
    pub padding: u8,
    /// Flags (2.2.19): SMB2_READFLAG_* bits (3.0.2+), else 0.
    pub flags: u8,
    /// Length: number of bytes.
    pub length: u32,
    /// Offset: byte offset into the file.
    pub offset: u64,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// MinimumCount (2.2.19): fewer bytes than this fail the read.
    pub minimum_count: u32,
    /// Channel: SMB2_CHANNEL_* (0 = none; RDMA is not supported here).
    pub channel: u32,
    /// RemainingBytes: bytes the client expects to read or write next (a hint; 0 if unknown).
    pub remaining_bytes: u32,
    /// ReadChannelInfo (RDMA descriptors), normally empty.
    pub channel_info: Vec<u8>,
}

impl ReadRequest {
    /// StructureSize the spec fixes for this body (2.2.19); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 49;
    const FIXED_END: usize = HEADER_LEN + 48;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.padding);
        out.put_u8(self.flags);
        out.put_u32(self.length);
        out.put_u64(self.offset);
        self.file_id.encode(out);
        out.put_u32(self.minimum_count);
        out.put_u32(self.channel);
        out.put_u32(self.remaining_bytes);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(len_u16(self.channel_info.len()));
        let off = put_buffer(out, &self.channel_info);
        if !self.channel_info.is_empty() {
            out.patch_u16(off_at, len_u16(off));
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "READ request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let padding = r.u8(W)?;
        let flags = r.u8(W)?;
        let length = r.u32(W)?;
        let offset = r.u64(W)?;
        let file_id = FileId::read(&mut r)?;
        let minimum_count = r.u32(W)?;
        let channel = r.u32(W)?;
        let remaining_bytes = r.u32(W)?;
        let ci_off = usize::from(r.u16(W)?);
        let ci_len = usize::from(r.u16(W)?);
        let channel_info =
            buffer(message, ci_off, ci_len, Self::FIXED_END, "ReadChannelInfo")?.to_vec();
        Ok(ReadRequest {
            padding,
            flags,
            length,
            offset,
            file_id,
            minimum_count,
            channel,
            remaining_bytes,
            channel_info,
        })
    }
}

body_impl!(ReadRequest, READ);

/// SMB2 READ response (2.2.20). The data is written right after the 16-byte fixed part,
/// at offset 0x50 from the header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResponse {
    /// DataRemaining (2.2.20): bytes left to read (0 unless RDMA).
    pub data_remaining: u32,
    /// Flags (3.1.1: SMB2_READFLAG_RESPONSE_RDMA_TRANSFORM), Reserved2 before.
    pub flags: u32,
    /// The bytes read (2.2.20).
    pub data: Vec<u8>,
}

impl ReadResponse {
    /// StructureSize the spec fixes for this body (2.2.20); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 17;
    /// Where the data starts: header + the 16-byte fixed part.
    pub const DATA_OFFSET: u8 = 0x50;
    const FIXED_END: usize = HEADER_LEN + 16;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        let off_at = out.len();
        out.put_u8(0);
        out.put_u8(0);
        out.put_u32(len_u32(self.data.len()));
        out.put_u32(self.data_remaining);
        out.put_u32(self.flags);
        let off = put_buffer(out, &self.data);
        out[off_at] = u8::try_from(off).unwrap_or(0);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        let (data_remaining, flags, data) = Self::parse(message)?;
        Ok(ReadResponse {
            data_remaining,
            flags,
            data: message[data].to_vec(),
        })
    }

    /// Where the data lies in `message`, checked as [`read`](Self::read) checks it: a
    /// client that owns the received bytes hands the data on without copying it.
    pub fn data_range(message: &[u8]) -> Result<Range<usize>, DecodeError> {
        Ok(Self::parse(message)?.2)
    }

    /// DataRemaining, Flags and the range of the data.
    fn parse(message: &[u8]) -> Result<(u32, u32, Range<usize>), DecodeError> {
        const W: &str = "READ response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let data_offset = usize::from(r.u8(W)?);
        r.skip(1, W)?;
        let data_length = r.u32(W)? as usize;
        let data_remaining = r.u32(W)?;
        let flags = r.u32(W)?;
        // `buffer` checks that the data lies inside the message, after the fixed part.
        buffer(
            message,
            data_offset,
            data_length,
            Self::FIXED_END,
            "READ data",
        )?;
        let start = if data_length == 0 { 0 } else { data_offset };
        Ok((data_remaining, flags, start..start + data_length))
    }
}

body_impl!(ReadResponse, READ);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let r = ReadRequest {
            padding: 0x50,
            flags: 0,
            length: 65536,
            offset: 1 << 33,
            file_id: FileId {
                persistent: 5,
                volatile: 6,
            },
            minimum_count: 1,
            channel: 0,
            remaining_bytes: 0,
            channel_info: vec![],
        };
        let msg = build(&req(Command::READ), &r);
        assert_eq!(msg.len(), 64 + 49);
        assert_eq!(ReadRequest::read(&msg).unwrap(), r);
        let d = ReadResponse {
            data_remaining: 0,
            flags: 0,
            data: b"hello world".to_vec(),
        };
        let msg = build(&resp(Command::READ), &d);
        assert_eq!(msg[66], 0x50);
        assert_eq!(&msg[80..], b"hello world");
        assert_eq!(ReadResponse::read(&msg).unwrap(), d);
    }

    #[test]
    fn data_outside_message_is_an_error() {
        let d = ReadResponse {
            data: vec![1; 8],
            ..Default::default()
        };
        let msg = build(&resp(Command::READ), &d);
        let mut bad = msg.clone();
        bad[68] = 9;
        assert!(ReadResponse::read(&bad).is_err());
        let mut bad = msg.clone();
        bad[66] = 0x10; // into the header
        assert!(ReadResponse::read(&bad).is_err());
        let mut bad = msg;
        bad[68..72].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ReadResponse::read(&bad).is_err());
    }
}
