//! Our client's pipelined transfer path (issue 8): a multi-MiB `put` and `get` with several
//! READs/WRITEs in flight, against our server and against Samba, each with a 1 MiB
//! MaxReadSize/MaxWriteSize so the file takes many requests. The bytes on the share and the
//! bytes read back must equal the original; the client's transfer summary (its
//! `smb_client::transfer` debug line: requests sent, most in flight at once, largest request)
//! shows the pipelining really happened.

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use tests::{
    run_with_timeout, scratch_dir, show, spawn_listening, test_bytes, workspace_bin, SambaOptions,
    SambaServer, ServerSigning,
};

const MIB: usize = 1024 * 1024;
/// 12 MiB and a bit: thirteen 1 MiB requests, the last one short.
const LEN: usize = 12 * MIB + 4321;

/// `write done: bytes=.. requests=.. max_in_flight=.. max_request=.. reused_buffers=..` as
/// numbers.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    bytes: u64,
    requests: u64,
    max_in_flight: u64,
    max_request: u64,
    reused_buffers: u64,
}

fn summary(out: &Output, what: &str) -> Summary {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find_map(|l| {
            l.split_once(&format!("{what} done: "))
                .map(|(_, rest)| rest)
        })
        .unwrap_or_else(|| panic!("no `{what} done:` line:\n{}", show(out)));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
    };
    Summary {
        bytes: field("bytes"),
        requests: field("requests"),
        max_in_flight: field("max_in_flight"),
        max_request: field("max_request"),
        reused_buffers: field("reused_buffers"),
    }
}

/// put then get of `LEN` bytes with our client; checks the share's copy and the copy read
/// back, and the pipelining of both directions.
fn put_get(port: u16, user: &str, password: &str, share_dir: &std::path::Path, args: &[&str]) {
    let dir = scratch_dir(&format!("pipelined-{port}"));
    let original = test_bytes(LEN, port as u64);
    let (up, down) = (dir.join("up.bin"), dir.join("down.bin"));
    fs::write(&up, &original).unwrap();
    let out = run_with_timeout(
        Command::new(workspace_bin("smb-client"))
            .arg(format!("//127.0.0.1:{port}/data"))
            .args(["-U", &format!("{user}%{password}")])
            .args(args)
            .args([
                "-c",
                &format!(
                    "put {} big.bin; get big.bin {}",
                    up.display(),
                    down.display()
                ),
            ])
            .env("SMB_LOG", "smb_client::transfer=debug"),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        fs::read(share_dir.join("big.bin")).unwrap() == original,
        "the share's copy differs from what was put"
    );
    assert!(
        fs::read(&down).unwrap() == original,
        "the copy read back differs"
    );
    for what in ["write", "read"] {
        let s = summary(&out, what);
        assert_eq!(s.bytes, LEN as u64, "{what}: {s:?}");
        assert_eq!(
            s.requests, 13,
            "{what}: thirteen 1 MiB requests expected, {s:?}"
        );
        assert_eq!(s.max_request, MIB as u64, "{what}: {s:?}");
        assert!(
            s.max_in_flight >= 4,
            "{what}: several requests should be in flight at once, {s:?}"
        );
    }
    // A READ's frame, once the file's writer thread is done with it, takes a later frame
    // instead of fresh pages (a page fault and a zeroed page every 4 KiB). (All thirteen
    // WRITEs are in flight at once, so no sent WRITE's buffer comes back in time for a later
    // chunk here; `local_io`'s tests cover that.)
    let read = summary(&out, "read");
    assert!(
        read.reused_buffers > 0,
        "no frame's memory was reused over thirteen READs: {read:?}"
    );
}

#[test]
fn put_get_12_mib_pipelined_against_our_server() {
    let root = scratch_dir("pipelined-ours");
    let share = root.join("share");
    fs::create_dir_all(&share).unwrap();
    // A 1 MiB MaxReadSize/MaxWriteSize: the largest message is 1 MiB + 1024.
    let (_guard, addr) = spawn_listening(
        Command::new(workspace_bin("smb-server"))
            .args(["--listen", "127.0.0.1:0", "--share"])
            .arg(format!("data={}", share.display()))
            .args(["--user", "alice:Passw0rd!"])
            .args(["--max-message-size", &(MIB + 1024).to_string()]),
        Duration::from_secs(20),
    );
    for args in [
        &["--dialect", "3.1.1", "--signing-algorithm", "aes-gmac"][..],
        &["--dialect", "2.1"][..],
    ] {
        put_get(addr.port(), "alice", "Passw0rd!", &share, args);
    }
}

#[test]
fn put_get_12_mib_pipelined_against_samba() {
    let samba = SambaServer::start(SambaOptions {
        signing: ServerSigning::Mandatory,
        max_io: MIB as u32,
        ..SambaOptions::default()
    });
    put_get(
        samba.port(),
        samba.user(),
        samba.password(),
        samba.share_path(),
        &["--dialect", "3.1.1", "--signing-algorithm", "aes-gmac"],
    );
}
