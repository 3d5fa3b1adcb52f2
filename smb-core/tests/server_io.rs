//! The server hands file-system work to its driver: share requests, suspension and resumption
//! of compound chains, paged directory listings.

mod server_util;

use server_util::{config, Client};
use smb_core::compound::{build_chain, split_chain};
use smb_core::header::{flags, Command, Dialect, Header, NtStatus};
use smb_core::messages::close::CloseRequest;
use smb_core::messages::create::{access, create_options, CreateDisposition, CreateRequest};
use smb_core::messages::info::{decode_directory_entries, FileInfoClass};
use smb_core::messages::query_directory::{QueryDirectoryRequest, QueryDirectoryResponse};
use smb_core::messages::read::{ReadRequest, ReadResponse};
use smb_core::messages::write::WriteRequest;
use smb_core::messages::{build, EncodeBody, FileId};

/// A signed request with the client's next MessageId.
fn signed<B: EncodeBody>(c: &mut Client, command: Command, related: bool, body: &B) -> Vec<u8> {
    let mut h = c.header(command);
    if related {
        h.flags |= flags::RELATED_OPERATIONS;
    }
    let mut m = build(&h, body);
    c.key.as_ref().unwrap().sign(&mut m).unwrap();
    m
}

/// CREATE + WRITE + READ + CLOSE, related: every command but CLOSE waits for the share,
/// and the WRITE and READ use the FileId the CREATE produced while the chain was suspended
/// (MS-SMB2 3.3.5.2.7.2). Nothing is sent before the whole chain is answered.
#[test]
fn a_related_chain_is_suspended_around_each_share_request() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let create = CreateRequest {
        desired_access: access::GENERIC_ALL,
        create_disposition: CreateDisposition::CREATE,
        name: "chained.txt".into(),
        ..Default::default()
    };
    let write = WriteRequest {
        file_id: FileId::RELATED,
        data: b"written in a chain".to_vec(),
        ..Default::default()
    };
    let read = ReadRequest {
        file_id: FileId::RELATED,
        length: 100,
        ..Default::default()
    };
    let close = CloseRequest {
        flags: 0,
        file_id: FileId::RELATED,
    };
    let msgs = vec![
        build(&c.header(Command::CREATE), &create),
        build(&c.header(Command::WRITE), &write),
        build(&c.header(Command::READ), &read),
        build(&c.header(Command::CLOSE), &close),
    ];
    let mut chain = build_chain(&msgs);
    for (i, r) in split_chain(&chain).unwrap().into_iter().enumerate() {
        let part = &mut chain[r];
        if i > 0 {
            let f =
                u32::from_le_bytes(part[16..20].try_into().unwrap()) | flags::RELATED_OPERATIONS;
            part[16..20].copy_from_slice(&f.to_le_bytes());
        }
        c.key.as_ref().unwrap().sign(part).unwrap();
    }
    c.conn.handle_input(&chain);
    let mut ops = Vec::new();
    while let Some(req) = c.conn.poll_share_request() {
        assert!(c.conn.is_waiting());
        assert!(
            c.conn.poll_share_request().is_none(),
            "one request at a time"
        );
        assert!(c.conn.poll_transmit().is_none(), "nothing sent mid-chain");
        ops.push(req.op.name());
        let outcome = req.op.run();
        c.conn.handle_share_result(req.id, outcome);
    }
    assert_eq!(ops, ["create", "write", "read"]);
    assert!(!c.conn.is_waiting());
    let out = c
        .conn
        .poll_transmit()
        .expect("the chain's answer")
        .into_vec();
    let ranges = split_chain(&out).unwrap();
    let statuses: Vec<_> = ranges
        .iter()
        .map(|r| Header::parse(&out[r.clone()]).unwrap().status)
        .collect();
    assert_eq!(statuses, [NtStatus::SUCCESS; 4]);
    for r in &ranges {
        c.key.as_ref().unwrap().verify(&out[r.clone()]).unwrap();
    }
    let data = ReadResponse::read(&out[ranges[2].clone()]).unwrap().data;
    assert_eq!(data, b"written in a chain");
    assert_eq!(
        share.contents("chained.txt").unwrap(),
        b"written in a chain"
    );
}

/// Input that arrives while a chain waits is queued and answered in order afterwards.
#[test]
fn input_during_a_share_request_is_queued_in_order() {
    let (cfg, share) = config(true);
    share.put("f", b"0123456789").unwrap();
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_READ,
            create_disposition: CreateDisposition::OPEN,
            name: "f".into(),
            ..Default::default()
        },
    );
    let fid = smb_core::messages::create::CreateResponse::read(&r.msg)
        .unwrap()
        .file_id;
    let read = |offset| ReadRequest {
        file_id: fid,
        length: 4,
        offset,
        ..Default::default()
    };
    let first = signed(&mut c, Command::READ, false, &read(0));
    let second = signed(&mut c, Command::READ, false, &read(4));
    c.conn.handle_input(&first);
    let req = c.conn.poll_share_request().expect("the first READ");
    c.conn.handle_input(&second);
    assert!(
        c.conn.poll_share_request().is_none(),
        "queued behind the first"
    );
    c.conn.handle_share_result(req.id, req.op.run());
    c.conn.run_share_requests_inline();
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| c.conn.poll_transmit())
        .map(|t| ReadResponse::read(&t).unwrap().data)
        .collect();
    assert_eq!(got, [b"0123".to_vec(), b"4567".to_vec()]);
}

/// A result that answers no outstanding request is a driver bug: the connection fails.
#[test]
fn a_result_for_the_wrong_request_fails_the_connection() {
    let (cfg, share) = config(true);
    share.put("f", b"x").unwrap();
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let open = CreateRequest {
        desired_access: access::GENERIC_READ,
        create_disposition: CreateDisposition::OPEN,
        name: "f".into(),
        ..Default::default()
    };
    let m = signed(&mut c, Command::CREATE, false, &open);
    c.conn.handle_input(&m);
    let req = c.conn.poll_share_request().unwrap();
    c.conn.handle_share_result(req.id + 1, req.op.run());
    assert!(c.conn.is_failed());
}

/// A directory larger than one answer is listed in pages that resume after the last name
/// sent: every name exactly once, in order, whatever the buffer size, and nothing of the
/// directory kept between calls but the cursor.
#[test]
fn directory_listings_page_from_a_cursor() {
    let (cfg, share) = config(true);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_ALL,
            create_disposition: CreateDisposition::CREATE,
            create_options: create_options::DIRECTORY_FILE,
            name: "big".into(),
            ..Default::default()
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    let dir = smb_core::messages::create::CreateResponse::read(&r.msg)
        .unwrap()
        .file_id;
    let mut want: Vec<String> = (0..500).map(|i| format!("file-{i:04}.dat")).collect();
    for n in &want {
        share.put(&format!("big\\{n}"), b"").unwrap();
    }
    want.sort();
    for output_buffer_length in [300, 4096, 65536] {
        let mut names = Vec::new();
        let mut flags = smb_core::messages::query_directory::query_directory_flags::RESTART_SCANS;
        let mut calls = 0;
        loop {
            let r = c.call(
                Command::QUERY_DIRECTORY,
                &QueryDirectoryRequest {
                    file_information_class: FileInfoClass::ID_BOTH_DIRECTORY,
                    flags,
                    file_index: 0,
                    file_id: dir,
                    pattern: "*".into(),
                    output_buffer_length,
                },
            );
            flags = 0;
            calls += 1;
            if r.hdr.status == NtStatus::NO_MORE_FILES {
                break;
            }
            assert_eq!(r.hdr.status, NtStatus::SUCCESS);
            let buf = QueryDirectoryResponse::read(&r.msg).unwrap().buffer;
            assert!(buf.len() <= output_buffer_length as usize);
            names.extend(
                decode_directory_entries(FileInfoClass::ID_BOTH_DIRECTORY, &buf)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.file_name),
            );
        }
        assert_eq!(&names[..2], [".", ".."]);
        assert_eq!(names[2..], want[..], "buffer {output_buffer_length}");
        assert!(calls > 2, "{output_buffer_length}: several pages");
    }
}
