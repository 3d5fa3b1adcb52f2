//! Our two binaries against each other over loopback: `smb-server` on 127.0.0.1:0 with a
//! scratch directory, `smb-client` running smbclient-style scripts against it.
//!
//! The binaries come from `target/debug` (or `$SMB_BIN_DIR`): `cargo xtask test` builds the
//! workspace first; by hand, run `cargo build --workspace --bins`. Every server is killed by
//! PID when its guard drops, pass or fail.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use tests::{
    run_with_timeout, scratch_dir, show, spawn_listening, test_bytes, workspace_bin, ChildGuard,
    ScratchDir,
};

const USER: &str = "alice";
const PASSWORD: &str = "Passw0rd!";
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `smb-server` serving one directory as `data`.
struct Server {
    _guard: ChildGuard,
    addr: SocketAddr,
    root: ScratchDir,
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
        root,
    }
}

impl Server {
    fn share(&self) -> std::path::PathBuf {
        self.root.join("share")
    }

    fn service(&self) -> String {
        format!("//{}/data", self.addr)
    }
}

fn client(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(workspace_bin("smb-client")).args(args),
        TIMEOUT,
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn session_line(o: &Output) -> String {
    stderr(o)
        .lines()
        .find(|l| l.starts_with("session: "))
        .unwrap_or_else(|| panic!("no session line:\n{}", show(o)))
        .to_string()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn put_get_ls_mkdir_rename_rm_for_every_dialect_and_algorithm() {
    let server = start_server("loopback-ops", &[]);
    let local = scratch_dir("loopback-ops-local");
    // Several READ/WRITE round trips on every dialect (2.0.2 moves 64 KiB at a time).
    let data = test_bytes(1_300_000, 42);
    let src = local.join("src.bin");
    fs::write(&src, &data).unwrap();
    let cells: &[(&str, Option<&str>, &str)] = &[
        ("2.0.2", None, "hmac-sha256"),
        ("2.1", None, "hmac-sha256"),
        ("3.0", None, "aes-cmac"),
        ("3.0.2", None, "aes-cmac"),
        ("3.1.1", Some("aes-gmac"), "aes-gmac"),
        ("3.1.1", Some("aes-cmac"), "aes-cmac"),
        ("3.1.1", Some("hmac-sha256"), "hmac-sha256"),
    ];
    for (i, (dialect, alg, expect_alg)) in cells.iter().enumerate() {
        let back = local.join(format!("back{i}.bin"));
        let script = format!(
            "mkdir d{i}; put {src} d{i}/f.bin; ls d{i}/*; rename d{i}/f.bin d{i}/g.bin; \
             get d{i}/g.bin {back}; ls; rm d{i}/g.bin; rmdir d{i}",
            src = p(&src),
            back = p(&back),
        );
        let userpass = format!("{USER}%{PASSWORD}");
        let mut args = vec![
            server.service(),
            "-U".into(),
            userpass,
            "--dialect".into(),
            dialect.to_string(),
        ];
        if let Some(a) = alg {
            args.extend(["--signing-algorithm".into(), a.to_string()]);
        }
        args.extend(["-c".into(), script]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = client(&argv);
        let label = format!("{dialect} {alg:?}");
        assert!(out.status.success(), "{label}:\n{}", show(&out));
        assert_eq!(
            session_line(&out),
            format!("session: dialect={dialect} signing={expect_alg} signed=true guest=false"),
            "{label}"
        );
        assert_eq!(
            fs::read(&back).unwrap(),
            data,
            "{label}: get returns what put wrote"
        );
        let listing = stdout(&out);
        assert!(
            listing.contains("f.bin"),
            "{label}: ls d/* shows the file:\n{listing}"
        );
        assert!(
            listing
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("d{i} ")) && l.contains(" D ")),
            "{label}: ls shows the directory with D:\n{listing}"
        );
        assert!(
            !server.share().join(format!("d{i}")).exists(),
            "{label}: rm and rmdir took effect"
        );
    }
}

#[test]
fn session_is_signed_when_either_side_requires() {
    for server_requires in [false, true] {
        let server = start_server(
            "loopback-policy",
            &[
                "--require-signing",
                if server_requires { "true" } else { "false" },
            ],
        );
        for client_requires in [false, true] {
            for dialect in ["2.1", "3.1.1"] {
                let userpass = format!("{USER}%{PASSWORD}");
                let out = client(&[
                    &server.service(),
                    "-U",
                    &userpass,
                    "--dialect",
                    dialect,
                    "--require-signing",
                    if client_requires { "true" } else { "false" },
                    "-c",
                    "ls",
                ]);
                assert!(out.status.success(), "{}", show(&out));
                let signed = server_requires || client_requires;
                assert!(
                    session_line(&out).contains(&format!("signed={signed} ")),
                    "server_requires={server_requires} client_requires={client_requires} {dialect}: {}",
                    session_line(&out)
                );
            }
        }
    }
}

#[test]
fn failures_print_the_nt_status_and_exit_non_zero() {
    let server = start_server("loopback-fail", &[]);
    let wrong = format!("{USER}%wrong");
    let out = client(&[&server.service(), "-U", &wrong, "-c", "ls"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("NT_STATUS_LOGON_FAILURE"),
        "{}",
        show(&out)
    );

    let userpass = format!("{USER}%{PASSWORD}");
    let local = scratch_dir("loopback-fail-local");
    let out = client(&[
        &server.service(),
        "-U",
        &userpass,
        "-c",
        &format!("get no-such-file {}", p(&local.join("x"))),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("NT_STATUS_OBJECT_NAME_NOT_FOUND"),
        "{}",
        show(&out)
    );

    let bad_share = format!("//{}/nosuch", server.addr);
    let out = client(&[&bad_share, "-U", &userpass, "-c", "ls"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("NT_STATUS_BAD_NETWORK_NAME"),
        "{}",
        show(&out)
    );
}

#[test]
fn refuses_non_loopback_targets_without_connecting() {
    // 192.0.2.1 is TEST-NET-1: the guard refuses it before any connection attempt.
    let out = client(&["//192.0.2.1:4455/data", "-U", "a%b", "-c", "ls"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a loopback address"),
        "{}",
        show(&out)
    );
    let out = run_with_timeout(
        Command::new(workspace_bin("smb-audit")).args(["scan", "192.0.2.1:4455"]),
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stdout(&out).contains("not a loopback address"),
        "{}",
        show(&out)
    );
}

#[test]
fn smb_audit_scan_reports_the_servers_signing_policy() {
    // `smb-client audit` became `smb-audit scan` (crate smb-audit, which has the full suite).
    let scan = |addr: SocketAddr| {
        run_with_timeout(
            Command::new(workspace_bin("smb-audit")).args([
                "scan",
                &addr.to_string(),
                "--json",
                "-",
            ]),
            TIMEOUT,
        )
    };
    let strict = start_server("loopback-audit-strict", &[]);
    let out = scan(strict.addr);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains(r#""signing_required":true"#), "{text}");
    assert!(text.contains(r#""verdict":"SECURE""#), "{text}");
    assert!(
        text.contains(r#""accepted":["aes-gmac","aes-cmac","hmac-sha256"]"#),
        "{text}"
    );

    let lax = start_server(
        "loopback-audit-lax",
        &[
            "--require-signing",
            "false",
            "--dialects",
            "2.1,3.1.1",
            "--signing-algorithms",
            "aes-cmac",
        ],
    );
    let out = scan(lax.addr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains(r#""signing_required":false"#), "{text}");
    assert!(
        text.contains(r#""2.1":{"accepted":true,"signing_enabled":true,"signing_required":false}"#),
        "{text}"
    );
    assert!(text.contains(r#""accepted":["aes-cmac"]"#), "{text}");

    // The client's own audit log still names a server that does not require signing.
    let log_dir = scratch_dir("loopback-audit-log");
    let log = log_dir.join("audit.jsonl");
    let out = client(&[
        &lax.service(),
        "-U",
        &format!("{USER}%{PASSWORD}"),
        "--require-signing",
        "false",
        "--audit-log",
        &p(&log),
        "-c",
        "ls",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let events = fs::read_to_string(&log).unwrap();
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"event\":\"server_does_not_require_signing\"")),
        "{events}"
    );
}
