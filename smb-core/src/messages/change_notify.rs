//! SMB2 CHANGE_NOTIFY request and response (MS-SMB2 2.2.35, 2.2.36).

use super::query_directory::{encode_output_buffer, read_output_buffer};
use super::{body_impl, FileId};
use crate::codec::{DecodeError, Writer};

/// CHANGE_NOTIFY Flags (2.2.35).
pub mod change_notify_flags {
    pub const WATCH_TREE: u16 = 0x0001;
}

/// CompletionFilter bits (2.2.35).
pub mod completion_filter {
    pub const FILE_NAME: u32 = 0x0000_0001;
    pub const DIR_NAME: u32 = 0x0000_0002;
    pub const ATTRIBUTES: u32 = 0x0000_0004;
    pub const SIZE: u32 = 0x0000_0008;
    pub const LAST_WRITE: u32 = 0x0000_0010;
    pub const LAST_ACCESS: u32 = 0x0000_0020;
    pub const CREATION: u32 = 0x0000_0040;
    pub const EA: u32 = 0x0000_0080;
    pub const SECURITY: u32 = 0x0000_0100;
    pub const STREAM_NAME: u32 = 0x0000_0200;
    pub const STREAM_SIZE: u32 = 0x0000_0400;
    pub const STREAM_WRITE: u32 = 0x0000_0800;
}

/// SMB2 CHANGE_NOTIFY request (2.2.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeNotifyRequest {
    pub flags: u16,
    pub output_buffer_length: u32,
    pub file_id: FileId,
    pub completion_filter: u32,
}

impl ChangeNotifyRequest {
    pub const STRUCTURE_SIZE: u16 = 32;

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        out.put_u32(self.output_buffer_length);
        self.file_id.encode(out);
        out.put_u32(self.completion_filter);
        out.put_u32(0);
    }

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
    pub buffer: Vec<u8>,
}

impl ChangeNotifyResponse {
    pub const STRUCTURE_SIZE: u16 = 9;

    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_output_buffer(out, &self.buffer);
    }

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
