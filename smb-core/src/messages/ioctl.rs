//! SMB2 IOCTL request and response (MS-SMB2 2.2.31, 2.2.32), the FSCTL codes a minimal
//! server meets, and FSCTL_VALIDATE_NEGOTIATE_INFO (2.2.31.4, 2.2.32.6).

use super::negotiate::Guid;
use super::{body_impl, buffer, len_u16, len_u32, FileId};
use crate::codec::{DecodeError, Reader, Writer};
use crate::header::{Dialect, HEADER_LEN};

/// CtlCode values (MS-SMB2 2.2.31, MS-FSCC 2.3).
pub mod fsctl {
    /// CtlCode values: `DFS_GET_REFERRALS` = 0x0006_0194 (MS-SMB2 2.2.31).
    pub const DFS_GET_REFERRALS: u32 = 0x0006_0194;
    /// CtlCode values: `DFS_GET_REFERRALS_EX` = 0x0006_01B0 (MS-SMB2 2.2.31).
    pub const DFS_GET_REFERRALS_EX: u32 = 0x0006_01B0;
    /// CtlCode values: `PIPE_PEEK` = 0x0011_400C (MS-SMB2 2.2.31).
    pub const PIPE_PEEK: u32 = 0x0011_400C;
    /// CtlCode values: `PIPE_WAIT` = 0x0011_0018 (MS-SMB2 2.2.31).
    pub const PIPE_WAIT: u32 = 0x0011_0018;
    /// CtlCode values: `PIPE_TRANSCEIVE` = 0x0011_C017 (MS-SMB2 2.2.31).
    pub const PIPE_TRANSCEIVE: u32 = 0x0011_C017;
    /// CtlCode values: `SRV_COPYCHUNK` = 0x0014_40F2 (MS-SMB2 2.2.31).
    pub const SRV_COPYCHUNK: u32 = 0x0014_40F2;
    /// CtlCode values: `SRV_COPYCHUNK_WRITE` = 0x0014_80F2 (MS-SMB2 2.2.31).
    pub const SRV_COPYCHUNK_WRITE: u32 = 0x0014_80F2;
    /// CtlCode values: `SRV_ENUMERATE_SNAPSHOTS` = 0x0014_4064 (MS-SMB2 2.2.31).
    pub const SRV_ENUMERATE_SNAPSHOTS: u32 = 0x0014_4064;
    /// CtlCode values: `SRV_REQUEST_RESUME_KEY` = 0x0014_0078 (MS-SMB2 2.2.31).
    pub const SRV_REQUEST_RESUME_KEY: u32 = 0x0014_0078;
    /// CtlCode values: `SRV_READ_HASH` = 0x0014_41BB (MS-SMB2 2.2.31).
    pub const SRV_READ_HASH: u32 = 0x0014_41BB;
    /// CtlCode values: `LMR_REQUEST_RESILIENCY` = 0x0014_01D4 (MS-SMB2 2.2.31).
    pub const LMR_REQUEST_RESILIENCY: u32 = 0x0014_01D4;
    /// CtlCode values: `QUERY_NETWORK_INTERFACE_INFO` = 0x0014_01FC (MS-SMB2 2.2.31).
    pub const QUERY_NETWORK_INTERFACE_INFO: u32 = 0x0014_01FC;
    /// CtlCode values: `VALIDATE_NEGOTIATE_INFO` = 0x0014_0204 (MS-SMB2 2.2.31).
    pub const VALIDATE_NEGOTIATE_INFO: u32 = 0x0014_0204;
    /// CtlCode values: `SET_REPARSE_POINT` = 0x0009_00A4 (MS-SMB2 2.2.31).
    pub const SET_REPARSE_POINT: u32 = 0x0009_00A4;
    /// CtlCode values: `GET_REPARSE_POINT` = 0x0009_00A8 (MS-SMB2 2.2.31).
    pub const GET_REPARSE_POINT: u32 = 0x0009_00A8;
    /// CtlCode values: `FILE_LEVEL_TRIM` = 0x0009_8208 (MS-SMB2 2.2.31).
    pub const FILE_LEVEL_TRIM: u32 = 0x0009_8208;
}

/// IOCTL Flags (2.2.31).
pub mod ioctl_flags {
    /// The request is an FSCTL (as opposed to a device IOCTL); always set over SMB2.
    pub const IS_FSCTL: u32 = 0x0000_0001;
}

/// SMB2 IOCTL request (2.2.31).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoctlRequest {
    /// CtlCode (2.2.31): the FSCTL/IOCTL code (see `fsctl`).
    pub ctl_code: u32,
    /// All ones for FSCTLs that are not about a file (VALIDATE_NEGOTIATE_INFO, interfaces).
    pub file_id: FileId,
    /// The input buffer (2.2.31), e.g. a VALIDATE_NEGOTIATE_INFO request.
    pub input: Vec<u8>,
    /// MaxInputResponse (2.2.31): most bytes the server may return in the input buffer.
    pub max_input_response: u32,
    /// The output buffer sent with the request (2.2.31), usually empty.
    pub output: Vec<u8>,
    /// MaxOutputResponse (2.2.31): most bytes the server may return in the output buffer.
    pub max_output_response: u32,
    /// Flags (2.2.31): SMB2_0_IOCTL_IS_FSCTL or 0.
    pub flags: u32,
}

impl IoctlRequest {
    /// StructureSize the spec fixes for this body (2.2.31); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 57;
    const FIXED_END: usize = HEADER_LEN + 56;

    /// Whether SMB2_0_IOCTL_IS_FSCTL is set (the request is an FSCTL, not a device IOCTL).
    pub fn is_fsctl(&self) -> bool {
        self.flags & ioctl_flags::IS_FSCTL != 0
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(self.ctl_code);
        self.file_id.encode(out);
        let fields = out.len();
        out.put_u32(0); // InputOffset
        out.put_u32(len_u32(self.input.len()));
        out.put_u32(self.max_input_response);
        out.put_u32(0); // OutputOffset
        out.put_u32(len_u32(self.output.len()));
        out.put_u32(self.max_output_response);
        out.put_u32(self.flags);
        out.put_u32(0);
        // Windows points InputOffset at the Buffer even when InputCount is 0.
        out.patch_u32(fields, len_u32(out.len()));
        out.put_bytes(&self.input);
        if self.output.is_empty() {
            // Windows and smbprotocol point an empty OutputOffset at the Buffer as well.
            out.patch_u32(fields + 12, len_u32(out.len() - self.input.len()));
        } else {
            out.pad_to(8);
            out.patch_u32(fields + 12, len_u32(out.len()));
            out.put_bytes(&self.output);
        }
        if self.input.is_empty() && self.output.is_empty() {
            out.put_u8(0);
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "IOCTL request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        r.skip(2, W)?;
        let ctl_code = r.u32(W)?;
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32(W)? as usize;
        let in_len = r.u32(W)? as usize;
        let max_input_response = r.u32(W)?;
        let out_off = r.u32(W)? as usize;
        let out_len = r.u32(W)? as usize;
        let max_output_response = r.u32(W)?;
        let flags = r.u32(W)?;
        r.skip(4, W)?;
        let input = buffer(message, in_off, in_len, Self::FIXED_END, "IOCTL input")?.to_vec();
        let output = buffer(message, out_off, out_len, Self::FIXED_END, "IOCTL output")?.to_vec();
        Ok(IoctlRequest {
            ctl_code,
            file_id,
            input,
            max_input_response,
            output,
            max_output_response,
            flags,
        })
    }
}

body_impl!(IoctlRequest, IOCTL);

/// SMB2 IOCTL response (2.2.32).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoctlResponse {
    /// CtlCode (2.2.32): echoes the request's code.
    pub ctl_code: u32,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// The input buffer returned (2.2.32), usually empty.
    pub input: Vec<u8>,
    /// The output buffer (2.2.32), e.g. a VALIDATE_NEGOTIATE_INFO response.
    pub output: Vec<u8>,
    /// Flags (2.2.32): reserved, 0.
    pub flags: u32,
}

impl IoctlResponse {
    /// StructureSize the spec fixes for this body (2.2.32); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 49;
    const FIXED_END: usize = HEADER_LEN + 48;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(self.ctl_code);
        self.file_id.encode(out);
        let fields = out.len();
        out.put_u32(0); // InputOffset
        out.put_u32(len_u32(self.input.len()));
        out.put_u32(0); // OutputOffset
        out.put_u32(len_u32(self.output.len()));
        out.put_u32(self.flags);
        out.put_u32(0);
        // As Windows does: both offsets point into the Buffer even when a count is 0.
        out.patch_u32(fields, len_u32(out.len()));
        out.put_bytes(&self.input);
        if !self.input.is_empty() {
            out.pad_to(8);
        }
        out.patch_u32(fields + 8, len_u32(out.len()));
        out.put_bytes(&self.output);
        if self.input.is_empty() && self.output.is_empty() {
            out.put_u8(0);
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "IOCTL response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        r.skip(2, W)?;
        let ctl_code = r.u32(W)?;
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32(W)? as usize;
        let in_len = r.u32(W)? as usize;
        let out_off = r.u32(W)? as usize;
        let out_len = r.u32(W)? as usize;
        let flags = r.u32(W)?;
        r.skip(4, W)?;
        let input = buffer(message, in_off, in_len, Self::FIXED_END, "IOCTL input")?.to_vec();
        let output = buffer(message, out_off, out_len, Self::FIXED_END, "IOCTL output")?.to_vec();
        Ok(IoctlResponse {
            ctl_code,
            file_id,
            input,
            output,
            flags,
        })
    }
}

body_impl!(IoctlResponse, IOCTL);

/// VALIDATE_NEGOTIATE_INFO request (2.2.31.4): the client's NEGOTIATE, repeated under
/// signing so a downgrade is detected (3.0 and 3.0.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidateNegotiateInfoRequest {
    /// Capabilities: SMB2_GLOBAL_CAP_* bits.
    pub capabilities: u32,
    /// Guid (2.2.31.4): the client's ClientGuid.
    pub guid: Guid,
    /// SecurityMode: SMB2_NEGOTIATE_SIGNING_ENABLED / _REQUIRED bits.
    pub security_mode: u16,
    /// The dialect revisions (0x0202, 0x0210, 0x0300, 0x0302, 0x0311) offered.
    pub dialects: Vec<Dialect>,
}

impl ValidateNegotiateInfoRequest {
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.capabilities);
        out.put_bytes(&self.guid.0);
        out.put_u16(self.security_mode);
        out.put_u16(len_u16(self.dialects.len()));
        for d in &self.dialects {
            out.put_u16(d.0);
        }
    }

    /// Reads the IOCTL input buffer. MS-SMB2 3.3.5.15.12: an InputCount smaller than the
    /// structure with its DialectCount dialects is an error; bytes after it are ignored, as
    /// Samba (`smbd_smb2_ioctl_validate_negotiate_info`) ignores them.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "VALIDATE_NEGOTIATE_INFO request";
        let mut r = Reader::new(buf);
        let capabilities = r.u32(W)?;
        let guid = Guid(r.array(W)?);
        let security_mode = r.u16(W)?;
        let count = r.u16(W)?;
        let dialects = (0..count)
            .map(|_| r.u16(W).map(Dialect))
            .collect::<Result<_, _>>()?;
        Ok(ValidateNegotiateInfoRequest {
            capabilities,
            guid,
            security_mode,
            dialects,
        })
    }
}

/// VALIDATE_NEGOTIATE_INFO response (2.2.32.6): what the server negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidateNegotiateInfoResponse {
    /// Capabilities: SMB2_GLOBAL_CAP_* bits.
    pub capabilities: u32,
    /// Guid (2.2.32.6): the server's ServerGuid.
    pub guid: Guid,
    /// SecurityMode: SMB2_NEGOTIATE_SIGNING_ENABLED / _REQUIRED bits.
    pub security_mode: u16,
    /// Dialect (2.2.32.6): the dialect the server selected.
    pub dialect: Dialect,
}

impl ValidateNegotiateInfoResponse {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 24;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.capabilities);
        out.put_bytes(&self.guid.0);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialect.0);
    }

    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "VALIDATE_NEGOTIATE_INFO response";
        let mut r = Reader::new(buf);
        let v = ValidateNegotiateInfoResponse {
            capabilities: r.u32(W)?,
            guid: Guid(r.array(W)?),
            security_mode: r.u16(W)?,
            dialect: Dialect(r.u16(W)?),
        };
        r.expect_end(W)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn validate_negotiate_round_trip() {
        let v = ValidateNegotiateInfoRequest {
            capabilities: 0x7F,
            guid: Guid([3; 16]),
            security_mode: 1,
            dialects: vec![
                Dialect::SMB202,
                Dialect::SMB21,
                Dialect::SMB30,
                Dialect::SMB302,
            ],
        };
        let mut input = Vec::new();
        v.encode(&mut input);
        let io = IoctlRequest {
            ctl_code: fsctl::VALIDATE_NEGOTIATE_INFO,
            file_id: FileId::RELATED,
            input,
            max_input_response: 0,
            output: vec![],
            max_output_response: 24,
            flags: ioctl_flags::IS_FSCTL,
        };
        let msg = build(&req(Command::IOCTL), &io);
        assert_eq!(u32::from_le_bytes(msg[88..92].try_into().unwrap()), 120);
        let back = IoctlRequest::read(&msg).unwrap();
        assert_eq!(back, io);
        assert!(back.is_fsctl());
        assert_eq!(ValidateNegotiateInfoRequest::read(&back.input).unwrap(), v);
        assert!(ValidateNegotiateInfoRequest::read(&back.input[..back.input.len() - 1]).is_err());

        let answer = ValidateNegotiateInfoResponse {
            capabilities: 0x2F,
            guid: Guid([4; 16]),
            security_mode: 3,
            dialect: Dialect::SMB302,
        };
        let mut output = Vec::new();
        answer.encode(&mut output);
        let r = IoctlResponse {
            ctl_code: fsctl::VALIDATE_NEGOTIATE_INFO,
            file_id: FileId::RELATED,
            input: vec![],
            output,
            flags: 0,
        };
        let msg = build(&resp(Command::IOCTL), &r);
        assert_eq!(msg.len(), 112 + 24);
        let back = IoctlResponse::read(&msg).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            ValidateNegotiateInfoResponse::read(&back.output).unwrap(),
            answer
        );
    }

    #[test]
    fn out_of_range_buffers_are_errors() {
        let io = IoctlResponse {
            output: vec![1; 16],
            input: vec![2; 3],
            ..Default::default()
        };
        let msg = build(&resp(Command::IOCTL), &io);
        assert_eq!(IoctlResponse::read(&msg).unwrap(), io);
        let mut bad = msg.clone();
        bad[100..104].copy_from_slice(&17u32.to_le_bytes()); // OutputCount past the end
        assert!(IoctlResponse::read(&bad).is_err());
        let mut bad = msg;
        bad[96..100].copy_from_slice(&u32::MAX.to_le_bytes()); // OutputOffset overflow
        assert!(IoctlResponse::read(&bad).is_err());
    }
}
