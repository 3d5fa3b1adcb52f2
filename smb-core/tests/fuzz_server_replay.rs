//! Stable-toolchain replay of the fuzz corpora kept in the tree: every input runs through
//! the same harness as the fuzzer, with the same checks.
//! - `server_session` (`fuzz/corpus/server_session`, regressions in
//!   `fuzz/regressions/server_session`): no panic, every response a valid SMB2 response,
//!   every signed response verifies, nothing after a disconnect.
//! - `parse_auth` (`fuzz/corpus/parse_auth`): no panic, stable re-encoding.

#[path = "../../fuzz/harness/server.rs"]
mod server;

#[path = "../../fuzz/harness/auth.rs"]
mod auth;

/// Runs `run` on every file of `dirs` (below `fuzz/`); returns how many there were.
fn replay(dirs: &[&str], run: impl Fn(&[u8])) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            // A fuzzer running on the corpus may remove a file it has just reduced.
            let data = match std::fs::read(&f) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                r => r.unwrap(),
            };
            run(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn server_session_corpus_replays_cleanly() {
    let n = replay(
        &["corpus/server_session", "regressions/server_session"],
        server::run,
    );
    assert!(n >= 8, "the seed corpus is in the tree ({n} inputs found)");
}

#[test]
fn parse_auth_corpus_replays_cleanly() {
    let n = replay(&["corpus/parse_auth"], auth::run);
    assert!(n >= 100, "the corpus is in the tree ({n} inputs found)");
}

/// Writes the seed corpus (run once with `--ignored`; the files are committed): sequences
/// a real client sends, so the fuzzer starts from CREATE / WRITE / READ / QUERY_* / CLOSE
/// on real FileIds rather than from bytes the server refuses at once.
#[test]
#[ignore]
fn write_seed_corpus() {
    use smb_core::header::{Command, Header, HEADER_LEN};
    use smb_core::messages::close::CloseRequest;
    use smb_core::messages::create::{access, create_options, CreateDisposition, CreateRequest};
    use smb_core::messages::flush::FlushRequest;
    use smb_core::messages::info::FileInfoClass;
    use smb_core::messages::query_directory::QueryDirectoryRequest;
    use smb_core::messages::query_info::{InfoType, QueryInfoRequest};
    use smb_core::messages::read::ReadRequest;
    use smb_core::messages::{build, EncodeBody, FileId};

    fn body<B: EncodeBody>(cmd: Command, b: &B) -> Vec<u8> {
        build(&Header::request(cmd, 0, 0, 0), b)[HEADER_LEN..].to_vec()
    }
    /// op 0: one signed request; `fid` puts the last CREATE's FileId in.
    fn op(cmd: Command, fid: bool, b: Vec<u8>) -> Vec<u8> {
        let mut p = vec![cmd.0 as u8, 1 | if fid { 2 } else { 0 }];
        p.extend_from_slice(&b);
        let mut o = vec![0u8];
        o.extend_from_slice(&(p.len() as u16).to_le_bytes());
        o.extend_from_slice(&p);
        o
    }
    fn write_body(data: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&49u16.to_le_bytes());
        b.extend_from_slice(&0x70u16.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&[0u8; 16]); // FileId, patched by the harness
        b.extend_from_slice(&[0u8; 16]); // Channel, Remaining, ChannelInfo offset/length
        b.extend_from_slice(&0u32.to_le_bytes()); // Flags
        b.extend_from_slice(data);
        b
    }
    let create = |name: &str, dir: bool| {
        body(
            Command::CREATE,
            &CreateRequest {
                desired_access: access::GENERIC_READ | access::GENERIC_WRITE | access::DELETE,
                create_disposition: CreateDisposition::OPEN_IF,
                create_options: if dir {
                    create_options::DIRECTORY_FILE
                } else {
                    create_options::NON_DIRECTORY_FILE
                },
                name: name.into(),
                ..Default::default()
            },
        )
    };
    let fid = FileId::default();
    let read = body(
        Command::READ,
        &ReadRequest {
            length: 4096,
            file_id: fid,
            ..Default::default()
        },
    );
    let close = body(
        Command::CLOSE,
        &CloseRequest {
            flags: 0,
            file_id: fid,
        },
    );
    let flush = body(Command::FLUSH, &FlushRequest { file_id: fid });
    let qdir = body(
        Command::QUERY_DIRECTORY,
        &QueryDirectoryRequest {
            file_information_class: FileInfoClass::BOTH_DIRECTORY,
            flags: 0,
            file_index: 0,
            file_id: fid,
            pattern: "*".into(),
            output_buffer_length: 65536,
        },
    );
    let qinfo = |class: u8, t: InfoType| {
        body(
            Command::QUERY_INFO,
            &QueryInfoRequest {
                info_type: t,
                file_info_class: class,
                output_buffer_length: 4096,
                input_buffer: Vec::new(),
                additional_information: 0,
                flags: 0,
                file_id: fid,
            },
        )
    };
    let echo = body(Command::ECHO, &smb_core::messages::echo::EchoRequest);
    let file = [
        op(Command::CREATE, false, create("a.txt", false)),
        op(Command::WRITE, true, write_body(b"hello fuzz")),
        op(Command::READ, true, read),
        op(Command::FLUSH, true, flush),
        op(Command::QUERY_INFO, true, qinfo(5, InfoType::FILE)),
        op(Command::QUERY_INFO, true, qinfo(3, InfoType::FILESYSTEM)),
        op(Command::CLOSE, true, close.clone()),
    ]
    .concat();
    let dir = [
        op(Command::CREATE, false, create("d", true)),
        op(Command::CREATE, false, create("d\\x", false)),
        op(Command::CREATE, false, create("", true)),
        op(Command::QUERY_DIRECTORY, true, qdir.clone()),
        op(Command::QUERY_DIRECTORY, true, qdir),
        op(Command::CLOSE, true, close),
    ]
    .concat();
    // A compound (op 1): CREATE then a related READ of the file it opened.
    let related_read = body(
        Command::READ,
        &ReadRequest {
            length: 4096,
            file_id: FileId::RELATED,
            ..Default::default()
        },
    );
    let mut chain = vec![1u8];
    for (cmd, b) in [
        (Command::CREATE, create("a.txt", false)),
        (Command::READ, related_read),
    ] {
        chain.extend_from_slice(&((b.len() + 2) as u16).to_le_bytes());
        chain.push(cmd.0 as u8);
        chain.push(1);
        chain.extend_from_slice(&b);
    }
    let mut compound = vec![1u8];
    compound.extend_from_slice(&(chain.len() as u16).to_le_bytes());
    compound.extend_from_slice(&chain);
    let echo_op = op(Command::ECHO, false, echo);
    let dirs =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/server_session");
    std::fs::create_dir_all(&dirs).unwrap();
    let mut n = 0;
    for d in 0..3u8 {
        for (name, ops) in [
            ("file", &file),
            ("dir", &dir),
            ("compound", &compound),
            ("echo", &echo_op),
        ] {
            let mut input = vec![d];
            input.extend_from_slice(ops);
            std::fs::write(dirs.join(format!("seed-{name}-{d}")), input).unwrap();
            n += 1;
        }
    }
    assert_eq!(n, 12);
}
