//! Directory entries: the QUERY_DIRECTORY output classes (MS-FSCC 2.4), one
//! [`DirectoryEntry`] for all of them, chained by NextEntryOffset.

use super::{decode_chain, start_chain_entry, utf16_name, FileInfoClass};
use crate::codec::{from_utf16le, utf16le, DecodeError, InvalidReason, Reader, Writer};
use crate::messages::len_u32;

/// One directory entry, with every field any of the supported classes carries. Fields a
/// class does not have are ignored by `encode` and zero after `read`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryEntry {
    /// FileIndex: position of the entry in the directory (0 when the server does not keep one).
    pub file_index: u32,
    /// CreationTime: FILETIME (100 ns units since 1601-01-01 UTC) the file was created.
    pub creation_time: u64,
    /// LastAccessTime: FILETIME the file was last read.
    pub last_access_time: u64,
    /// LastWriteTime: FILETIME the file was last written.
    pub last_write_time: u64,
    /// ChangeTime: FILETIME the file's data or metadata last changed.
    pub change_time: u64,
    /// EndOfFile: the file's size in bytes.
    pub end_of_file: u64,
    /// AllocationSize: bytes allocated for the file on disk.
    pub allocation_size: u64,
    /// FileAttributes: MS-FSCC 2.6 attribute bits.
    pub file_attributes: u32,
    /// EaSize: bytes of the file's extended attributes (Full/Both/IdBoth classes).
    pub ea_size: u32,
    /// 8.3 name (Both classes), at most 12 characters.
    pub short_name: String,
    /// FileId (Id classes).
    pub file_id: u64,
    /// FileName: the name, decoded from UTF-16LE.
    pub file_name: String,
}

/// The fixed size of an entry of `class` before its FileName, or `None` if the class is
/// not a supported directory class.
pub fn directory_entry_fixed_len(class: FileInfoClass) -> Option<usize> {
    match class {
        FileInfoClass::DIRECTORY => Some(64),
        FileInfoClass::FULL_DIRECTORY => Some(68),
        FileInfoClass::BOTH_DIRECTORY => Some(94),
        FileInfoClass::NAMES => Some(12),
        FileInfoClass::ID_BOTH_DIRECTORY => Some(104),
        FileInfoClass::ID_FULL_DIRECTORY => Some(80),
        _ => None,
    }
}

fn unsupported(class: FileInfoClass) -> DecodeError {
    DecodeError::invalid("directory entry", InvalidReason::NotDirectoryClass(class.0))
}

impl DirectoryEntry {
    /// Appends this entry with NextEntryOffset 0 (callers chain entries with
    /// [`encode_directory_entries`]).
    pub fn encode(&self, class: FileInfoClass, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let fixed = directory_entry_fixed_len(class).ok_or_else(|| unsupported(class))?;
        let name = utf16le(&self.file_name);
        let start = out.len();
        out.put_u32(0); // NextEntryOffset
        out.put_u32(self.file_index);
        if class != FileInfoClass::NAMES {
            out.put_u64(self.creation_time);
            out.put_u64(self.last_access_time);
            out.put_u64(self.last_write_time);
            out.put_u64(self.change_time);
            out.put_u64(self.end_of_file);
            out.put_u64(self.allocation_size);
            out.put_u32(self.file_attributes);
        }
        out.put_u32(len_u32(name.len()));
        match class {
            FileInfoClass::FULL_DIRECTORY => out.put_u32(self.ea_size),
            FileInfoClass::ID_FULL_DIRECTORY => {
                out.put_u32(self.ea_size);
                out.put_u32(0);
                out.put_u64(self.file_id);
            }
            FileInfoClass::BOTH_DIRECTORY | FileInfoClass::ID_BOTH_DIRECTORY => {
                out.put_u32(self.ea_size);
                let short: Vec<u8> = utf16le(&self.short_name).into_iter().take(24).collect();
                out.put_u8(short.len() as u8);
                out.put_u8(0);
                out.put_bytes(&short);
                out.put_zeros(24 - short.len());
                if class == FileInfoClass::ID_BOTH_DIRECTORY {
                    out.put_u16(0);
                    out.put_u64(self.file_id);
                }
            }
            _ => {}
        }
        debug_assert_eq!(out.len() - start, fixed);
        out.put_bytes(&name);
        Ok(())
    }

    /// Reads one entry from `buf` (which may extend past it); returns it and its
    /// NextEntryOffset.
    pub fn read(class: FileInfoClass, buf: &[u8]) -> Result<(Self, u32), DecodeError> {
        const W: &str = "directory entry";
        directory_entry_fixed_len(class).ok_or_else(|| unsupported(class))?;
        let mut r = Reader::new(buf);
        let next = r.u32(W)?;
        let mut e = DirectoryEntry {
            file_index: r.u32(W)?,
            ..Default::default()
        };
        if class != FileInfoClass::NAMES {
            e.creation_time = r.u64(W)?;
            e.last_access_time = r.u64(W)?;
            e.last_write_time = r.u64(W)?;
            e.change_time = r.u64(W)?;
            e.end_of_file = r.u64(W)?;
            e.allocation_size = r.u64(W)?;
            e.file_attributes = r.u32(W)?;
        }
        let name_len = r.u32(W)? as usize;
        match class {
            FileInfoClass::FULL_DIRECTORY => e.ea_size = r.u32(W)?,
            FileInfoClass::ID_FULL_DIRECTORY => {
                e.ea_size = r.u32(W)?;
                r.skip(4, W)?;
                e.file_id = r.u64(W)?;
            }
            FileInfoClass::BOTH_DIRECTORY | FileInfoClass::ID_BOTH_DIRECTORY => {
                e.ea_size = r.u32(W)?;
                let short_len = usize::from(r.u8(W)?);
                r.skip(1, W)?;
                let short = r.array::<24>(W)?;
                if short_len > 24 {
                    return Err(DecodeError::invalid(
                        "ShortNameLength",
                        InvalidReason::TooLong {
                            len: short_len,
                            max: 24,
                        },
                    ));
                }
                e.short_name = from_utf16le(&short[..short_len], "ShortName")?;
                if class == FileInfoClass::ID_BOTH_DIRECTORY {
                    r.skip(2, W)?;
                    e.file_id = r.u64(W)?;
                }
            }
            _ => {}
        }
        e.file_name = utf16_name(&mut r, name_len, "FileName")?;
        Ok((e, next))
    }
}

/// Encodes as many `entries` as fit in `max_len` bytes, chained by NextEntryOffset with
/// every entry 8-byte aligned (MS-FSCC 2.4). Returns the buffer and how many entries it holds.
pub fn encode_directory_entries(
    class: FileInfoClass,
    entries: &[DirectoryEntry],
    max_len: usize,
) -> Result<(Vec<u8>, usize), DecodeError> {
    let mut out = Vec::new();
    let mut prev: Option<usize> = None;
    let mut count = 0;
    for e in entries {
        let mut one = Vec::new();
        e.encode(class, &mut one)?;
        if crate::messages::align8(out.len()) + one.len() > max_len {
            break;
        }
        prev = Some(start_chain_entry(&mut out, 0, prev));
        out.extend_from_slice(&one);
        count += 1;
    }
    Ok((out, count))
}

/// Decodes a NextEntryOffset chain of directory entries. A zero or backward offset, or one
/// past the buffer, is an error (never a loop).
pub fn decode_directory_entries(
    class: FileInfoClass,
    buf: &[u8],
) -> Result<Vec<DirectoryEntry>, DecodeError> {
    decode_chain(buf, |b| DirectoryEntry::read(class, b))
}
