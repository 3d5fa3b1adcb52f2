//! SMB2 CHANGE_NOTIFY request and response (MS-SMB2 2.2.35, 2.2.36).

use super::query_directory::{encode_output_buffer, read_output_buffer};
use super::{body_impl, FileId};
use crate::codec::{DecodeError, Writer};

/// CHANGE_NOTIFY Flags (2.2.35).
pub mod change_notify_flags {
    /// CHANGE_NOTIFY Flags: `WATCH_TREE` = 0x0001 (2.2.35).
    pub const WATCH_TREE: u16 = 0x0001;
}

/// CompletionFilter bits (2.2.35).
pub mod completion_filter {
    /// CompletionFilter bits: `FILE_NAME` = 0x0000_0001 (2.2.35).
    pub const FILE_NAME: u32 = 0x0000_0001;
    /// CompletionFilter bits: `DIR_NAME` = 0x0000_0002 (2.2.35).
    pub const DIR_NAME: u32 = 0x0000_0002;
    /// CompletionFilter bits: `ATTRIBUTES` = 0x0000_0004 (2.2.35).
    pub const ATTRIBUTES: u32 = 0x0000_0004;
    /// CompletionFilter bits: `SIZE` = 0x0000_0008 (2.2.35).
    pub const SIZE: u32 = 0x0000_0008;
    /// CompletionFilter bits: `LAST_WRITE` = 0x0000_0010 (2.2.35).
    pub const LAST_WRITE: u32 = 0x0000_0010;
    /// CompletionFilter bits: `LAST_ACCESS` = 0x0000_0020 (2.2.35).
    pub const LAST_ACCESS: u32 = 0x0000_0020;
    /// CompletionFilter bits: `CREATION` = 0x0000_0040 (2.2.35).
    pub const CREATION: u32 = 0x0000_0040;
    /// CompletionFilter bits: `EA` = 0x0000_0080 (2.2.35).
    pub const EA: u32 = 0x0000_0080;
    /// CompletionFilter bits: `SECURITY` = 0x0000_0100 (2.2.35).
    pub const SECURITY: u32 = 0x0000_0100;
    /// CompletionFilter bits: `STREAM_NAME` = 0x0000_0200 (2.2.35).
    pub const STREAM_NAME: u32 = 0x0000_0200;
    /// CompletionFilter bits: `STREAM_SIZE` = 0x0000_0400 (2.2.35).
    pub const STREAM_SIZE: u32 = 0x0000_0400;
    /// CompletionFilter bits: `STREAM_WRITE` = 0x0000_0800 (2.2.35).
    pub const STREAM_WRITE: u32 = 0x0000_0800;
}

/// SMB2 CHANGE_NOTIFY request (2.2.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeNotifyRequest {
    /// Flags (2.2.35): SMB2_WATCH_TREE to watch the whole subtree.
    pub flags: u16,
    /// OutputBufferLength: the most bytes the server may return.
    pub output_buffer_length: u32,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// CompletionFilter (2.2.35): which changes to report (`completion_filter` bits).
    pub completion_filter: u32,
}

impl ChangeNotifyRequest {
    /// StructureSize the spec fixes for this body (2.2.35); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 32;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        out.put_u32(self.output_buffer_length);
        self.file_id.encode(out);
        out.put_u32(self.completion_filter);
        out.put_u32(0);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "CHANGE_NOTIFY request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let flags = r.u16(W)?;
        let output_buffer_length = r.u32(W)?;
        let file_id = FileId::read(&mut r)?;
        let completion_filter = r.u32(W)?;
        r.skip(4, W)?;
        super::end_fixed(&r, W)?;
        Ok(ChangeNotifyRequest {
            flags,
            output_buffer_length,
            file_id,
            completion_filter,
        })
    }
}

body_impl!(ChangeNotifyRequest, CHANGE_NOTIFY);

/// SMB2 CHANGE_NOTIFY response (2.2.36): FILE_NOTIFY_INFORMATION entries, kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeNotifyResponse {
    /// The FILE_NOTIFY_INFORMATION entries (MS-FSCC 2.4.42), raw.
    pub buffer: Vec<u8>,
}

impl ChangeNotifyResponse {
    /// StructureSize the spec fixes for this body (2.2.36); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_output_buffer(out, &self.buffer);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        Ok(ChangeNotifyResponse {
            buffer: read_output_buffer(message, "CHANGE_NOTIFY response")?,
        })
    }
}

body_impl!(ChangeNotifyResponse, CHANGE_NOTIFY);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let c = ChangeNotifyRequest {
            flags: change_notify_flags::WATCH_TREE,
            output_buffer_length: 4096,
            file_id: FileId {
                persistent: 1,
                volatile: 2,
            },
            completion_filter: completion_filter::FILE_NAME | completion_filter::DIR_NAME,
        };
        let msg = build(&req(Command::CHANGE_NOTIFY), &c);
        assert_eq!(msg.len(), 64 + 32);
        assert_eq!(ChangeNotifyRequest::read(&msg).unwrap(), c);
        let r = ChangeNotifyResponse { buffer: vec![] };
        let msg = build(&resp(Command::CHANGE_NOTIFY), &r);
        assert_eq!(ChangeNotifyResponse::read(&msg).unwrap(), r);
    }
}
