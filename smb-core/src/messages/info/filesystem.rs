//! File-system information classes: what QUERY_INFO carries with InfoType FILESYSTEM
//! (MS-FSCC 2.5): volume, sizes, device, attributes, sector size.

use super::utf16_name;
use crate::codec::{utf16le, DecodeError, Reader, Writer};
use crate::messages::len_u32;

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
