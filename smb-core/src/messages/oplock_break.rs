//! SMB2 OPLOCK_BREAK bodies: the oplock break notification, acknowledgment and response
//! (MS-SMB2 2.2.23.1, 2.2.24.1, 2.2.25.1, one 24-byte layout), the lease break notification
//! (2.2.23.2, StructureSize 44) and the lease break acknowledgment and response (2.2.24.2,
//! 2.2.25.2, one 36-byte layout). All travel under the OPLOCK_BREAK command and are told apart
//! by StructureSize ([`break_structure_size`]).

use super::create::OplockLevel;
use super::lease::LeaseKey;
use super::{body_impl, FileId};
use crate::codec::{DecodeError, InvalidReason, Reader, Writer};
use crate::header::HEADER_LEN;

/// The StructureSize of an OPLOCK_BREAK body: 24 (oplock), 44 (lease break notification) or
/// 36 (lease break acknowledgment or response). Anything else, or a message too short to
/// hold it, is an error.
pub fn break_structure_size(message: &[u8]) -> Result<u16, DecodeError> {
    const W: &str = "OPLOCK_BREAK";
    let mut r = Reader::new(message);
    r.skip(HEADER_LEN, W)?;
    match r.u16(W)? {
        n @ (OplockBreak::STRUCTURE_SIZE
        | LeaseBreakNotification::STRUCTURE_SIZE
        | LeaseBreakAck::STRUCTURE_SIZE) => Ok(n),
        n => Err(DecodeError::invalid(
            W,
            InvalidReason::NotOneOf {
                found: n.into(),
                allowed: &[24, 36, 44],
            },
        )),
    }
}

/// Flags of a lease break notification (2.2.23.2).
pub mod lease_break_flags {
    /// SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED: the client must acknowledge the break.
    pub const ACK_REQUIRED: u32 = 0x01;
}

/// A lease break notification (2.2.23.2), sent by the server unsolicited with MessageId
/// 0xFFFFFFFFFFFFFFFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakNotification {
    /// NewEpoch: the lease's epoch after the break (v2 leases; 0 for v1).
    pub new_epoch: u16,
    /// Flags: `lease_break_flags` bits.
    pub flags: u32,
    /// LeaseKey of the lease being broken.
    pub key: LeaseKey,
    /// CurrentLeaseState: the state before the break.
    pub current_state: u32,
    /// NewLeaseState: the state the client must break to.
    pub new_state: u32,
    /// BreakReason: reserved, 0.
    pub break_reason: u32,
    /// AccessMaskHint: reserved, 0.
    pub access_mask_hint: u32,
    /// ShareMaskHint: reserved, 0.
    pub share_mask_hint: u32,
}

impl LeaseBreakNotification {
    /// StructureSize the spec fixes for this body; `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 44;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.new_epoch);
        out.put_u32(self.flags);
        out.put_bytes(&self.key);
        out.put_u32(self.current_state);
        out.put_u32(self.new_state);
        out.put_u32(self.break_reason);
        out.put_u32(self.access_mask_hint);
        out.put_u32(self.share_mask_hint);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "lease break notification";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let new_epoch = r.u16(W)?;
        let flags = r.u32(W)?;
        let key = r.array::<16>(W)?;
        let current_state = r.u32(W)?;
        let new_state = r.u32(W)?;
        let break_reason = r.u32(W)?;
        let access_mask_hint = r.u32(W)?;
        let share_mask_hint = r.u32(W)?;
        super::end_fixed(&r, W)?;
        Ok(LeaseBreakNotification {
            new_epoch,
            flags,
            key,
            current_state,
            new_state,
            break_reason,
            access_mask_hint,
            share_mask_hint,
        })
    }
}

body_impl!(LeaseBreakNotification, OPLOCK_BREAK);

/// A lease break acknowledgment (client, 2.2.24.2) or response (server, 2.2.25.2): one layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakAck {
    /// Flags: reserved, 0.
    pub flags: u32,
    /// LeaseKey of the lease acknowledged.
    pub key: LeaseKey,
    /// LeaseState: the state the client keeps (ack) or now holds (response).
    pub state: u32,
    /// LeaseDuration: reserved, 0.
    pub duration: u64,
}

/// The lease break response (2.2.25.2) has the acknowledgment's layout.
pub type LeaseBreakResponse = LeaseBreakAck;

impl LeaseBreakAck {
    /// StructureSize the spec fixes for this body; `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 36;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(self.flags);
        out.put_bytes(&self.key);
        out.put_u32(self.state);
        out.put_u64(self.duration);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "lease break acknowledgment";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        r.skip(2, W)?; // Reserved
        let flags = r.u32(W)?;
        let key = r.array::<16>(W)?;
        let state = r.u32(W)?;
        let duration = r.u64(W)?;
        super::end_fixed(&r, W)?;
        Ok(LeaseBreakAck {
            flags,
            key,
            state,
            duration,
        })
    }
}

body_impl!(LeaseBreakAck, OPLOCK_BREAK);

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
        assert_eq!(break_structure_size(&bad).unwrap(), 44);
        bad[64] = 25;
        assert!(break_structure_size(&bad).is_err());
        assert!(break_structure_size(&bad[..65]).is_err());
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const KEY: LeaseKey = [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
        0x1f,
    ];

    #[test]
    fn lease_break_round_trip() {
        let n = LeaseBreakNotification {
            new_epoch: 9,
            flags: lease_break_flags::ACK_REQUIRED,
            key: KEY,
            current_state: 7,
            new_state: 1,
            break_reason: 0,
            access_mask_hint: 0,
            share_mask_hint: 0,
        };
        let msg = build(&resp(Command::OPLOCK_BREAK), &n);
        assert_eq!(msg.len(), 64 + 44);
        assert_eq!(break_structure_size(&msg).unwrap(), 44);
        assert_eq!(LeaseBreakNotification::read(&msg).unwrap(), n);
        assert!(LeaseBreakAck::read(&msg).is_err());
        assert!(OplockBreak::read(&msg).is_err());
        let a = LeaseBreakAck {
            flags: 0,
            key: KEY,
            state: 3,
            duration: 0,
        };
        let msg = build(&resp(Command::OPLOCK_BREAK), &a);
        assert_eq!(msg.len(), 64 + 36);
        assert_eq!(break_structure_size(&msg).unwrap(), 36);
        assert_eq!(LeaseBreakResponse::read(&msg).unwrap(), a);
        assert!(LeaseBreakNotification::read(&msg).is_err());
        for n in 0..msg.len() {
            assert!(LeaseBreakAck::read(&msg[..n]).is_err());
        }
    }

    /// Bodies packed by an independent implementation: impacket 0.13.1
    /// (`smb3structs.SMB2LeaseBreakNotification`, `SMB2LeaseBreakAcknowledgement`).
    #[test]
    fn decodes_impacket_bytes() {
        let header = {
            let mut h = Vec::new();
            resp(Command::OPLOCK_BREAK).encode(&mut h);
            h
        };
        let notification =
            hex("2c00050001000000101112131415161718191a1b1c1d1e1f0700000003000000000000000000000000000000");
        let mut msg = header.clone();
        msg.extend_from_slice(&notification);
        let n = LeaseBreakNotification::read(&msg).unwrap();
        assert_eq!(
            n,
            LeaseBreakNotification {
                new_epoch: 5,
                flags: lease_break_flags::ACK_REQUIRED,
                key: KEY,
                current_state: 7,
                new_state: 3,
                ..Default::default()
            }
        );
        assert_eq!(build(&resp(Command::OPLOCK_BREAK), &n), msg);
        let ack = hex("2400000000000000101112131415161718191a1b1c1d1e1f030000000000000000000000");
        let mut msg = header;
        msg.extend_from_slice(&ack);
        let a = LeaseBreakAck::read(&msg).unwrap();
        assert_eq!(
            a,
            LeaseBreakAck {
                flags: 0,
                key: KEY,
                state: 3,
                duration: 0
            }
        );
        assert_eq!(build(&resp(Command::OPLOCK_BREAK), &a), msg);
    }
}
