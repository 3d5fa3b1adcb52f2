//! The harness's own small pieces: ports, process guards, readiness, missing-peer messages.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{
    free_port, python, require_tool, spawn_listening, test_bytes, ChildGuard, ExternalServer,
};

#[test]
fn free_port_is_bindable_on_loopback_and_never_smb_well_known() {
    for _ in 0..20 {
        let port = free_port();
        assert!(port != 445 && port != 139 && port != 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("free port binds");
    }
}

#[test]
fn child_guard_kills_its_process_on_drop() {
    let child = Command::new("sleep").arg("600").spawn().unwrap();
    let guard = ChildGuard::new(child);
    let pid = guard.id();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(guard);
    // Killed and reaped: the PID is gone, not a zombie.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} still exists"
    );
}

#[test]
fn spawn_listening_returns_the_announced_address() {
    let script = "import socket, sys\n\
                  s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                  print('starting up'); print('listening on 127.0.0.1:%d' % s.getsockname()[1])\n\
                  sys.stdout.flush(); c, _ = s.accept(); c.sendall(b'hi'); c.close()\n\
                  import time; time.sleep(600)\n";
    let (guard, addr) = spawn_listening(
        Command::new(python()).args(["-c", script]),
        Duration::from_secs(30),
    );
    assert!(addr.ip().is_loopback());
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut got).unwrap();
    assert_eq!(got, b"hi");
    let pid = guard.id();
    drop(guard);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
#[should_panic(expected = "printed no `listening on ADDR:PORT`")]
fn spawn_listening_fails_clearly_when_nothing_is_announced() {
    let _ = spawn_listening(Command::new("sleep").arg("600"), Duration::from_millis(300));
}

#[test]
#[should_panic(expected = "run `cargo xtask peers`")]
fn a_missing_peer_is_a_failure_that_says_what_to_install() {
    require_tool("no-such-smb-peer-tool");
}

#[test]
fn the_peers_are_installed() {
    for tool in [
        "smbd",
        "smbpasswd",
        "smbclient",
        "tshark",
        "dumpcap",
        "setsid",
    ] {
        assert!(require_tool(tool).is_file());
    }
    let out = Command::new(python())
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('impacket'), m.version('smbprotocol'))",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0.13.1 1.17.0");
}

#[test]
fn test_bytes_are_deterministic_and_varied() {
    let a = test_bytes(1 << 16, 7);
    assert_eq!(a, test_bytes(1 << 16, 7));
    assert_ne!(a, test_bytes(1 << 16, 8));
    // Every 4 KiB block differs from the next, so a misplaced block cannot go unnoticed.
    let blocks: Vec<&[u8]> = a.chunks(4096).collect();
    assert!(blocks.windows(2).all(|w| w[0] != w[1]));
    let distinct = a.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(distinct, 256);
}

#[test]
fn external_server_names_parse() {
    let server = ExternalServer::parse("192.0.2.10:4445", "alice", "pw").unwrap();
    assert_eq!((server.host.as_str(), server.port), ("192.0.2.10", 4445));
    let server = ExternalServer::parse("[::1]:445", "alice", "pw").unwrap();
    assert_eq!((server.host.as_str(), server.port), ("::1", 445));
    assert!(ExternalServer::parse("no-port", "a", "b").is_err());
    assert!(ExternalServer::parse("host:99999", "a", "b").is_err());
    assert!(ExternalServer::parse(":445", "a", "b").is_err());
    // The password never shows in Debug output (assertion messages print peers).
    assert!(!format!("{server:?}").contains("pw"));
}
