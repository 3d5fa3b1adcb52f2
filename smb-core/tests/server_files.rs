//! File operations of the sans-IO server on a MemoryShare: CREATE dispositions, READ/WRITE,
//! QUERY_DIRECTORY, QUERY_INFO, SET_INFO (delete, rename, EOF), IOCTL and compound chains.

mod server_util;

use server_util::{config, Client};
use smb_core::compound::{build_chain, split_chain};
use smb_core::conn::share::ShareBackend;
use smb_core::header::{flags, Command, Dialect, Header, NtStatus};
use smb_core::messages::close::{close_flags, CloseRequest, CloseResponse};
use smb_core::messages::create::{
    access, create_options, share_access, CreateAction, CreateDisposition, CreateRequest,
    CreateResponse,
};
use smb_core::messages::info::{
    decode_directory_entries, FileAllInformation, FileFsSizeInformation, FileInfoClass,
    FileRenameInformation, FileStandardInformation, FsInfoClass, SecurityDescriptor,
};
use smb_core::messages::ioctl::{
    fsctl, ioctl_flags, IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
};
use smb_core::messages::negotiate::Guid;
use smb_core::messages::query_directory::{
    query_directory_flags, QueryDirectoryRequest, QueryDirectoryResponse,
};
use smb_core::messages::query_info::{InfoType, QueryInfoRequest, QueryInfoResponse};
use smb_core::messages::read::{ReadRequest, ReadResponse};
use smb_core::messages::set_info::SetInfoRequest;
use smb_core::messages::write::{WriteRequest, WriteResponse};
use smb_core::messages::FileId;
use smb_core::signing::Algorithm;

fn create(
    c: &mut Client,
    name: &str,
    disp: CreateDisposition,
    options: u32,
) -> (NtStatus, Option<CreateResponse>) {
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_READ | access::GENERIC_WRITE | access::DELETE,
            // Sharing everything, as clients do: these tests leave handles open, and the
            // server enforces sharing modes (tests/server_sharing.rs).
            share_access: share_access::READ | share_access::WRITE | share_access::DELETE,
            create_disposition: disp,
            create_options: options,
            name: name.into(),
            ..Default::default()
        },
    );
    let body = r
        .hdr
        .status
        .is_success()
        .then(|| CreateResponse::read(&r.msg).unwrap());
    (r.hdr.status, body)
}

fn open(c: &mut Client, name: &str, disp: CreateDisposition, options: u32) -> FileId {
    let (status, body) = create(c, name, disp, options);
    assert_eq!(status, NtStatus::SUCCESS, "create {name}");
    body.unwrap().file_id
}

fn close(c: &mut Client, fid: FileId) -> NtStatus {
    c.call(
        Command::CLOSE,
        &CloseRequest {
            flags: 0,
            file_id: fid,
        },
    )
    .hdr
    .status
}

fn list(
    c: &mut Client,
    dir: FileId,
    pattern: &str,
    class: FileInfoClass,
    flags: u8,
) -> (NtStatus, Vec<String>) {
    let r = c.call(
        Command::QUERY_DIRECTORY,
        &QueryDirectoryRequest {
            file_information_class: class,
            flags,
            file_index: 0,
            file_id: dir,
            pattern: pattern.into(),
            output_buffer_length: 65536,
        },
    );
    if r.hdr.status != NtStatus::SUCCESS {
        return (r.hdr.status, vec![]);
    }
    let buf = QueryDirectoryResponse::read(&r.msg).unwrap().buffer;
    let names = decode_directory_entries(class, &buf)
        .unwrap()
        .into_iter()
        .map(|e| e.file_name)
        .collect();
    (r.hdr.status, names)
}

#[test]
fn create_dispositions_and_directory_options() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    assert_eq!(
        create(&mut c, "a.txt", CreateDisposition::OPEN, 0).0,
        NtStatus::OBJECT_NAME_NOT_FOUND
    );
    let (s, r) = create(
        &mut c,
        "a.txt",
        CreateDisposition::CREATE,
        create_options::NON_DIRECTORY_FILE,
    );
    assert_eq!(
        (s, r.as_ref().unwrap().create_action),
        (NtStatus::SUCCESS, CreateAction::CREATED)
    );
    assert_eq!(
        create(&mut c, "a.txt", CreateDisposition::CREATE, 0).0,
        NtStatus::OBJECT_NAME_COLLISION
    );
    assert_eq!(
        create(
            &mut c,
            "a.txt",
            CreateDisposition::OPEN,
            create_options::DIRECTORY_FILE
        )
        .0,
        NtStatus::NOT_A_DIRECTORY
    );
    let (_, r) = create(
        &mut c,
        "d",
        CreateDisposition::CREATE,
        create_options::DIRECTORY_FILE,
    );
    assert_eq!(r.unwrap().file_attributes & 0x10, 0x10);
    assert!(share.exists("d"));
    assert_eq!(
        create(
            &mut c,
            "d",
            CreateDisposition::OPEN,
            create_options::NON_DIRECTORY_FILE
        )
        .0,
        NtStatus::FILE_IS_A_DIRECTORY
    );
    assert_eq!(
        create(&mut c, "missing\\x", CreateDisposition::CREATE, 0).0,
        NtStatus::OBJECT_PATH_NOT_FOUND
    );
    assert_eq!(
        create(&mut c, "..\\escape", CreateDisposition::CREATE, 0).0,
        NtStatus::OBJECT_NAME_INVALID
    );
    assert_eq!(
        create(
            &mut c,
            "x",
            CreateDisposition::CREATE,
            create_options::DIRECTORY_FILE | create_options::NON_DIRECTORY_FILE
        )
        .0,
        NtStatus::INVALID_PARAMETER
    );
    share.put("a.txt", b"old").unwrap();
    let (_, r) = create(&mut c, "a.txt", CreateDisposition::OVERWRITE_IF, 0);
    let r = r.unwrap();
    assert_eq!(
        (r.create_action, r.end_of_file),
        (CreateAction::OVERWRITTEN, 0)
    );
}

#[test]
fn write_read_round_trip_and_end_of_file() {
    for dialect in Dialect::ALL {
        let (cfg, share) = config(true);
        let mut c = Client::connected(cfg, dialect);
        let fid = open(&mut c, "f.bin", CreateDisposition::CREATE, 0);
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let r = c.call(
            Command::WRITE,
            &WriteRequest {
                file_id: fid,
                offset: 10,
                data: data.clone(),
                ..Default::default()
            },
        );
        assert_eq!(WriteResponse::read(&r.msg).unwrap().count, 50_000);
        let r = c.call(
            Command::READ,
            &ReadRequest {
                file_id: fid,
                offset: 10,
                length: 60_000,
                ..Default::default()
            },
        );
        assert_eq!(ReadResponse::read(&r.msg).unwrap().data, data);
        let r = c.call(
            Command::READ,
            &ReadRequest {
                file_id: fid,
                offset: 50_010,
                length: 10,
                ..Default::default()
            },
        );
        assert_eq!(r.hdr.status, NtStatus::END_OF_FILE);
        let r = c.call(
            Command::CLOSE,
            &CloseRequest {
                flags: close_flags::POSTQUERY_ATTRIB,
                file_id: fid,
            },
        );
        assert_eq!(CloseResponse::read(&r.msg).unwrap().end_of_file, 50_010);
        assert_eq!(&share.contents("f.bin").unwrap()[10..], &data[..]);
        // The handle is gone.
        let r = c.call(
            Command::READ,
            &ReadRequest {
                file_id: fid,
                length: 1,
                ..Default::default()
            },
        );
        assert_eq!(r.hdr.status, NtStatus::FILE_CLOSED);
    }
}

#[test]
fn query_directory_patterns_and_enumeration() {
    let (cfg, share) = config(true);
    share.mkdir(&["d".to_string()]).unwrap();
    for n in ["a.txt", "b.txt", "c.log", "abc.txt"] {
        share.put(&format!("d\\{n}"), b"x").unwrap();
    }
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let dir = open(
        &mut c,
        "d",
        CreateDisposition::OPEN,
        create_options::DIRECTORY_FILE,
    );
    for class in [
        FileInfoClass::DIRECTORY,
        FileInfoClass::FULL_DIRECTORY,
        FileInfoClass::BOTH_DIRECTORY,
        FileInfoClass::NAMES,
        FileInfoClass::ID_BOTH_DIRECTORY,
        FileInfoClass::ID_FULL_DIRECTORY,
    ] {
        let (s, names) = list(
            &mut c,
            dir,
            "*",
            class,
            query_directory_flags::RESTART_SCANS,
        );
        assert_eq!(s, NtStatus::SUCCESS);
        assert_eq!(
            names,
            [".", "..", "a.txt", "abc.txt", "b.txt", "c.log"],
            "{class:?}"
        );
        assert_eq!(list(&mut c, dir, "*", class, 0).0, NtStatus::NO_MORE_FILES);
    }
    let (_, names) = list(
        &mut c,
        dir,
        "*.txt",
        FileInfoClass::BOTH_DIRECTORY,
        query_directory_flags::RESTART_SCANS,
    );
    assert_eq!(names, ["a.txt", "abc.txt", "b.txt"]);
    let (_, names) = list(
        &mut c,
        dir,
        "?.txt",
        FileInfoClass::BOTH_DIRECTORY,
        query_directory_flags::RESTART_SCANS,
    );
    assert_eq!(names, ["a.txt", "b.txt"]);
    let (_, names) = list(
        &mut c,
        dir,
        "C.LOG",
        FileInfoClass::BOTH_DIRECTORY,
        query_directory_flags::RESTART_SCANS,
    );
    assert_eq!(names, ["c.log"]);
    assert_eq!(
        list(
            &mut c,
            dir,
            "nothing",
            FileInfoClass::BOTH_DIRECTORY,
            query_directory_flags::RESTART_SCANS
        )
        .0,
        NtStatus::NO_SUCH_FILE
    );
    // One entry at a time.
    let single = query_directory_flags::RETURN_SINGLE_ENTRY;
    let (_, first) = list(
        &mut c,
        dir,
        "*",
        FileInfoClass::NAMES,
        query_directory_flags::RESTART_SCANS | single,
    );
    let (_, second) = list(&mut c, dir, "*", FileInfoClass::NAMES, single);
    assert_eq!(
        (first, second),
        (vec![".".to_string()], vec!["..".to_string()])
    );
    assert_eq!(
        list(
            &mut c,
            dir,
            "*",
            FileInfoClass(4),
            query_directory_flags::RESTART_SCANS
        )
        .0,
        NtStatus::INVALID_INFO_CLASS
    );
    // Not a directory.
    let f = open(&mut c, "d\\a.txt", CreateDisposition::OPEN, 0);
    assert_eq!(
        list(&mut c, f, "*", FileInfoClass::NAMES, 0).0,
        NtStatus::INVALID_PARAMETER
    );
}

#[test]
fn delete_on_close_and_disposition() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let f = open(
        &mut c,
        "doomed",
        CreateDisposition::CREATE,
        create_options::DELETE_ON_CLOSE,
    );
    assert!(share.exists("doomed"));
    assert_eq!(close(&mut c, f), NtStatus::SUCCESS);
    assert!(!share.exists("doomed"));
    // A non-empty directory cannot be opened delete-on-close (smbclient's rmdir).
    share.mkdir(&["busy".to_string()]).unwrap();
    share.put("busy\\f", b"1").unwrap();
    let (status, _) = create(
        &mut c,
        "busy",
        CreateDisposition::OPEN,
        create_options::DIRECTORY_FILE | create_options::DELETE_ON_CLOSE,
    );
    assert_eq!(status, NtStatus::DIRECTORY_NOT_EMPTY);
    assert!(share.exists("busy"));
    // SET_INFO FileDispositionInformation on a non-empty directory is refused.
    share.mkdir(&["full".to_string()]).unwrap();
    share.put("full\\x", b"1").unwrap();
    let d = open(
        &mut c,
        "full",
        CreateDisposition::OPEN,
        create_options::DIRECTORY_FILE,
    );
    let r = c.call(
        Command::SET_INFO,
        &SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: 13,
            additional_information: 0,
            file_id: d,
            buffer: vec![1],
        },
    );
    assert_eq!(r.hdr.status, NtStatus::DIRECTORY_NOT_EMPTY);
    let x = open(&mut c, "full\\x", CreateDisposition::OPEN, 0);
    let r = c.call(
        Command::SET_INFO,
        &SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: 13,
            additional_information: 0,
            file_id: x,
            buffer: vec![1],
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    // Delete pending shows in FileStandardInformation.
    let r = c.call(
        Command::QUERY_INFO,
        &QueryInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: 5,
            output_buffer_length: 100,
            file_id: x,
            ..Default::default()
        },
    );
    assert!(
        FileStandardInformation::read(&QueryInfoResponse::read(&r.msg).unwrap().buffer)
            .unwrap()
            .delete_pending
    );
    close(&mut c, x);
    assert!(!share.exists("full\\x"));
    let r = c.call(
        Command::SET_INFO,
        &SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: 13,
            additional_information: 0,
            file_id: d,
            buffer: vec![1],
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    close(&mut c, d);
    assert!(!share.exists("full"));
}

#[test]
fn rename_with_and_without_replace() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB30);
    share.put("a", b"A").unwrap();
    share.put("b", b"B").unwrap();
    share.mkdir(&["sub".to_string()]).unwrap();
    let rename = |c: &mut Client, fid, to: &str, replace| {
        let mut buffer = Vec::new();
        FileRenameInformation {
            replace_if_exists: replace,
            root_directory: 0,
            file_name: to.into(),
        }
        .encode(&mut buffer);
        c.call(
            Command::SET_INFO,
            &SetInfoRequest {
                info_type: InfoType::FILE,
                file_info_class: 10,
                additional_information: 0,
                file_id: fid,
                buffer,
            },
        )
        .hdr
        .status
    };
    let a = open(&mut c, "a", CreateDisposition::OPEN, 0);
    assert_eq!(
        rename(&mut c, a, "b", false),
        NtStatus::OBJECT_NAME_COLLISION
    );
    assert_eq!(rename(&mut c, a, "sub\\a2", false), NtStatus::SUCCESS);
    assert_eq!(share.contents("sub\\a2").unwrap(), b"A");
    // The open follows its file: FileAllInformation names the new path.
    let r = c.call(
        Command::QUERY_INFO,
        &QueryInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: 18,
            output_buffer_length: 4096,
            file_id: a,
            ..Default::default()
        },
    );
    let all = FileAllInformation::read(&QueryInfoResponse::read(&r.msg).unwrap().buffer).unwrap();
    assert_eq!(all.name.file_name, "\\sub\\a2");
    assert_eq!(rename(&mut c, a, "b", true), NtStatus::SUCCESS);
    assert_eq!(share.contents("b").unwrap(), b"A");
    assert_eq!(
        rename(&mut c, a, "..\\out", true),
        NtStatus::OBJECT_NAME_INVALID
    );
    // Truncate through FileEndOfFileInformation.
    let r = c.call(
        Command::SET_INFO,
        &SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: 20,
            additional_information: 0,
            file_id: a,
            buffer: 5u64.to_le_bytes().to_vec(),
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    assert_eq!(share.contents("b").unwrap(), b"A\0\0\0\0");
}

#[test]
fn query_info_file_system_and_security() {
    let (cfg, _) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let root = open(
        &mut c,
        "",
        CreateDisposition::OPEN,
        create_options::DIRECTORY_FILE,
    );
    let q = |c: &mut Client, info_type, class: u8, len: u32, extra: u32| {
        c.call(
            Command::QUERY_INFO,
            &QueryInfoRequest {
                info_type,
                file_info_class: class,
                output_buffer_length: len,
                additional_information: extra,
                file_id: root,
                ..Default::default()
            },
        )
    };
    let r = q(&mut c, InfoType::FILESYSTEM, FsInfoClass::SIZE.0, 100, 0);
    let size =
        FileFsSizeInformation::read(&QueryInfoResponse::read(&r.msg).unwrap().buffer).unwrap();
    assert_eq!(size.bytes_per_sector, 512);
    for class in [1u8, 4, 5, 7, 11] {
        assert_eq!(
            q(&mut c, InfoType::FILESYSTEM, class, 1024, 0).hdr.status,
            NtStatus::SUCCESS,
            "fs class {class}"
        );
    }
    assert_eq!(
        q(&mut c, InfoType::FILESYSTEM, 99, 1024, 0).hdr.status,
        NtStatus::INVALID_INFO_CLASS
    );
    for class in [4u8, 5, 6, 7, 8, 14, 16, 17, 18, 22, 34, 35] {
        assert_eq!(
            q(&mut c, InfoType::FILE, class, 4096, 0).hdr.status,
            NtStatus::SUCCESS,
            "file class {class}"
        );
    }
    assert_eq!(
        q(&mut c, InfoType::FILE, 4, 8, 0).hdr.status,
        NtStatus::INFO_LENGTH_MISMATCH
    );
    let r = q(&mut c, InfoType::SECURITY, 0, 4096, 0x7);
    let sd = SecurityDescriptor::read(&QueryInfoResponse::read(&r.msg).unwrap().buffer).unwrap();
    assert!(sd.owner.is_some() && sd.dacl.is_some());
    assert_eq!(
        q(&mut c, InfoType::SECURITY, 0, 8, 0x7).hdr.status,
        NtStatus::BUFFER_TOO_SMALL
    );
}

fn vneg(c: &mut Client, req: &ValidateNegotiateInfoRequest) -> Option<server_util::Resp> {
    let mut input = Vec::new();
    req.encode(&mut input);
    let msg = c.build(
        Command::IOCTL,
        &IoctlRequest {
            ctl_code: fsctl::VALIDATE_NEGOTIATE_INFO,
            file_id: FileId::RELATED,
            input,
            max_input_response: 0,
            output: vec![],
            max_output_response: 24,
            flags: ioctl_flags::IS_FSCTL,
        },
    );
    c.send(&msg)
}

#[test]
fn validate_negotiate_info_matches_or_disconnects() {
    for dialect in [Dialect::SMB30, Dialect::SMB302] {
        let (cfg, _) = config(false);
        let mut c = Client::connected(cfg.clone(), dialect);
        let good = ValidateNegotiateInfoRequest {
            capabilities: 0x44,
            guid: Guid([0x42; 16]),
            security_mode: 1,
            dialects: vec![dialect],
        };
        let r = vneg(&mut c, &good).unwrap();
        assert_eq!(r.hdr.status, NtStatus::SUCCESS);
        assert!(
            Client::is_signed(&r),
            "VALIDATE_NEGOTIATE_INFO responses are always signed"
        );
        let out = IoctlResponse::read(&r.msg).unwrap().output;
        let v = ValidateNegotiateInfoResponse::read(&out).unwrap();
        assert_eq!(
            (v.dialect, v.guid, v.security_mode),
            (dialect, Guid(cfg.server_guid), 1)
        );
        // A downgraded view of the NEGOTIATE (signing-required bit stripped, say) ends it.
        let mut c = Client::connected(cfg.clone(), dialect);
        let bad = ValidateNegotiateInfoRequest {
            security_mode: 3,
            ..good.clone()
        };
        vneg(&mut c, &bad);
        assert!(c.conn.is_failed());
    }
    // Never on 3.1.1.
    let (cfg, _) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let req = ValidateNegotiateInfoRequest {
        capabilities: 0x44,
        guid: Guid([0x42; 16]),
        security_mode: 1,
        dialects: vec![Dialect::SMB311],
    };
    vneg(&mut c, &req);
    assert!(c.conn.is_failed());
}

#[test]
fn ipc_share_and_bad_share_names() {
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[Algorithm::AesGmac]);
    c.login();
    assert_eq!(c.tree_connect("nope").0, NtStatus::BAD_NETWORK_NAME);
    let (s, r) = c.tree_connect("IPC$");
    assert_eq!((s, r.unwrap().share_type.0), (NtStatus::SUCCESS, 2));
    assert_eq!(
        create(&mut c, "lsarpc", CreateDisposition::OPEN, 0).0,
        NtStatus::OBJECT_NAME_NOT_FOUND
    );
    let msg = c.build(
        Command::IOCTL,
        &IoctlRequest {
            ctl_code: fsctl::DFS_GET_REFERRALS,
            file_id: FileId::RELATED,
            input: vec![0; 4],
            max_output_response: 4096,
            flags: ioctl_flags::IS_FSCTL,
            ..Default::default()
        },
    );
    assert_eq!(c.send(&msg).unwrap().hdr.status, NtStatus(0xC000_0225));
}

/// CREATE + WRITE + READ + CLOSE as one related chain: each response signed on its own,
/// padding included, and the related FileId resolved.
#[test]
fn compound_related_chain() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let key = c.key.clone().unwrap();
    let related = |c: &mut Client, cmd, body: Vec<u8>, first: bool| {
        let mut h = c.header(cmd);
        if !first {
            h.flags |= flags::RELATED_OPERATIONS;
            h.session_id = u64::MAX;
            h.tree_id = u32::MAX;
        }
        let mut m = Vec::new();
        h.encode(&mut m);
        m.extend_from_slice(&body[64..]);
        m
    };
    let body = |h: Command, b: &dyn Fn(&mut Vec<u8>)| {
        let mut v = Vec::new();
        Header::request(h, 0, 0, 0).encode(&mut v);
        b(&mut v);
        v
    };
    let cr = CreateRequest {
        desired_access: access::GENERIC_ALL,
        create_disposition: CreateDisposition::CREATE,
        name: "chain.txt".into(),
        ..Default::default()
    };
    let wr = WriteRequest {
        file_id: FileId::RELATED,
        data: b"compound".to_vec(),
        ..Default::default()
    };
    let rr = ReadRequest {
        file_id: FileId::RELATED,
        length: 100,
        ..Default::default()
    };
    let cl = CloseRequest {
        flags: 0,
        file_id: FileId::RELATED,
    };
    let msgs = vec![
        related(
            &mut c,
            Command::CREATE,
            body(Command::CREATE, &|v| cr.encode(v)),
            true,
        ),
        related(
            &mut c,
            Command::WRITE,
            body(Command::WRITE, &|v| wr.encode(v)),
            false,
        ),
        related(
            &mut c,
            Command::READ,
            body(Command::READ, &|v| rr.encode(v)),
            false,
        ),
        related(
            &mut c,
            Command::CLOSE,
            body(Command::CLOSE, &|v| cl.encode(v)),
            false,
        ),
    ];
    let mut chain = build_chain(&msgs);
    key.sign_chain(&mut chain).unwrap();
    let out = c.raw(&chain);
    assert_eq!(out.len(), 1, "one chained response");
    let ranges = split_chain(&out[0]).unwrap();
    assert_eq!(ranges.len(), 4);
    for r in &ranges {
        let m = &out[0][r.clone()];
        let h = Header::parse(m).unwrap();
        assert_eq!(h.status, NtStatus::SUCCESS, "{:?}", h.command);
        assert!(h.is_signed());
        key.verify(m)
            .expect("each response verifies on its own, padding included");
    }
    let read = ReadResponse::read(&out[0][ranges[2].clone()]).unwrap();
    assert_eq!(read.data, b"compound");
    assert_eq!(share.contents("chain.txt").unwrap(), b"compound");

    // A failed CREATE fails the rest of the related chain with the same status.
    let cr = CreateRequest {
        create_disposition: CreateDisposition::OPEN,
        name: "missing".into(),
        ..Default::default()
    };
    let msgs = vec![
        related(
            &mut c,
            Command::CREATE,
            body(Command::CREATE, &|v| cr.encode(v)),
            true,
        ),
        related(
            &mut c,
            Command::CLOSE,
            body(Command::CLOSE, &|v| cl.encode(v)),
            false,
        ),
    ];
    let mut chain = build_chain(&msgs);
    key.sign_chain(&mut chain).unwrap();
    let out = c.raw(&chain);
    for r in split_chain(&out[0]).unwrap() {
        assert_eq!(
            Header::parse(&out[0][r]).unwrap().status,
            NtStatus::OBJECT_NAME_NOT_FOUND
        );
    }
}

/// A DCE/RPC PDU: common header + body, frag_length filled in.
fn rpc_pdu(ptype: u8, call_id: u32, body: &[u8]) -> Vec<u8> {
    let mut p = vec![5, 0, ptype, 3, 0x10, 0, 0, 0];
    p.extend_from_slice(&((16 + body.len()) as u16).to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&call_id.to_le_bytes());
    p.extend_from_slice(body);
    p
}

/// `smbclient -L` in miniature: open \\srvsvc on IPC$, BIND with WRITE/READ, then
/// NetShareEnumAll through FSCTL_PIPE_TRANSCEIVE.
#[test]
fn srvsvc_lists_the_shares() {
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[Algorithm::AesGmac]);
    c.login();
    c.tree_connect("IPC$");
    let pipe = open(&mut c, "srvsvc", CreateDisposition::OPEN, 0);
    let mut bind = Vec::new();
    bind.extend_from_slice(&4280u16.to_le_bytes());
    bind.extend_from_slice(&4280u16.to_le_bytes());
    bind.extend_from_slice(&[0; 4]);
    bind.extend_from_slice(&[1, 0, 0, 0, 0, 0, 1, 0]);
    // srvsvc 4b324fc8-1670-01d3-1278-5a47bf6ee188 v3, NDR 8a885d04-1ceb-11c9-9fe8-08002b104860 v2
    bind.extend_from_slice(&[
        0xc8, 0x4f, 0x32, 0x4b, 0x70, 0x16, 0xd3, 0x01, 0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1,
        0x88, 3, 0, 0, 0,
    ]);
    bind.extend_from_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60, 2, 0, 0, 0,
    ]);
    let r = c.call(
        Command::WRITE,
        &WriteRequest {
            file_id: pipe,
            data: rpc_pdu(11, 1, &bind),
            ..Default::default()
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    let r = c.call(
        Command::READ,
        &ReadRequest {
            file_id: pipe,
            length: 4280,
            ..Default::default()
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    assert_eq!(ReadResponse::read(&r.msg).unwrap().data[2], 12, "BIND_ACK");
    // Nothing more to read.
    let r = c.call(
        Command::READ,
        &ReadRequest {
            file_id: pipe,
            length: 4280,
            ..Default::default()
        },
    );
    assert!(r.hdr.status.is_error());
    let mut req = Vec::new();
    req.extend_from_slice(&[0, 0, 0, 0, 0, 0, 15, 0]); // alloc hint, context 0, opnum 15
    req.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]); // no server name, level 1
    let msg = c.build(
        Command::IOCTL,
        &IoctlRequest {
            ctl_code: fsctl::PIPE_TRANSCEIVE,
            file_id: pipe,
            input: rpc_pdu(0, 2, &req),
            max_output_response: 4280,
            flags: ioctl_flags::IS_FSCTL,
            ..Default::default()
        },
    );
    let r = c.send(&msg).unwrap();
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    let out = IoctlResponse::read(&r.msg).unwrap().output;
    assert_eq!(out[2], 2, "RESPONSE");
    let units: Vec<u16> = out[24..]
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let text = String::from_utf16_lossy(&units);
    assert!(text.contains("data") && text.contains("IPC$"), "{text:?}");
    // A tiny output buffer: BUFFER_OVERFLOW, the rest waits in the pipe.
    let msg = c.build(
        Command::IOCTL,
        &IoctlRequest {
            ctl_code: fsctl::PIPE_TRANSCEIVE,
            file_id: pipe,
            input: rpc_pdu(0, 3, &req),
            max_output_response: 20,
            flags: ioctl_flags::IS_FSCTL,
            ..Default::default()
        },
    );
    assert_eq!(c.send(&msg).unwrap().hdr.status, NtStatus::BUFFER_OVERFLOW);
    let r = c.call(
        Command::READ,
        &ReadRequest {
            file_id: pipe,
            length: 4280,
            ..Default::default()
        },
    );
    assert_eq!(
        ReadResponse::read(&r.msg).unwrap().data.len(),
        out.len() - 20
    );
    assert_eq!(close(&mut c, pipe), NtStatus::SUCCESS);
}
