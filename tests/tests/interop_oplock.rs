//! Oplocks and leases on our server with a real peer (issue 9): smbprotocol from two
//! connections (`tests/peers/oplock_break.py`): a batch oplock broken to level II by a second
//! open and acknowledged, a CREATE waiting for a break and cancelled, an RWH lease broken to RH
//! by another lease key and acknowledged; against our server and against Samba 4.17 with the
//! same settings, every step must read the same. On the wire (dumpcap, read by `smb-audit pcap`
//! and by tshark): after authentication nothing is unsigned but the break notifications and the
//! interim STATUS_PENDING responses MS-SMB2 exempts, and those are counted; the
//! acknowledgments, their responses and the final CREATE responses are signed.

use std::process::Command;

use serde_json::Value;
use tests::interop::{
    run_cell, run_step_script, CellKey, Matrix, OurServer, OUR_PASSWORD, OUR_SHARE, OUR_USER,
    PEER_TIMEOUT, WIRESHARK_SIZED,
};
use tests::{
    run_with_timeout, show, workspace_bin, Capture, CaptureFile, SambaOptions, SambaServer,
};

/// Signed acknowledgments (requests from the client) and their signed responses.
const ACKS: &str = "smb2.cmd == 18 && smb2.msg_id != 0xffffffffffffffff";

fn run_script(
    port: u16,
    user: &str,
    password: &str,
    share: &str,
    dialect: &str,
) -> Result<Vec<String>, String> {
    run_step_script(
        "oplock_break.py",
        "oplock",
        port,
        user,
        password,
        share,
        dialect,
    )
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The capture read by `smb-audit pcap` and tshark: every session SECURE with no unsigned
/// message; the exempt break notifications and interim responses are what the script caused.
fn wire(cap: &CaptureFile, port: u16, dialect: &str) -> Result<String, String> {
    let out = run_with_timeout(
        Command::new(workspace_bin("smb-audit"))
            .arg("pcap")
            .arg(&cap.path)
            .args(["--port", &port.to_string(), "--json", "-"])
            .args(["--password", &format!("{OUR_USER}%{OUR_PASSWORD}")]),
        PEER_TIMEOUT,
    );
    if out.status.code() != Some(0) {
        return Err(format!("smb-audit pcap: {}", show(&out)));
    }
    let sessions: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}")))
        .collect::<Result<_, _>>()?;
    if sessions.len() != 2 {
        return Err(format!(
            "{} sessions, expected 2: {}",
            sessions.len(),
            show(&out)
        ));
    }
    for s in &sessions {
        if s["unsigned"] != 0 || s["bad_signature"] != 0 || s["verdict"] != "SECURE" {
            return Err(format!("session not clean: {s}"));
        }
    }
    let sum = |f: &dyn Fn(&Value) -> u64| sessions.iter().map(f).sum::<u64>();
    let breaks = sum(&|s| n(&s["exempt"]["oplock_break"]));
    let leases = sum(&|s| n(&s["exempt"]["lease_break"]));
    let interim = sum(&|s| n(&s["exempt"]["interim_pending"]));
    // Two oplock breaks (the acknowledged one, the one whose waiter cancels), one lease break
    // (2.1 and later), and an interim response for each CREATE that waited.
    let want_leases = u64::from(dialect != "2.0.2");
    if breaks != 2 || leases != want_leases || interim != 2 + want_leases {
        return Err(format!(
            "exempt: {breaks} oplock_break, {leases} lease_break, {interim} interim_pending"
        ));
    }
    // tshark agrees: nothing unsigned after auth but these, and the acknowledgments signed.
    let unsigned = cap.unsigned_after_auth();
    let raw_unsigned = cap.count(tests::UNSIGNED_AFTER_AUTH_RAW) as u64;
    let acks = cap.count(ACKS);
    let signed_acks = cap.count(&format!("{ACKS} && smb2.flags.signature == 1"));
    if unsigned != 0 || raw_unsigned != breaks + leases + interim || acks != signed_acks {
        return Err(format!(
            "tshark: {unsigned} unsigned after auth, {raw_unsigned} unsigned in all, \
             {signed_acks}/{acks} acknowledgments signed"
        ));
    }
    Ok(format!(
        "smb-audit: 2 sessions SECURE, exempt {breaks} oplock_break + {leases} lease_break + \
         {interim} interim_pending (= tshark's unsigned); {acks} acknowledgments and \
         responses, all signed"
    ))
}

#[test]
fn smbprotocol_oplock_and_lease_breaks_read_as_on_samba() {
    let test = "smbprotocol_oplock_and_lease_breaks_read_as_on_samba";
    let mut matrix = Matrix::new(
        "smbprotocol oplock/lease breaks → our server (compared with Samba 4.17)",
        test,
    );
    let ours = OurServer::start("interop-oplock", &WIRESHARK_SIZED);
    let samba = SambaServer::start(SambaOptions::default());
    let mut kept = Vec::new();
    for dialect in ["2.0.2", "2.1", "3.0.2", "3.1.1"] {
        let algorithm = match dialect {
            "3.1.1" => "aes-gmac",
            other => tests::interop::default_algorithm(other),
        };
        let key = CellKey::new(dialect, algorithm, "server required, client required");
        let run = run_cell(key, || {
            let cap = Capture::start(ours.port());
            let from_ours = run_script(ours.port(), OUR_USER, OUR_PASSWORD, OUR_SHARE, dialect);
            let cap = cap.stop();
            let on_wire = wire(&cap, ours.port(), dialect);
            kept.push(cap);
            let from_ours = from_ours.map_err(|e| format!("our server: {e}"))?;
            let from_samba = run_script(
                samba.port(),
                samba.user(),
                samba.password(),
                samba.share_name(),
                dialect,
            )
            .map_err(|e| format!("Samba: {e}"))?;
            if from_ours != from_samba {
                return Err(format!("ours {from_ours:?}, Samba {from_samba:?}"));
            }
            Ok(format!("as Samba: {}; {}", from_ours.join(", "), on_wire?))
        });
        matrix.add(run);
    }
    matrix.finish();
    drop(kept);
}

/// The break timeout on the real server (its timer, not a test clock): smbprotocol holds a
/// batch oplock and never acknowledges; the second open waits for `--break-timeout-ms` and
/// then gets level II (the holder is taken to the level it was offered).
#[test]
fn an_unacknowledged_break_times_out_on_our_server() {
    let test = "an_unacknowledged_break_times_out_on_our_server";
    let mut matrix = Matrix::new("smbprotocol oplock break timeout → our server", test);
    let ours = OurServer::start("interop-oplock-timeout", &["--break-timeout-ms", "1500"]);
    for dialect in ["2.1", "3.1.1"] {
        let algorithm = match dialect {
            "3.1.1" => "aes-gmac",
            other => tests::interop::default_algorithm(other),
        };
        let key = CellKey::new(dialect, algorithm, "--break-timeout-ms 1500");
        let run = run_cell(key, || {
            let lines = run_step_script(
                "oplock_timeout.py",
                "timeout",
                ours.port(),
                OUR_USER,
                OUR_PASSWORD,
                OUR_SHARE,
                dialect,
            )?;
            let [holder, brk, waiter] = lines.as_slice() else {
                return Err(format!("unexpected output {lines:?}"));
            };
            let waited: f64 = waiter
                .strip_prefix("waiter: ok 0x01 after ")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("waiter: {waiter}"))?;
            if holder != "holder: 0x09" || brk != "break: 0x01" || !(1.4..30.0).contains(&waited) {
                return Err(format!("{lines:?}"));
            }
            Ok(format!(
                "{holder}, {brk}, waiter granted level II after {waited} s"
            ))
        });
        matrix.add(run);
    }
    matrix.finish();
}
