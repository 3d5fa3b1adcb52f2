//! The SMB1 multi-protocol NEGOTIATE (MS-CIFS 2.2.4.52.1) that older clients open with.
//!
//! SMB1 itself is never spoken. We only read the dialect strings so the server can answer
//! with an SMB2 NEGOTIATE response (MS-SMB2 3.3.5.3.1): DialectRevision 0x02FF when the
//! client offered "SMB 2.???", 0x0202 when it offered only "SMB 2.002".

use crate::codec::{DecodeError, InvalidReason, Reader, Writer};
use crate::header::{Dialect, SMB1_PROTOCOL_ID};

/// SMB_COM_NEGOTIATE.
pub const SMB1_COM_NEGOTIATE: u8 = 0x72;
/// Length of the SMB1 header (MS-CIFS 2.2.3.1).
pub const SMB1_HEADER_LEN: usize = 32;
/// The dialect string that asks for SMB 2.1 or later (answered with the wildcard).
pub const DIALECT_SMB2_WILDCARD: &str = "SMB 2.???";
/// The dialect string for SMB 2.0.2.
pub const DIALECT_SMB2_002: &str = "SMB 2.002";

/// True when `message` starts with the SMB1 protocol id (whatever the command).
pub fn is_smb1(message: &[u8]) -> bool {
    message.starts_with(&SMB1_PROTOCOL_ID)
}

/// The dialect strings of an SMB1 NEGOTIATE request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Smb1Negotiate {
    /// The dialect strings offered, e.g. "NT LM 0.12", "SMB 2.002", "SMB 2.???".
    pub dialects: Vec<String>,
}

impl Smb1Negotiate {
    /// Parses an SMB1 NEGOTIATE request: 32-byte header with command 0x72, WordCount 0,
    /// ByteCount, then `0x02 "string" 0x00` for each dialect.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "SMB1 NEGOTIATE";
        let mut r = Reader::new(message);
        let protocol = r.array::<4>(W)?;
        if protocol != SMB1_PROTOCOL_ID {
            return Err(DecodeError::invalid(W, InvalidReason::ProtocolId(protocol)));
        }
        let command = r.u8(W)?;
        if command != SMB1_COM_NEGOTIATE {
            return Err(DecodeError::invalid(W, InvalidReason::Smb1Command(command)));
        }
        r.skip(SMB1_HEADER_LEN - 5, W)?;
        let word_count = r.u8(W)?;
        if word_count != 0 {
            return Err(DecodeError::invalid(
                W,
                InvalidReason::Smb1WordCount(word_count),
            ));
        }
        let byte_count = usize::from(r.u16(W)?);
        let mut bytes = Reader::new(r.take(byte_count, W)?);
        let mut dialects = Vec::new();
        while bytes.remaining() > 0 {
            if bytes.u8(W)? != 0x02 {
                return Err(DecodeError::invalid(W, InvalidReason::Smb1BufferFormat));
            }
            let rest = bytes.rest();
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| DecodeError::invalid(W, InvalidReason::Unterminated))?;
            let s = bytes.take(nul, W)?;
            bytes.skip(1, W)?;
            dialects.push(String::from_utf8_lossy(s).into_owned());
        }
        Ok(Smb1Negotiate { dialects })
    }

    /// Builds the request (for tests and tools that imitate old clients).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_bytes(&SMB1_PROTOCOL_ID);
        out.put_u8(SMB1_COM_NEGOTIATE);
        out.put_u32(0); // Status
        out.put_u8(0x18); // Flags: case-insensitive, canonicalized paths
        out.put_u16(0xC853); // Flags2: unicode, NT status, extended security, long names...
        out.put_zeros(SMB1_HEADER_LEN - 12 - 2); // PIDHigh .. UID
        out.put_u16(0); // MID
        out.put_u8(0); // WordCount
        let bc_at = out.len();
        out.put_u16(0);
        let start = out.len();
        for d in &self.dialects {
            out.put_u8(0x02);
            out.put_bytes(d.as_bytes());
            out.put_u8(0);
        }
        let n = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        out.patch_u16(bc_at, n);
    }

    /// The SMB2 DialectRevision to answer with (MS-SMB2 3.3.5.3.1), or `None` when the
    /// client offered no SMB2 dialect at all. `supports_21_or_later` is false for a server
    /// restricted to 2.0.2.
    pub fn smb2_reply_dialect(&self, supports_21_or_later: bool) -> Option<Dialect> {
        let has = |s: &str| self.dialects.iter().any(|d| d == s);
        if supports_21_or_later && has(DIALECT_SMB2_WILDCARD) {
            Some(Dialect::WILDCARD)
        } else if has(DIALECT_SMB2_002) {
            Some(Dialect::SMB202)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_dialect_choice() {
        let n = Smb1Negotiate {
            dialects: vec!["NT LM 0.12".into(), "SMB 2.002".into(), "SMB 2.???".into()],
        };
        let mut buf = Vec::new();
        n.encode(&mut buf);
        assert!(is_smb1(&buf));
        assert_eq!(buf[4], 0x72);
        assert_eq!(Smb1Negotiate::read(&buf).unwrap(), n);
        assert_eq!(n.smb2_reply_dialect(true), Some(Dialect::WILDCARD));
        assert_eq!(n.smb2_reply_dialect(false), Some(Dialect::SMB202));
        let old = Smb1Negotiate {
            dialects: vec!["NT LM 0.12".into()],
        };
        assert_eq!(old.smb2_reply_dialect(true), None);
    }

    #[test]
    fn malformed_is_an_error() {
        let n = Smb1Negotiate {
            dialects: vec!["NT LM 0.12".into()],
        };
        let mut buf = Vec::new();
        n.encode(&mut buf);
        for len in 0..buf.len() {
            assert!(Smb1Negotiate::read(&buf[..len]).is_err(), "len {len}");
        }
        let mut bad = buf.clone();
        bad[4] = 0x73;
        assert!(Smb1Negotiate::read(&bad).is_err());
        let mut bad = buf.clone();
        bad[35] = 0x03;
        assert!(Smb1Negotiate::read(&bad).is_err());
    }
}
