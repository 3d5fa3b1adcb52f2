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

/// Opens `f` (10 bytes) for reading and writing; returns its FileId.
fn open_f(c: &mut Client) -> FileId {
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_ALL,
            create_disposition: CreateDisposition::OPEN,
            name: "f".into(),
            ..Default::default()
        },
    );
    smb_core::messages::create::CreateResponse::read(&r.msg)
        .unwrap()
        .file_id
}

fn read_of(file_id: FileId, offset: u64, length: u32) -> ReadRequest {
    ReadRequest {
        file_id,
        length,
        offset,
        ..Default::default()
    }
}

/// Every share request the connection has handed out so far.
fn drain_requests(c: &mut Client) -> Vec<smb_core::conn::server::ShareRequest> {
    std::iter::from_fn(|| c.conn.poll_share_request()).collect()
}

/// Lone READs run beside each other: both share requests are out before either result is
/// in, and each is answered (signed) when its own result arrives, in completion order.
#[test]
fn lone_reads_run_beside_each_other_and_answer_as_they_complete() {
    let (cfg, share) = config(true);
    share.put("f", b"0123456789").unwrap();
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let fid = open_f(&mut c);
    let first = signed(&mut c, Command::READ, false, &read_of(fid, 0, 4));
    let second = signed(&mut c, Command::READ, false, &read_of(fid, 4, 4));
    c.conn.handle_input(&first);
    c.conn.handle_input(&second);
    let reqs = drain_requests(&mut c);
    assert_eq!(reqs.len(), 2, "both READs run at once");
    assert_eq!(c.conn.share_requests_outstanding(), 2);
    assert!(c.conn.is_waiting());
    assert!(c.conn.poll_transmit().is_none());
    let mut reqs = reqs.into_iter();
    let (a, b) = (reqs.next().unwrap(), reqs.next().unwrap());
    c.conn.handle_share_result(b.id, b.op.run());
    c.conn.handle_share_result(a.id, a.op.run());
    assert!(!c.conn.is_waiting());
    let got: Vec<(u64, Vec<u8>)> = std::iter::from_fn(|| c.conn.poll_transmit())
        .map(|t| {
            c.key.as_ref().unwrap().verify(&t).unwrap();
            let h = Header::parse(&t).unwrap();
            (h.message_id, ReadResponse::read(&t).unwrap().data)
        })
        .collect();
    let id_first = Header::parse(&first).unwrap().message_id;
    assert_eq!(
        got,
        [
            (id_first + 1, b"4567".to_vec()),
            (id_first, b"0123".to_vec())
        ],
        "the second READ, done first, is answered first"
    );
}

/// A frame other than a lone READ/WRITE waits until nothing runs beside: a FLUSH sent
/// behind a WRITE starts only once the WRITE's result is in, and is answered after it.
#[test]
fn other_requests_wait_for_the_reads_and_writes_in_flight() {
    let (cfg, share) = config(true);
    share.put("f", b"0123456789").unwrap();
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let fid = open_f(&mut c);
    let write = WriteRequest {
        file_id: fid,
        offset: 2,
        data: b"ab".to_vec(),
        ..Default::default()
    };
    let w = signed(&mut c, Command::WRITE, false, &write);
    let flush = smb_core::messages::flush::FlushRequest { file_id: fid };
    let f = signed(&mut c, Command::FLUSH, false, &flush);
    c.conn.handle_input(&w);
    assert!(c.conn.accepts_input());
    c.conn.handle_input(&f);
    assert!(!c.conn.accepts_input(), "the FLUSH is queued");
    let reqs = drain_requests(&mut c);
    assert_eq!(
        reqs.iter().map(|r| r.op.name()).collect::<Vec<_>>(),
        ["write"],
        "the FLUSH waits"
    );
    for r in reqs {
        c.conn.handle_share_result(r.id, r.op.run());
    }
    let reqs = drain_requests(&mut c);
    assert_eq!(
        reqs.iter().map(|r| r.op.name()).collect::<Vec<_>>(),
        ["flush"]
    );
    for r in reqs {
        c.conn.handle_share_result(r.id, r.op.run());
    }
    let commands: Vec<Command> = std::iter::from_fn(|| c.conn.poll_transmit())
        .map(|t| Header::parse(&t).unwrap().command)
        .collect();
    assert_eq!(commands, [Command::WRITE, Command::FLUSH]);
    assert_eq!(share.contents("f").unwrap(), b"01ab456789");
}

/// At most MAX_IN_FLIGHT lone requests run at once; the rest are queued, not refused, and
/// start as results come back. Every READ is answered with its own bytes.
#[test]
fn reads_beyond_the_limit_wait_for_a_result() {
    use smb_core::conn::server::MAX_IN_FLIGHT;
    let (cfg, share) = config(true);
    let content: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    share.put("f", &content).unwrap();
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let fid = open_f(&mut c);
    let n = MAX_IN_FLIGHT + 3;
    let mut ids = Vec::new();
    for i in 0..n {
        let m = signed(
            &mut c,
            Command::READ,
            false,
            &read_of(fid, i as u64 * 100, 100),
        );
        ids.push(Header::parse(&m).unwrap().message_id);
        c.conn.handle_input(&m);
    }
    let mut reqs = drain_requests(&mut c);
    assert_eq!(reqs.len(), MAX_IN_FLIGHT);
    assert!(!c.conn.accepts_input());
    let mut answered = Vec::new();
    while let Some(r) = reqs.pop() {
        c.conn.handle_share_result(r.id, r.op.run());
        reqs.extend(drain_requests(&mut c));
        assert!(reqs.len() <= MAX_IN_FLIGHT);
        while let Some(t) = c.conn.poll_transmit() {
            c.key.as_ref().unwrap().verify(&t).unwrap();
            let h = Header::parse(&t).unwrap();
            assert_eq!(h.status, NtStatus::SUCCESS);
            let i = ids.iter().position(|&id| id == h.message_id).unwrap();
            let data = ReadResponse::read(&t).unwrap().data;
            assert_eq!(data, &content[i * 100..i * 100 + 100]);
            answered.push(i);
        }
    }
    answered.sort();
    assert_eq!(answered, (0..n).collect::<Vec<_>>());
}

/// One credit covers a READ of up to 64 KiB (the test client charges one).
const BUDGET_READ: u32 = 60_000;

/// A connection whose memory budget has room for two responses of [`BUDGET_READ`] bytes
/// (and the small ones), not three, after `count` such READs of file `f` were handed in.
fn reads_against_a_budget_of_two(count: u64) -> Client {
    let (cfg, share) = config(true);
    let content = vec![7u8; count as usize * BUDGET_READ as usize];
    share.put("f", &content).unwrap();
    let mut limited = (*cfg).clone();
    limited.limits.max_connection_buffer = 150_000;
    let mut c = Client::connected(std::sync::Arc::new(limited), Dialect::SMB311);
    let fid = open_f(&mut c);
    for i in 0..count {
        let m = signed(
            &mut c,
            Command::READ,
            false,
            &read_of(fid, i * u64::from(BUDGET_READ), BUDGET_READ),
        );
        c.conn.handle_input(&m);
    }
    c
}

/// READs whose responses would not all fit the connection's memory budget are not refused:
/// those beyond it wait until answers are sent (their budget released).
#[test]
fn reads_beside_each_other_stay_within_the_memory_budget() {
    let mut c = reads_against_a_budget_of_two(4);
    let reqs = drain_requests(&mut c);
    assert_eq!(reqs.len(), 2, "a third response would not fit the budget");
    let mut pending = reqs;
    let mut answers = 0;
    while let Some(r) = pending.pop() {
        c.conn.handle_share_result(r.id, r.op.run());
        // Sending an answer (dropping its Transmit) gives its budget back.
        while let Some(t) = c.conn.poll_transmit() {
            assert_eq!(Header::parse(&t).unwrap().status, NtStatus::SUCCESS);
            assert_eq!(
                ReadResponse::read(&t).unwrap().data.len(),
                BUDGET_READ as usize
            );
            answers += 1;
        }
        c.conn.handle_sent();
        pending.extend(drain_requests(&mut c));
    }
    assert_eq!(answers, 4);
}

/// A READ whose response does not fit the budget while earlier answers are still unsent
/// waits for them to be sent (nothing runs beside it any more, but their memory comes
/// back without the client doing anything): refusing it would fail a client that keeps
/// two READs of MaxReadSize in flight against a budget of two responses.
#[test]
fn a_read_waits_for_unsent_answers_instead_of_being_refused() {
    let mut c = reads_against_a_budget_of_two(3);
    for r in drain_requests(&mut c) {
        c.conn.handle_share_result(r.id, r.op.run());
    }
    // Both answers are queued, not sent: the third READ neither runs nor is refused.
    assert!(drain_requests(&mut c).is_empty());
    let unsent: Vec<_> = std::iter::from_fn(|| c.conn.poll_transmit()).collect();
    assert_eq!(unsent.len(), 2);
    assert!(
        drain_requests(&mut c).is_empty(),
        "still held by the unsent answers"
    );
    drop(unsent);
    c.conn.handle_sent();
    let reqs = drain_requests(&mut c);
    assert_eq!(
        reqs.len(),
        1,
        "the third READ starts once the answers are sent"
    );
    for r in reqs {
        c.conn.handle_share_result(r.id, r.op.run());
    }
    let t = c.conn.poll_transmit().unwrap();
    assert_eq!(Header::parse(&t).unwrap().status, NtStatus::SUCCESS);
    assert_eq!(
        ReadResponse::read(&t).unwrap().data.len(),
        BUDGET_READ as usize
    );
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
