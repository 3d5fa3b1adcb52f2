//! `smb-audit scan` against real servers the test starts: ours (signing required and not),
//! a "liar" that advertises signing required but executes unsigned requests, Samba (mandatory
//! and auto), and broken peers (garbage, a close mid-negotiate, a silent server). Verdicts are
//! checked against each server's configuration and against nmap's smb2-security-mode.
//!
//! `smb-server` comes from `target/debug` (`cargo build --workspace --bins`; `cargo xtask test`
//! does it).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use tests::{
    run_with_timeout, scratch_dir, show, spawn_listening, workspace_bin, ChildGuard, SambaOptions,
    SambaServer, ScratchDir, ServerSigning,
};

const USER: &str = "alice";
const PASSWORD: &str = "Passw0rd!";
const TIMEOUT: Duration = Duration::from_secs(120);

struct Server {
    _guard: ChildGuard,
    addr: SocketAddr,
    _root: ScratchDir,
}

fn start_server(name: &str, extra: &[&str]) -> Server {
    let root = scratch_dir(name);
    let share = root.join("share");
    fs::create_dir_all(&share).unwrap();
    let mut cmd = Command::new(workspace_bin("smb-server"));
    cmd.arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--share")
        .arg(format!("data={}", share.display()))
        .arg("--user")
        .arg(format!("{USER}:{PASSWORD}"))
        .args(extra);
    let (guard, addr) = spawn_listening(&mut cmd, Duration::from_secs(20));
    Server {
        _guard: guard,
        addr,
        _root: root,
    }
}

fn audit(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smb-audit")).args(args),
        TIMEOUT,
    )
}

/// Runs a scan with `--json -` and returns the exit code and one object per host.
fn scan_json(args: &[&str]) -> (Option<i32>, Vec<Value>, Output) {
    let mut all = vec!["scan", "--json", "-"];
    all.extend_from_slice(args);
    let out = audit(&all);
    let hosts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", show(&out))))
        .collect();
    (out.status.code(), hosts, out)
}

fn one(args: &[&str]) -> (Option<i32>, Value, Output) {
    let (code, mut hosts, out) = scan_json(args);
    assert_eq!(hosts.len(), 1, "{}", show(&out));
    (code, hosts.remove(0), out)
}

fn dialect(h: &Value, d: &str) -> (bool, Value) {
    let x = &h["dialects"][d];
    (x["accepted"] == true, x["signing_required"].clone())
}

/// nmap's smb2-security-mode line for a server ("enabled and required" or "enabled but not
/// required"). A missing nmap is a failure naming the fix.
fn nmap_security_mode(addr: SocketAddr) -> String {
    let nmap = which("nmap").unwrap_or_else(|| {
        panic!("`nmap` is not installed: apt-get install -y nmap (cargo xtask peers installs it)")
    });
    let out = run_with_timeout(
        Command::new(nmap).args([
            "-Pn",
            "-n",
            "-p",
            &addr.port().to_string(),
            "--script",
            "smb2-security-mode",
            "--script-args",
            &format!("smbport={}", addr.port()),
            &addr.ip().to_string(),
        ]),
        TIMEOUT,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.contains("signing"))
        .unwrap_or_else(|| panic!("nmap printed no signing line:\n{}", show(&out)))
        .trim()
        .to_string()
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn our_server_required_is_secure_and_enforced() {
    let s = start_server("audit-scan-required", &[]);
    let target = s.addr.to_string();
    let (code, h, out) = one(&[&target]);
    assert_eq!(code, Some(0), "{}", show(&out));
    assert_eq!(h["verdict"], "SECURE");
    assert_eq!(h["signing_required"], true);
    for d in ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"] {
        assert_eq!(dialect(&h, d), (true, Value::Bool(true)), "{d}: {h}");
    }
    assert_eq!(
        h["signing_algorithms"]["accepted"],
        serde_json::json!(["aes-gmac", "aes-cmac", "hmac-sha256"])
    );
    assert_eq!(h["signing_algorithms"]["preferred"], "aes-gmac");
    assert_eq!(h["smb1"], false);
    assert_eq!(h["guest"], false);
    assert_eq!(h["enforced"], Value::Null);
    assert_eq!(
        h["reasons"][0],
        "SMB Server signing is enforced (RequireSecuritySignature = 1)"
    );

    let (code, h, out) = one(&[&target, "-U", &format!("{USER}%{PASSWORD}")]);
    assert_eq!(code, Some(0), "{}", show(&out));
    assert_eq!(h["enforced"], true, "{h}");
    assert_eq!(h["enforcement"]["dialect"], "2.0.2");
    assert!(h["enforcement"]["unsigned"]
        .as_str()
        .unwrap()
        .starts_with("refused"));
    assert!(h["enforcement"]["bad_signature"]
        .as_str()
        .unwrap()
        .starts_with("refused"));
    let nmap = nmap_security_mode(s.addr);
    assert!(nmap.contains("enabled and required"), "nmap says {nmap:?}");
}

#[test]
fn our_server_not_required_is_vulnerable_and_listed_for_relay() {
    let s = start_server(
        "audit-scan-lax",
        &[
            "--require-signing",
            "false",
            "--guest",
            "true",
            "--dialects",
            "2.1,3.0,3.1.1",
            "--signing-algorithms",
            "aes-cmac,hmac-sha256",
        ],
    );
    let dir = scratch_dir("audit-scan-lax-out");
    let relay = dir.join("relay.txt");
    let csv = dir.join("hosts.csv");
    let target = s.addr.to_string();
    let (code, h, out) = one(&[
        &target,
        "-U",
        &format!("{USER}%{PASSWORD}"),
        "--relay-list",
        relay.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{}", show(&out));
    assert_eq!(h["verdict"], "VULNERABLE");
    assert_eq!(h["signing_required"], false);
    assert!(!dialect(&h, "2.0.2").0);
    assert!(!dialect(&h, "3.0.2").0);
    for d in ["2.1", "3.0", "3.1.1"] {
        assert_eq!(dialect(&h, d), (true, Value::Bool(false)), "{d}: {h}");
    }
    assert_eq!(
        h["signing_algorithms"]["accepted"],
        serde_json::json!(["aes-cmac", "hmac-sha256"])
    );
    assert_eq!(h["signing_algorithms"]["preferred"], "aes-cmac");
    assert_eq!(h["guest"], true);
    assert_eq!(h["enforced"], false);
    assert_eq!(h["enforcement"]["dialect"], "2.1");
    assert!(h["enforcement"]["unsigned"]
        .as_str()
        .unwrap()
        .starts_with("executed"));
    let reasons = h["reasons"].to_string();
    assert!(
        reasons.contains("SMB Server signing is NOT enforced on 2.1, 3.0, 3.1.1"),
        "{reasons}"
    );
    assert!(reasons.contains("Microsoft network server: Digitally sign communications (always)"));
    assert_eq!(fs::read_to_string(&relay).unwrap(), format!("{target}\n"));
    let nmap = nmap_security_mode(s.addr);
    assert!(
        nmap.contains("enabled but not required"),
        "nmap says {nmap:?}"
    );
    let csv_text = fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = csv_text.lines().collect();
    assert_eq!(rows.len(), 2, "{csv_text}");
    assert!(rows[0].starts_with("target,address,reachable,smb1,dialect_2.0.2"));
    assert!(
        rows[1].starts_with(&format!(
            "{target},{target},true,false,refused,enabled,enabled,refused,enabled"
        )),
        "{}",
        rows[1]
    );
}

/// A proxy in front of our server (signing not required) that rewrites every NEGOTIATE
/// response's SecurityMode to "signing required": it advertises required, and executes
/// unsigned requests. Dialects 3.x only: 3.0 has no preauth hash, so the rewrite goes
/// unnoticed by the logon, and the final SESSION_SETUP response is signed.
fn start_liar(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            thread::spawn(move || loop {
                let mut prefix = [0u8; 4];
                if s_read.read_exact(&mut prefix).is_err() {
                    let _ = c_write.shutdown(std::net::Shutdown::Write);
                    return;
                }
                let len = u32::from_be_bytes(prefix) as usize & 0xFF_FFFF;
                let mut msg = vec![0u8; len];
                if s_read.read_exact(&mut msg).is_err() {
                    return;
                }
                // SMB2 header: command at 12 (NEGOTIATE = 0); SecurityMode at 64 + 2.
                if msg.len() > 68 && msg.starts_with(b"\xfeSMB") && msg[12] == 0 && msg[13] == 0 {
                    msg[66] |= 0x03;
                }
                if c_write
                    .write_all(&prefix)
                    .and_then(|_| c_write.write_all(&msg))
                    .is_err()
                {
                    return;
                }
            });
        }
    });
    addr
}

#[test]
fn a_server_that_advertises_required_but_executes_unsigned_requests_is_vulnerable() {
    let s = start_server(
        "audit-scan-liar",
        &[
            "--require-signing",
            "false",
            "--dialects",
            "3.0,3.0.2,3.1.1",
        ],
    );
    let liar = start_liar(s.addr).to_string();
    // Without credentials the liar looks secure: that is what advertising reads.
    let (code, h, out) = one(&[&liar]);
    assert_eq!(code, Some(0), "{}", show(&out));
    assert_eq!(h["signing_required"], true);
    assert_eq!(h["verdict"], "SECURE");
    // With them, the unsigned request is executed.
    let (code, h, out) = one(&[&liar, "-U", &format!("{USER}%{PASSWORD}")]);
    assert_eq!(code, Some(1), "{}", show(&out));
    assert_eq!(h["signing_required"], true, "{h}");
    assert_eq!(h["enforced"], false, "{h}");
    assert_eq!(h["enforcement"]["dialect"], "3.0");
    assert!(
        h["enforcement"]["unsigned"]
            .as_str()
            .unwrap()
            .starts_with("executed"),
        "{h}"
    );
    assert_eq!(h["verdict"], "VULNERABLE");
    assert!(h["reasons"][0]
        .as_str()
        .unwrap()
        .contains("an unsigned request was executed after logon although every dialect advertises signing required"));
}

fn samba_case(signing: ServerSigning, min_protocol: &'static str) {
    let samba = SambaServer::start(SambaOptions {
        signing,
        min_protocol,
        ..SambaOptions::default()
    });
    let target = samba.addr().to_string();
    let creds = format!("{}%{}", samba.user(), samba.password());
    let (code, h, out) = one(&[&target, "-U", &creds]);
    let mandatory = signing == ServerSigning::Mandatory;
    for d in ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"] {
        assert_eq!(dialect(&h, d), (true, Value::Bool(mandatory)), "{d}: {h}");
    }
    assert_eq!(
        h["signing_algorithms"]["accepted"],
        serde_json::json!(["aes-gmac", "aes-cmac", "hmac-sha256"]),
        "{h}"
    );
    assert_eq!(h["enforced"], mandatory, "{h}");
    assert_eq!(h["smb1"], min_protocol == "NT1", "{h}");
    let secure = mandatory && min_protocol != "NT1";
    assert_eq!(
        h["verdict"],
        if secure { "SECURE" } else { "VULNERABLE" },
        "{h}"
    );
    assert_eq!(code, Some(if secure { 0 } else { 1 }), "{}", show(&out));
    let nmap = nmap_security_mode(samba.addr());
    assert_eq!(
        nmap.contains("enabled and required"),
        mandatory,
        "nmap says {nmap:?}, we say {h}"
    );
    // Without credentials: the same posture, enforcement not checked.
    let (_, h, out) = one(&[&target]);
    assert_eq!(h["signing_required"], mandatory, "{}", show(&out));
    assert_eq!(h["enforced"], Value::Null);
}

#[test]
fn samba_mandatory_is_secure_and_enforced() {
    samba_case(ServerSigning::Mandatory, "SMB2_02");
}

#[test]
fn samba_auto_with_smb1_is_vulnerable() {
    samba_case(ServerSigning::Auto, "NT1");
}

/// A listener that does `behave` with every connection, in a thread.
fn peer(behave: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            thread::spawn(move || behave(s));
        }
    });
    addr
}

#[test]
fn bad_input_gives_per_host_errors_and_the_scan_goes_on() {
    let good = start_server("audit-scan-good", &[]);
    let garbage = peer(|mut s| {
        let mut b = [0u8; 512];
        let _ = s.read(&mut b);
        let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
    });
    let closer = peer(|mut s| {
        let mut b = [0u8; 8];
        let _ = s.read(&mut b);
        // Closes mid-NEGOTIATE.
    });
    let silent = peer(|mut s| {
        let mut b = [0u8; 512];
        while s.read(&mut b).is_ok_and(|n| n > 0) {}
    });
    // A port nothing listens on.
    let unused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (g, c, si, u, ok) = (
        garbage.to_string(),
        closer.to_string(),
        silent.to_string(),
        unused.to_string(),
        good.addr.to_string(),
    );
    let (code, hosts, out) = scan_json(&[
        "--timeout",
        "2",
        "not a target!",
        "192.0.2.7",
        &g,
        &c,
        &si,
        &u,
        &ok,
    ]);
    assert_eq!(code, Some(2), "errors only: {}", show(&out));
    assert_eq!(hosts.len(), 7, "{}", show(&out));
    let by = |t: &str| {
        hosts
            .iter()
            .find(|h| h["target"] == t)
            .unwrap_or_else(|| panic!("no {t} in {hosts:?}"))
            .clone()
    };
    let err = |t: &str| by(t)["errors"].to_string();
    assert!(err("not a target!").contains("not a host name"));
    assert!(err("192.0.2.7").contains("not a loopback address"));
    assert!(err(&g).contains("not an SMB"), "{}", err(&g));
    assert!(err(&c).contains("no SMB dialect accepted"), "{}", err(&c));
    assert!(err(&si).contains("no answer within"), "{}", err(&si));
    assert!(err(&u).contains("cannot connect"), "{}", err(&u));
    for t in ["not a target!", "192.0.2.7", &g, &c, &si, &u] {
        assert_eq!(by(t)["verdict"], "ERROR", "{t}");
    }
    assert_eq!(by(&ok)["verdict"], "SECURE");
}

#[test]
fn ranges_and_files_expand_and_the_table_streams() {
    let s = start_server("audit-scan-range", &[]);
    let dir = scratch_dir("audit-scan-file");
    let list = dir.join("targets.txt");
    let port = s.addr.port();
    fs::write(&list, format!("# fleet\n127.0.0.1:{port}\n")).unwrap();
    let out = audit(&[
        "scan",
        "-p",
        &port.to_string(),
        "127.0.0.1-2",
        &format!("@{}", list.display()),
        "--timeout",
        "3",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    // 127.0.0.1 and 127.0.0.1:PORT are the same host; 127.0.0.2 has no server.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("127.")).count(),
        2,
        "{}",
        show(&out)
    );
    assert!(text.contains("SECURE"), "{text}");
    assert!(text.contains("ERROR"), "{text}");
    // Not a terminal: no progress bar.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ctrl_c_prints_what_is_done() {
    let good = start_server("audit-scan-ctrlc", &[]);
    let silent = peer(|mut s| {
        let mut b = [0u8; 512];
        while s.read(&mut b).is_ok_and(|n| n > 0) {}
    });
    let child = Command::new(env!("CARGO_BIN_EXE_smb-audit"))
        .args(["scan", "--timeout", "60", "--json", "-"])
        .arg(good.addr.to_string())
        .arg(silent.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The good host answers within a second; the silent one holds the scan.
    thread::sleep(Duration::from_secs(3));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains(&format!(r#""target":"{}""#, good.addr)),
        "{stdout}"
    );
    assert!(!stdout.contains(&silent.to_string()), "{stdout}");
    assert!(
        stderr.contains("interrupted: 1 hosts scanned, 1 not scanned"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2));
}
