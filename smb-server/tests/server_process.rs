//! The `smb-server` binary over loopback: startup line, SMB1 negotiate answered, an absurd
//! NetBIOS length ends only that connection, bad configuration exits non-zero.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smb_core::framing::{encode_frame, frame_len};
use smb_core::header::{Command as Cmd, Dialect, Header};
use smb_core::messages::echo::EchoRequest;
use smb_core::messages::negotiate::{NegotiateRequest, NegotiateResponse};
use smb_core::messages::smb1_negotiate::Smb1Negotiate;

/// The server process; killed by PID when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(extra: &[&str]) -> Server {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("smb-server-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let audit = dir.join("audit.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_smb-server"))
        .args(["--listen", "127.0.0.1:0", "--share"])
        .arg(format!("data={}", dir.join("data").display()))
        .args(["--user", "alice:Passw0rd!", "--audit-log"])
        .arg(&audit)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smb-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    Server { child, addr, dir }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn send(s: &mut TcpStream, msg: &[u8]) {
    let mut framed = Vec::new();
    encode_frame(msg, &mut framed);
    // A refused connection may already be closed: the next recv() reports it.
    let _ = s.write_all(&framed);
}

/// Reads one framed message, or `None` on EOF.
fn recv(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(Some(len)) = frame_len(&buf, 1 << 24) {
            return Some(buf[4..4 + len].to_vec());
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn negotiate(s: &mut TcpStream) -> NegotiateResponse {
    let req = NegotiateRequest {
        security_mode: 1,
        dialects: vec![Dialect::SMB202, Dialect::SMB30],
        ..Default::default()
    };
    send(
        s,
        &smb_core::messages::build(&Header::request(Cmd::NEGOTIATE, 0, 0, 0), &req),
    );
    NegotiateResponse::read(&recv(s).expect("negotiate response")).unwrap()
}

#[test]
fn smb1_negotiate_is_answered_and_audited() {
    let srv = start(&[]);
    let mut s = connect(srv.addr);
    let mut smb1 = Vec::new();
    Smb1Negotiate {
        dialects: vec!["NT LM 0.12".into(), "SMB 2.002".into(), "SMB 2.???".into()],
    }
    .encode(&mut smb1);
    send(&mut s, &smb1);
    let resp = NegotiateResponse::read(&recv(&mut s).unwrap()).unwrap();
    assert_eq!(resp.dialect_revision, Dialect::WILDCARD);
    assert_eq!(resp.security_mode, 3, "signing required by default");
    drop(s);
    let audit = std::fs::read_to_string(srv.dir.join("audit.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "smb1_attempt");
    assert_eq!(first["answered"], "0x02ff");
}

#[test]
fn absurd_netbios_length_drops_that_connection_only() {
    let srv = start(&[]);
    let mut good = connect(srv.addr);
    assert_eq!(negotiate(&mut good).dialect_revision, Dialect::SMB30);
    let mut bad = connect(srv.addr);
    // 0x00FFFFFF bytes announced: more than the server accepts; it must hang up at once
    // without waiting for (or allocating) 16 MiB.
    bad.write_all(&[0x00, 0xFF, 0xFF, 0xFF, 0xFE, b'S', b'M', b'B'])
        .unwrap();
    assert!(recv(&mut bad).is_none(), "disconnected");
    // Not a direct-TCP frame at all (NetBIOS session request type 0x81).
    let mut bad2 = connect(srv.addr);
    bad2.write_all(&[0x81, 0, 0, 4, 1, 2, 3, 4]).unwrap();
    assert!(recv(&mut bad2).is_none());
    // The first connection still works.
    let mut h = Header::request(Cmd::ECHO, 1, 0, 0);
    h.credit_charge = 1;
    send(&mut good, &smb_core::messages::build(&h, &EchoRequest));
    let r = Header::parse(&recv(&mut good).expect("echo response")).unwrap();
    assert!(r.status.is_success());
    // And new connections are accepted.
    let mut again = connect(srv.addr);
    assert_eq!(negotiate(&mut again).dialect_revision, Dialect::SMB30);
}

#[test]
fn non_loopback_and_bad_config_exit_non_zero() {
    let bin = env!("CARGO_BIN_EXE_smb-server");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--listen",
                "0.0.0.0:0",
                "--share",
                "d=/tmp",
                "--user",
                "a:b",
            ],
            "loopback",
        ),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--share",
                "d=/does/not/exist",
                "--user",
                "a:b",
            ],
            "not an accessible directory",
        ),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--share",
                "d=/tmp",
                "--user",
                "a:b",
                "--dialects",
                "4.0",
            ],
            "unknown value",
        ),
        (&["--listen", "127.0.0.1:0", "--share", "d=/tmp"], "no user"),
        (
            &["--config", "/does/not/exist.toml"],
            "cannot read config file",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(bin).args(*args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn toml_config_file_is_read_and_flags_win() {
    let dir = std::env::temp_dir().join(format!("smb-server-toml-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("d")).unwrap();
    let conf = dir.join("server.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = \"127.0.0.1:0\"\nuser = [\"bob:nthash:a4f49c406510bdcab6824ee7c30fd852\"]\nrequire-signing = true\ndialects = \"3.0\"\n[share]\nd = \"{}\"\n",
            dir.join("d").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smb-server"))
        .arg("--config")
        .arg(&conf)
        .args(["--require-signing", "false"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let mut s = connect(addr);
    let resp = negotiate(&mut s);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        resp.dialect_revision,
        Dialect::SMB30,
        "dialects from the file"
    );
    assert_eq!(
        resp.security_mode, 1,
        "--require-signing false wins over the file"
    );
}

/// Runs NEGOTIATE 3.0 and a full NTLM SESSION_SETUP with `password`; returns the final
/// status, or `None` if the server hung up.
fn login(s: &mut TcpStream, user: &str, password: &str) -> Option<smb_core::header::NtStatus> {
    use smb_core::auth::{ClientAuth, ClientStep, Credentials};
    use smb_core::messages::session_setup::{SessionSetupRequest, SessionSetupResponse};
    let req = NegotiateRequest {
        security_mode: 1,
        dialects: vec![Dialect::SMB30],
        ..Default::default()
    };
    send(
        s,
        &smb_core::messages::build(&Header::request(Cmd::NEGOTIATE, 0, 0, 0), &req),
    );
    recv(s)?;
    let mut auth = ClientAuth::new(Credentials::password(user, "", password));
    let mut token = auth.first_token().unwrap();
    let mut session_id = 0;
    for id in 1.. {
        let mut h = Header::request(Cmd::SESSION_SETUP, id, session_id, 0);
        h.credits = 8;
        let req = SessionSetupRequest {
            security_mode: 1,
            security_buffer: token.clone(),
            ..Default::default()
        };
        send(s, &smb_core::messages::build(&h, &req));
        let resp = recv(s)?;
        let h = Header::parse(&resp).unwrap();
        if h.status != smb_core::header::NtStatus::MORE_PROCESSING_REQUIRED {
            return Some(h.status);
        }
        session_id = h.session_id;
        match auth
            .step(&SessionSetupResponse::read(&resp).unwrap().security_buffer)
            .unwrap()
        {
            ClientStep::Continue(t) => token = t,
            ClientStep::Done => unreachable!(),
        }
    }
    None
}

#[test]
fn failed_logons_lock_out_that_user_from_that_address() {
    let srv = start(&["--max-failed-logons", "2", "--user", "bob:Secr3t!"]);
    let mut s = connect(srv.addr);
    assert_eq!(
        login(&mut s, "alice", "Passw0rd!"),
        Some(smb_core::header::NtStatus::SUCCESS)
    );
    let mut s = connect(srv.addr);
    assert_eq!(
        login(&mut s, "alice", "wrong"),
        Some(smb_core::header::NtStatus::LOGON_FAILURE)
    );
    let mut s = connect(srv.addr);
    // The second failure is answered, then the connection is closed...
    assert_eq!(
        login(&mut s, "alice", "wrong"),
        Some(smb_core::header::NtStatus::LOGON_FAILURE)
    );
    assert!(recv(&mut s).is_none());
    // ...and alice is refused from this address, even with the right password (the answer
    // is never sent, so it does not confirm the guess)...
    let mut s = connect(srv.addr);
    assert_eq!(login(&mut s, "alice", "Passw0rd!"), None);
    // ...while another user of the same address is still served (issue 12: a local process
    // must not lock every client of 127.0.0.1 out).
    let mut s = connect(srv.addr);
    assert_eq!(
        login(&mut s, "bob", "Secr3t!"),
        Some(smb_core::header::NtStatus::SUCCESS)
    );
}

#[test]
fn per_address_limit_evicts_unauthenticated_connections_first() {
    let srv = start(&["--max-connections-per-address", "2"]);
    let req = NegotiateRequest {
        security_mode: 1,
        dialects: vec![Dialect::SMB30],
        ..Default::default()
    };
    let neg = smb_core::messages::build(&Header::request(Cmd::NEGOTIATE, 0, 0, 0), &req);
    let mut a = connect(srv.addr);
    let mut b = connect(srv.addr);
    assert_eq!(negotiate(&mut a).dialect_revision, Dialect::SMB30);
    assert_eq!(negotiate(&mut b).dialect_revision, Dialect::SMB30);
    // A third connection evicts the oldest unauthenticated one (a) and is served.
    let mut c = connect(srv.addr);
    send(&mut c, &neg);
    assert!(recv(&mut c).is_some(), "third connection served");
    assert!(
        recv(&mut a).is_none(),
        "oldest unauthenticated connection evicted"
    );
    drop((b, c));
    // Two authenticated connections are never evicted: a third is refused.
    let mut ok = Vec::new();
    for _ in 0..2 {
        let mut s = connect(srv.addr);
        assert_eq!(
            login(&mut s, "alice", "Passw0rd!"),
            Some(smb_core::header::NtStatus::SUCCESS)
        );
        ok.push(s);
    }
    let mut d = connect(srv.addr);
    send(&mut d, &neg);
    assert!(recv(&mut d).is_none(), "refused: both slots authenticated");
    drop(ok.pop());
    // A slot frees up once a connection ends.
    let mut served = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        let mut e = connect(srv.addr);
        send(&mut e, &neg);
        if let Some(r) = recv(&mut e) {
            served = Some(r);
            break;
        }
    }
    assert!(served.is_some());
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut srv = start(&[]);
    let _idle = connect(srv.addr);
    let status = Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = std::time::Instant::now();
    loop {
        if let Some(code) = srv.child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
