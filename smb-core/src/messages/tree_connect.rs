//! SMB2 TREE_CONNECT request and response (MS-SMB2 2.2.9, 2.2.10).

use std::fmt;

use super::{body_impl, buffer, len_u16, put_buffer};
use crate::codec::{from_utf16le, utf16le, DecodeError, Writer};
use crate::header::{wire_enum, HEADER_LEN};

/// TREE_CONNECT request Flags (3.1.1 only; 2.2.9).
pub mod request_flags {
    /// TREE_CONNECT request Flags: `CLUSTER_RECONNECT` = 0x0001 (2.2.9, 3.1.1 only).
    pub const CLUSTER_RECONNECT: u16 = 0x0001;
    /// TREE_CONNECT request Flags: `REDIRECT_TO_OWNER` = 0x0002 (2.2.9, 3.1.1 only).
    pub const REDIRECT_TO_OWNER: u16 = 0x0002;
    /// A TREE_CONNECT_REQUEST_EXTENSION is present. We do not send it; when a client does,
    /// the path is still read from PathOffset/PathLength.
    pub const EXTENSION_PRESENT: u16 = 0x0004;
}

wire_enum! {
    /// ShareType (2.2.10).
    ShareType(u8) {
        DISK = 0x01,
        PIPE = 0x02,
        PRINT = 0x03,
    }
}

/// ShareFlags (2.2.10).
pub mod share_flags {
    /// ShareFlags: `MANUAL_CACHING` = 0x0000_0000 (2.2.10).
    pub const MANUAL_CACHING: u32 = 0x0000_0000;
    /// ShareFlags: `AUTO_CACHING` = 0x0000_0010 (2.2.10).
    pub const AUTO_CACHING: u32 = 0x0000_0010;
    /// ShareFlags: `VDO_CACHING` = 0x0000_0020 (2.2.10).
    pub const VDO_CACHING: u32 = 0x0000_0020;
    /// ShareFlags: `NO_CACHING` = 0x0000_0030 (2.2.10).
    pub const NO_CACHING: u32 = 0x0000_0030;
    /// ShareFlags: `DFS` = 0x0000_0001 (2.2.10).
    pub const DFS: u32 = 0x0000_0001;
    /// ShareFlags: `DFS_ROOT` = 0x0000_0002 (2.2.10).
    pub const DFS_ROOT: u32 = 0x0000_0002;
    /// ShareFlags: `RESTRICT_EXCLUSIVE_OPENS` = 0x0000_0100 (2.2.10).
    pub const RESTRICT_EXCLUSIVE_OPENS: u32 = 0x0000_0100;
    /// ShareFlags: `FORCE_SHARED_DELETE` = 0x0000_0200 (2.2.10).
    pub const FORCE_SHARED_DELETE: u32 = 0x0000_0200;
    /// ShareFlags: `ALLOW_NAMESPACE_CACHING` = 0x0000_0400 (2.2.10).
    pub const ALLOW_NAMESPACE_CACHING: u32 = 0x0000_0400;
    /// ShareFlags: `ACCESS_BASED_DIRECTORY_ENUM` = 0x0000_0800 (2.2.10).
    pub const ACCESS_BASED_DIRECTORY_ENUM: u32 = 0x0000_0800;
    /// ShareFlags: `FORCE_LEVELII_OPLOCK` = 0x0000_1000 (2.2.10).
    pub const FORCE_LEVELII_OPLOCK: u32 = 0x0000_1000;
    /// ShareFlags: `ENABLE_HASH_V1` = 0x0000_2000 (2.2.10).
    pub const ENABLE_HASH_V1: u32 = 0x0000_2000;
    /// ShareFlags: `ENABLE_HASH_V2` = 0x0000_4000 (2.2.10).
    pub const ENABLE_HASH_V2: u32 = 0x0000_4000;
    /// ShareFlags: `ENCRYPT_DATA` = 0x0000_8000 (2.2.10).
    pub const ENCRYPT_DATA: u32 = 0x0000_8000;
    /// ShareFlags: `IDENTITY_REMOTING` = 0x0004_0000 (2.2.10).
    pub const IDENTITY_REMOTING: u32 = 0x0004_0000;
    /// ShareFlags: `COMPRESS_DATA` = 0x0010_0000 (2.2.10).
    pub const COMPRESS_DATA: u32 = 0x0010_0000;
}

/// Share Capabilities (2.2.10).
pub mod share_capabilities {
    /// Share Capabilities: `DFS` = 0x0000_0008 (2.2.10).
    pub const DFS: u32 = 0x0000_0008;
    /// Share Capabilities: `CONTINUOUS_AVAILABILITY` = 0x0000_0010 (2.2.10).
    pub const CONTINUOUS_AVAILABILITY: u32 = 0x0000_0010;
    /// Share Capabilities: `SCALEOUT` = 0x0000_0020 (2.2.10).
    pub const SCALEOUT: u32 = 0x0000_0020;
    /// Share Capabilities: `CLUSTER` = 0x0000_0040 (2.2.10).
    pub const CLUSTER: u32 = 0x0000_0040;
    /// Share Capabilities: `ASYMMETRIC` = 0x0000_0080 (2.2.10).
    pub const ASYMMETRIC: u32 = 0x0000_0080;
    /// Share Capabilities: `REDIRECT_TO_OWNER` = 0x0000_0100 (2.2.10).
    pub const REDIRECT_TO_OWNER: u32 = 0x0000_0100;
}

/// SMB2 TREE_CONNECT request (2.2.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeConnectRequest {
    /// Flags (2.2.9): SMB2_TREE_CONNECT_FLAG_* bits (3.1.1), else 0.
    pub flags: u16,
    /// `\\server\share`, sent as UTF-16LE.
    pub path: String,
}

impl TreeConnectRequest {
    /// StructureSize the spec fixes for this body (2.2.9); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 9;
    const FIXED_END: usize = HEADER_LEN + 8;

    /// The share name: the last component of `\\server\share` (lower-case comparison is
    /// the caller's choice).
    pub fn share_name(&self) -> &str {
        self.path
            .trim_start_matches('\\')
            .split('\\')
            .nth(1)
            .unwrap_or("")
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let path = utf16le(&self.path);
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(len_u16(path.len()));
        let off = put_buffer(out, &path);
        out.patch_u16(off_at, len_u16(off));
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "TREE_CONNECT request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let flags = r.u16(W)?;
        let off = usize::from(r.u16(W)?);
        let len = usize::from(r.u16(W)?);
        let path = from_utf16le(buffer(message, off, len, Self::FIXED_END, "Path")?, "Path")?;
        Ok(TreeConnectRequest { flags, path })
    }
}

body_impl!(TreeConnectRequest, TREE_CONNECT);

/// SMB2 TREE_CONNECT response (2.2.10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeConnectResponse {
    /// ShareType (2.2.10): disk, pipe or print.
    pub share_type: ShareType,
    /// ShareFlags (2.2.10): caching policy and `share_flags` bits.
    pub share_flags: u32,
    /// Capabilities (2.2.10): SMB2_SHARE_CAP_* bits (DFS, continuous availability, ...).
    pub capabilities: u32,
    /// MaximalAccess (2.2.10): the access mask the user has on the share.
    pub maximal_access: u32,
}

impl TreeConnectResponse {
    /// StructureSize the spec fixes for this body (2.2.10); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 16;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.share_type.0);
        out.put_u8(0);
        out.put_u32(self.share_flags);
        out.put_u32(self.capabilities);
        out.put_u32(self.maximal_access);
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "TREE_CONNECT response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let share_type = ShareType(r.u8(W)?);
        r.skip(1, W)?;
        let share_flags = r.u32(W)?;
        let capabilities = r.u32(W)?;
        let maximal_access = r.u32(W)?;
        super::end_fixed(&r, W)?;
        Ok(TreeConnectResponse {
            share_type,
            share_flags,
            capabilities,
            maximal_access,
        })
    }
}

body_impl!(TreeConnectResponse, TREE_CONNECT);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    #[test]
    fn round_trip() {
        let r = TreeConnectRequest {
            flags: 0,
            path: r"\\127.0.0.1\data".into(),
        };
        let msg = build(&req(Command::TREE_CONNECT), &r);
        let back = TreeConnectRequest::read(&msg).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.share_name(), "data");
        let t = TreeConnectResponse {
            share_type: ShareType::PIPE,
            share_flags: share_flags::NO_CACHING,
            capabilities: 0,
            maximal_access: 0x001F_01FF,
        };
        let msg = build(&resp(Command::TREE_CONNECT), &t);
        assert_eq!(msg.len(), 80);
        assert_eq!(TreeConnectResponse::read(&msg).unwrap(), t);
    }

    #[test]
    fn odd_path_length_is_an_error() {
        let r = TreeConnectRequest {
            flags: 0,
            path: r"\\h\s".into(),
        };
        let mut msg = build(&req(Command::TREE_CONNECT), &r);
        msg[70] = 9;
        assert!(TreeConnectRequest::read(&msg).is_err());
        msg[70] = 200;
        assert!(TreeConnectRequest::read(&msg).is_err());
    }
}
