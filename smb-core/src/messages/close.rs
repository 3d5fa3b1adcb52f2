//! SMB2 CLOSE request and response (MS-SMB2 2.2.15, 2.2.16).

use super::{body_impl, FileId};
use crate::codec::{DecodeError, Writer};

/// CLOSE Flags (2.2.15).
pub mod close_flags {
    /// The response carries the file's attributes, times and sizes.
    pub const POSTQUERY_ATTRIB: u16 = 0x0001;
}

/// SMB2 CLOSE request (2.2.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseRequest {
    /// Flags (2.2.15): `close_flags` bits.
    pub flags: u16,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
}

impl CloseRequest {
    /// StructureSize the spec fixes for this body (2.2.15); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 24;

    /// Whether SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB is set: the response must carry attributes.
    pub fn postquery_attrib(&self) -> bool {
        self.flags & close_flags::POSTQUERY_ATTRIB != 0
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        out.put_u32(0);
        self.file_id.encode(out);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "CLOSE request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let flags = r.u16(W)?;
        r.skip(4, W)?;
        let file_id = FileId::read(&mut r)?;
        super::end_fixed(&r, W)?;
        Ok(CloseRequest { flags, file_id })
    }
}

body_impl!(CloseRequest, CLOSE);

/// SMB2 CLOSE response (2.2.16). Without POSTQUERY_ATTRIB every field after `flags` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseResponse {
    /// Flags (2.2.16): echoes SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB when the fields below are valid.
    pub flags: u16,
    /// CreationTime: FILETIME (100 ns units since 1601-01-01 UTC) the file was created.
    pub creation_time: u64,
    /// LastAccessTime: FILETIME the file was last read.
    pub last_access_time: u64,
    /// LastWriteTime: FILETIME the file was last written.
    pub last_write_time: u64,
    /// ChangeTime: FILETIME the file's data or metadata last changed.
    pub change_time: u64,
    /// AllocationSize: bytes allocated for the file on disk.
    pub allocation_size: u64,
    /// EndOfFile: the file's size in bytes.
    pub end_of_file: u64,
    /// FileAttributes: MS-FSCC 2.6 attribute bits.
    pub file_attributes: u32,
}

impl CloseResponse {
    /// StructureSize the spec fixes for this body (2.2.16); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 60;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        out.put_u32(0);
        out.put_u64(self.creation_time);
        out.put_u64(self.last_access_time);
        out.put_u64(self.last_write_time);
        out.put_u64(self.change_time);
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.file_attributes);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "CLOSE response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let flags = r.u16(W)?;
        r.skip(4, W)?;
        let resp = CloseResponse {
            flags,
            creation_time: r.u64(W)?,
            last_access_time: r.u64(W)?,
            last_write_time: r.u64(W)?,
            change_time: r.u64(W)?,
            allocation_size: r.u64(W)?,
            end_of_file: r.u64(W)?,
            file_attributes: r.u32(W)?,
        };
        super::end_fixed(&r, W)?;
        Ok(resp)
    }
}

body_impl!(CloseResponse, CLOSE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let c = CloseRequest {
            flags: close_flags::POSTQUERY_ATTRIB,
            file_id: FileId {
                persistent: 1,
                volatile: 2,
            },
        };
        let msg = build(&req(Command::CLOSE), &c);
        assert_eq!(msg.len(), 64 + 24);
        assert_eq!(CloseRequest::read(&msg).unwrap(), c);
        assert!(c.postquery_attrib());
        let r = CloseResponse {
            flags: close_flags::POSTQUERY_ATTRIB,
            creation_time: 1,
            last_access_time: 2,
            last_write_time: 3,
            change_time: 4,
            allocation_size: 5,
            end_of_file: 6,
            file_attributes: 0x20,
        };
        let msg = build(&resp(Command::CLOSE), &r);
        assert_eq!(msg.len(), 64 + 60);
        assert_eq!(CloseResponse::read(&msg).unwrap(), r);
        assert!(CloseResponse::read(&msg[..100]).is_err());
    }
}
