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
