//! SMB2 SESSION_SETUP request and response (MS-SMB2 2.2.5, 2.2.6).

use super::{body_impl, buffer, len_u16, put_buffer};
use crate::codec::{DecodeError, Writer};
use crate::header::HEADER_LEN;

/// SESSION_SETUP request Flags (2.2.5).
pub mod request_flags {
    /// The request binds an existing session to a new connection (multichannel).
    pub const BINDING: u8 = 0x01;
}

/// SESSION_SETUP response SessionFlags (2.2.6).
pub mod session_flags {
    /// SESSION_SETUP response SessionFlags: `IS_GUEST` = 0x0001 (2.2.6).
    pub const IS_GUEST: u16 = 0x0001;
    /// SESSION_SETUP response SessionFlags: `IS_NULL` = 0x0002 (2.2.6).
    pub const IS_NULL: u16 = 0x0002;
    /// SESSION_SETUP response SessionFlags: `ENCRYPT_DATA` = 0x0004 (2.2.6).
    pub const ENCRYPT_DATA: u16 = 0x0004;
}

/// SMB2 SESSION_SETUP request (2.2.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupRequest {
    /// Flags (2.2.5): SMB2_SESSION_FLAG_BINDING to bind a new channel.
    pub flags: u8,
    /// SMB2_NEGOTIATE_SIGNING_ENABLED / _REQUIRED, as a single byte here.
    pub security_mode: u8,
    /// Capabilities: SMB2_GLOBAL_CAP_* bits.
    pub capabilities: u32,
    /// Channel (2.2.5): reserved, 0.
    pub channel: u32,
    /// PreviousSessionId (2.2.5): a session to drop on reconnect, else 0.
    pub previous_session_id: u64,
    /// The GSS token (SPNEGO or raw NTLMSSP).
    pub security_buffer: Vec<u8>,
}

impl SessionSetupRequest {
    /// StructureSize the spec fixes for this body (2.2.5); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 25;
    const FIXED_END: usize = HEADER_LEN + 24;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.flags);
        out.put_u8(self.security_mode);
        out.put_u32(self.capabilities);
        out.put_u32(self.channel);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(len_u16(self.security_buffer.len()));
        out.put_u64(self.previous_session_id);
        let off = put_buffer(out, &self.security_buffer);
        out.patch_u16(off_at, len_u16(off));
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "SESSION_SETUP request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let flags = r.u8(W)?;
        let security_mode = r.u8(W)?;
        let capabilities = r.u32(W)?;
        let channel = r.u32(W)?;
        let off = usize::from(r.u16(W)?);
        let len = usize::from(r.u16(W)?);
        let previous_session_id = r.u64(W)?;
        let security_buffer =
            buffer(message, off, len, Self::FIXED_END, "SecurityBuffer")?.to_vec();
        Ok(SessionSetupRequest {
            flags,
            security_mode,
            capabilities,
            channel,
            previous_session_id,
            security_buffer,
        })
    }
}

body_impl!(SessionSetupRequest, SESSION_SETUP);

/// SMB2 SESSION_SETUP response (2.2.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupResponse {
    /// SessionFlags (2.2.6): `session_flags` (guest, null, encrypt data).
    pub session_flags: u16,
    /// SecurityBuffer (2.2.6): the server's GSS token (SPNEGO/NTLMSSP).
    pub security_buffer: Vec<u8>,
}

impl SessionSetupResponse {
    /// StructureSize the spec fixes for this body (2.2.6); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 9;
    const FIXED_END: usize = HEADER_LEN + 8;

    /// Whether SMB2_SESSION_FLAG_IS_GUEST is set: the session is a guest session.
    pub fn is_guest(&self) -> bool {
        self.session_flags & session_flags::IS_GUEST != 0
    }

    /// Whether SMB2_SESSION_FLAG_IS_NULL is set: the session is anonymous.
    pub fn is_null(&self) -> bool {
        self.session_flags & session_flags::IS_NULL != 0
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.session_flags);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(len_u16(self.security_buffer.len()));
        let off = put_buffer(out, &self.security_buffer);
        out.patch_u16(off_at, len_u16(off));
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "SESSION_SETUP response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let session_flags = r.u16(W)?;
        let off = usize::from(r.u16(W)?);
        let len = usize::from(r.u16(W)?);
        let security_buffer =
            buffer(message, off, len, Self::FIXED_END, "SecurityBuffer")?.to_vec();
        Ok(SessionSetupResponse {
            session_flags,
            security_buffer,
        })
    }
}

body_impl!(SessionSetupResponse, SESSION_SETUP);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let r = SessionSetupRequest {
            flags: 0,
            security_mode: 2,
            capabilities: 1,
            channel: 0,
            previous_session_id: 0x55,
            security_buffer: b"NTLMSSP\0\x01\0\0\0".to_vec(),
        };
        let msg = build(&req(Command::SESSION_SETUP), &r);
        assert_eq!(u16::from_le_bytes([msg[76], msg[77]]), 88);
        assert_eq!(SessionSetupRequest::read(&msg).unwrap(), r);
        for flags in [0, session_flags::IS_GUEST, session_flags::IS_NULL] {
            let s = SessionSetupResponse {
                session_flags: flags,
                security_buffer: vec![],
            };
            let msg = build(&resp(Command::SESSION_SETUP), &s);
            assert_eq!(msg.len(), 64 + 9);
            assert_eq!(SessionSetupResponse::read(&msg).unwrap(), s);
        }
    }

    #[test]
    fn buffer_outside_message_is_an_error() {
        let r = SessionSetupRequest {
            security_buffer: vec![1; 10],
            ..Default::default()
        };
        let msg = build(&req(Command::SESSION_SETUP), &r);
        let mut bad = msg.clone();
        bad[78] = 11; // length 11 > 10 bytes present
        assert!(SessionSetupRequest::read(&bad).is_err());
        let mut bad = msg.clone();
        bad[76] = 64; // offset into the header
        assert!(SessionSetupRequest::read(&bad).is_err());
        let mut bad = msg;
        bad[76..78].copy_from_slice(&0xFFFFu16.to_le_bytes());
        assert!(SessionSetupRequest::read(&bad).is_err());
    }
}
