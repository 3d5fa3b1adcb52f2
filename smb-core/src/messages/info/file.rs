//! File information classes: what QUERY_INFO and SET_INFO carry with InfoType FILE
//! (MS-FSCC 2.4): basic, standard, name, all, network-open, streams, disposition, rename...

use super::{decode_chain, start_chain_entry, utf16_name};
use crate::codec::{slice_at, utf16le, DecodeError, Reader, Writer};
use crate::messages::len_u32;

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
