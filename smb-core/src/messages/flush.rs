//! SMB2 FLUSH request and response (MS-SMB2 2.2.17, 2.2.18).

use super::{body_impl, empty_body, FileId};
use crate::codec::{DecodeError, Writer};

/// SMB2 FLUSH request (2.2.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushRequest {
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
}

impl FlushRequest {
    /// StructureSize the spec fixes for this body (2.2.17); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 24;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(0);
        self.file_id.encode(out);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FLUSH request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        r.skip(6, W)?;
        let file_id = FileId::read(&mut r)?;
        super::end_fixed(&r, W)?;
        Ok(FlushRequest { file_id })
    }
}

body_impl!(FlushRequest, FLUSH);

empty_body!(
    /// SMB2 FLUSH response (2.2.18).
    FlushResponse,
    FLUSH,
    "FLUSH response"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let f = FlushRequest {
            file_id: FileId {
                persistent: 3,
                volatile: 4,
            },
        };
        let msg = build(&req(Command::FLUSH), &f);
        assert_eq!(FlushRequest::read(&msg).unwrap(), f);
        let msg = build(&resp(Command::FLUSH), &FlushResponse);
        assert_eq!(FlushResponse::read(&msg).unwrap(), FlushResponse);
    }
}
