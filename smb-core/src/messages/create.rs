//! SMB2 CREATE request and response (MS-SMB2 2.2.13, 2.2.14) with create contexts
//! (2.2.13.2), and the access/share/disposition/option/attribute constants they use.

use std::fmt;

use super::{body_impl, buffer, len_u16, len_u32, put_buffer, FileId};
use crate::codec::{from_utf16le, slice_at, utf16le, DecodeError, InvalidReason, Reader, Writer};
use crate::header::{wire_enum, HEADER_LEN};

/// Access mask bits (MS-SMB2 2.2.13.1, MS-DTYP 2.4.3).
pub mod access {
    /// FILE_READ_DATA: read the file's data.
    pub const FILE_READ_DATA: u32 = 0x0000_0001;
    /// FILE_LIST_DIRECTORY: list a directory (same bit as FILE_READ_DATA).
    pub const FILE_LIST_DIRECTORY: u32 = 0x0000_0001;
    /// FILE_WRITE_DATA: write the file's data.
    pub const FILE_WRITE_DATA: u32 = 0x0000_0002;
    /// FILE_ADD_FILE: create a file in a directory (same bit as FILE_WRITE_DATA).
    pub const FILE_ADD_FILE: u32 = 0x0000_0002;
    /// FILE_APPEND_DATA: append to the file.
    pub const FILE_APPEND_DATA: u32 = 0x0000_0004;
    /// FILE_ADD_SUBDIRECTORY: create a subdirectory (same bit as FILE_APPEND_DATA).
    pub const FILE_ADD_SUBDIRECTORY: u32 = 0x0000_0004;
    /// FILE_READ_EA: read extended attributes.
    pub const FILE_READ_EA: u32 = 0x0000_0008;
    /// FILE_WRITE_EA: write extended attributes.
    pub const FILE_WRITE_EA: u32 = 0x0000_0010;
    /// FILE_EXECUTE: execute the file.
    pub const FILE_EXECUTE: u32 = 0x0000_0020;
    /// FILE_TRAVERSE: traverse a directory (same bit as FILE_EXECUTE).
    pub const FILE_TRAVERSE: u32 = 0x0000_0020;
    /// FILE_DELETE_CHILD: delete entries of a directory.
    pub const FILE_DELETE_CHILD: u32 = 0x0000_0040;
    /// FILE_READ_ATTRIBUTES: read attributes and times.
    pub const FILE_READ_ATTRIBUTES: u32 = 0x0000_0080;
    /// FILE_WRITE_ATTRIBUTES: change attributes and times.
    pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0000_0100;
    /// Access mask bits: `DELETE` = 0x0001_0000 (MS-SMB2 2.2.13.1).
    pub const DELETE: u32 = 0x0001_0000;
    /// READ_CONTROL: read the security descriptor (owner, group, DACL).
    pub const READ_CONTROL: u32 = 0x0002_0000;
    /// WRITE_DAC: change the DACL.
    pub const WRITE_DAC: u32 = 0x0004_0000;
    /// WRITE_OWNER: change the owner.
    pub const WRITE_OWNER: u32 = 0x0008_0000;
    /// SYNCHRONIZE: wait on the handle (ignored by SMB2 servers).
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
    /// ACCESS_SYSTEM_SECURITY: read or change the SACL.
    pub const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
    /// MAXIMUM_ALLOWED: grant whatever the caller may have.
    pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
    /// GENERIC_ALL: all access rights.
    pub const GENERIC_ALL: u32 = 0x1000_0000;
    /// GENERIC_EXECUTE: generic execute rights.
    pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
    /// GENERIC_WRITE: generic write rights.
    pub const GENERIC_WRITE: u32 = 0x4000_0000;
    /// GENERIC_READ: generic read rights.
    pub const GENERIC_READ: u32 = 0x8000_0000;
    /// Every specific and standard right on a file (0x001F01FF).
    pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
}

/// ShareAccess bits (2.2.13).
pub mod share_access {
    /// ShareAccess bits: `READ` = 0x0000_0001 (2.2.13).
    pub const READ: u32 = 0x0000_0001;
    /// ShareAccess bits: `WRITE` = 0x0000_0002 (2.2.13).
    pub const WRITE: u32 = 0x0000_0002;
    /// ShareAccess bits: `DELETE` = 0x0000_0004 (2.2.13).
    pub const DELETE: u32 = 0x0000_0004;
}

/// CreateOptions bits (2.2.13).
pub mod create_options {
    /// FILE_DIRECTORY_FILE: the open must be a directory.
    pub const DIRECTORY_FILE: u32 = 0x0000_0001;
    /// CreateOptions bits: `WRITE_THROUGH` = 0x0000_0002 (2.2.13).
    pub const WRITE_THROUGH: u32 = 0x0000_0002;
    /// CreateOptions bits: `SEQUENTIAL_ONLY` = 0x0000_0004 (2.2.13).
    pub const SEQUENTIAL_ONLY: u32 = 0x0000_0004;
    /// CreateOptions bits: `NO_INTERMEDIATE_BUFFERING` = 0x0000_0008 (2.2.13).
    pub const NO_INTERMEDIATE_BUFFERING: u32 = 0x0000_0008;
    /// CreateOptions bits: `SYNCHRONOUS_IO_ALERT` = 0x0000_0010 (2.2.13).
    pub const SYNCHRONOUS_IO_ALERT: u32 = 0x0000_0010;
    /// CreateOptions bits: `SYNCHRONOUS_IO_NONALERT` = 0x0000_0020 (2.2.13).
    pub const SYNCHRONOUS_IO_NONALERT: u32 = 0x0000_0020;
    /// FILE_NON_DIRECTORY_FILE: the open must not be a directory.
    pub const NON_DIRECTORY_FILE: u32 = 0x0000_0040;
    /// CreateOptions bits: `COMPLETE_IF_OPLOCKED` = 0x0000_0100 (2.2.13).
    pub const COMPLETE_IF_OPLOCKED: u32 = 0x0000_0100;
    /// CreateOptions bits: `NO_EA_KNOWLEDGE` = 0x0000_0200 (2.2.13).
    pub const NO_EA_KNOWLEDGE: u32 = 0x0000_0200;
    /// CreateOptions bits: `RANDOM_ACCESS` = 0x0000_0800 (2.2.13).
    pub const RANDOM_ACCESS: u32 = 0x0000_0800;
    /// FILE_DELETE_ON_CLOSE: delete the file when the last handle closes.
    pub const DELETE_ON_CLOSE: u32 = 0x0000_1000;
    /// FILE_OPEN_BY_FILE_ID: the name is a file id (not supported by most servers).
    pub const OPEN_BY_FILE_ID: u32 = 0x0000_2000;
    /// CreateOptions bits: `OPEN_FOR_BACKUP_INTENT` = 0x0000_4000 (2.2.13).
    pub const OPEN_FOR_BACKUP_INTENT: u32 = 0x0000_4000;
    /// CreateOptions bits: `NO_COMPRESSION` = 0x0000_8000 (2.2.13).
    pub const NO_COMPRESSION: u32 = 0x0000_8000;
    /// FILE_OPEN_REPARSE_POINT: open the reparse point itself, not its target.
    pub const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    /// CreateOptions bits: `OPEN_NO_RECALL` = 0x0040_0000 (2.2.13).
    pub const OPEN_NO_RECALL: u32 = 0x0040_0000;
    /// CreateOptions bits: `OPEN_FOR_FREE_SPACE_QUERY` = 0x0080_0000 (2.2.13).
    pub const OPEN_FOR_FREE_SPACE_QUERY: u32 = 0x0080_0000;
}

/// FileAttributes bits (MS-FSCC 2.6).
pub mod file_attributes {
    /// FILE_ATTRIBUTE_READONLY.
    pub const READONLY: u32 = 0x0000_0001;
    /// FILE_ATTRIBUTE_HIDDEN.
    pub const HIDDEN: u32 = 0x0000_0002;
    /// FILE_ATTRIBUTE_SYSTEM.
    pub const SYSTEM: u32 = 0x0000_0004;
    /// FILE_ATTRIBUTE_DIRECTORY: the file is a directory.
    pub const DIRECTORY: u32 = 0x0000_0010;
    /// FILE_ATTRIBUTE_ARCHIVE.
    pub const ARCHIVE: u32 = 0x0000_0020;
    /// FILE_ATTRIBUTE_NORMAL: no other attribute is set.
    pub const NORMAL: u32 = 0x0000_0080;
    /// FILE_ATTRIBUTE_TEMPORARY.
    pub const TEMPORARY: u32 = 0x0000_0100;
    /// FILE_ATTRIBUTE_SPARSE_FILE.
    pub const SPARSE_FILE: u32 = 0x0000_0200;
    /// FILE_ATTRIBUTE_REPARSE_POINT.
    pub const REPARSE_POINT: u32 = 0x0000_0400;
    /// FILE_ATTRIBUTE_COMPRESSED.
    pub const COMPRESSED: u32 = 0x0000_0800;
    /// FILE_ATTRIBUTE_OFFLINE.
    pub const OFFLINE: u32 = 0x0000_1000;
    /// FILE_ATTRIBUTE_NOT_CONTENT_INDEXED.
    pub const NOT_CONTENT_INDEXED: u32 = 0x0000_2000;
    /// FILE_ATTRIBUTE_ENCRYPTED.
    pub const ENCRYPTED: u32 = 0x0000_4000;
}

wire_enum! {
    /// CreateDisposition (2.2.13).
    CreateDisposition(u32) {
        SUPERSEDE = 0,
        OPEN = 1,
        CREATE = 2,
        OPEN_IF = 3,
        OVERWRITE = 4,
        OVERWRITE_IF = 5,
    }
}

wire_enum! {
    /// CreateAction in the response (2.2.14).
    CreateAction(u32) {
        SUPERSEDED = 0,
        OPENED = 1,
        CREATED = 2,
        OVERWRITTEN = 3,
    }
}

wire_enum! {
    /// ImpersonationLevel (2.2.13).
    ImpersonationLevel(u32) {
        ANONYMOUS = 0,
        IDENTIFICATION = 1,
        IMPERSONATION = 2,
        DELEGATE = 3,
    }
}

wire_enum! {
    /// RequestedOplockLevel / OplockLevel (2.2.13, 2.2.14).
    OplockLevel(u8) {
        NONE = 0x00,
        II = 0x01,
        EXCLUSIVE = 0x08,
        BATCH = 0x09,
        LEASE = 0xFF,
    }
}

/// Well-known create context names (2.2.13.2).
pub mod context_names {
    /// SMB2_CREATE_EA_BUFFER: extended attributes to apply to the new file.
    pub const EA_BUFFER: &[u8] = b"ExtA";
    /// SMB2_CREATE_SD_BUFFER: a security descriptor for the new file.
    pub const SD_BUFFER: &[u8] = b"SecD";
    /// SMB2_CREATE_DURABLE_HANDLE_REQUEST: ask for a durable open.
    pub const DURABLE_HANDLE_REQUEST: &[u8] = b"DHnQ";
    /// SMB2_CREATE_DURABLE_HANDLE_RECONNECT: reopen a durable handle.
    pub const DURABLE_HANDLE_RECONNECT: &[u8] = b"DHnC";
    /// SMB2_CREATE_ALLOCATION_SIZE: initial allocation size of the new file.
    pub const ALLOCATION_SIZE: &[u8] = b"AlSi";
    /// SMB2_CREATE_QUERY_MAXIMAL_ACCESS_REQUEST: return the caller's maximal access.
    pub const QUERY_MAXIMAL_ACCESS: &[u8] = b"MxAc";
    /// SMB2_CREATE_TIMEWARP_TOKEN: open a previous version (snapshot) of the file.
    pub const TIMEWARP_TOKEN: &[u8] = b"TWrp";
    /// SMB2_CREATE_QUERY_ON_DISK_ID: return the file's on-disk id.
    pub const QUERY_ON_DISK_ID: &[u8] = b"QFid";
    /// SMB2_CREATE_REQUEST_LEASE (v1 or v2, told apart by the data length).
    pub const REQUEST_LEASE: &[u8] = b"RqLs";
    /// SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2: ask for a durable/persistent open (3.x).
    pub const DURABLE_HANDLE_REQUEST_V2: &[u8] = b"DH2Q";
    /// SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2: reopen a durable handle (3.x).
    pub const DURABLE_HANDLE_RECONNECT_V2: &[u8] = b"DH2C";
}

/// One create context (2.2.13.2): a name and its data, both kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateContext {
    /// Name (2.2.13.2): usually a 4-byte tag such as `b"MxAc"` (see `context_names`).
    pub name: Vec<u8>,
    /// Data (2.2.13.2): the context's payload, uninterpreted.
    pub data: Vec<u8>,
}

impl CreateContext {
    /// A context with the 4-byte (or longer) `name` and raw `data`.
    pub fn new(name: &[u8], data: Vec<u8>) -> Self {
        CreateContext {
            name: name.to_vec(),
            data,
        }
    }
}

/// Writes a context list at the next 8-byte boundary; returns (offset, length), or (0, 0)
/// for an empty list.
fn encode_contexts(out: &mut Vec<u8>, contexts: &[CreateContext]) -> (usize, usize) {
    if contexts.is_empty() {
        return (0, 0);
    }
    out.pad_to(8);
    let start = out.len();
    for (i, c) in contexts.iter().enumerate() {
        let at = out.len();
        out.put_u32(0); // Next, patched below
        out.put_u16(16); // NameOffset: right after this 16-byte header
        out.put_u16(len_u16(c.name.len()));
        out.put_u16(0);
        let data_off_at = out.len();
        out.put_u16(0);
        out.put_u32(len_u32(c.data.len()));
        out.put_bytes(&c.name);
        if !c.data.is_empty() {
            // 2.2.13.2: DataOffset is 8-byte aligned from the context start.
            out.pad_to(8);
            let off = out.len() - at;
            out.patch_u16(data_off_at, len_u16(off));
            out.put_bytes(&c.data);
        }
        if i + 1 < contexts.len() {
            out.pad_to(8);
            let next = out.len() - at;
            out.patch_u32(at, len_u32(next));
        }
    }
    (start, out.len() - start)
}

/// Parses the context list in `region` (the bytes CreateContextsOffset/Length point at).
fn read_contexts(region: &[u8]) -> Result<Vec<CreateContext>, DecodeError> {
    const W: &str = "create context";
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < region.len() {
        let rest = slice_at(region, pos, region.len() - pos, W)?;
        let mut r = Reader::new(rest);
        let next = r.u32(W)? as usize;
        let name_off = usize::from(r.u16(W)?);
        let name_len = usize::from(r.u16(W)?);
        r.skip(2, W)?;
        let data_off = usize::from(r.u16(W)?);
        let data_len = r.u32(W)? as usize;
        // This context's bytes: up to Next, or the end of the list for the last one.
        let this = if next == 0 {
            rest
        } else {
            slice_at(rest, 0, next, W)?
        };
        if name_off < 16 {
            return Err(DecodeError::invalid(
                "create context NameOffset",
                InvalidReason::OffsetTooSmall {
                    offset: name_off,
                    min: 16,
                },
            ));
        }
        if name_len == 0 {
            return Err(DecodeError::invalid(
                "create context NameLength",
                InvalidReason::Zero,
            ));
        }
        let name = slice_at(this, name_off, name_len, W)?.to_vec();
        let data = if data_len == 0 {
            Vec::new()
        } else {
            if data_off < 16 {
                return Err(DecodeError::invalid(
                    "create context DataOffset",
                    InvalidReason::OffsetTooSmall {
                        offset: data_off,
                        min: 16,
                    },
                ));
            }
            slice_at(this, data_off, data_len, W)?.to_vec()
        };
        out.push(CreateContext { name, data });
        if next == 0 {
            break;
        }
        // 2.2.13.2: Next is a multiple of 8; a zero or backward step would loop.
        if !next.is_multiple_of(8) || next < 16 {
            return Err(DecodeError::invalid(
                W,
                InvalidReason::BadNextOffset { next },
            ));
        }
        pos += next;
    }
    Ok(out)
}

/// Finds a context by name.
pub fn find_context<'a>(contexts: &'a [CreateContext], name: &[u8]) -> Option<&'a CreateContext> {
    contexts.iter().find(|c| c.name == name)
}

/// SMB2 CREATE request (2.2.13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateRequest {
    /// SecurityFlags (2.2.13): reserved, MUST be 0.
    pub security_flags: u8,
    /// RequestedOplockLevel (2.2.13): the oplock the client asks for.
    pub requested_oplock_level: OplockLevel,
    /// ImpersonationLevel (2.2.13): how the server may impersonate the client.
    pub impersonation_level: ImpersonationLevel,
    /// SmbCreateFlags (2.2.13): reserved, MUST be 0.
    pub smb_create_flags: u64,
    /// DesiredAccess (2.2.13.1): `access` mask bits the client asks for.
    pub desired_access: u32,
    /// FileAttributes: MS-FSCC 2.6 attribute bits.
    pub file_attributes: u32,
    /// ShareAccess (2.2.13): `share_access` bits other opens may keep.
    pub share_access: u32,
    /// CreateDisposition (2.2.13): what to do if the file does or does not exist.
    pub create_disposition: CreateDisposition,
    /// CreateOptions (2.2.13): `create_options` bits.
    pub create_options: u32,
    /// Path relative to the share root, backslash-separated, no leading backslash.
    pub name: String,
    /// The create contexts (2.2.13.2), in wire order.
    pub contexts: Vec<CreateContext>,
}

impl CreateRequest {
    /// StructureSize the spec fixes for this body (2.2.13); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 57;
    const FIXED_END: usize = HEADER_LEN + 56;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name = utf16le(&self.name);
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.security_flags);
        out.put_u8(self.requested_oplock_level.0);
        out.put_u32(self.impersonation_level.0);
        out.put_u64(self.smb_create_flags);
        out.put_u64(0);
        out.put_u32(self.desired_access);
        out.put_u32(self.file_attributes);
        out.put_u32(self.share_access);
        out.put_u32(self.create_disposition.0);
        out.put_u32(self.create_options);
        let name_at = out.len();
        out.put_u16(0);
        out.put_u16(len_u16(name.len()));
        let ctx_at = out.len();
        out.put_u32(0);
        out.put_u32(0);
        // MS-SMB2 2.2.13: NameOffset points at the Buffer even for an empty name.
        let off = put_buffer(out, &name);
        out.patch_u16(name_at, len_u16(off));
        let (off, len) = encode_contexts(out, &self.contexts);
        out.patch_u32(ctx_at, len_u32(off));
        out.patch_u32(ctx_at + 4, len_u32(len));
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "CREATE request";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let security_flags = r.u8(W)?;
        let requested_oplock_level = OplockLevel(r.u8(W)?);
        let impersonation_level = ImpersonationLevel(r.u32(W)?);
        let smb_create_flags = r.u64(W)?;
        r.skip(8, W)?;
        let desired_access = r.u32(W)?;
        let file_attributes = r.u32(W)?;
        let share_access = r.u32(W)?;
        let create_disposition = CreateDisposition(r.u32(W)?);
        let create_options = r.u32(W)?;
        let name_off = usize::from(r.u16(W)?);
        let name_len = usize::from(r.u16(W)?);
        let ctx_off = r.u32(W)? as usize;
        let ctx_len = r.u32(W)? as usize;
        let name = from_utf16le(
            buffer(message, name_off, name_len, Self::FIXED_END, "Name")?,
            "Name",
        )?;
        let contexts = read_contexts(buffer(
            message,
            ctx_off,
            ctx_len,
            Self::FIXED_END,
            "CreateContexts",
        )?)?;
        Ok(CreateRequest {
            security_flags,
            requested_oplock_level,
            impersonation_level,
            smb_create_flags,
            desired_access,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            name,
            contexts,
        })
    }
}

body_impl!(CreateRequest, CREATE);

/// Response Flags (2.2.14).
pub mod response_flags {
    /// Response Flags: `REPARSEPOINT` = 0x01 (2.2.14).
    pub const REPARSEPOINT: u8 = 0x01;
}

/// SMB2 CREATE response (2.2.14). Times are FILETIMEs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateResponse {
    /// OplockLevel (2.2.14): the oplock granted.
    pub oplock_level: OplockLevel,
    /// Flags (2.2.14): SMB2_CREATE_FLAG_REPARSEPOINT (3.1.1 only), else 0.
    pub flags: u8,
    /// CreateAction (2.2.14): whether the file was superseded, opened, created or overwritten.
    pub create_action: CreateAction,
    /// CreationTime: FILETIME (100 ns units since 1601-01-01 UTC) the file was created.
    pub creation_time: u64,
    /// LastAccessTime: FILETIME the file was last read.
    pub last_access_time: u64,
    /// LastWriteTime: FILETIME the file was last written.
    pub last_write_time: u64,
    /// ChangeTime: FILETIME the file's data or metadata last changed.
    pub change_time: u64,
    /// AllocationSize: bytes allocated for the file on disk.
    pub allocation_size: u64,
    /// EndOfFile: the file's size in bytes.
    pub end_of_file: u64,
    /// FileAttributes: MS-FSCC 2.6 attribute bits.
    pub file_attributes: u32,
    /// FileId of the open this command acts on (MS-SMB2 2.2.14.1).
    pub file_id: FileId,
    /// The create contexts (2.2.13.2), in wire order.
    pub contexts: Vec<CreateContext>,
}

impl CreateResponse {
    /// StructureSize the spec fixes for this body (2.2.14); `read` rejects any other.
    pub const STRUCTURE_SIZE: u16 = 89;
    const FIXED_END: usize = HEADER_LEN + 88;

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.oplock_level.0);
        out.put_u8(self.flags);
        out.put_u32(self.create_action.0);
        out.put_u64(self.creation_time);
        out.put_u64(self.last_access_time);
        out.put_u64(self.last_write_time);
        out.put_u64(self.change_time);
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.file_attributes);
        out.put_u32(0);
        self.file_id.encode(out);
        let ctx_at = out.len();
        out.put_u32(0);
        out.put_u32(0);
        if self.contexts.is_empty() {
            out.put_u8(0); // the one Buffer byte StructureSize counts
        } else {
            let (off, len) = encode_contexts(out, &self.contexts);
            out.patch_u32(ctx_at, len_u32(off));
            out.patch_u32(ctx_at + 4, len_u32(len));
        }
    }

    /// Parses the body of a whole message (header included), checking StructureSize.
    pub fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "CREATE response";
        let mut r = super::body(message, Self::STRUCTURE_SIZE, W)?;
        let oplock_level = OplockLevel(r.u8(W)?);
        let flags = r.u8(W)?;
        let create_action = CreateAction(r.u32(W)?);
        let creation_time = r.u64(W)?;
        let last_access_time = r.u64(W)?;
        let last_write_time = r.u64(W)?;
        let change_time = r.u64(W)?;
        let allocation_size = r.u64(W)?;
        let end_of_file = r.u64(W)?;
        let file_attributes = r.u32(W)?;
        r.skip(4, W)?;
        let file_id = FileId::read(&mut r)?;
        let ctx_off = r.u32(W)? as usize;
        let ctx_len = r.u32(W)? as usize;
        let contexts = read_contexts(buffer(
            message,
            ctx_off,
            ctx_len,
            Self::FIXED_END,
            "CreateContexts",
        )?)?;
        Ok(CreateResponse {
            oplock_level,
            flags,
            create_action,
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            allocation_size,
            end_of_file,
            file_attributes,
            file_id,
            contexts,
        })
    }
}

body_impl!(CreateResponse, CREATE);

/// The MxAc response data (2.2.14.2.5): QueryStatus then MaximalAccess.
pub fn maximal_access_response(status: u32, maximal_access: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(8);
    v.put_u32(status);
    v.put_u32(maximal_access);
    v
}

/// The QFid response data (2.2.14.2.9): a 32-byte opaque on-disk id.
pub fn on_disk_id_response(disk_file_id: u64, volume_id: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(32);
    v.put_u64(disk_file_id);
    v.put_u64(volume_id);
    v.put_zeros(16);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Command;
    use crate::messages::build;
    use crate::messages::test_util::{req, resp};

    fn sample_contexts() -> Vec<CreateContext> {
        vec![
            CreateContext::new(context_names::QUERY_MAXIMAL_ACCESS, vec![]),
            CreateContext::new(context_names::QUERY_ON_DISK_ID, vec![]),
            CreateContext::new(
                context_names::ALLOCATION_SIZE,
                vec![0, 16, 0, 0, 0, 0, 0, 0],
            ),
            CreateContext::new(context_names::DURABLE_HANDLE_REQUEST_V2, vec![7; 32]),
        ]
    }

    #[test]
    fn request_round_trip() {
        for (name, contexts) in [("", vec![]), ("dir\\file é.txt", sample_contexts())] {
            let r = CreateRequest {
                security_flags: 0,
                requested_oplock_level: OplockLevel::NONE,
                impersonation_level: ImpersonationLevel::IMPERSONATION,
                smb_create_flags: 0,
                desired_access: access::GENERIC_READ | access::SYNCHRONIZE,
                file_attributes: file_attributes::NORMAL,
                share_access: share_access::READ | share_access::WRITE,
                create_disposition: CreateDisposition::OPEN_IF,
                create_options: create_options::NON_DIRECTORY_FILE,
                name: name.into(),
                contexts,
            };
            let msg = build(&req(Command::CREATE), &r);
            assert_eq!(u16::from_le_bytes([msg[108], msg[109]]), 120);
            assert_eq!(CreateRequest::read(&msg).unwrap(), r);
        }
    }

    #[test]
    fn response_round_trip() {
        for contexts in [vec![], sample_contexts()] {
            let r = CreateResponse {
                oplock_level: OplockLevel::II,
                flags: 0,
                create_action: CreateAction::CREATED,
                creation_time: 1,
                last_access_time: 2,
                last_write_time: 3,
                change_time: 4,
                allocation_size: 4096,
                end_of_file: 10,
                file_attributes: file_attributes::ARCHIVE,
                file_id: FileId {
                    persistent: 9,
                    volatile: 10,
                },
                contexts,
            };
            let msg = build(&resp(Command::CREATE), &r);
            assert_eq!(CreateResponse::read(&msg).unwrap(), r);
        }
    }

    #[test]
    fn looping_or_out_of_range_contexts_are_errors() {
        let r = CreateRequest {
            name: "a".into(),
            contexts: sample_contexts(),
            ..Default::default()
        };
        let msg = build(&req(Command::CREATE), &r);
        let ctx_off = u32::from_le_bytes(msg[112..116].try_into().unwrap()) as usize;
        assert_eq!(ctx_off % 8, 0);
        // Next = 0 would end early (fine), Next = 4 (misaligned) and Next huge are errors.
        let mut bad = msg.clone();
        bad[ctx_off..ctx_off + 4].copy_from_slice(&4u32.to_le_bytes());
        assert!(CreateRequest::read(&bad).is_err());
        let mut bad = msg.clone();
        bad[ctx_off..ctx_off + 4].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
        assert!(CreateRequest::read(&bad).is_err());
        // Name length past the end of its context.
        let mut bad = msg.clone();
        bad[ctx_off + 6] = 200;
        assert!(CreateRequest::read(&bad).is_err());
        // CreateContextsLength past the message.
        let mut bad = msg.clone();
        bad[116..120].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(CreateRequest::read(&bad).is_err());
        for n in 0..msg.len() {
            let _ = CreateRequest::read(&msg[..n]);
        }
    }
}
