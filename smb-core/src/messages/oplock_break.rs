//! SMB2 OPLOCK_BREAK notification, acknowledgment and response (MS-SMB2 2.2.23.1,
//! 2.2.24.1, 2.2.25.1): the three share one 24-byte layout. Lease breaks are not supported.

use super::create::OplockLevel;
use super::{body_impl, FileId};
use crate::codec::{DecodeError, Writer};

/// An oplock break notification (server, MessageId 0xFFFFFFFFFFFFFFFF), acknowledgment
/// (client) or response (server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OplockBreak {
    /// OplockLevel (2.2.23.1, 2.2.24.1, 2.2.25.1): the level the oplock breaks to, or is acknowledged at.
    pub oplock_level: OplockLevel,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
}

impl OplockBreak {
    /// StructureSize the spec fixes for this body; `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 24;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.oplock_level.0);
        out.put_u8(0);
        out.put_u32(0);
        self.file_id.encode(out);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "OPLOCK_BREAK";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let oplock_level = OplockLevel(r.u8(W)?);
        r.skip(5, W)?;
        let file_id = FileId::read(&mut r)?;
        super::end_fixed(&r, W)?;
        Ok(OplockBreak {
            oplock_level,
            file_id,
        })
    }
}

body_impl!(OplockBreak, OPLOCK_BREAK);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::resp;

    #[test]
    fn round_trip() {
        let o = OplockBreak {
            oplock_level: OplockLevel::II,
            file_id: FileId {
                persistent: 5,
                volatile: 6,
            },
        };
        let msg = build(&resp(Command::OPLOCK_BREAK), &o);
        assert_eq!(msg.len(), 88);
        assert_eq!(OplockBreak::read(&msg).unwrap(), o);
        // A lease break (StructureSize 44) is not an oplock break.
        let mut bad = msg;
        bad[64] = 44;
        assert!(OplockBreak::read(&bad).is_err());
    }
}
