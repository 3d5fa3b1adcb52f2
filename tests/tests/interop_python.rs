//! smbprotocol 1.17.0 and impacket 0.13.1 → our server (issue 4), driven by the scripts in
//! `tests/peers/` with the peers venv's Python.
//!
//! - smbprotocol: each dialect with `require_signing=True` (and `require_encryption=False`,
//!   without which smbprotocol encrypts instead of signing), and 3.1.1 with each
//!   `preferred_signing_algos`; tree connect, write, read back, directory listing.
//! - impacket: `SMBConnection` with 2.0.2, 2.1, 3.0 and 3.1.1, and 3.0.2 through
//!   `smb3.SMB3(preferredDialect=SMB2_DIALECT_302)` wrapped in `SMBConnection(existingConnection=)`;
//!   login, putFile, listPath, getFile.
//!
//! The peer checks its own view (dialect, signing active, bytes read back); the test checks the
//! file on the share byte for byte and one capture per peer shows every message after
//! authentication signed and nothing malformed.

use std::fs;
use std::process::{Command, Output};

use tests::interop::{
    default_algorithm, failure, run_cell, start_capture, CellKey, CellRun, Interim, Matrix,
    OurServer, WireSessions, ALGORITHMS, DIALECTS, OUR_PASSWORD, OUR_SHARE, OUR_USER, PEER_TIMEOUT,
    WIRESHARK_SIZED,
};
use tests::{python, run_with_timeout, workspace_root};

const POLICY: &str = "server required, client required";

/// `python tests/peers/SCRIPT 127.0.0.1 PORT alice PASSWORD data ARGS...`
fn driver(server: &OurServer, script: &str, args: &[&str]) -> Output {
    let path = workspace_root().join("tests").join("peers").join(script);
    let mut cmd = Command::new(python());
    cmd.arg(path)
        .args(["127.0.0.1", &server.port().to_string()])
        .args([OUR_USER, OUR_PASSWORD, OUR_SHARE])
        .args(args);
    run_with_timeout(&mut cmd, PEER_TIMEOUT)
}

/// The driver's `result: ...` line, or the failure with the end of its traceback.
fn driver_result(what: &str, out: &Output) -> Result<String, String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.strip_prefix("result: ")) {
        Some(line) if out.status.success() => Ok(line.to_string()),
        _ if String::from_utf8_lossy(&out.stderr).contains("ModuleNotFoundError") => Err(format!(
            "{}; the peers venv lacks a module: run `cargo xtask peers` \
             (impacket==0.13.1, smbprotocol==1.17.0)",
            failure(what, out)
        )),
        _ => Err(failure(what, out)),
    }
}

/// The file the driver left on the share must hold exactly `expected`.
fn check_share(server: &OurServer, name: &str, expected: &[u8]) -> Result<(), String> {
    let on_share = fs::read(server.share_path().join(name))
        .map_err(|e| format!("{name} is not on the share: {e}"))?;
    if on_share != expected {
        return Err(format!(
            "{name} on the share: {} bytes that differ from the {} written",
            on_share.len(),
            expected.len()
        ));
    }
    Ok(())
}

/// Adds the wire check to every run and records the group.
fn finish(
    server: &OurServer,
    capture: tests::Capture,
    peer: &str,
    test: &str,
    runs: Vec<(CellRun, &str, Option<&str>)>,
) {
    let wire = WireSessions::read(&capture.stop(), Interim::Forbidden);
    let mut matrix = Matrix::new(peer, test);
    for (mut run, dialect, algorithm) in runs {
        if run.outcome.is_err() {
            run.outcome = run
                .outcome
                .map_err(|why| format!("{why}\n--- server log ---\n{}", server.log_tail(15)));
        }
        run.check_wire(wire.expect_signed(&run, dialect, algorithm));
        matrix.add(run);
    }
    matrix.finish();
}

/// What smbprotocol_driver.py writes: (i * 7 + 3) mod 256 for 200,000 bytes.
fn smbprotocol_payload() -> Vec<u8> {
    (0..200_000u32).map(|i| ((i * 7 + 3) % 256) as u8).collect()
}

/// What impacket_driver.py writes: (i * 13 + 5) mod 251 for 300,000 bytes.
fn impacket_payload() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| ((i * 13 + 5) % 251) as u8)
        .collect()
}

#[test]
fn smbprotocol_to_our_server_every_dialect_and_algorithm() {
    let server = OurServer::start("interop-smbprotocol", &WIRESHARK_SIZED);
    let capture = start_capture(server.port());
    let payload = smbprotocol_payload();
    let mut cells: Vec<(&str, Option<&str>)> = DIALECTS.iter().map(|d| (*d, None)).collect();
    cells.extend(ALGORITHMS.iter().map(|a| ("3.1.1", Some(*a))));

    let mut runs = Vec::new();
    for (dialect, algorithm) in cells {
        let label = match (dialect, algorithm) {
            (_, Some(a)) => a.to_string(),
            ("3.1.1", None) => "aes-gmac (server's first choice)".to_string(),
            (d, None) => default_algorithm(d).to_string(),
        };
        let key = CellKey::new(dialect, &label, POLICY);
        let run = run_cell(key, || {
            let mut args = vec![dialect];
            args.extend(algorithm);
            let out = driver(&server, "smbprotocol_driver.py", &args);
            let line = driver_result("smbprotocol", &out)?;
            let expected = format!(
                "dialect={dialect} signing={} signed=True",
                algorithm.unwrap_or(match dialect {
                    "3.1.1" => "aes-gmac",
                    d => default_algorithm(d),
                })
            );
            if line != expected {
                return Err(format!(
                    "smbprotocol reports `{line}`, expected `{expected}`"
                ));
            }
            check_share(&server, &format!("smbprotocol-{dialect}.bin"), &payload)?;
            Ok(format!(
                "smbprotocol: {line}; write/read/list ok, share identical"
            ))
        });
        // 3.1.1 with no algorithm forced still negotiates one: our first preference.
        let wire_algorithm = algorithm.or((dialect == "3.1.1").then_some("aes-gmac"));
        runs.push((run, dialect, wire_algorithm));
    }
    finish(
        &server,
        capture,
        "smbprotocol → our server",
        "smbprotocol_to_our_server_every_dialect_and_algorithm",
        runs,
    );
}

#[test]
fn impacket_to_our_server_every_dialect() {
    let server = OurServer::start("interop-impacket", &WIRESHARK_SIZED);
    let capture = start_capture(server.port());
    let payload = impacket_payload();

    let mut runs = Vec::new();
    for dialect in DIALECTS {
        let (label, wire_algorithm) = match dialect {
            // impacket 0.13.1 sends no SIGNING_CAPABILITIES: 3.1.1 falls back to AES-CMAC.
            "3.1.1" => ("aes-cmac (none negotiated)".to_string(), Some("none")),
            d => (default_algorithm(d).to_string(), None),
        };
        let key = CellKey::new(dialect, &label, POLICY);
        let run = run_cell(key, || {
            let out = driver(&server, "impacket_driver.py", &[dialect]);
            let line = driver_result("impacket", &out)?;
            let revision = match dialect {
                "2.0.2" => "0x202",
                "2.1" => "0x210",
                "3.0" => "0x300",
                "3.0.2" => "0x302",
                _ => "0x311",
            };
            let expected = format!("dialect={revision} signing_required=True signing_active=True");
            if line != expected {
                return Err(format!("impacket reports `{line}`, expected `{expected}`"));
            }
            check_share(&server, &format!("impacket-{dialect}.bin"), &payload)?;
            let how = if dialect == "3.0.2" {
                "smb3.SMB3(preferredDialect=0x302) in SMBConnection(existingConnection=)"
            } else {
                "SMBConnection(preferredDialect)"
            };
            Ok(format!(
                "impacket {how}: {line}; login/putFile/listPath/getFile ok, share identical"
            ))
        });
        runs.push((run, dialect, wire_algorithm));
    }
    finish(
        &server,
        capture,
        "impacket → our server",
        "impacket_to_our_server_every_dialect",
        runs,
    );
}
