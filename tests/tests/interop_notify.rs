//! CHANGE_NOTIFY and CANCEL with real peers (issue 9), on our server and on Samba with the same
//! settings (signing required), each on a capture:
//! - smbclient `notify \` waits on the share root while a second smbclient puts, mkdirs,
//!   renames and deletes; the watcher must print the same events from both servers;
//! - smbprotocol's FileSystemWatcher, with a second connection making the change, then a
//!   cancelled watcher (`tests/peers/change_notify.py`).
//!
//! On the wire: no unsigned message after authentication but the interim STATUS_PENDING
//! responses MS-SMB2 exempts (3.3.4.1.1), which are counted; every final CHANGE_NOTIFY
//! response, the CANCEL and the STATUS_CANCELLED answer are signed.

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tests::interop::{
    failure, run_cell, CellKey, Matrix, OurServer, OUR_PASSWORD, OUR_SHARE, OUR_USER, PEER_TIMEOUT,
    WIRESHARK_SIZED,
};
use tests::{
    python, require_tool, run_with_timeout, scratch_dir, workspace_root, Capture, CaptureFile,
    ChildGuard, SambaOptions, SambaServer,
};

/// Interim responses: async, STATUS_PENDING, unsigned by design.
const INTERIM: &str = "smb2.flags.async == 1 && smb2.nt_status == 0x00000103";
/// Final CHANGE_NOTIFY responses (async, not pending).
const FINAL_NOTIFY: &str = "smb2.cmd == 15 && smb2.flags.response == 1 \
    && smb2.flags.async == 1 && smb2.nt_status != 0x00000103";

/// Where a peer logs in.
struct Target {
    port: u16,
    user: String,
    password: String,
    share: String,
}

impl Target {
    fn ours(s: &OurServer) -> Target {
        Target {
            port: s.port(),
            user: OUR_USER.into(),
            password: OUR_PASSWORD.into(),
            share: OUR_SHARE.into(),
        }
    }

    fn samba(s: &SambaServer) -> Target {
        Target {
            port: s.port(),
            user: s.user().into(),
            password: s.password().into(),
            share: s.share_name().into(),
        }
    }

    fn smbclient(&self, commands: &str) -> Command {
        let mut cmd = Command::new(require_tool("smbclient"));
        cmd.arg(format!("//127.0.0.1/{}", self.share))
            .args(["-p", &self.port.to_string()])
            .args(["-U", &format!("{}%{}", self.user, self.password)])
            .args(["-m", "SMB3", "--option=client signing=required"])
            .args(["-c", commands]);
        cmd
    }
}

/// smbclient's `notify \` while a second smbclient changes the share. Returns the event lines
/// ("0001 hello.txt": action, name).
fn smbclient_notify(target: &Target) -> Result<BTreeSet<String>, String> {
    let dir = scratch_dir("notify-smbclient");
    let out_path = dir.join("notify.out");
    // stdbuf: smbclient's stdout is a file here, and is killed at the end (no flush).
    let mut cmd = Command::new(require_tool("stdbuf"));
    cmd.arg("-o0")
        .arg(require_tool("smbclient"))
        .args(target.smbclient(r"notify \").get_args());
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).map_err(|e| e.to_string())?)
        .stderr(Stdio::null());
    let watcher = ChildGuard::new(cmd.spawn().map_err(|e| format!("smbclient: {e}"))?);
    // Give it time to log in and send CHANGE_NOTIFY.
    thread::sleep(Duration::from_secs(2));
    let local = dir.join("hello.txt");
    fs::write(&local, b"hello\n").map_err(|e| e.to_string())?;
    let commands = format!(
        "put {} hello.txt; mkdir newdir; rename hello.txt bye.txt; rm bye.txt",
        local.display()
    );
    let out = run_with_timeout(&mut target.smbclient(&commands), PEER_TIMEOUT);
    if !out.status.success() {
        return Err(failure("smbclient (changes)", &out));
    }
    let expected = [
        "0001 hello.txt",
        "0001 newdir",
        "0004 hello.txt",
        "0005 bye.txt",
        "0002 bye.txt",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = fs::read_to_string(&out_path).unwrap_or_default();
        let events: BTreeSet<String> = text
            .lines()
            .filter(|l| l.len() > 5 && l[..4].bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|l| l.trim().to_string())
            .collect();
        if expected.iter().all(|e| events.contains(*e)) || Instant::now() > deadline {
            drop(watcher);
            if events.is_empty() {
                return Err(format!("smbclient notify printed no event:\n{text}"));
            }
            return Ok(events);
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// smbprotocol's watcher with a change from a second connection, then a cancelled watcher.
fn smbprotocol_notify(target: &Target, dialect: &str) -> Result<String, String> {
    let script = workspace_root()
        .join("tests")
        .join("peers")
        .join("change_notify.py");
    let name = format!("from-b-{dialect}.txt");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .args(["127.0.0.1", &target.port.to_string(), &target.user])
        .args([&target.password, &target.share, dialect, &name]);
    let out = run_with_timeout(&mut cmd, PEER_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(failure("smbprotocol", &out));
    }
    let event = format!("event: 1 {name}");
    if !stdout.lines().any(|l| l == event) {
        return Err(format!("no `{event}` in:\n{stdout}"));
    }
    if !stdout.lines().any(|l| l == "cancelled: True") {
        return Err(format!("the second watcher was not cancelled:\n{stdout}"));
    }
    Ok(format!("{event}; cancelled"))
}

/// The wire checks: nothing unsigned after auth but interim responses (counted), and the
/// final responses signed.
fn wire(capture: &CaptureFile, cancels: bool) -> Result<String, String> {
    let unsigned = capture.unsigned_after_auth();
    if unsigned > 0 {
        return Err(format!(
            "{unsigned} unsigned messages after auth:\n{}",
            capture.summary(tests::UNSIGNED_AFTER_AUTH)
        ));
    }
    let interim = capture.count(INTERIM);
    let finals = capture.count(FINAL_NOTIFY);
    let finals_signed = capture.count(&format!("{FINAL_NOTIFY} && smb2.flags.signature == 1"));
    if interim == 0 || finals == 0 || finals != finals_signed {
        return Err(format!(
            "interim {interim}, final CHANGE_NOTIFY {finals} ({finals_signed} signed)"
        ));
    }
    let mut text = format!(
        "0 unsigned after auth; {interim} interim STATUS_PENDING (exempt, unsigned); \
         {finals} final CHANGE_NOTIFY, all signed"
    );
    if cancels {
        let cancel = capture.count("smb2.cmd == 12 && smb2.flags.signature == 1");
        let cancelled = capture.count("smb2.nt_status == 0xc0000120 && smb2.flags.signature == 1");
        if cancel == 0 || cancelled == 0 {
            return Err(format!(
                "signed CANCEL {cancel}, signed STATUS_CANCELLED {cancelled}"
            ));
        }
        text.push_str(&format!(
            "; {cancel} signed CANCEL, {cancelled} signed STATUS_CANCELLED"
        ));
    }
    Ok(text)
}

#[test]
fn smbclient_notify_reads_our_server_as_samba() {
    let test = "smbclient_notify_reads_our_server_as_samba";
    let mut matrix = Matrix::new(
        "smbclient notify → our server (compared with Samba 4.17)",
        test,
    );
    let key = CellKey::new("3.1.1", "aes-gmac", "server required, client required");
    let ours = OurServer::start("interop-notify", &WIRESHARK_SIZED);
    let samba = SambaServer::start(SambaOptions::default());
    let mut kept = Vec::new();
    let run = run_cell(key, || {
        let cap = Capture::start(ours.port());
        let from_ours = smbclient_notify(&Target::ours(&ours));
        let cap = cap.stop();
        let from_ours = from_ours.map_err(|e| format!("our server: {e}\n{}", ours.log()))?;
        let on_wire = wire(&cap, false);
        kept.push(cap);
        let from_samba = smbclient_notify(&Target::samba(&samba))
            .map_err(|e| format!("Samba: {e}\n{}", samba.log()))?;
        // Samba also reports `0003 newdir`: after mkdir it stores the DOS attributes in an
        // extended attribute, which notifies FILE_NOTIFY_CHANGE_ATTRIBUTES (dosmode.c). Our
        // server keeps no such attributes; every other event must be the same.
        let samba_only: BTreeSet<String> = from_samba.difference(&from_ours).cloned().collect();
        let ours_only: Vec<&String> = from_ours.difference(&from_samba).collect();
        if !ours_only.is_empty() || samba_only.iter().any(|e| e != "0003 newdir") {
            return Err(format!("ours {from_ours:?}, Samba {from_samba:?}"));
        }
        let on_wire = on_wire?;
        Ok(format!(
            "as Samba: {}; {on_wire}",
            from_ours.into_iter().collect::<Vec<_>>().join(", ")
        ))
    });
    matrix.add(run);
    matrix.finish();
    drop(kept);
}

#[test]
fn smbprotocol_change_notify_and_cancel() {
    let test = "smbprotocol_change_notify_and_cancel";
    let mut ours_m = Matrix::new("smbprotocol change notify → our server", test);
    let mut samba_m = Matrix::new("smbprotocol change notify → Samba 4.17", test);
    let ours = OurServer::start("interop-notify-py", &WIRESHARK_SIZED);
    let samba = SambaServer::start(SambaOptions::default());
    let mut kept = Vec::new();
    for dialect in ["2.1", "3.0.2", "3.1.1"] {
        let algorithm = tests::interop::default_algorithm(dialect);
        let algorithm = if dialect == "3.1.1" {
            "aes-gmac"
        } else {
            algorithm
        };
        for (target, matrix) in [
            (Target::ours(&ours), &mut ours_m),
            (Target::samba(&samba), &mut samba_m),
        ] {
            let key = CellKey::new(dialect, algorithm, "server required, client required");
            let run = run_cell(key, || {
                let cap = Capture::start(target.port);
                let result = smbprotocol_notify(&target, dialect);
                let cap = cap.stop();
                let on_wire = wire(&cap, true);
                kept.push(cap);
                Ok(format!("{}; {}", result?, on_wire?))
            });
            matrix.add(run);
        }
    }
    ours_m.finish();
    samba_m.finish();
    drop(kept);
}
