//! Our client (`smb-client`) → Samba 4.17 (issue 4):
//! - `server signing = mandatory`: each of the five dialects;
//! - 3.1.1 with each signing algorithm forced by `server smb3 signing algorithms`;
//! - put then get of a file of several MiB, byte for byte;
//! - `server signing = auto`: a client that does not require signing gets an unsigned session,
//!   one that requires it gets a signed one (the `session:` line, confirmed from a capture);
//! - an external server (`SMB_INTEROP_SERVER=host:port`, `SMB_INTEROP_USER`,
//!   `SMB_INTEROP_PASSWORD`, optional `SMB_INTEROP_SHARE`, default `data`): our client against
//!   it; when unset, that one cell says "not configured". The local Samba cells always run.

use std::fs;

use tests::interop::{
    default_algorithm, failure, our_client, our_client_put_ls_get, run_cell, samba_algorithm,
    start_capture, CellKey, CellRun, Expect, Interim, Matrix, SambaTarget, SessionLine,
    WireSessions, DIALECTS,
};
use tests::{scratch_dir, test_bytes, ExternalServer, SambaOptions, SambaServer, ServerSigning};

const PEER: &str = "our client → Samba";

/// [`our_client_put_ls_get`] against the host's Samba.
fn put_ls_get(
    samba: &SambaServer,
    args: &[&str],
    expect: &Expect,
    tag: &str,
    len: usize,
) -> Result<String, String> {
    let target = SambaTarget {
        port: samba.port(),
        share: samba.share_name(),
        user: samba.user(),
        password: samba.password(),
        share_path: samba.share_path(),
        scratch: "our-client",
    };
    our_client_put_ls_get(&target, args, expect, tag, len)
}

/// Adds Samba's log tail to a failed run.
fn with_samba_log(mut run: CellRun, samba: &SambaServer) -> CellRun {
    if let Err(why) = &run.outcome {
        let log = samba.log();
        run.outcome = Err(format!(
            "{why}\n--- smbd (tail) ---\n{}",
            tests::interop::tail(&log, 15)
        ));
    }
    run
}

#[test]
fn our_client_to_samba_mandatory_every_dialect() {
    let samba = SambaServer::start(SambaOptions::default());
    let capture = start_capture(samba.port());
    let mut runs = Vec::new();
    // Every dialect with the client requiring signing, and 2.1 and 3.1.1 with the client not
    // requiring it: Samba's requirement alone must give a signed session.
    let cells = DIALECTS
        .iter()
        .map(|d| (*d, true))
        .chain([("2.1", false), ("3.1.1", false)]);
    for (dialect, require) in cells {
        // Samba 4.17 prefers AES-128-GMAC on 3.1.1, and our client offers it first.
        let signing = if dialect == "3.1.1" {
            "aes-gmac"
        } else {
            default_algorithm(dialect)
        };
        let policy = if require {
            "Samba mandatory, client required"
        } else {
            "Samba mandatory, client not required"
        };
        let key = CellKey::new(dialect, signing, policy);
        let tag = format!("d{}-{require}", dialect.replace('.', ""));
        let run = run_cell(key, || {
            put_ls_get(
                &samba,
                &[
                    "--dialect",
                    dialect,
                    "--require-signing",
                    if require { "true" } else { "false" },
                ],
                &Expect {
                    dialect,
                    signing,
                    signed: true,
                },
                &tag,
                256 * 1024 + 5,
            )
        });
        runs.push((with_samba_log(run, &samba), dialect, signing));
    }
    let wire = WireSessions::read(&capture.stop(), Interim::Allowed);
    let mut matrix = Matrix::new(PEER, "our_client_to_samba_mandatory_every_dialect");
    for (mut run, dialect, signing) in runs {
        let algorithm = (dialect == "3.1.1").then_some(signing);
        run.check_wire(wire.expect_signed(&run, dialect, algorithm));
        matrix.add(run);
    }
    matrix.finish();
}

/// 3.1.1 with the signing algorithm forced by Samba's `server smb3 signing algorithms`
/// (one test per algorithm, so they run in parallel).
fn our_client_to_samba_311_forced(algorithm: &str, test: &str) {
    let policy = "Samba mandatory, client required";
    let mut matrix = Matrix::new(PEER, test);
    let samba = SambaServer::start(SambaOptions {
        signing_algorithms: Some(samba_algorithm(algorithm)),
        ..SambaOptions::default().only_dialect("3.1.1")
    });
    let capture = start_capture(samba.port());
    let key = CellKey::new("3.1.1", &format!("{algorithm} (forced by Samba)"), policy);
    let run = run_cell(key, || {
        put_ls_get(
            &samba,
            &["--dialect", "3.1.1", "--require-signing", "true"],
            &Expect {
                dialect: "3.1.1",
                signing: algorithm,
                signed: true,
            },
            algorithm,
            256 * 1024 + 9,
        )
    });
    let mut run = with_samba_log(run, &samba);
    let wire = WireSessions::read(&capture.stop(), Interim::Allowed);
    run.check_wire(wire.expect_signed(&run, "3.1.1", Some(algorithm)));
    matrix.add(run);
    matrix.finish();
}

#[test]
fn our_client_to_samba_311_forced_aes_gmac() {
    our_client_to_samba_311_forced("aes-gmac", "our_client_to_samba_311_forced_aes_gmac");
}

#[test]
fn our_client_to_samba_311_forced_aes_cmac() {
    our_client_to_samba_311_forced("aes-cmac", "our_client_to_samba_311_forced_aes_cmac");
}

#[test]
fn our_client_to_samba_311_forced_hmac_sha256() {
    our_client_to_samba_311_forced("hmac-sha256", "our_client_to_samba_311_forced_hmac_sha256");
}

#[test]
fn our_client_to_samba_large_file_put_get() {
    // Samba's own 8 MiB I/O size, so READ and WRITE messages are large too. No capture here
    // (see WIRESHARK_SIZED): our client checks every response's signature itself, and Samba
    // rejects any request whose signature does not verify.
    let samba = SambaServer::start(SambaOptions {
        max_io: 8 * 1024 * 1024,
        ..SambaOptions::default()
    });
    let mut matrix = Matrix::new(PEER, "our_client_to_samba_large_file_put_get");
    for (dialect, signing) in [("3.1.1", "aes-gmac"), ("2.1", "hmac-sha256")] {
        let len = 6 * 1024 * 1024 + 123;
        let key = CellKey::new(
            dialect,
            signing,
            "Samba mandatory, client required; 6 MiB put+get, 8 MiB I/O",
        );
        let tag = format!("large{}", dialect.replace('.', ""));
        let run = run_cell(key, || {
            put_ls_get(
                &samba,
                &["--dialect", dialect, "--require-signing", "true"],
                &Expect {
                    dialect,
                    signing,
                    signed: true,
                },
                &tag,
                len,
            )
        });
        matrix.add(with_samba_log(run, &samba));
    }
    matrix.finish();
}

#[test]
fn our_client_to_samba_auto_signs_only_when_the_client_requires() {
    let samba = SambaServer::start(SambaOptions {
        signing: ServerSigning::Auto,
        ..SambaOptions::default()
    });
    let capture = start_capture(samba.port());
    let mut runs = Vec::new();
    for dialect in ["2.0.2", "3.1.1"] {
        for require in [false, true] {
            let signing = match (require, dialect) {
                (false, _) => "none",
                (true, "3.1.1") => "aes-gmac",
                (true, d) => default_algorithm(d),
            };
            let policy = if require {
                "Samba auto, client required"
            } else {
                "Samba auto, client not required"
            };
            let key = CellKey::new(dialect, signing, policy);
            let tag = format!("auto{}-{require}", dialect.replace('.', ""));
            let run = run_cell(key, || {
                put_ls_get(
                    &samba,
                    &[
                        "--dialect",
                        dialect,
                        "--require-signing",
                        if require { "true" } else { "false" },
                    ],
                    &Expect {
                        dialect,
                        signing,
                        signed: require,
                    },
                    &tag,
                    64 * 1024 + 3,
                )
            });
            runs.push((with_samba_log(run, &samba), dialect, require, signing));
        }
    }
    let wire = WireSessions::read(&capture.stop(), Interim::Allowed);
    let mut matrix = Matrix::new(
        PEER,
        "our_client_to_samba_auto_signs_only_when_the_client_requires",
    );
    for (mut run, dialect, require, signing) in runs {
        let verdict = if require {
            let algorithm = (dialect == "3.1.1").then_some(signing);
            wire.expect_signed(&run, dialect, algorithm)
        } else {
            wire.expect_unsigned(&run, dialect)
        };
        run.check_wire(verdict);
        matrix.add(run);
    }
    matrix.finish();
}

/// The one cell that may say "not configured": an external server is opt-in.
#[test]
fn our_client_to_external_server() {
    let mut matrix = Matrix::new(
        "our client → external server",
        "our_client_to_external_server",
    );
    let policy = "server's own, client required";
    let Some(server) = ExternalServer::from_env() else {
        matrix.add_not_configured(
            CellKey::new("max", "negotiated", policy),
            "SMB_INTEROP_SERVER=host:port, SMB_INTEROP_USER, SMB_INTEROP_PASSWORD unset",
        );
        return matrix.finish();
    };
    let share = std::env::var("SMB_INTEROP_SHARE").unwrap_or_else(|_| "data".to_string());
    let key = CellKey::new("max", "negotiated", policy);
    let run = run_cell(key, || {
        let dir = scratch_dir("our-client-external");
        let original = test_bytes(1024 * 1024 + 1, 99);
        let local = dir.join("up.bin");
        let back = dir.join("down.bin");
        fs::write(&local, &original).map_err(|e| e.to_string())?;
        let remote = format!("smb-signing-interop-{}.bin", std::process::id());
        // Reaching beyond loopback is the user's explicit choice: they named the server.
        let loopback = server.host == "localhost"
            || server
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let mut args = vec!["--require-signing", "true"];
        if !loopback {
            args.push("--allow-non-loopback");
        }
        let out = our_client(
            &server.host,
            server.port,
            &share,
            &server.user,
            &server.password,
            &args,
            &format!(
                "put {} {remote}; ls; get {remote} {}; rm {remote}",
                local.display(),
                back.display()
            ),
        );
        let session = SessionLine::find(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(format!(
                "{} (session: {session:?})",
                failure("smb-client", &out)
            ));
        }
        let session = session.ok_or("no `session:` line")?;
        if !session.signed {
            return Err(format!("the session is not signed: {session:?}"));
        }
        if fs::read(&back).map_err(|e| e.to_string())? != original {
            return Err("`get` returned different bytes".to_string());
        }
        Ok(format!(
            "{}:{} session dialect={} signing={} signed=true; put/ls/get/rm identical",
            server.host, server.port, session.dialect, session.signing
        ))
    });
    matrix.add(run);
    matrix.finish();
}
