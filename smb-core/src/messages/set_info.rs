//! SMB2 SET_INFO request and response (MS-SMB2 2.2.39, 2.2.40).

use super::query_info::InfoType;
use super::{body_impl, buffer, len_u16, len_u32, FileId};
use crate::codec::{DecodeError, Writer};
use crate::header::HEADER_LEN;

/// SMB2 SET_INFO request (2.2.39).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetInfoRequest {
    /// InfoType (2.2.39): FILE, FILESYSTEM, SECURITY or QUOTA.
    pub info_type: InfoType,
    /// FileInfoClass (2.2.39): the MS-FSCC class of `buffer`.
    pub file_info_class: u8,
    /// AdditionalInformation (2.2.39): which parts of a security descriptor to set.
    pub additional_information: u32,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// The MS-FSCC structure to apply (e.g. FileRenameInformation).
    pub buffer: Vec<u8>,
}

impl SetInfoRequest {
    /// StructureSize the spec fixes for this body (2.2.39); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 33;
    const FIXED_END: usize = HEADER_LEN + 32;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.info_type.0);
        out.put_u8(self.file_info_class);
        out.put_u32(len_u32(self.buffer.len()));
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(0);
        out.put_u32(self.additional_information);
        self.file_id.encode(out);
        let off = super::put_buffer(out, &self.buffer);
        out.patch_u16(off_at, len_u16(off));
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "SET_INFO request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let info_type = InfoType(r.u8(W)?);
        let file_info_class = r.u8(W)?;
        let len = r.u32(W)? as usize;
        let off = usize::from(r.u16(W)?);
        r.skip(2, W)?;
        let additional_information = r.u32(W)?;
        let file_id = FileId::read(&mut r)?;
        let buffer = buffer(message, off, len, Self::FIXED_END, "SET_INFO buffer")?.to_vec();
        Ok(SetInfoRequest {
            info_type,
            file_info_class,
            additional_information,
            file_id,
            buffer,
        })
    }
}

body_impl!(SetInfoRequest, SET_INFO);

/// SMB2 SET_INFO response (2.2.40): StructureSize 2 and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfoResponse;

impl SetInfoResponse {
    /// StructureSize the spec fixes for this body (2.2.40); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 2;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "SET_INFO response";
        let r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        super::end_fixed(&r, W)?;
        Ok(SetInfoResponse)
    }
}

body_impl!(SetInfoResponse, SET_INFO);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::info::{FileInfoClass, FileRenameInformation};
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        FileRenameInformation {
            replace_if_exists: false,
            root_directory: 0,
            file_name: "b.txt".into(),
        }
        .encode(&mut buf);
        let s = SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: FileInfoClass::RENAME.0,
            additional_information: 0,
            file_id: FileId {
                persistent: 1,
                volatile: 1,
            },
            buffer: buf,
        };
        let msg = build(&req(Command::SET_INFO), &s);
        assert_eq!(u16::from_le_bytes([msg[72], msg[73]]), 96);
        assert_eq!(SetInfoRequest::read(&msg).unwrap(), s);
        let mut bad = msg.clone();
        bad[68] = 0xFF;
        assert!(SetInfoRequest::read(&bad).is_err());
        let msg = build(&resp(Command::SET_INFO), &SetInfoResponse);
        assert_eq!(msg.len(), 66);
        assert_eq!(SetInfoResponse::read(&msg).unwrap(), SetInfoResponse);
    }
}
