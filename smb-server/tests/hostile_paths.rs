//! Hostile clients against the real server binary: path tricks in CREATE and the share
//! escape by symlink swap (issue 12, attack 3). Nothing may be read from or written to
//! outside the share, and a FIFO in the share must not block the server.

mod hostile_util;

use std::time::{Duration, Instant};

use hostile_util::{Raw, Server, PASSWORD, USER};
use smb_core::header::{Command as Cmd, Header, NtStatus};
use smb_core::messages::create::CreateDisposition;
use smb_core::messages::read::{ReadRequest, ReadResponse};

fn session(srv: &Server) -> Raw {
    let mut c = Raw::connect(srv.addr, None);
    c.login(USER, PASSWORD).unwrap();
    c.tree_connect("data");
    c
}

#[test]
fn path_tricks_in_create_stay_inside_the_share() {
    let srv = Server::start(&[]);
    std::fs::write(srv.outside().join("..secret"), b"x").ok();
    std::fs::remove_file(srv.outside().join("..secret")).ok();
    let mut c = session(&srv);
    let long_component = "a".repeat(300);
    let long_path = vec!["b"; 16_000].join("\\");
    let cases: Vec<String> = vec![
        "..\\outside\\x".into(),
        "a\\..\\..\\outside\\x".into(),
        "\\..\\outside\\x".into(),
        "..".into(),
        ".\\..\\x".into(),
        "/etc/passwd".into(),
        "x/../../outside/y".into(),
        "c:\\windows\\x".into(),
        "file.txt:stream".into(),
        "file.txt::$DATA".into(),
        "x\u{0}y".into(),
        long_component,
        long_path,
    ];
    for name in &cases {
        let (st, _) = c.create(name, CreateDisposition::OPEN_IF);
        assert_ne!(st, NtStatus::SUCCESS, "{:.40?} was accepted", name);
    }
    // Windows device names are ordinary names here: they land inside the share, if at all.
    for name in ["CON", "NUL", "AUX", "COM1", "LPT1", "con.txt"] {
        let (st, _) = c.create(name, CreateDisposition::OPEN_IF);
        if st == NtStatus::SUCCESS {
            assert!(srv.share().join(name).is_file(), "{name} inside the share");
        }
    }
    srv.assert_outside_untouched();
    assert!(!srv.dir.join("x").exists() && !srv.dir.join("y").exists());
    srv.assert_serves_others();
}

#[test]
fn symlinks_and_fifos_in_the_share() {
    let srv = Server::start(&[]);
    std::fs::write(srv.dir.join("secret"), b"SECRET").unwrap();
    std::os::unix::fs::symlink(srv.dir.join("secret"), srv.share().join("to-secret")).unwrap();
    std::os::unix::fs::symlink(srv.outside(), srv.share().join("to-outside")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        srv.share().join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
    let mut c = session(&srv);
    for name in ["to-secret", "to-outside\\new", "to-outside"] {
        let (st, _) = c.create(name, CreateDisposition::OPEN_IF);
        assert_ne!(st, NtStatus::SUCCESS, "{name}");
    }
    let t = Instant::now();
    let (st, _) = c.create("fifo", CreateDisposition::OPEN);
    assert_ne!(st, NtStatus::SUCCESS, "fifo");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the FIFO did not block"
    );
    srv.assert_outside_untouched();
    srv.assert_serves_others();
}

/// Attack 3 as filed: a local user swaps a directory of the share with a symlink to an
/// outside directory (renameat2 RENAME_EXCHANGE) in a loop while a client opens and reads
/// a file in it. Not one byte from outside may come back.
#[test]
fn symlink_swap_race_leaks_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let srv = Server::start(&[]);
    let share = srv.share();
    std::fs::create_dir(share.join("d")).unwrap();
    std::fs::write(share.join("d").join("f"), b"inside").unwrap();
    std::fs::write(srv.outside().join("f"), b"SECRET").unwrap();
    std::os::unix::fs::symlink(srv.outside(), share.join("l")).unwrap();
    let mut c = session(&srv);
    let stop = AtomicBool::new(false);
    let (mut inside, mut refused, mut swaps) = (0u32, 0u32, 0u64);
    std::thread::scope(|s| {
        let swapper = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    share.join("d"),
                    rustix::fs::CWD,
                    share.join("l"),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .is_ok()
                {
                    n += 1;
                }
            }
            n
        });
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(4) {
            let (st, fid) = c.create("d\\f", CreateDisposition::OPEN);
            if st != NtStatus::SUCCESS {
                refused += 1;
                continue;
            }
            let req = ReadRequest {
                length: 64,
                offset: 0,
                file_id: fid,
                ..Default::default()
            };
            let (h, r) = c.call(Cmd::READ, &req);
            if h.status == NtStatus::SUCCESS {
                let data = ReadResponse::read(&r).unwrap().data;
                assert_eq!(data, b"inside", "bytes from outside the share");
                inside += 1;
            } else {
                refused += 1;
            }
            let close = smb_core::messages::close::CloseRequest {
                flags: 0,
                file_id: fid,
            };
            let (h, _) = c.call(Cmd::CLOSE, &close);
            let _: Header = h;
        }
        stop.store(true, Ordering::Relaxed);
        swaps = swapper.join().unwrap();
    });
    assert!(
        swaps > 100 && inside > 0,
        "the race ran: {swaps} swaps, {inside} reads, {refused} refused"
    );
    srv.assert_outside_untouched_but(&["f"]);
}

/// Each open holds its own descriptor: after CREATE, a local user swaps the directory with
/// a symlink to an outside one (RENAME_EXCHANGE) and replaces the file's name with another
/// file. The open still reads and writes the file it opened, lists the directory it opened,
/// and nothing outside changes.
#[test]
fn swap_after_open_does_not_redirect_the_open() {
    use smb_core::messages::info::FileInfoClass;
    use smb_core::messages::query_directory::{QueryDirectoryRequest, QueryDirectoryResponse};
    use smb_core::messages::write::WriteRequest;
    let srv = Server::start(&[]);
    let share = srv.share();
    std::fs::create_dir(share.join("d")).unwrap();
    std::fs::write(share.join("d").join("f"), b"inside").unwrap();
    std::fs::write(srv.outside().join("f"), b"SECRET").unwrap();
    std::fs::write(srv.outside().join("outside-only"), b"x").unwrap();
    std::os::unix::fs::symlink(srv.outside(), share.join("l")).unwrap();
    let mut c = session(&srv);
    let (st, fid) = c.create("d\\f", CreateDisposition::OPEN);
    assert_eq!(st, NtStatus::SUCCESS);
    let (st, dir) = c.create("d", CreateDisposition::OPEN);
    assert_eq!(st, NtStatus::SUCCESS);
    // share/d is now the symlink to outside; the real directory is share/l.
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        share.join("d"),
        rustix::fs::CWD,
        share.join("l"),
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .unwrap();
    let read = |c: &mut Raw| {
        let req = ReadRequest {
            length: 64,
            offset: 0,
            file_id: fid,
            ..Default::default()
        };
        let (h, r) = c.call(Cmd::READ, &req);
        assert_eq!(h.status, NtStatus::SUCCESS, "the open still reads");
        ReadResponse::read(&r).unwrap().data
    };
    assert_eq!(
        read(&mut c),
        b"inside",
        "the opened file, not the outside one"
    );
    let w = WriteRequest {
        offset: 6,
        file_id: fid,
        data: b"+w".to_vec(),
        ..Default::default()
    };
    let (h, _) = c.call(Cmd::WRITE, &w);
    assert_eq!(h.status, NtStatus::SUCCESS);
    assert_eq!(
        std::fs::read(share.join("l").join("f")).unwrap(),
        b"inside+w"
    );
    // The name now means another file: the open keeps the one it opened.
    std::fs::rename(share.join("l").join("f"), share.join("l").join("moved")).unwrap();
    std::fs::write(share.join("l").join("f"), b"other").unwrap();
    assert_eq!(read(&mut c), b"inside+w");
    // The directory open lists the directory it opened.
    let q = QueryDirectoryRequest {
        file_information_class: FileInfoClass::DIRECTORY,
        file_id: dir,
        pattern: "*".into(),
        output_buffer_length: 64 * 1024,
        ..Default::default()
    };
    let (h, r) = c.call(Cmd::QUERY_DIRECTORY, &q);
    assert_eq!(h.status, NtStatus::SUCCESS);
    let buf = QueryDirectoryResponse::read(&r).unwrap().buffer;
    let names = utf16_names(&buf);
    assert!(
        names.contains(&"moved".to_string()) && !names.contains(&"outside-only".to_string()),
        "{names:?}"
    );
    assert_eq!(std::fs::read(srv.outside().join("f")).unwrap(), b"SECRET");
    srv.assert_outside_untouched_but(&["f", "outside-only"]);
    srv.assert_serves_others();
}

/// The names in a FileDirectoryInformation buffer (MS-FSCC 2.4.10).
fn utf16_names(mut buf: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    while buf.len() >= 64 {
        let next = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(buf[60..64].try_into().unwrap()) as usize;
        let units: Vec<u16> = buf[64..64 + len]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        names.push(String::from_utf16_lossy(&units));
        if next == 0 {
            break;
        }
        buf = &buf[next..];
    }
    names
}
