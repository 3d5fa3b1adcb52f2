//! SMB2 ERROR response (MS-SMB2 2.2.2), sent for any command that failed.

use super::{buffer, len_u32, put_buffer};
use crate::codec::{slice_at, DecodeError, Reader, Writer};
use crate::header::HEADER_LEN;

/// The body of an error response. `error_data` is kept raw: for 3.1.1 with a non-zero
/// `error_context_count` it is a list of ERROR_CONTEXTs (see [`ErrorContext`]); otherwise it
/// is the command-specific ErrorData (e.g. a symbolic link error), usually empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorResponse {
    /// ErrorContextCount (2.2.2): number of ERROR_CONTEXTs in ErrorData (3.1.1), else 0.
    pub error_context_count: u8,
    /// ErrorData (2.2.2): raw error data (its length is ByteCount).
    pub error_data: Vec<u8>,
}

impl ErrorResponse {
    /// StructureSize the spec fixes for this body; `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 9;
    const FIXED_END: usize = HEADER_LEN + 8;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.error_context_count);
        out.put_u8(0);
        out.put_u32(len_u32(self.error_data.len()));
        // MS-SMB2 2.2.2: with ByteCount 0 the one-byte ErrorData is still sent.
        put_buffer(out, &self.error_data);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        let mut r = super::body(message, Self::STRUCTURE_SIZE, "ERROR response")?;
        let error_context_count = r.u8("ERROR response")?;
        r.skip(1, "ERROR response")?;
        let byte_count = r.u32("ERROR response")? as usize;
        let data = buffer(
            message,
            Self::FIXED_END,
            byte_count,
            Self::FIXED_END,
            "ErrorData",
        )?;
        Ok(ErrorResponse {
            error_context_count,
            error_data: data.to_vec(),
        })
    }

    /// The ERROR_CONTEXT list (3.1.1), when `error_context_count` is non-zero.
    pub fn contexts(&self) -> Result<Vec<ErrorContext>, DecodeError> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        for i in 0..self.error_context_count {
            if i > 0 {
                pos = super::align8(pos);
            }
            // ErrorDataLength, ErrorId (MS-SMB2 2.2.2.1).
            let mut head = Reader::new(slice_at(&self.error_data, pos, 8, "ERROR_CONTEXT")?);
            let len = head.u32("ERROR_CONTEXT")? as usize;
            let error_id = head.u32("ERROR_CONTEXT")?;
            let data = slice_at(&self.error_data, pos + 8, len, "ERROR_CONTEXT")?;
            out.push(ErrorContext {
                error_id,
                data: data.to_vec(),
            });
            pos += 8 + len;
        }
        Ok(out)
    }
}

super::body_impl_any!(ErrorResponse);

/// One ERROR_CONTEXT (MS-SMB2 2.2.2.1): ErrorId 0 = default, 0x72727563 = share redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorContext {
    /// ErrorId (2.2.2.1): 0 = default, 0x72727563 = share redirect.
    pub error_id: u32,
    /// ErrorContextData (2.2.2.1), raw.
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{Command, NtStatus};
    use crate::messages::{build, test_util::req};

    #[test]
    fn empty_error_has_one_byte_of_data() {
        let h = req(Command::CREATE).response(NtStatus::OBJECT_NAME_NOT_FOUND);
        let msg = build(&h, &ErrorResponse::default());
        assert_eq!(msg.len(), 64 + 9);
        assert_eq!(&msg[64..], &[9, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ErrorResponse::read(&msg).unwrap(), ErrorResponse::default());
    }

    #[test]
    fn round_trip_and_contexts() {
        let mut data = Vec::new();
        data.put_u32(3);
        data.put_u32(0);
        data.put_bytes(b"abc");
        data.pad_to(8);
        data.put_u32(1);
        data.put_u32(0x7272_7563);
        data.put_u8(9);
        let e = ErrorResponse {
            error_context_count: 2,
            error_data: data,
        };
        let msg = build(
            &req(Command::TREE_CONNECT).response(NtStatus::BAD_NETWORK_NAME),
            &e,
        );
        let back = ErrorResponse::read(&msg).unwrap();
        assert_eq!(back, e);
        let ctx = back.contexts().unwrap();
        assert_eq!(ctx.len(), 2);
        assert_eq!(ctx[0].data, b"abc");
        assert_eq!(ctx[1].error_id, 0x7272_7563);
    }

    #[test]
    fn byte_count_past_end_is_an_error() {
        let mut msg = build(&req(Command::READ), &ErrorResponse::default());
        msg[68..72].copy_from_slice(&100u32.to_le_bytes());
        assert!(ErrorResponse::read(&msg).is_err());
        msg[68..72].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ErrorResponse::read(&msg).is_err());
    }
}
