//! SMB2 WRITE request and response (MS-SMB2 2.2.21, 2.2.22).

use super::{body_impl, buffer, len_u16, len_u32, put_buffer, FileId};
use crate::codec::{DecodeError, Writer};
use crate::header::HEADER_LEN;

/// WRITE request Flags (2.2.21).
pub mod write_flags {
    /// WRITE request Flags: `WRITE_THROUGH` = 0x0000_0001 (2.2.21).
    pub const WRITE_THROUGH: u32 = 0x0000_0001;
    /// WRITE request Flags: `WRITE_UNBUFFERED` = 0x0000_0002 (2.2.21).
    pub const WRITE_UNBUFFERED: u32 = 0x0000_0002;
}

/// SMB2 WRITE request (2.2.21). The data follows the 48-byte fixed part (offset 0x70).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteRequest {
    /// Offset: byte offset into the file.
    pub offset: u64,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// Channel: SMB2_CHANNEL_* (0 = none; RDMA is not supported here).
    pub channel: u32,
    /// RemainingBytes: bytes the client expects to read or write next (a hint; 0 if unknown).
    pub remaining_bytes: u32,
    /// Flags (2.2.21): SMB2_WRITEFLAG_WRITE_THROUGH / _WRITE_UNBUFFERED bits.
    pub flags: u32,
    /// The bytes to write (2.2.21).
    pub data: Vec<u8>,
}

impl WriteRequest {
    /// StructureSize the spec fixes for this body (2.2.21); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 49;
    /// Where the data starts: header + the 48-byte fixed part.
    pub const DATA_OFFSET: u16 = 0x70;
    const FIXED_END: usize = HEADER_LEN + 48;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u32(len_u32(self.data.len()));
        out.put_u64(self.offset);
        self.file_id.encode(out);
        out.put_u32(self.channel);
        out.put_u32(self.remaining_bytes);
        out.put_u16(0); // WriteChannelInfoOffset
        out.put_u16(0); // WriteChannelInfoLength
        out.put_u32(self.flags);
        let off = put_buffer(out, &self.data);
        out.patch_u16(off_at, len_u16(off));
    }

    /// Appends the 48-byte fixed part for `data_len` bytes of data that follow it (at
    /// [`DATA_OFFSET`](Self::DATA_OFFSET)), ignoring `self.data`: a sender that already has
    /// the data in place behind the header writes only this.
    pub fn encode_fixed(&self, data_len: usize, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(Self::DATA_OFFSET);
        out.put_u32(len_u32(data_len));
        out.put_u64(self.offset);
        self.file_id.encode(out);
        out.put_u32(self.channel);
        out.put_u32(self.remaining_bytes);
        out.put_u16(0); // WriteChannelInfoOffset
        out.put_u16(0); // WriteChannelInfoLength
        out.put_u32(self.flags);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        let (mut req, data) = Self::read_parts(message)?;
        req.data = data.to_vec();
        Ok(req)
    }

    /// The request with an empty `data`, and the data as a slice of `message` (no copy:
    /// a server hands it to the file system from the received frame).
    pub fn read_parts(message: &[u8]) -> Result<(Self, &[u8]), DecodeError> {
        const W: &str = "WRITE request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let data_offset = usize::from(r.u16(W)?);
        let length = r.u32(W)? as usize;
        let offset = r.u64(W)?;
        let file_id = FileId::read(&mut r)?;
        let channel = r.u32(W)?;
        let remaining_bytes = r.u32(W)?;
        r.skip(4, W)?; // WriteChannelInfoOffset/Length: RDMA only, ignored
        let flags = r.u32(W)?;
        let data = buffer(message, data_offset, length, Self::FIXED_END, "WRITE data")?;
        let req = WriteRequest {
            offset,
            file_id,
            channel,
            remaining_bytes,
            flags,
            data: Vec::new(),
        };
        Ok((req, data))
    }
}

body_impl!(WriteRequest, WRITE);

/// SMB2 WRITE response (2.2.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteResponse {
    /// Count (2.2.22): bytes written.
    pub count: u32,
    /// Remaining (2.2.22): reserved, 0.
    pub remaining: u32,
}

impl WriteResponse {
    /// StructureSize the spec fixes for this body (2.2.22); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 17;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(self.count);
        out.put_u32(self.remaining);
        out.put_u16(0);
        out.put_u16(0);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "WRITE response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        r.skip(2, W)?;
        let count = r.u32(W)?;
        let remaining = r.u32(W)?;
        r.skip(4, W)?;
        Ok(WriteResponse { count, remaining })
    }
}

body_impl!(WriteResponse, WRITE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let w = WriteRequest {
            offset: 4096,
            file_id: FileId {
                persistent: 1,
                volatile: 0xFFFF_0000_1234,
            },
            channel: 0,
            remaining_bytes: 0,
            flags: write_flags::WRITE_THROUGH,
            data: (0..=255u8).collect(),
        };
        let msg = build(&req(Command::WRITE), &w);
        assert_eq!(
            u16::from_le_bytes([msg[66], msg[67]]),
            WriteRequest::DATA_OFFSET
        );
        assert_eq!(WriteRequest::read(&msg).unwrap(), w);
        let mut bad = msg.clone();
        bad[68..72].copy_from_slice(&257u32.to_le_bytes());
        assert!(WriteRequest::read(&bad).is_err());
        let r = WriteResponse {
            count: 256,
            remaining: 0,
        };
        let msg = build(&resp(Command::WRITE), &r);
        assert_eq!(msg.len(), 64 + 16);
        assert_eq!(WriteResponse::read(&msg).unwrap(), r);
    }
}
