//! SMB2 LOCK request and response (MS-SMB2 2.2.26, 2.2.27).

use super::{body_impl, empty_body, len_u16, FileId};
use crate::codec::{DecodeError, InvalidReason, Writer};

/// SMB2_LOCK_ELEMENT Flags (2.2.26.1).
pub mod lock_flags {
    /// SMB2_LOCK_ELEMENT Flags: `SHARED_LOCK` = 0x0000_0001 (2.2.26.1).
    pub const SHARED_LOCK: u32 = 0x0000_0001;
    /// SMB2_LOCK_ELEMENT Flags: `EXCLUSIVE_LOCK` = 0x0000_0002 (2.2.26.1).
    pub const EXCLUSIVE_LOCK: u32 = 0x0000_0002;
    /// SMB2_LOCK_ELEMENT Flags: `UNLOCK` = 0x0000_0004 (2.2.26.1).
    pub const UNLOCK: u32 = 0x0000_0004;
    /// SMB2_LOCK_ELEMENT Flags: `FAIL_IMMEDIATELY` = 0x0000_0010 (2.2.26.1).
    pub const FAIL_IMMEDIATELY: u32 = 0x0000_0010;
}

/// One byte range to lock or unlock (2.2.26.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockElement {
    /// Offset: byte offset into the file.
    pub offset: u64,
    /// Length: number of bytes.
    pub length: u64,
    /// Flags (2.2.26.1): `lock_flags` bits (shared, exclusive, unlock, fail-immediately).
    pub flags: u32,
}

/// SMB2 LOCK request (2.2.26).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockRequest {
    /// LockSequenceNumber (low 4 bits) and LockSequenceIndex (high 28 bits).
    pub lock_sequence: u32,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// The SMB2_LOCK_ELEMENT array (2.2.26); at least one.
    pub locks: Vec<LockElement>,
}

impl LockRequest {
    /// Counts the fixed part and one lock element.
    pub const STRUCTURE_SIZE: u16 = 48;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(len_u16(self.locks.len()));
        out.put_u32(self.lock_sequence);
        self.file_id.encode(out);
        for l in &self.locks {
            out.put_u64(l.offset);
            out.put_u64(l.length);
            out.put_u32(l.flags);
            out.put_u32(0);
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "LOCK request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let count = r.u16(W)?;
        // MS-SMB2 3.3.5.14: LockCount 0 MUST be failed with STATUS_INVALID_PARAMETER.
        if count == 0 {
            return Err(DecodeError::invalid("LockCount", InvalidReason::Zero));
        }
        let lock_sequence = r.u32(W)?;
        let file_id = FileId::read(&mut r)?;
        let mut locks = Vec::with_capacity(usize::from(count).min(r.remaining() / 24));
        for _ in 0..count {
            let l = LockElement {
                offset: r.u64(W)?,
                length: r.u64(W)?,
                flags: r.u32(W)?,
            };
            r.skip(4, W)?;
            locks.push(l);
        }
        super::end_fixed(&r, W)?;
        Ok(LockRequest {
            lock_sequence,
            file_id,
            locks,
        })
    }
}

body_impl!(LockRequest, LOCK);

empty_body!(
    /// SMB2 LOCK response (2.2.27).
    LockResponse,
    LOCK,
    "LOCK response"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let l = LockRequest {
            lock_sequence: 0,
            file_id: FileId {
                persistent: 1,
                volatile: 2,
            },
            locks: vec![
                LockElement {
                    offset: 0,
                    length: 10,
                    flags: lock_flags::EXCLUSIVE_LOCK,
                },
                LockElement {
                    offset: 10,
                    length: 10,
                    flags: lock_flags::UNLOCK,
                },
            ],
        };
        let msg = build(&req(Command::LOCK), &l);
        assert_eq!(msg.len(), 64 + 24 + 48);
        assert_eq!(LockRequest::read(&msg).unwrap(), l);
        let mut bad = msg.clone();
        bad[66] = 3; // more locks than present
        assert!(LockRequest::read(&bad).is_err());
        bad[66] = 0;
        assert!(LockRequest::read(&bad).is_err());
        let msg = build(&resp(Command::LOCK), &LockResponse);
        assert_eq!(LockResponse::read(&msg).unwrap(), LockResponse);
    }
}
