//! nmap as a peer (issue 9): the scripts an administrator points at a file server read our
//! server exactly as they read Samba with the same settings, in both signing postures.
//!
//! For each posture (signing required / not required) one of our servers and one private
//! Samba run side by side, and each script runs against both:
//! `nmap -Pn -n -p PORT --script NAME --script-args smbport=PORT 127.0.0.1`. The "Host script
//! results" block must be the same line for line; for `smb2-time` the date may differ by the
//! seconds between the two runs, and must be close to now.
//!
//! Samba is configured to announce what our server implements, so that `smb2-capabilities`
//! compares like with like: no DFS (`host msdfs = no`), no multichannel, no encryption;
//! leases on, as on our server (Samba's default `smb2 leases = yes`).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use tests::interop::{run_cell, CellKey, Matrix, OurServer, PEER_TIMEOUT};
use tests::{require_tool, run_with_timeout, show, SambaOptions, SambaServer, ServerSigning};

/// The scripts, in the order an administrator would run them.
const SCRIPTS: [&str; 4] = [
    "smb2-security-mode",
    "smb-protocols",
    "smb2-capabilities",
    "smb2-time",
];

/// The "Host script results" lines of one nmap run, without the `|`/`|_` tree prefixes.
fn nmap_script(script: &str, port: u16) -> Result<Vec<String>, String> {
    let nmap = require_tool("nmap");
    let port = port.to_string();
    let mut cmd = Command::new(nmap);
    cmd.args(["-Pn", "-n", "-p", &port, "--script", script])
        .args(["--script-args", &format!("smbport={port}"), "127.0.0.1"]);
    let out = run_with_timeout(&mut cmd, PEER_TIMEOUT);
    if !out.status.success() {
        return Err(format!("nmap failed:\n{}", show(&out)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Host script results:"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_start_matches("|_")
                .trim_start_matches('|')
                .trim_end()
                .to_string()
        })
        .collect();
    if lines.is_empty() {
        return Err(format!("no script results from {script}:\n{stdout}"));
    }
    Ok(lines)
}

/// `date: 2026-11-29T22:42:15` → seconds since the epoch (UTC, as nmap prints it).
fn parse_date(line: &str) -> Option<i64> {
    let value = line.trim().strip_prefix("date: ")?;
    let (date, time) = value.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Compares one script's output from our server with Samba's.
fn compare(script: &str, ours: &[String], samba: &[String]) -> Result<String, String> {
    if script == "smb2-time" {
        // The date is each server's clock at the time of its run: compare it to now instead.
        let date = |lines: &[String]| {
            lines
                .iter()
                .find_map(|l| parse_date(l))
                .ok_or_else(|| format!("no date in {lines:?}"))
        };
        let (d_ours, d_samba) = (date(ours)?, date(samba)?);
        let now = now_secs();
        for (who, d) in [("our server", d_ours), ("Samba", d_samba)] {
            if (d - now).abs() > 120 {
                return Err(format!("{who}'s date is {} s from now", d - now));
            }
        }
        let rest = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| parse_date(l).is_none())
                .cloned()
                .collect()
        };
        if rest(ours) != rest(samba) {
            return Err(format!("ours {ours:?}, Samba {samba:?}"));
        }
        return Ok(format!(
            "as Samba: {} (dates within {} s of now)",
            rest(ours).join(" / "),
            (d_ours - now).abs().max((d_samba - now).abs())
        ));
    }
    if ours != samba {
        return Err(format!("ours {ours:?}, Samba {samba:?}"));
    }
    Ok(format!("as Samba: {}", ours.join(" / ")))
}

#[test]
fn nmap_reads_our_server_as_it_reads_samba() {
    let test = "nmap_reads_our_server_as_it_reads_samba";
    let mut matrix = Matrix::new("nmap → our server (compared with Samba 4.17)", test);
    for (required, signing, policy) in [
        (true, ServerSigning::Mandatory, "server required"),
        (false, ServerSigning::Auto, "server not required"),
    ] {
        let flag = if required { "true" } else { "false" };
        let ours = OurServer::start("interop-nmap", &["--require-signing", flag]);
        let samba = SambaServer::start(SambaOptions {
            signing,
            extra_global: vec![
                "host msdfs = no".into(),
                "server multi channel support = no".into(),
            ],
            ..SambaOptions::default()
        });
        for script in SCRIPTS {
            let key = CellKey::new("2.0.2–3.1.1", script, policy);
            let run = run_cell(key, || {
                let from_ours = nmap_script(script, ours.port())
                    .map_err(|e| format!("our server: {e}\n{}", ours.log()))?;
                let from_samba = nmap_script(script, samba.port())
                    .map_err(|e| format!("Samba: {e}\n{}", samba.log()))?;
                compare(script, &from_ours, &from_samba)
            });
            matrix.add(run);
        }
    }
    matrix.finish();
}

#[test]
fn nmap_dates_parse() {
    assert_eq!(parse_date("date: 1970-01-01T00:00:00"), Some(0));
    assert_eq!(
        parse_date("  date: 2026-11-29T22:42:15"),
        Some(1_795_992_135)
    );
    assert_eq!(parse_date("start_date: N/A"), None);
}
