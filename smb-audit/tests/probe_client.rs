//! `smb-audit probe-client` against real clients with their signing setting on and off: our
//! smb-client, smbclient, smbprotocol and impacket. Each run starts a probe that reports one
//! connection, points the client at it, and reads the probe's JSON line.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{
    require_tool, run_python, run_with_timeout, scratch_dir, show, spawn_listening, workspace_bin,
    ScratchDir,
};

const USER: &str = "alice";
const PASSWORD: &str = "Passw0rd!";
const TIMEOUT: Duration = Duration::from_secs(60);

/// Starts a probe, runs `client(addr)`, and returns the probe's record of that connection.
fn probe(name: &str, offer: &str, client: impl FnOnce(std::net::SocketAddr)) -> Value {
    let dir: ScratchDir = scratch_dir(name);
    let json: PathBuf = dir.join("clients.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smb-audit"));
    cmd.args([
        "probe-client",
        "--listen",
        "127.0.0.1:0",
        "--offer",
        offer,
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "--count",
        "1",
        "--idle",
        "3",
        "--json",
    ])
    .arg(&json);
    let (mut guard, addr) = spawn_listening(&mut cmd, Duration::from_secs(20));
    client(addr);
    let deadline = Instant::now() + TIMEOUT;
    while guard.child().try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "the probe did not report");
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&json).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
    lines.into_iter().next().unwrap()
}

/// A client whose setting decides: SECURE with signing on, VULNERABLE off.
fn check(r: &Value, signing_on: bool) {
    assert_eq!(r["signing_required"], signing_on, "{r}");
    assert_eq!(r["user"], USER, "{r}");
    assert_eq!(r["ntlm_version"], "NTLMv2", "{r}");
    assert_eq!(r["smb1"], false, "{r}");
    assert_eq!(
        r["verdict"],
        if signing_on { "SECURE" } else { "VULNERABLE" },
        "{r}"
    );
    assert_eq!(r["accepts_unsigned"], !signing_on, "{r}");
}

/// A client that says it requires signing but goes on after an unsigned response (it checks
/// a signature only when the SIGNED flag is set): VULNERABLE either way, and says why.
fn check_lax(r: &Value, signing_on: bool) {
    assert_eq!(r["signing_required"], signing_on, "{r}");
    assert_eq!(r["user"], USER, "{r}");
    assert_eq!(r["ntlm_version"], "NTLMv2", "{r}");
    assert_eq!(r["accepts_unsigned"], true, "{r}");
    assert_eq!(r["verdict"], "VULNERABLE", "{r}");
    let reasons = r["reasons"].to_string();
    assert!(
        reasons.contains("accepted an unsigned response after authentication"),
        "{r}"
    );
    assert_eq!(
        reasons.contains("SMB Client signing is NOT enforced"),
        !signing_on,
        "{r}"
    );
}

#[test]
fn our_client_follows_its_setting() {
    for on in [true, false] {
        let r = probe("probe-ours", "enabled", |addr| {
            let out = run_with_timeout(
                Command::new(workspace_bin("smb-client")).args([
                    &format!("//{addr}/data"),
                    "-U",
                    &format!("{USER}%{PASSWORD}"),
                    "--require-signing",
                    &on.to_string(),
                    "-c",
                    "ls",
                ]),
                TIMEOUT,
            );
            // With signing required, the stripped response is rejected: the command fails.
            assert_eq!(out.status.success(), !on, "{}", show(&out));
        });
        check(&r, on);
        assert_eq!(r["dialects"].as_array().unwrap().len(), 5, "{r}");
    }
}

#[test]
fn smbclient_follows_its_setting() {
    let smbclient = require_tool("smbclient");
    for on in [true, false] {
        let r = probe("probe-smbclient", "enabled", |addr| {
            let setting = if on { "required" } else { "disabled" };
            let out = run_with_timeout(
                Command::new(&smbclient).args([
                    "//127.0.0.1/data",
                    "-p",
                    &addr.port().to_string(),
                    "-U",
                    &format!("{USER}%{PASSWORD}"),
                    &format!("--option=client signing={setting}"),
                    "-c",
                    "ls",
                ]),
                TIMEOUT,
            );
            assert_eq!(out.status.success(), !on, "{}", show(&out));
        });
        check(&r, on);
    }
}

const SMBPROTOCOL: &str = r#"
import sys, smbclient
host, port, user, password, on = sys.argv[1:6]
smbclient.register_session(host, username=user, password=password, port=int(port),
                           require_signing=(on == "true"))
try:
    print(smbclient.listdir("\\\\%s\\data" % host, port=int(port)))
except Exception as e:
    print("failed:", e)
"#;

#[test]
fn smbprotocol_follows_its_setting() {
    for on in [true, false] {
        let r = probe("probe-smbprotocol", "enabled", |addr| {
            let out = run_python(
                SMBPROTOCOL,
                &[
                    "127.0.0.1",
                    &addr.port().to_string(),
                    USER,
                    PASSWORD,
                    &on.to_string(),
                ],
                TIMEOUT,
            );
            assert!(out.status.success(), "{}", show(&out));
        });
        if on {
            // smbprotocol 1.17 verifies a response only when it carries SMB2_FLAGS_SIGNED.
            check_lax(&r, on);
        } else {
            // Without signing it does not sign its 3.1.1 TREE_CONNECT either, which the
            // server refuses (MS-SMB2 3.3.5.7): no later response to strip.
            assert_eq!(r["signing_required"], false, "{r}");
            assert_eq!(r["accepts_unsigned"], Value::Null, "{r}");
            assert_eq!(r["verdict"], "VULNERABLE", "{r}");
        }
        assert_eq!(r["smb1"], false, "{r}");
    }
}

/// impacket has no switch for RequireMessageSigning before NEGOTIATE: it is set by wrapping
/// negotiateSession.
const IMPACKET: &str = r#"
import sys
from impacket import smb3
from impacket.smbconnection import SMBConnection
host, port, user, password, on = sys.argv[1:6]
original = smb3.SMB3.negotiateSession
def negotiate(self, *a, **k):
    self.RequireMessageSigning = (on == "true")
    return original(self, *a, **k)
smb3.SMB3.negotiateSession = negotiate
conn = SMBConnection(host, host, sess_port=int(port))
conn.login(user, password)
try:
    print([f.get_longname() for f in conn.listPath("data", "*")])
except Exception as e:
    print("failed:", e)
"#;

#[test]
fn impacket_follows_its_setting() {
    for on in [true, false] {
        let r = probe("probe-impacket", "enabled", |addr| {
            let out = run_python(
                IMPACKET,
                &[
                    "127.0.0.1",
                    &addr.port().to_string(),
                    USER,
                    PASSWORD,
                    &on.to_string(),
                ],
                TIMEOUT,
            );
            assert!(out.status.success(), "{}", show(&out));
        });
        // impacket 0.13.1 does not check response signatures at all, and opens with a
        // multi-protocol SMB1 NEGOTIATE offering NT LM 0.12.
        check_lax(&r, on);
        assert_eq!(r["smb1"], true, "{r}");
        assert_eq!(r["smb1_dialects"], serde_json::json!(["NT LM 0.12"]), "{r}");
    }
}

#[test]
fn a_guest_offer_shows_whether_the_client_takes_it() {
    // Our client refuses a guest session when it requires signing, takes it otherwise.
    for on in [true, false] {
        let r = probe("probe-guest", "guest", |addr| {
            let _ = run_with_timeout(
                Command::new(workspace_bin("smb-client")).args([
                    &format!("//{addr}/data"),
                    "-U",
                    "nobody%wrong",
                    "--require-signing",
                    &on.to_string(),
                    "-c",
                    "ls",
                ]),
                TIMEOUT,
            );
        });
        assert_eq!(r["accepts_guest"], !on, "{r}");
        assert_eq!(r["user"], "nobody", "{r}");
        assert_eq!(
            r["verdict"],
            if on { "SECURE" } else { "VULNERABLE" },
            "{r}"
        );
    }
}
