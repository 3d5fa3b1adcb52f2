//! The other half of trusting the server: requests from real, independent clients that are
//! unsigned, or signed with a wrong key, on a session that requires signing. impacket and
//! smbprotocol log in and connect the tree (signed, accepted), then their signing is switched
//! off or given a wrong key and they send a CREATE (`tests/peers/rejected_request.py`).
//! MS-SMB2 3.3.5.2.4: the request fails with STATUS_ACCESS_DENIED and is never executed; the
//! file must not exist, and the server's audit log must name the rejection.

use std::process::Command;

use tests::interop::{
    failure, run_cell, CellKey, Matrix, OurServer, OUR_PASSWORD, OUR_SHARE, OUR_USER, PEER_TIMEOUT,
};
use tests::{python, run_with_timeout, workspace_root};

#[test]
fn unsigned_and_badly_signed_requests_from_real_clients_are_refused() {
    let cells = [
        ("impacket", "2.1"),
        ("impacket", "3.1.1"),
        ("smbprotocol", "3.0"),
        ("smbprotocol", "3.1.1"),
    ];
    let test = "unsigned_and_badly_signed_requests_from_real_clients_are_refused";
    let mut impacket = Matrix::new("impacket → our server", test);
    let mut smbprotocol = Matrix::new("smbprotocol → our server", test);
    // One server per cell: a bad signature disconnects, and each cell reads its own audit log.
    let mut kept = Vec::new();
    for (library, dialect) in cells {
        for (mode, reason) in [("unsigned", "unsigned"), ("bad-key", "bad signature")] {
            let server = OurServer::start("interop-rejected", &[]);
            let policy = format!(
                "server required; forged: CREATE {} after auth",
                if mode == "unsigned" {
                    "unsigned"
                } else {
                    "signed with a wrong key"
                }
            );
            let key = CellKey::new(dialect, "refused (STATUS_ACCESS_DENIED)", &policy);
            let name = format!("must-not-exist-{library}-{mode}.bin");
            let run = run_cell(key, || {
                let script = workspace_root()
                    .join("tests")
                    .join("peers")
                    .join("rejected_request.py");
                let mut cmd = Command::new(python());
                cmd.arg(script)
                    .args([library, "127.0.0.1", &server.port().to_string()])
                    .args([OUR_USER, OUR_PASSWORD, OUR_SHARE, dialect, mode, &name]);
                let out = run_with_timeout(&mut cmd, PEER_TIMEOUT);
                let stdout = String::from_utf8_lossy(&out.stdout);
                let Some(result) = stdout.lines().find_map(|l| l.strip_prefix("result: ")) else {
                    return Err(failure(library, &out));
                };
                // A bad signature also ends the connection (3.3.5.2.4: the server "MAY also
                // disconnect"); smbprotocol may then report the close instead of the status.
                let refused = result == "refused STATUS_ACCESS_DENIED (0xc0000022)"
                    || (mode == "bad-key" && result == "disconnected");
                if !refused {
                    return Err(format!("{library}: {result}"));
                }
                if server.share_path().join(&name).exists() {
                    return Err(format!("the refused CREATE created {name}"));
                }
                let audit = server.audit();
                let audited = audit.lines().any(|l| {
                    l.contains(r#""event":"request_rejected""#)
                        && l.contains(r#""command":"CREATE""#)
                        && l.contains(&format!(r#""reason":"{reason}""#))
                });
                if !audited {
                    return Err(format!(
                        "no request_rejected CREATE ({reason}) in the audit log:\n{audit}"
                    ));
                }
                Ok(format!(
                    "{library}: {result}; no file created; server audit: request_rejected \
                     CREATE ({reason})"
                ))
            });
            match library {
                "impacket" => impacket.add(run),
                _ => smbprotocol.add(run),
            }
            kept.push(server);
        }
    }
    impacket.finish();
    smbprotocol.finish();
    drop(kept);
}
