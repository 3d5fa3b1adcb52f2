//! MS-FSCC information classes carried by QUERY_DIRECTORY, QUERY_INFO and SET_INFO:
//! directory entries (2.4 query-directory classes), file classes, file-system classes, and
//! a minimal self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6).
//!
//! Each structure has `encode(&self, out)` and `read(buf)` where `buf` is the info buffer
//! itself (not a whole message). A buffer longer than the structure is accepted for the
//! fixed-size classes (senders may pad to 8 bytes); a shorter one is a [`DecodeError`].

use std::fmt;

use super::len_u32;
use crate::codec::{from_utf16le, slice_at, utf16le, DecodeError, Reader, Writer};
use crate::header::wire_enum;

wire_enum! {
    /// FileInformationClass values for QUERY_DIRECTORY and QUERY_INFO/SET_INFO with
    /// InfoType FILE (MS-FSCC 2.4).
    FileInfoClass(u8) {
        DIRECTORY = 1,
        FULL_DIRECTORY = 2,
        BOTH_DIRECTORY = 3,
        BASIC = 4,
        STANDARD = 5,
        INTERNAL = 6,
        EA = 7,
        ACCESS = 8,
        NAME = 9,
        RENAME = 10,
        NAMES = 12,
        DISPOSITION = 13,
        POSITION = 14,
        FULL_EA = 15,
        MODE = 16,
        ALIGNMENT = 17,
        ALL = 18,
        ALLOCATION = 19,
        END_OF_FILE = 20,
        ALTERNATE_NAME = 21,
        STREAM = 22,
        COMPRESSION = 28,
        NETWORK_OPEN = 34,
        ATTRIBUTE_TAG = 35,
        ID_BOTH_DIRECTORY = 37,
        ID_FULL_DIRECTORY = 38,
        NORMALIZED_NAME = 48,
        DISPOSITION_EX = 64,
    }
}

wire_enum! {
    /// FsInformationClass values for QUERY_INFO with InfoType FILESYSTEM (MS-FSCC 2.5).
    FsInfoClass(u8) {
        VOLUME = 1,
        SIZE = 3,
        DEVICE = 4,
        ATTRIBUTE = 5,
        CONTROL = 6,
        FULL_SIZE = 7,
        OBJECT_ID = 8,
        SECTOR_SIZE = 11,
    }
}

fn utf16_name(r: &mut Reader, len: usize, what: &'static str) -> Result<String, DecodeError> {
    from_utf16le(r.take(len, what)?, what)
}

// ---------------------------------------------------------------------------------------
// Directory entries (QUERY_DIRECTORY output).

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
    DecodeError::invalid(
        "directory entry",
        format!("{class} is not a directory class"),
    )
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
                    return Err(DecodeError::invalid(W, "ShortNameLength > 24"));
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
        if super::align8(out.len()) + one.len() > max_len {
            break;
        }
        prev = Some(start_chain_entry(&mut out, 0, prev));
        out.extend_from_slice(&one);
        count += 1;
    }
    Ok((out, count))
}

/// Starts the next entry of a NextEntryOffset chain that begins at `base` in `out`: pads to
/// an 8-byte boundary from `base` (MS-FSCC 2.4: entries are 8-byte aligned) and points the
/// previous entry's NextEntryOffset (at `prev`) to it. Returns where the new entry starts.
fn start_chain_entry(out: &mut Vec<u8>, base: usize, prev: Option<usize>) -> usize {
    let start = base + super::align8(out.len() - base);
    out.resize(start, 0);
    if let Some(p) = prev {
        out.patch_u32(p, len_u32(start - p));
    }
    start
}

/// Decodes a NextEntryOffset chain of directory entries. A zero or backward offset, or one
/// past the buffer, is an error (never a loop).
pub fn decode_directory_entries(
    class: FileInfoClass,
    buf: &[u8],
) -> Result<Vec<DirectoryEntry>, DecodeError> {
    decode_chain(buf, |b| DirectoryEntry::read(class, b))
}

/// Walks a NextEntryOffset chain, each entry parsed from its own bytes.
fn decode_chain<T>(
    buf: &[u8],
    mut read: impl FnMut(&[u8]) -> Result<(T, u32), DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    const W: &str = "NextEntryOffset chain";
    let mut out = Vec::new();
    let mut pos = 0usize;
    if buf.is_empty() {
        return Ok(out);
    }
    loop {
        let rest = slice_at(buf, pos, buf.len().saturating_sub(pos), W)?;
        let (entry, next) = read(rest)?;
        out.push(entry);
        if next == 0 {
            return Ok(out);
        }
        let next = next as usize;
        // Each entry is at least 4 bytes of NextEntryOffset: `next` must move forward and
        // the following entry must start inside the buffer.
        if next < 4 || next >= rest.len() {
            return Err(DecodeError::invalid(
                W,
                format!("NextEntryOffset {next} out of range"),
            ));
        }
        pos += next;
    }
}

// ---------------------------------------------------------------------------------------
// File information classes (QUERY_INFO / SET_INFO, InfoType FILE).

/// FileBasicInformation (MS-FSCC 2.4.7), 40 bytes. In SET_INFO a time of 0 means "do not
/// change" and -1 means "stop updating it".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileBasicInformation {
    /// CreationTime: FILETIME (100 ns units since 1601-01-01 UTC) the file was created.
    pub creation_time: u64,
    /// LastAccessTime: FILETIME the file was last read.
    pub last_access_time: u64,
    /// LastWriteTime: FILETIME the file was last written.
    pub last_write_time: u64,
    /// ChangeTime: FILETIME the file's data or metadata last changed.
    pub change_time: u64,
    /// FileAttributes: MS-FSCC 2.6 attribute bits.
    pub file_attributes: u32,
}

impl FileBasicInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 40;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.creation_time);
        out.put_u64(self.last_access_time);
        out.put_u64(self.last_write_time);
        out.put_u64(self.change_time);
        out.put_u32(self.file_attributes);
        out.put_u32(0);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileBasicInformation";
        let mut r = Reader::new(buf);
        let v = FileBasicInformation {
            creation_time: r.u64(W)?,
            last_access_time: r.u64(W)?,
            last_write_time: r.u64(W)?,
            change_time: r.u64(W)?,
            file_attributes: r.u32(W)?,
        };
        // Reserved: some clients send 36 bytes, so it is optional.
        Ok(v)
    }
}

/// FileStandardInformation (MS-FSCC 2.4.41), 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStandardInformation {
    /// AllocationSize: bytes allocated for the file on disk.
    pub allocation_size: u64,
    /// EndOfFile: the file's size in bytes.
    pub end_of_file: u64,
    /// NumberOfLinks (MS-FSCC 2.4.41): hard links to the file.
    pub number_of_links: u32,
    /// DeletePending: true if the file is to be deleted when the last handle closes.
    pub delete_pending: bool,
    /// Directory (MS-FSCC 2.4.41): the file is a directory.
    pub directory: bool,
}

impl FileStandardInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 24;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.number_of_links);
        out.put_u8(self.delete_pending as u8);
        out.put_u8(self.directory as u8);
        out.put_u16(0);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileStandardInformation";
        let mut r = Reader::new(buf);
        let v = FileStandardInformation {
            allocation_size: r.u64(W)?,
            end_of_file: r.u64(W)?,
            number_of_links: r.u32(W)?,
            delete_pending: r.u8(W)? != 0,
            directory: r.u8(W)? != 0,
        };
        r.skip(2, W)?;
        Ok(v)
    }
}

/// Declares a class that is a single integer field.
macro_rules! scalar_info {
    ($(#[$m:meta])* $name:ident { $field:ident: $ty:ident }, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            /// The single field of this class, little-endian on the wire.
            pub $field: $ty,
        }
        impl $name {
            /// Length of the fixed wire form in bytes.
            pub const LEN: usize = std::mem::size_of::<$ty>();
            /// Appends the wire form to `out`.
            pub fn encode(&self, out: &mut Vec<u8>) {
                out.put_bytes(&self.$field.to_le_bytes());
            }
            /// Parses the wire form from the start of the buffer.
            pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(buf);
                Ok($name { $field: r.$ty($what)? })
            }
        }
    };
}

scalar_info!(
    /// FileInternalInformation (MS-FSCC 2.4.22): the file's 64-bit index number.
    FileInternalInformation { index_number: u64 },
    "FileInternalInformation"
);
scalar_info!(
    /// FileEaInformation (MS-FSCC 2.4.13).
    FileEaInformation { ea_size: u32 },
    "FileEaInformation"
);
scalar_info!(
    /// FileAccessInformation (MS-FSCC 2.4.1): the open's granted access mask.
    FileAccessInformation { access_flags: u32 },
    "FileAccessInformation"
);
scalar_info!(
    /// FilePositionInformation (MS-FSCC 2.4.35).
    FilePositionInformation { current_byte_offset: u64 },
    "FilePositionInformation"
);
scalar_info!(
    /// FileModeInformation (MS-FSCC 2.4.26).
    FileModeInformation { mode: u32 },
    "FileModeInformation"
);
scalar_info!(
    /// FileAlignmentInformation (MS-FSCC 2.4.3): 0 = byte aligned.
    FileAlignmentInformation { alignment_requirement: u32 },
    "FileAlignmentInformation"
);
scalar_info!(
    /// FileEndOfFileInformation (MS-FSCC 2.4.14), for SET_INFO.
    FileEndOfFileInformation { end_of_file: u64 },
    "FileEndOfFileInformation"
);
scalar_info!(
    /// FileAllocationInformation (MS-FSCC 2.4.4), for SET_INFO.
    FileAllocationInformation { allocation_size: u64 },
    "FileAllocationInformation"
);

/// FileNameInformation (MS-FSCC 2.4.27), also the layout of FileNormalizedNameInformation
/// (2.4.28) and the name part of FileAllInformation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileNameInformation {
    /// FileName: the name, decoded from UTF-16LE.
    pub file_name: String,
}

impl FileNameInformation {
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name = utf16le(&self.file_name);
        out.put_u32(len_u32(name.len()));
        out.put_bytes(&name);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileNameInformation";
        let mut r = Reader::new(buf);
        let len = r.u32(W)? as usize;
        Ok(FileNameInformation {
            file_name: utf16_name(&mut r, len, W)?,
        })
    }
}

/// FileAllInformation (MS-FSCC 2.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileAllInformation {
    /// BasicInformation: times and attributes.
    pub basic: FileBasicInformation,
    /// StandardInformation: sizes, links, delete-pending, directory.
    pub standard: FileStandardInformation,
    /// InternalInformation: the file's index number.
    pub internal: FileInternalInformation,
    /// EaInformation: size of the extended attributes.
    pub ea: FileEaInformation,
    /// AccessInformation: the open's granted access.
    pub access: FileAccessInformation,
    /// PositionInformation: the current byte offset.
    pub position: FilePositionInformation,
    /// ModeInformation: the open's mode flags.
    pub mode: FileModeInformation,
    /// AlignmentInformation: the device's buffer alignment.
    pub alignment: FileAlignmentInformation,
    /// NameInformation: the file's path.
    pub name: FileNameInformation,
}

impl FileAllInformation {
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.basic.encode(out);
        self.standard.encode(out);
        self.internal.encode(out);
        self.ea.encode(out);
        self.access.encode(out);
        self.position.encode(out);
        self.mode.encode(out);
        self.alignment.encode(out);
        self.name.encode(out);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        let at = |off: usize, len: usize| slice_at(buf, off, len, "FileAllInformation");
        Ok(FileAllInformation {
            basic: FileBasicInformation::read(at(0, 40)?)?,
            standard: FileStandardInformation::read(at(40, 24)?)?,
            internal: FileInternalInformation::read(at(64, 8)?)?,
            ea: FileEaInformation::read(at(72, 4)?)?,
            access: FileAccessInformation::read(at(76, 4)?)?,
            position: FilePositionInformation::read(at(80, 8)?)?,
            mode: FileModeInformation::read(at(88, 4)?)?,
            alignment: FileAlignmentInformation::read(at(92, 4)?)?,
            name: FileNameInformation::read(at(96, buf.len().saturating_sub(96))?)?,
        })
    }
}

/// FileNetworkOpenInformation (MS-FSCC 2.4.29), 56 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileNetworkOpenInformation {
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
}

impl FileNetworkOpenInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 56;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.creation_time);
        out.put_u64(self.last_access_time);
        out.put_u64(self.last_write_time);
        out.put_u64(self.change_time);
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.file_attributes);
        out.put_u32(0);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileNetworkOpenInformation";
        let mut r = Reader::new(buf);
        let v = FileNetworkOpenInformation {
            creation_time: r.u64(W)?,
            last_access_time: r.u64(W)?,
            last_write_time: r.u64(W)?,
            change_time: r.u64(W)?,
            allocation_size: r.u64(W)?,
            end_of_file: r.u64(W)?,
            file_attributes: r.u32(W)?,
        };
        r.skip(4, W)?;
        Ok(v)
    }
}

/// FileAttributeTagInformation (MS-FSCC 2.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileAttributeTagInformation {
    /// FileAttributes: MS-FSCC 2.6 attribute bits.
    pub file_attributes: u32,
    /// ReparseTag (MS-FSCC 2.4.6): the reparse tag, 0 if not a reparse point.
    pub reparse_tag: u32,
}

impl FileAttributeTagInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 8;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.file_attributes);
        out.put_u32(self.reparse_tag);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileAttributeTagInformation";
        let mut r = Reader::new(buf);
        Ok(FileAttributeTagInformation {
            file_attributes: r.u32(W)?,
            reparse_tag: r.u32(W)?,
        })
    }
}

/// One FileStreamInformation entry (MS-FSCC 2.4.43); the default data stream is "::$DATA".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileStreamInformation {
    /// StreamSize (MS-FSCC 2.4.43): the stream's size in bytes.
    pub stream_size: u64,
    /// StreamAllocationSize (MS-FSCC 2.4.43): bytes allocated for the stream.
    pub stream_allocation_size: u64,
    /// StreamName (MS-FSCC 2.4.43), e.g. "::$DATA".
    pub stream_name: String,
}

impl FileStreamInformation {
    /// Encodes a chain of stream entries, 8-byte aligned.
    pub fn encode_list(streams: &[FileStreamInformation], out: &mut Vec<u8>) {
        let base = out.len();
        let mut prev: Option<usize> = None;
        for s in streams {
            let at = start_chain_entry(out, base, prev);
            let name = utf16le(&s.stream_name);
            out.put_u32(0);
            out.put_u32(len_u32(name.len()));
            out.put_u64(s.stream_size);
            out.put_u64(s.stream_allocation_size);
            out.put_bytes(&name);
            prev = Some(at);
        }
    }

    /// Parses a chain of entries linked by NextEntryOffset.
    pub fn read_list(buf: &[u8]) -> Result<Vec<Self>, DecodeError> {
        decode_chain(buf, |b| {
            const W: &str = "FileStreamInformation";
            let mut r = Reader::new(b);
            let next = r.u32(W)?;
            let name_len = r.u32(W)? as usize;
            let stream_size = r.u64(W)?;
            let stream_allocation_size = r.u64(W)?;
            let stream_name = utf16_name(&mut r, name_len, W)?;
            Ok((
                FileStreamInformation {
                    stream_size,
                    stream_allocation_size,
                    stream_name,
                },
                next,
            ))
        })
    }
}

/// FileDispositionInformation (MS-FSCC 2.4.11), for SET_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileDispositionInformation {
    /// DeletePending: true if the file is to be deleted when the last handle closes.
    pub delete_pending: bool,
}

impl FileDispositionInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 1;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.delete_pending as u8);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        Ok(FileDispositionInformation {
            delete_pending: r.u8("FileDispositionInformation")? != 0,
        })
    }
}

/// FileRenameInformation, SMB2 form (MS-FSCC 2.4.37.2): RootDirectory is 8 bytes and must be
/// 0 over SMB2; the name is relative to the share root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRenameInformation {
    /// ReplaceIfExists (MS-FSCC 2.4.37.2): overwrite an existing target.
    pub replace_if_exists: bool,
    /// RootDirectory (MS-FSCC 2.4.37.2): 8 bytes, must be 0 over SMB2.
    pub root_directory: u64,
    /// FileName: the name, decoded from UTF-16LE.
    pub file_name: String,
}

impl FileRenameInformation {
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name = utf16le(&self.file_name);
        out.put_u8(self.replace_if_exists as u8);
        out.put_zeros(7);
        out.put_u64(self.root_directory);
        out.put_u32(len_u32(name.len()));
        out.put_bytes(&name);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileRenameInformation";
        let mut r = Reader::new(buf);
        let replace_if_exists = r.u8(W)? != 0;
        r.skip(7, W)?;
        let root_directory = r.u64(W)?;
        let len = r.u32(W)? as usize;
        let file_name = utf16_name(&mut r, len, W)?;
        Ok(FileRenameInformation {
            replace_if_exists,
            root_directory,
            file_name,
        })
    }
}

// ---------------------------------------------------------------------------------------
// File-system information classes (QUERY_INFO, InfoType FILESYSTEM).

/// FileFsVolumeInformation (MS-FSCC 2.5.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsVolumeInformation {
    /// VolumeCreationTime (MS-FSCC 2.5.9): FILETIME the volume was created.
    pub volume_creation_time: u64,
    /// VolumeSerialNumber (MS-FSCC 2.5.9).
    pub volume_serial_number: u32,
    /// SupportsObjects (MS-FSCC 2.5.9): the file system supports object ids.
    pub supports_objects: bool,
    /// VolumeLabel (MS-FSCC 2.5.9), UTF-16LE on the wire.
    pub volume_label: String,
}

impl FileFsVolumeInformation {
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let label = utf16le(&self.volume_label);
        out.put_u64(self.volume_creation_time);
        out.put_u32(self.volume_serial_number);
        out.put_u32(len_u32(label.len()));
        out.put_u8(self.supports_objects as u8);
        out.put_u8(0);
        out.put_bytes(&label);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileFsVolumeInformation";
        let mut r = Reader::new(buf);
        let volume_creation_time = r.u64(W)?;
        let volume_serial_number = r.u32(W)?;
        let len = r.u32(W)? as usize;
        let supports_objects = r.u8(W)? != 0;
        r.skip(1, W)?;
        let volume_label = utf16_name(&mut r, len, W)?;
        Ok(FileFsVolumeInformation {
            volume_creation_time,
            volume_serial_number,
            supports_objects,
            volume_label,
        })
    }
}

/// FileFsSizeInformation (MS-FSCC 2.5.8), 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsSizeInformation {
    /// TotalAllocationUnits: size of the volume in allocation units.
    pub total_allocation_units: u64,
    /// AvailableAllocationUnits (MS-FSCC 2.5.8): free allocation units for the caller.
    pub available_allocation_units: u64,
    /// SectorsPerAllocationUnit: sectors in one allocation unit.
    pub sectors_per_allocation_unit: u32,
    /// BytesPerSector: bytes in one sector.
    pub bytes_per_sector: u32,
}

impl FileFsSizeInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 24;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.total_allocation_units);
        out.put_u64(self.available_allocation_units);
        out.put_u32(self.sectors_per_allocation_unit);
        out.put_u32(self.bytes_per_sector);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileFsSizeInformation";
        let mut r = Reader::new(buf);
        Ok(FileFsSizeInformation {
            total_allocation_units: r.u64(W)?,
            available_allocation_units: r.u64(W)?,
            sectors_per_allocation_unit: r.u32(W)?,
            bytes_per_sector: r.u32(W)?,
        })
    }
}

/// FileFsFullSizeInformation (MS-FSCC 2.5.4), 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsFullSizeInformation {
    /// TotalAllocationUnits: size of the volume in allocation units.
    pub total_allocation_units: u64,
    /// CallerAvailableAllocationUnits (MS-FSCC 2.5.4): free units available to the caller (quota applied).
    pub caller_available_allocation_units: u64,
    /// ActualAvailableAllocationUnits (MS-FSCC 2.5.4): free units on the volume.
    pub actual_available_allocation_units: u64,
    /// SectorsPerAllocationUnit: sectors in one allocation unit.
    pub sectors_per_allocation_unit: u32,
    /// BytesPerSector: bytes in one sector.
    pub bytes_per_sector: u32,
}

impl FileFsFullSizeInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 32;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.total_allocation_units);
        out.put_u64(self.caller_available_allocation_units);
        out.put_u64(self.actual_available_allocation_units);
        out.put_u32(self.sectors_per_allocation_unit);
        out.put_u32(self.bytes_per_sector);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileFsFullSizeInformation";
        let mut r = Reader::new(buf);
        Ok(FileFsFullSizeInformation {
            total_allocation_units: r.u64(W)?,
            caller_available_allocation_units: r.u64(W)?,
            actual_available_allocation_units: r.u64(W)?,
            sectors_per_allocation_unit: r.u32(W)?,
            bytes_per_sector: r.u32(W)?,
        })
    }
}

/// Device types and characteristics (MS-FSCC 2.5.10).
pub mod device {
    /// Device types and characteristics: `FILE_DEVICE_DISK` = 0x0000_0007 (MS-FSCC 2.5.10).
    pub const FILE_DEVICE_DISK: u32 = 0x0000_0007;
    /// Device types and characteristics: `FILE_DEVICE_NAMED_PIPE` = 0x0000_0011 (MS-FSCC 2.5.10).
    pub const FILE_DEVICE_NAMED_PIPE: u32 = 0x0000_0011;
    /// Device types and characteristics: `FILE_REMOTE_DEVICE` = 0x0000_0010 (MS-FSCC 2.5.10).
    pub const FILE_REMOTE_DEVICE: u32 = 0x0000_0010;
    /// Device types and characteristics: `FILE_DEVICE_IS_MOUNTED` = 0x0000_0020 (MS-FSCC 2.5.10).
    pub const FILE_DEVICE_IS_MOUNTED: u32 = 0x0000_0020;
}

/// FileFsDeviceInformation (MS-FSCC 2.5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsDeviceInformation {
    /// DeviceType (MS-FSCC 2.5.10): a `device` FILE_DEVICE_* value.
    pub device_type: u32,
    /// Characteristics (MS-FSCC 2.5.10): `device` characteristic bits.
    pub characteristics: u32,
}

impl FileFsDeviceInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 8;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.device_type);
        out.put_u32(self.characteristics);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileFsDeviceInformation";
        let mut r = Reader::new(buf);
        Ok(FileFsDeviceInformation {
            device_type: r.u32(W)?,
            characteristics: r.u32(W)?,
        })
    }
}

/// FileSystemAttributes bits (MS-FSCC 2.5.1).
pub mod fs_attributes {
    /// FileSystemAttributes bits: `CASE_SENSITIVE_SEARCH` = 0x0000_0001 (MS-FSCC 2.5.1).
    pub const CASE_SENSITIVE_SEARCH: u32 = 0x0000_0001;
    /// FileSystemAttributes bits: `CASE_PRESERVED_NAMES` = 0x0000_0002 (MS-FSCC 2.5.1).
    pub const CASE_PRESERVED_NAMES: u32 = 0x0000_0002;
    /// FileSystemAttributes bits: `UNICODE_ON_DISK` = 0x0000_0004 (MS-FSCC 2.5.1).
    pub const UNICODE_ON_DISK: u32 = 0x0000_0004;
    /// FileSystemAttributes bits: `PERSISTENT_ACLS` = 0x0000_0008 (MS-FSCC 2.5.1).
    pub const PERSISTENT_ACLS: u32 = 0x0000_0008;
    /// FileSystemAttributes bits: `SUPPORTS_SPARSE_FILES` = 0x0000_0040 (MS-FSCC 2.5.1).
    pub const SUPPORTS_SPARSE_FILES: u32 = 0x0000_0040;
    /// FileSystemAttributes bits: `SUPPORTS_OBJECT_IDS` = 0x0001_0000 (MS-FSCC 2.5.1).
    pub const SUPPORTS_OBJECT_IDS: u32 = 0x0001_0000;
}

/// FileFsAttributeInformation (MS-FSCC 2.5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsAttributeInformation {
    /// FileSystemAttributes (MS-FSCC 2.5.1): `fs_attributes` bits.
    pub file_system_attributes: u32,
    /// MaximumComponentNameLength (MS-FSCC 2.5.1): longest name component, in characters.
    pub maximum_component_name_length: u32,
    /// FileSystemName (MS-FSCC 2.5.1), e.g. "NTFS".
    pub file_system_name: String,
}

impl FileFsAttributeInformation {
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name = utf16le(&self.file_system_name);
        out.put_u32(self.file_system_attributes);
        out.put_u32(self.maximum_component_name_length);
        out.put_u32(len_u32(name.len()));
        out.put_bytes(&name);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileFsAttributeInformation";
        let mut r = Reader::new(buf);
        let file_system_attributes = r.u32(W)?;
        let maximum_component_name_length = r.u32(W)?;
        let len = r.u32(W)? as usize;
        let file_system_name = utf16_name(&mut r, len, W)?;
        Ok(FileFsAttributeInformation {
            file_system_attributes,
            maximum_component_name_length,
            file_system_name,
        })
    }
}

/// FileFsSectorSizeInformation (MS-FSCC 2.5.7), 28 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsSectorSizeInformation {
    /// LogicalBytesPerSector (MS-FSCC 2.5.7).
    pub logical_bytes_per_sector: u32,
    /// PhysicalBytesPerSectorForAtomicity (MS-FSCC 2.5.7).
    pub physical_bytes_per_sector_for_atomicity: u32,
    /// PhysicalBytesPerSectorForPerformance (MS-FSCC 2.5.7).
    pub physical_bytes_per_sector_for_performance: u32,
    /// FileSystemEffectivePhysicalBytesPerSectorForAtomicity (MS-FSCC 2.5.7).
    pub effective_physical_bytes_per_sector_for_atomicity: u32,
    /// Flags (MS-FSCC 2.5.7): SSINFO_FLAGS_* bits.
    pub flags: u32,
    /// ByteOffsetForSectorAlignment (MS-FSCC 2.5.7).
    pub byte_offset_for_sector_alignment: u32,
    /// ByteOffsetForPartitionAlignment (MS-FSCC 2.5.7).
    pub byte_offset_for_partition_alignment: u32,
}

impl FileFsSectorSizeInformation {
    /// Length of the fixed wire form in bytes.
    pub const LEN: usize = 28;
    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.logical_bytes_per_sector);
        out.put_u32(self.physical_bytes_per_sector_for_atomicity);
        out.put_u32(self.physical_bytes_per_sector_for_performance);
        out.put_u32(self.effective_physical_bytes_per_sector_for_atomicity);
        out.put_u32(self.flags);
        out.put_u32(self.byte_offset_for_sector_alignment);
        out.put_u32(self.byte_offset_for_partition_alignment);
    }
    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "FileFsSectorSizeInformation";
        let mut r = Reader::new(buf);
        Ok(FileFsSectorSizeInformation {
            logical_bytes_per_sector: r.u32(W)?,
            physical_bytes_per_sector_for_atomicity: r.u32(W)?,
            physical_bytes_per_sector_for_performance: r.u32(W)?,
            effective_physical_bytes_per_sector_for_atomicity: r.u32(W)?,
            flags: r.u32(W)?,
            byte_offset_for_sector_alignment: r.u32(W)?,
            byte_offset_for_partition_alignment: r.u32(W)?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Security descriptors (QUERY_INFO, InfoType SECURITY).

/// AdditionalInformation bits of a SECURITY query (MS-SMB2 2.2.37).
pub mod security_information {
    /// AdditionalInformation bits of a SECURITY query: `OWNER` = 0x0000_0001 (MS-SMB2 2.2.37).
    pub const OWNER: u32 = 0x0000_0001;
    /// AdditionalInformation bits of a SECURITY query: `GROUP` = 0x0000_0002 (MS-SMB2 2.2.37).
    pub const GROUP: u32 = 0x0000_0002;
    /// AdditionalInformation bits of a SECURITY query: `DACL` = 0x0000_0004 (MS-SMB2 2.2.37).
    pub const DACL: u32 = 0x0000_0004;
    /// AdditionalInformation bits of a SECURITY query: `SACL` = 0x0000_0008 (MS-SMB2 2.2.37).
    pub const SACL: u32 = 0x0000_0008;
}

/// A security identifier (MS-DTYP 2.4.2).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sid {
    /// IdentifierAuthority (MS-DTYP 2.4.2): 48-bit authority (5 = NT AUTHORITY).
    pub identifier_authority: u64,
    /// SubAuthority values (MS-DTYP 2.4.2), the last usually the RID.
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// S-1-1-0, Everyone.
    pub fn everyone() -> Sid {
        Sid {
            identifier_authority: 1,
            sub_authorities: vec![0],
        }
    }
    /// S-1-5-32-544, BUILTIN\Administrators.
    pub fn builtin_administrators() -> Sid {
        Sid {
            identifier_authority: 5,
            sub_authorities: vec![32, 544],
        }
    }
    /// S-1-5-18, Local System.
    pub fn local_system() -> Sid {
        Sid {
            identifier_authority: 5,
            sub_authorities: vec![18],
        }
    }

    /// Parses the "S-1-5-21-..." form.
    pub fn parse(s: &str) -> Option<Sid> {
        let mut parts = s.strip_prefix("S-1-")?.split('-');
        let identifier_authority = parts.next()?.parse().ok()?;
        let sub_authorities: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
        (sub_authorities.len() <= 15).then_some(Sid {
            identifier_authority,
            sub_authorities,
        })
    }

    /// Length of the wire form: 8 bytes plus 4 per sub-authority.
    pub fn encoded_len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(1); // Revision
        out.put_u8(self.sub_authorities.len() as u8);
        out.put_bytes(&self.identifier_authority.to_be_bytes()[2..]);
        for s in &self.sub_authorities {
            out.put_u32(*s);
        }
    }

    /// Reads the wire form from `r`.
    pub fn read(r: &mut Reader) -> Result<Sid, DecodeError> {
        const W: &str = "SID";
        if r.u8(W)? != 1 {
            return Err(DecodeError::invalid(W, "revision is not 1"));
        }
        let count = r.u8(W)?;
        let auth = r.array::<6>(W)?;
        let mut a = [0u8; 8];
        a[2..].copy_from_slice(&auth);
        let sub_authorities = (0..count).map(|_| r.u32(W)).collect::<Result<_, _>>()?;
        Ok(Sid {
            identifier_authority: u64::from_be_bytes(a),
            sub_authorities,
        })
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-1-{}", self.identifier_authority)?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One ACCESS_ALLOWED/ACCESS_DENIED ACE (MS-DTYP 2.4.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// 0 = ACCESS_ALLOWED, 1 = ACCESS_DENIED.
    pub ace_type: u8,
    /// AceFlags (MS-DTYP 2.4.4.1): inheritance bits.
    pub ace_flags: u8,
    /// Mask (MS-DTYP 2.4.4.2): the access rights allowed or denied.
    pub mask: u32,
    /// Sid (MS-DTYP 2.4.4.2): the trustee.
    pub sid: Sid,
}

/// A parsed self-relative security descriptor (the parts we build).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityDescriptor {
    /// Control (MS-DTYP 2.4.6): `sd_control` bits; SELF_RELATIVE is always set on the wire.
    pub control: u16,
    /// OwnerSid (MS-DTYP 2.4.6), if present.
    pub owner: Option<Sid>,
    /// GroupSid (MS-DTYP 2.4.6), if present.
    pub group: Option<Sid>,
    /// `None` when no DACL is present.
    pub dacl: Option<Vec<Ace>>,
}

/// SECURITY_DESCRIPTOR Control bits (MS-DTYP 2.4.6).
pub mod sd_control {
    /// SECURITY_DESCRIPTOR Control bits: `DACL_PRESENT` = 0x0004 (MS-DTYP 2.4.6).
    pub const DACL_PRESENT: u16 = 0x0004;
    /// SECURITY_DESCRIPTOR Control bits: `SELF_RELATIVE` = 0x8000 (MS-DTYP 2.4.6).
    pub const SELF_RELATIVE: u16 = 0x8000;
}

impl SecurityDescriptor {
    /// The descriptor a simple share hands out: the given owner and group, and a DACL that
    /// grants Everyone full access. Only the parts named in `additional_information`
    /// (OWNER/GROUP/DACL bits) are included, as a SECURITY query asks.
    pub fn everyone_full_access(owner: Sid, group: Sid, additional_information: u32) -> Self {
        use security_information as si;
        SecurityDescriptor {
            control: sd_control::SELF_RELATIVE
                | if additional_information & si::DACL != 0 {
                    sd_control::DACL_PRESENT
                } else {
                    0
                },
            owner: (additional_information & si::OWNER != 0).then_some(owner),
            group: (additional_information & si::GROUP != 0).then_some(group),
            dacl: (additional_information & si::DACL != 0).then(|| {
                vec![Ace {
                    ace_type: 0,
                    ace_flags: 0,
                    mask: 0x001F_01FF,
                    sid: Sid::everyone(),
                }]
            }),
        }
    }

    /// Self-relative encoding: 20-byte header, then owner, group, DACL.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.put_u8(1); // Revision
        out.put_u8(0);
        out.put_u16(self.control | sd_control::SELF_RELATIVE);
        out.put_zeros(16); // OffsetOwner, OffsetGroup, OffsetSacl, OffsetDacl
        if let Some(owner) = &self.owner {
            let off = out.len() - base;
            out.patch_u32(base + 4, len_u32(off));
            owner.encode(out);
        }
        if let Some(group) = &self.group {
            let off = out.len() - base;
            out.patch_u32(base + 8, len_u32(off));
            group.encode(out);
        }
        if let Some(aces) = &self.dacl {
            let off = out.len() - base;
            out.patch_u32(base + 16, len_u32(off));
            let acl_at = out.len();
            out.put_u8(2); // AclRevision
            out.put_u8(0);
            out.put_u16(0); // AclSize, patched below
            out.put_u16(aces.len() as u16);
            out.put_u16(0);
            for ace in aces {
                out.put_u8(ace.ace_type);
                out.put_u8(ace.ace_flags);
                out.put_u16((8 + ace.sid.encoded_len()) as u16);
                out.put_u32(ace.mask);
                ace.sid.encode(out);
            }
            let size = (out.len() - acl_at) as u16;
            out.patch_u16(acl_at + 2, size);
        }
    }

    /// Parses the wire form from the start of the buffer.
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "SECURITY_DESCRIPTOR";
        let mut r = Reader::new(buf);
        if r.u8(W)? != 1 {
            return Err(DecodeError::invalid(W, "revision is not 1"));
        }
        r.skip(1, W)?;
        let control = r.u16(W)?;
        let owner_off = r.u32(W)? as usize;
        let group_off = r.u32(W)? as usize;
        let _sacl_off = r.u32(W)?;
        let dacl_off = r.u32(W)? as usize;
        let sid_at = |off: usize| -> Result<Option<Sid>, DecodeError> {
            if off == 0 {
                return Ok(None);
            }
            let rest = slice_at(buf, off, buf.len().saturating_sub(off), W)?;
            Sid::read(&mut Reader::new(rest)).map(Some)
        };
        let owner = sid_at(owner_off)?;
        let group = sid_at(group_off)?;
        let dacl = if control & sd_control::DACL_PRESENT != 0 && dacl_off != 0 {
            // ACL header (MS-DTYP 2.4.5): AclRevision, Sbz1, AclSize, AceCount, Sbz2.
            let mut head = Reader::new(slice_at(buf, dacl_off, 8, W)?);
            head.skip(2, W)?;
            let size = usize::from(head.u16(W)?);
            let count = head.u16(W)?;
            let acl = slice_at(buf, dacl_off, size, W)?;
            let mut r = Reader::new(acl);
            r.skip(8, W)?;
            let mut aces = Vec::new();
            for _ in 0..count {
                let ace_type = r.u8(W)?;
                let ace_flags = r.u8(W)?;
                let ace_size = usize::from(r.u16(W)?);
                let body = r.take(ace_size.saturating_sub(4), W)?;
                let mut b = Reader::new(body);
                let mask = b.u32(W)?;
                let sid = Sid::read(&mut b)?;
                aces.push(Ace {
                    ace_type,
                    ace_flags,
                    mask,
                    sid,
                });
            }
            Some(aces)
        } else {
            None
        };
        Ok(SecurityDescriptor {
            control,
            owner,
            group,
            dacl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, i: u64) -> DirectoryEntry {
        DirectoryEntry {
            file_index: 0,
            creation_time: 1 + i,
            last_access_time: 2 + i,
            last_write_time: 3 + i,
            change_time: 4 + i,
            end_of_file: 100 * i,
            allocation_size: 4096,
            file_attributes: 0x20,
            ea_size: 0,
            short_name: String::new(),
            file_id: 77 + i,
            file_name: name.into(),
        }
    }

    /// What `read` gives back for a class (fields the class lacks are zero).
    fn project(class: FileInfoClass, e: &DirectoryEntry) -> DirectoryEntry {
        let mut p = e.clone();
        if class == FileInfoClass::NAMES {
            p = DirectoryEntry {
                file_index: e.file_index,
                file_name: e.file_name.clone(),
                ..Default::default()
            };
        }
        if !matches!(
            class,
            FileInfoClass::ID_BOTH_DIRECTORY | FileInfoClass::ID_FULL_DIRECTORY
        ) {
            p.file_id = 0;
        }
        if !matches!(
            class,
            FileInfoClass::BOTH_DIRECTORY | FileInfoClass::ID_BOTH_DIRECTORY
        ) {
            p.short_name.clear();
        }
        p
    }

    #[test]
    fn directory_classes_round_trip_aligned() {
        let entries = vec![
            entry(".", 0),
            entry("..", 1),
            entry("fichier é.txt", 2),
            entry("a", 3),
        ];
        for class in [
            FileInfoClass::DIRECTORY,
            FileInfoClass::FULL_DIRECTORY,
            FileInfoClass::BOTH_DIRECTORY,
            FileInfoClass::NAMES,
            FileInfoClass::ID_BOTH_DIRECTORY,
            FileInfoClass::ID_FULL_DIRECTORY,
        ] {
            let (buf, n) = encode_directory_entries(class, &entries, 65536).unwrap();
            assert_eq!(n, 4);
            // Every NextEntryOffset is a multiple of 8.
            let mut pos = 0;
            loop {
                let next = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap()) as usize;
                if next == 0 {
                    break;
                }
                assert_eq!(next % 8, 0, "{class}");
                pos += next;
            }
            let back = decode_directory_entries(class, &buf).unwrap();
            let want: Vec<_> = entries.iter().map(|e| project(class, e)).collect();
            assert_eq!(back, want, "{class}");
            // A small output buffer holds fewer entries.
            let fixed = directory_entry_fixed_len(class).unwrap();
            let (_, n) = encode_directory_entries(class, &entries, fixed + 4).unwrap();
            assert_eq!(n, 1);
        }
        assert!(encode_directory_entries(FileInfoClass::BASIC, &entries, 100).is_err());
    }

    #[test]
    fn bad_chains_are_errors() {
        let entries = vec![entry("x", 0), entry("y", 1)];
        let (buf, _) = encode_directory_entries(FileInfoClass::DIRECTORY, &entries, 4096).unwrap();
        for bad_next in [1u32, 2, 3, 4096, u32::MAX] {
            let mut b = buf.clone();
            b[..4].copy_from_slice(&bad_next.to_le_bytes());
            assert!(decode_directory_entries(FileInfoClass::DIRECTORY, &b).is_err());
        }
        let mut b = buf.clone();
        b[60..64].copy_from_slice(&1000u32.to_le_bytes()); // FileNameLength past the end
        assert!(decode_directory_entries(FileInfoClass::DIRECTORY, &b).is_err());
        for n in 0..buf.len() {
            let _ = decode_directory_entries(FileInfoClass::DIRECTORY, &buf[..n]);
        }
    }

    #[test]
    fn file_classes_round_trip() {
        let all = FileAllInformation {
            basic: FileBasicInformation {
                creation_time: 1,
                last_access_time: 2,
                last_write_time: 3,
                change_time: 4,
                file_attributes: 0x10,
            },
            standard: FileStandardInformation {
                allocation_size: 0,
                end_of_file: 0,
                number_of_links: 1,
                delete_pending: false,
                directory: true,
            },
            internal: FileInternalInformation { index_number: 99 },
            ea: FileEaInformation { ea_size: 0 },
            access: FileAccessInformation {
                access_flags: 0x001F_01FF,
            },
            position: FilePositionInformation {
                current_byte_offset: 0,
            },
            mode: FileModeInformation { mode: 0 },
            alignment: FileAlignmentInformation {
                alignment_requirement: 0,
            },
            name: FileNameInformation {
                file_name: "\\dir".into(),
            },
        };
        let mut buf = Vec::new();
        all.encode(&mut buf);
        assert_eq!(buf.len(), 100 + 8);
        assert_eq!(FileAllInformation::read(&buf).unwrap(), all);
        assert!(FileAllInformation::read(&buf[..99]).is_err());

        let mut buf = Vec::new();
        let n = FileNetworkOpenInformation {
            end_of_file: 5,
            file_attributes: 0x20,
            ..Default::default()
        };
        n.encode(&mut buf);
        assert_eq!(buf.len(), FileNetworkOpenInformation::LEN);
        assert_eq!(FileNetworkOpenInformation::read(&buf).unwrap(), n);

        let r = FileRenameInformation {
            replace_if_exists: true,
            root_directory: 0,
            file_name: "new\\name.txt".into(),
        };
        let mut buf = Vec::new();
        r.encode(&mut buf);
        assert_eq!(buf.len(), 20 + 24);
        assert_eq!(FileRenameInformation::read(&buf).unwrap(), r);
        assert!(FileRenameInformation::read(&buf[..30]).is_err());

        let streams = vec![
            FileStreamInformation {
                stream_size: 10,
                stream_allocation_size: 4096,
                stream_name: "::$DATA".into(),
            },
            FileStreamInformation {
                stream_size: 3,
                stream_allocation_size: 8,
                stream_name: ":s:$DATA".into(),
            },
        ];
        let mut buf = Vec::new();
        FileStreamInformation::encode_list(&streams, &mut buf);
        assert_eq!(u32::from_le_bytes(buf[..4].try_into().unwrap()), 40);
        assert_eq!(FileStreamInformation::read_list(&buf).unwrap(), streams);

        for delete_pending in [true, false] {
            let v = FileDispositionInformation { delete_pending };
            let mut buf = Vec::new();
            v.encode(&mut buf);
            assert_eq!(buf, [delete_pending as u8]);
            assert_eq!(FileDispositionInformation::read(&buf).unwrap(), v);
        }
        let mut buf = Vec::new();
        FileEndOfFileInformation {
            end_of_file: 1 << 40,
        }
        .encode(&mut buf);
        assert_eq!(
            FileEndOfFileInformation::read(&buf).unwrap().end_of_file,
            1 << 40
        );
        assert!(FileEndOfFileInformation::read(&buf[..7]).is_err());
    }

    #[test]
    fn fs_classes_round_trip() {
        let v = FileFsVolumeInformation {
            volume_creation_time: 5,
            volume_serial_number: 0xABCD,
            supports_objects: false,
            volume_label: "data".into(),
        };
        let mut buf = Vec::new();
        v.encode(&mut buf);
        assert_eq!(buf.len(), 18 + 8);
        assert_eq!(FileFsVolumeInformation::read(&buf).unwrap(), v);
        let a = FileFsAttributeInformation {
            file_system_attributes: 0x3,
            maximum_component_name_length: 255,
            file_system_name: "NTFS".into(),
        };
        let mut buf = Vec::new();
        a.encode(&mut buf);
        assert_eq!(FileFsAttributeInformation::read(&buf).unwrap(), a);
        let s = FileFsFullSizeInformation {
            total_allocation_units: 10,
            caller_available_allocation_units: 5,
            actual_available_allocation_units: 5,
            sectors_per_allocation_unit: 8,
            bytes_per_sector: 512,
        };
        let mut buf = Vec::new();
        s.encode(&mut buf);
        assert_eq!(buf.len(), FileFsFullSizeInformation::LEN);
        assert_eq!(FileFsFullSizeInformation::read(&buf).unwrap(), s);
        let s = FileFsSizeInformation {
            total_allocation_units: 10,
            available_allocation_units: 5,
            sectors_per_allocation_unit: 8,
            bytes_per_sector: 512,
        };
        let mut buf = Vec::new();
        s.encode(&mut buf);
        assert_eq!(FileFsSizeInformation::read(&buf).unwrap(), s);
        let d = FileFsDeviceInformation {
            device_type: device::FILE_DEVICE_DISK,
            characteristics: 0,
        };
        let mut buf = Vec::new();
        d.encode(&mut buf);
        assert_eq!(FileFsDeviceInformation::read(&buf).unwrap(), d);
        let z = FileFsSectorSizeInformation {
            logical_bytes_per_sector: 512,
            flags: 3,
            ..Default::default()
        };
        let mut buf = Vec::new();
        z.encode(&mut buf);
        assert_eq!(buf.len(), 28);
        assert_eq!(FileFsSectorSizeInformation::read(&buf).unwrap(), z);
    }

    #[test]
    fn security_descriptor_layout() {
        use security_information as si;
        let owner = Sid::parse("S-1-5-21-1-2-3-1000").unwrap();
        assert_eq!(owner.to_string(), "S-1-5-21-1-2-3-1000");
        let sd = SecurityDescriptor::everyone_full_access(
            owner.clone(),
            Sid::builtin_administrators(),
            si::OWNER | si::GROUP | si::DACL,
        );
        let mut buf = Vec::new();
        sd.encode(&mut buf);
        // Header 20 + owner (8+4*5=28) + group (16) + ACL (8 + ACE 8+12) = 92.
        assert_eq!(buf.len(), 92);
        assert_eq!(&buf[..4], &[1, 0, 0x04, 0x80]);
        assert_eq!(u32::from_le_bytes(buf[4..8].try_into().unwrap()), 20);
        assert_eq!(u32::from_le_bytes(buf[8..12].try_into().unwrap()), 48);
        assert_eq!(u32::from_le_bytes(buf[16..20].try_into().unwrap()), 64);
        // Everyone SID in the ACE: 01 01 000000000001 00000000.
        assert_eq!(&buf[80..92], &[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(SecurityDescriptor::read(&buf).unwrap(), sd);
        // Only what was asked for.
        let only_owner =
            SecurityDescriptor::everyone_full_access(owner, Sid::local_system(), si::OWNER);
        let mut buf = Vec::new();
        only_owner.encode(&mut buf);
        assert_eq!(buf.len(), 48);
        assert_eq!(SecurityDescriptor::read(&buf).unwrap().dacl, None);
        for n in 0..buf.len() {
            let _ = SecurityDescriptor::read(&buf[..n]);
        }
        assert_eq!(Sid::parse("S-2-1"), None);
    }
}
