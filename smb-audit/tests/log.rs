//! `smb-audit log` over the audit log our server writes while real clients connect: signed,
//! unsigned, guest and SMB1 attempts, and our client's own log of a server that does not
//! require signing.

use std::fs;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{require_tool, run_with_timeout, scratch_dir, show, spawn_listening, workspace_bin};

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn the_servers_log_answers_the_rollout_question() {
    let root = scratch_dir("log-server");
    let share = root.join("share");
    fs::create_dir_all(&share).unwrap();
    let server_log = root.join("server.jsonl");
    let client_log = root.join("client.jsonl");
    let mut cmd = Command::new(workspace_bin("smb-server"));
    cmd.args(["--listen", "127.0.0.1:0", "--user", "alice:Passw0rd!"])
        .arg("--share")
        .arg(format!("data={}", share.display()))
        .args(["--require-signing", "false", "--guest", "true"])
        .arg("--audit-log")
        .arg(&server_log);
    let (_guard, addr) = spawn_listening(&mut cmd, Duration::from_secs(20));
    let ours = |user: &str, signing: &str| {
        let out = run_with_timeout(
            Command::new(workspace_bin("smb-client"))
                .arg(format!("//{addr}/data"))
                .args(["-U", user, "--require-signing", signing, "-c", "ls"])
                .arg("--audit-log")
                .arg(&client_log),
            TIMEOUT,
        );
        assert!(out.status.success(), "{}", show(&out));
    };
    ours("alice%Passw0rd!", "true");
    ours("alice%Passw0rd!", "false");
    ours("nobody%x", "false");
    // smbclient limited to SMB1: an SMB1 attempt our server refuses.
    let _ = run_with_timeout(
        Command::new(require_tool("smbclient")).args([
            "//127.0.0.1/data",
            "-p",
            &addr.port().to_string(),
            "-U",
            "alice%Passw0rd!",
            "--option=client max protocol=NT1",
            "--option=client min protocol=NT1",
            "-c",
            "ls",
        ]),
        TIMEOUT,
    );
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smb-audit"))
            .args(["log", "--json"])
            .arg(&server_log)
            .arg(&client_log),
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let client = records
        .iter()
        .find(|r| r["role"] == "client" && r["host"] == "127.0.0.1")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(client["sessions"], 3, "{client}");
    assert_eq!(client["signed_sessions"], 1, "{client}");
    assert_eq!(client["unsigned_sessions"], 2, "{client}");
    assert_eq!(client["guest_sessions"], 1, "{client}");
    assert_eq!(client["smb1_attempts"], 1, "{client}");
    assert_eq!(client["would_be_refused"], true, "{client}");
    assert!(client["last_unsigned"].is_string(), "{client}");
    assert!(client["users"].to_string().contains("alice"), "{client}");
    // Our client's log names the server that does not require signing.
    let server = records
        .iter()
        .find(|r| r["role"] == "server")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert!(
        server["not_requiring_signing"].as_u64().unwrap() >= 3,
        "{server}"
    );

    // The default output is one line per host.
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smb-audit"))
            .arg("log")
            .arg(&server_log),
        TIMEOUT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "client 127.0.0.1: 3 sessions (2 unsigned, 1 guest/anonymous), 1 SMB1 attempts"
        ),
        "{text}"
    );
    assert!(text.contains("WOULD BE REFUSED"), "{text}");

    // Nothing readable: exit 2.
    let junk = root.join("junk.jsonl");
    fs::write(&junk, "not a log\n").unwrap();
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smb-audit"))
            .arg("log")
            .arg(&junk),
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}
