//! Bad input never panics the server: it answers with an error status or disconnects, and
//! a disconnected connection stays dead.

mod server_util;

use server_util::{config, Client};
use smb_core::compound::build_chain;
use smb_core::header::{Command, Dialect, Header, NtStatus, NEXT_COMMAND_OFFSET};
use smb_core::messages::create::{access, CreateDisposition, CreateRequest};
use smb_core::messages::echo::EchoRequest;
use smb_core::messages::read::ReadRequest;
use smb_core::messages::session_setup::SessionSetupRequest;
use smb_core::messages::write::WriteRequest;
use smb_core::signing::Algorithm;

fn negotiated() -> Client {
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg);
    c.negotiate(&[Dialect::SMB311], &[Algorithm::AesCmac]);
    c
}

#[test]
fn short_wrong_protocol_and_oversized_inputs_disconnect() {
    let (cfg, _) = config(true);
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xFE, b'S', b'M', b'B'],
        vec![0xFE; 63],
        {
            let mut m =
                smb_core::messages::build(&Header::request(Command::ECHO, 0, 0, 0), &EchoRequest);
            m[0] = 0xFC;
            m
        },
        {
            let mut m =
                smb_core::messages::build(&Header::request(Command::ECHO, 0, 0, 0), &EchoRequest);
            m[4] = 65; // StructureSize
            m
        },
        vec![0xFD, b'S', b'M', b'B', 0, 0, 0, 0], // TRANSFORM without encryption
        vec![0xFF, b'S', b'M', b'B', 0x25, 0, 0, 0], // SMB1, not NEGOTIATE
        vec![0u8; cfg.limits.max_message_size + 1],
    ];
    for input in cases {
        let mut c = Client::new(cfg.clone());
        let out = c.raw(&input);
        assert!(
            out.is_empty(),
            "no answer to {:?}",
            &input[..input.len().min(8)]
        );
        assert!(c.disconnected() && c.conn.is_failed());
    }
}

#[test]
fn requests_before_negotiate_or_a_second_negotiate_disconnect() {
    let (cfg, _) = config(true);
    let mut c = Client::new(cfg);
    let msg = c.build(Command::ECHO, &EchoRequest);
    assert!(c.raw(&msg).is_empty());
    assert!(c.conn.is_failed());
    let mut c = negotiated();
    let mut again = smb_core::messages::negotiate::NegotiateRequest {
        dialects: vec![Dialect::SMB311],
        ..Default::default()
    };
    again.security_mode = 1;
    let msg = c.build(Command::NEGOTIATE, &again);
    assert!(c.raw(&msg).is_empty());
    assert!(c.conn.is_failed());
}

#[test]
fn offsets_and_lengths_outside_the_message_are_invalid_parameter() {
    let mut c = negotiated();
    let mut msg = c.build(
        Command::SESSION_SETUP,
        &SessionSetupRequest {
            security_buffer: vec![0x60; 40],
            ..Default::default()
        },
    );
    // SecurityBufferLength (body offset 14) far past the end.
    msg[64 + 14..64 + 16].copy_from_slice(&0xFFF0u16.to_le_bytes());
    assert_eq!(
        c.send(&msg).unwrap().hdr.status,
        NtStatus::INVALID_PARAMETER
    );
    // SecurityBufferOffset pointing into the header.
    let mut msg = c.build(
        Command::SESSION_SETUP,
        &SessionSetupRequest {
            security_buffer: vec![0x60; 40],
            ..Default::default()
        },
    );
    msg[64 + 12..64 + 14].copy_from_slice(&8u16.to_le_bytes());
    assert_eq!(
        c.send(&msg).unwrap().hdr.status,
        NtStatus::INVALID_PARAMETER
    );
    // A garbage security token: refused, the connection lives on.
    let msg = c.build(
        Command::SESSION_SETUP,
        &SessionSetupRequest {
            security_buffer: vec![0x60, 0x82, 0xFF, 0xFF, 1, 2],
            ..Default::default()
        },
    );
    let r = c.send(&msg).unwrap();
    assert!(r.hdr.status.is_error());
    assert!(!c.conn.is_failed());
}

#[test]
fn absurd_read_and_write_lengths_are_refused() {
    let (cfg, share) = config(false);
    let mut c = Client::connected(cfg, Dialect::SMB311);
    // Unsigned (the session allows it), so the edited bytes reach the WRITE decoder.
    c.sign = false;
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_ALL,
            create_disposition: CreateDisposition::OVERWRITE_IF,
            name: "f".into(),
            ..Default::default()
        },
    );
    let fid = smb_core::messages::create::CreateResponse::read(&r.msg)
        .unwrap()
        .file_id;
    let r = c.call(
        Command::READ,
        &ReadRequest {
            file_id: fid,
            length: u32::MAX,
            ..Default::default()
        },
    );
    assert_eq!(r.hdr.status, NtStatus::INVALID_PARAMETER);
    // A WRITE whose Length claims 4 GiB but carries 3 bytes.
    let mut msg = c.build(
        Command::WRITE,
        &WriteRequest {
            file_id: fid,
            data: b"abc".to_vec(),
            ..Default::default()
        },
    );
    msg[64 + 4..64 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        c.send(&msg).unwrap().hdr.status,
        NtStatus::INVALID_PARAMETER
    );
    // A write at an offset that would need 2^60 bytes: the share refuses, nothing is allocated.
    let r = c.call(
        Command::WRITE,
        &WriteRequest {
            file_id: fid,
            offset: 1 << 60,
            data: b"x".to_vec(),
            ..Default::default()
        },
    );
    assert_eq!(r.hdr.status, NtStatus::DISK_FULL);
    assert_eq!(share.contents("f").unwrap(), b"");
}

#[test]
fn bad_next_command_disconnects() {
    for next in [3u32, 8, 60, 1 << 20, u32::MAX - 7] {
        let mut c = negotiated();
        let a = c.build(Command::ECHO, &EchoRequest);
        let b = c.build(Command::ECHO, &EchoRequest);
        let mut chain = build_chain(&[a, b]);
        chain[NEXT_COMMAND_OFFSET..NEXT_COMMAND_OFFSET + 4].copy_from_slice(&next.to_le_bytes());
        assert!(c.raw(&chain).is_empty(), "NextCommand {next}");
        assert!(c.conn.is_failed(), "NextCommand {next}");
    }
}

#[test]
fn unknown_commands_are_errors() {
    let (cfg, _) = config(false);
    let mut c = Client::connected(cfg, Dialect::SMB302);
    for cmd in [
        Command(0x13),
        Command(0xFFFF),
        Command::LOCK,
        Command::CHANGE_NOTIFY,
    ] {
        let mut h = c.header(cmd);
        h.session_id = c.session_id;
        let mut msg = Vec::new();
        h.encode(&mut msg);
        msg.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0]);
        if let Some(k) = &c.key {
            k.sign(&mut msg).unwrap();
        }
        let r = c.send(&msg).expect("an error response");
        assert!(r.hdr.status.is_error(), "{cmd:?}");
    }
    assert!(!c.conn.is_failed());
}

/// Mutates real requests at random positions (deterministic generator) and feeds them to
/// connected, unsigned sessions: whatever the bytes, no panic, and every answer is a
/// well-formed SMB2 response.
#[test]
fn mutated_requests_never_panic() {
    let (cfg, _) = config(false);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let templates: Vec<(Command, Vec<u8>)> = {
        let mut c = Client::connected(cfg.clone(), Dialect::SMB311);
        c.sign = false;
        vec![
            (
                Command::CREATE,
                c.build(
                    Command::CREATE,
                    &CreateRequest {
                        name: "a\\b.txt".into(),
                        create_disposition: CreateDisposition::OPEN_IF,
                        desired_access: access::GENERIC_ALL,
                        ..Default::default()
                    },
                ),
            ),
            (
                Command::WRITE,
                c.build(
                    Command::WRITE,
                    &WriteRequest {
                        data: vec![1; 100],
                        ..Default::default()
                    },
                ),
            ),
            (
                Command::READ,
                c.build(
                    Command::READ,
                    &ReadRequest {
                        length: 100,
                        ..Default::default()
                    },
                ),
            ),
            (
                Command::SESSION_SETUP,
                c.build(
                    Command::SESSION_SETUP,
                    &SessionSetupRequest {
                        security_buffer: vec![0x60, 3, 1, 2, 3],
                        ..Default::default()
                    },
                ),
            ),
            (Command::ECHO, c.build(Command::ECHO, &EchoRequest)),
        ]
    };
    for round in 0..400 {
        let mut c = Client::connected(cfg.clone(), Dialect::SMB311);
        c.sign = false;
        let (_, t) = &templates[round % templates.len()];
        let mut msg = t.clone();
        // Keep the MessageId valid so the mutation reaches the command handlers.
        msg[24..32].copy_from_slice(&c.next_id.to_le_bytes());
        msg[40..48].copy_from_slice(&c.session_id.to_le_bytes());
        msg[36..40].copy_from_slice(&c.tree_id.to_le_bytes());
        c.next_id += 1;
        for _ in 0..(1 + next() % 4) {
            let pos = 48 + (next() as usize) % (msg.len() - 48);
            msg[pos] = next() as u8;
        }
        if next() % 5 == 0 {
            let cut = 64 + (next() as usize) % (msg.len() - 64);
            msg.truncate(cut);
        }
        for out in c.raw(&msg) {
            let h = Header::parse(&out).expect("responses are well-formed");
            assert!(h.is_response());
        }
    }
}

/// Opens an existing file for reading (sharing reads, as clients do: the server enforces
/// sharing modes); its FileId.
fn open_for_read(c: &mut Client, name: &str) -> smb_core::messages::FileId {
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_READ,
            share_access: smb_core::messages::create::share_access::READ,
            create_disposition: CreateDisposition::OPEN,
            name: name.into(),
            ..Default::default()
        },
    );
    smb_core::messages::create::CreateResponse::read(&r.msg)
        .unwrap()
        .file_id
}

/// MS-SMB2 3.3.5.2.5: a large READ charged a single credit is refused; charged enough, it
/// is served (and consumes that many MessageIds).
#[test]
fn credit_charge_must_cover_the_payload() {
    let (cfg, share) = config(true);
    share.put("big", &vec![7u8; 200_000]).unwrap();
    let mut c = Client::connected(cfg, Dialect::SMB311);
    let fid = open_for_read(&mut c, "big");
    let read = ReadRequest {
        file_id: fid,
        length: 200_000,
        ..Default::default()
    };
    let r = c.call(Command::READ, &read);
    assert_eq!(r.hdr.status, NtStatus::INVALID_PARAMETER);
    let mut h = c.header(Command::READ);
    h.credit_charge = 4; // ceil(200000 / 65536)
    c.next_id += 3;
    let mut msg = smb_core::messages::build(&h, &read);
    c.key.as_ref().unwrap().sign(&mut msg).unwrap();
    let r = c.send(&msg).unwrap();
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
    assert_eq!(
        smb_core::messages::read::ReadResponse::read(&r.msg)
            .unwrap()
            .data
            .len(),
        200_000
    );
    // The ids a multi-credit request covered cannot be reused.
    let mut h = c.header(Command::ECHO);
    h.message_id -= 2;
    let mut msg = smb_core::messages::build(&h, &EchoRequest);
    c.key.as_ref().unwrap().sign(&mut msg).unwrap();
    assert!(c.send(&msg).is_none());
    assert!(c.conn.is_failed());
}

/// Before authentication only small messages are accepted (NEGOTIATE and SESSION_SETUP
/// are small); an authenticated session may send up to the configured limit.
#[test]
fn large_messages_need_an_authenticated_session() {
    use smb_core::conn::server::UNAUTHENTICATED_MAX_MESSAGE;
    let (cfg, share) = config(true);
    let mut c = Client::new(cfg.clone());
    assert_eq!(c.conn.max_message_size(), UNAUTHENTICATED_MAX_MESSAGE);
    let mut msg = c.build(Command::ECHO, &EchoRequest);
    msg.resize(UNAUTHENTICATED_MAX_MESSAGE + 8, 0);
    assert!(c.raw(&msg).is_empty());
    assert!(c.conn.is_failed());

    let mut c = Client::connected(cfg.clone(), Dialect::SMB311);
    assert_eq!(c.conn.max_message_size(), cfg.limits.max_message_size);
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access: access::GENERIC_ALL,
            create_disposition: CreateDisposition::CREATE,
            name: "big".into(),
            ..Default::default()
        },
    );
    let fid = smb_core::messages::create::CreateResponse::read(&r.msg)
        .unwrap()
        .file_id;
    let data = vec![0x5A; 300_000];
    let mut h = c.header(Command::WRITE);
    h.credit_charge = 5;
    c.next_id += 4;
    let mut msg = smb_core::messages::build(
        &h,
        &WriteRequest {
            file_id: fid,
            data: data.clone(),
            ..Default::default()
        },
    );
    c.key.as_ref().unwrap().sign(&mut msg).unwrap();
    assert_eq!(c.send(&msg).unwrap().hdr.status, NtStatus::SUCCESS);
    assert_eq!(share.contents("big").unwrap(), data);
}

/// A signed chain of `n` READs of `len` bytes each, every one charged (and asking) enough
/// credits that the credits granted inside the chain pay for the next READ.
fn read_chain(c: &mut Client, fid: smb_core::messages::FileId, n: usize, len: u32) -> Vec<u8> {
    let charge = ((len - 1) / 65_536 + 1) as u16; // MS-SMB2 3.1.5.2
    let reads: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut h = c.header(Command::READ);
            h.credit_charge = charge;
            h.credits = charge;
            c.next_id = h.message_id + u64::from(charge);
            smb_core::messages::build(
                &h,
                &ReadRequest {
                    file_id: fid,
                    length: len,
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut chain = build_chain(&reads);
    let ranges = smb_core::compound::split_chain(&chain).unwrap();
    for range in ranges {
        c.key.as_ref().unwrap().sign(&mut chain[range]).unwrap();
    }
    chain
}

/// The statuses of a response chain, in order.
fn chain_statuses(out: &[u8]) -> Vec<NtStatus> {
    smb_core::compound::split_chain(out)
        .unwrap()
        .into_iter()
        .map(|r| Header::parse(&out[r]).unwrap().status)
        .collect()
}

/// Issue 12, attack 2: one signed frame of 8 MiB READs. Every READ is charged its
/// worst-case response against the connection's budget (16 MiB) before it runs: the first
/// fits and is served, every later one gets STATUS_INSUFFICIENT_RESOURCES without touching
/// the share, and the connection stays usable.
#[test]
fn a_chain_of_large_reads_is_refused_beyond_the_budget() {
    let (cfg, share) = config(false);
    let mut c = Client::connected(cfg.clone(), Dialect::SMB311);
    let len = cfg.limits.max_io_size;
    share.put("big", &vec![7u8; len as usize]).unwrap();
    let fid = open_for_read(&mut c, "big");
    // Collect enough credits for the first 128-credit READ.
    for _ in 0..8 {
        assert_eq!(
            c.call(Command::ECHO, &EchoRequest).hdr.status,
            NtStatus::SUCCESS
        );
    }
    for n in [3, 32] {
        let chain = read_chain(&mut c, fid, n, len);
        let out = c.raw(&chain);
        assert_eq!(out.len(), 1, "one answer to one chain");
        assert!(out[0].len() <= cfg.limits.max_connection_buffer);
        let mut want = vec![NtStatus::INSUFFICIENT_RESOURCES; n];
        want[0] = NtStatus::SUCCESS;
        assert_eq!(chain_statuses(&out[0]), want, "{n} READs");
        assert!(!c.conn.is_failed() && !c.disconnected());
        // Everything charged was given back with the answer.
        assert_eq!(c.conn.memory_budget().in_use(), 0);
        assert_eq!(cfg.memory.in_use(), 0);
    }
    assert_eq!(
        c.call(Command::ECHO, &EchoRequest).hdr.status,
        NtStatus::SUCCESS
    );
}

/// The server-wide budget is shared: what one connection holds (an answer not yet
/// written) is not available to another, whose READ is refused before it runs.
#[test]
fn the_server_wide_budget_is_shared_by_connections() {
    let (cfg, share) = config(false);
    let mut cfg = (*cfg).clone();
    cfg.memory = smb_core::conn::server::MemoryBudget::new(1024 * 1024);
    let cfg = std::sync::Arc::new(cfg);
    share.put("f", &vec![1u8; 600_000]).unwrap();
    let mut a = Client::connected(cfg.clone(), Dialect::SMB311);
    let mut b = Client::connected(cfg.clone(), Dialect::SMB311);
    let fa = open_for_read(&mut a, "f");
    let fb = open_for_read(&mut b, "f");
    for c in [&mut a, &mut b] {
        for _ in 0..4 {
            c.call(Command::ECHO, &EchoRequest);
        }
    }
    // A's answer stays unsent (not polled): it holds ~600 KB of the 1 MiB.
    let chain = read_chain(&mut a, fa, 1, 600_000);
    a.conn.handle_input(&chain);
    a.conn.run_share_requests_inline();
    assert!(cfg.memory.in_use() >= 600_000);
    let chain = read_chain(&mut b, fb, 1, 600_000);
    let out = b.raw(&chain);
    assert_eq!(chain_statuses(&out[0]), [NtStatus::INSUFFICIENT_RESOURCES]);
    // Once A's answer is written (dropped), B is served.
    let sent = a.conn.poll_transmit().expect("A's answer");
    assert_eq!(chain_statuses(&sent), [NtStatus::SUCCESS]);
    drop(sent);
    assert_eq!(cfg.memory.in_use(), 0);
    let chain = read_chain(&mut b, fb, 1, 600_000);
    let out = b.raw(&chain);
    assert_eq!(chain_statuses(&out[0]), [NtStatus::SUCCESS]);
}
