//! Our client (`smb-client`) → Samba 4.22, the second Samba version beside the host's 4.17
//! (issue 9): Debian 13's smbd in a container started from `docker/compose.yml` (the file users
//! run) on the suite's own Docker engine, on the host network, bound to loopback
//! (peers/src/docker_samba.rs). The same rows as against the host's Samba:
//! - `server signing = mandatory`: each of the five dialects with the client requiring signing,
//!   and 2.1 and 3.1.1 with the client not requiring it;
//! - 3.1.1 with each signing algorithm forced by `server smb3 signing algorithms`;
//! - `server signing = auto`: signed only when the client requires it.
//!
//! Every cell puts, lists and gets a file (checked on the container's share from the host and
//! byte for byte back), and one capture per container shows each session's dialect and
//! algorithm and no unsigned message after authentication but the interim responses MS-SMB2
//! exempts. A missing Docker (or image) fails with what to install or run.

use std::fs;

use tests::interop::{
    default_algorithm, our_client_put_ls_get, run_cell, samba_algorithm, start_capture, CellKey,
    CellRun, Expect, Interim, Matrix, SambaTarget, WireSessions, DIALECTS,
};
use tests::{DockerSamba, SambaOptions, ServerSigning};

/// The peer as the matrix names it, with the Samba version the container reports.
fn peer(samba: &DockerSamba) -> String {
    format!(
        "our client → Samba {} (Docker, Debian 13)",
        peers::docker_samba::major_minor(samba.version())
    )
}

/// [`our_client_put_ls_get`] against the container, its share seen through the bind mount.
fn put_ls_get(
    samba: &DockerSamba,
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
        scratch: "docker-our-client",
    };
    our_client_put_ls_get(&target, args, expect, tag, len)
        .map(|evidence| format!("Samba {}; {evidence}", samba.version()))
}

/// Adds the container's log tail to a failed run.
fn with_samba_log(mut run: CellRun, samba: &DockerSamba) -> CellRun {
    if let Err(why) = &run.outcome {
        let log = samba.log();
        run.outcome = Err(format!(
            "{why}\n--- container (tail) ---\n{}",
            tests::interop::tail(&log, 15)
        ));
    }
    run
}

fn require(require: bool) -> &'static str {
    if require {
        "true"
    } else {
        "false"
    }
}

#[test]
fn docker_samba_is_debian_13s_samba_4_22_on_loopback_only() {
    let samba = DockerSamba::start(SambaOptions::default());
    assert!(
        samba.version().starts_with("4.22."),
        "the image's smbd is {}, expected Debian 13's 4.22",
        samba.version()
    );
    // On the host network, bound to the loopback interface only: the port answers on
    // 127.0.0.1, and the container's smbd is a host process we can see (and stop) by PID.
    let pid = samba.pid().expect("smbd's host PID");
    assert!(peers::process::is_running(pid));
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "smbd", "PID {pid} is not smbd");
    let ports = fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let hex_port = format!(":{:04X}", samba.port());
    let listening: Vec<&str> = ports
        .lines()
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.get(1).is_some_and(|local| local.ends_with(&hex_port))
                && cols.get(3) == Some(&"0A")
        })
        .collect();
    assert!(!listening.is_empty(), "nothing listens on {}", samba.addr());
    for line in &listening {
        let local = line.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            local.starts_with("0100007F:"),
            "smbd listens on {local}, not 127.0.0.1 only"
        );
    }
    // No Docker network besides the built-in host and none ones: nothing on a private range.
    let (status, networks) = samba
        .engine()
        .api_get("/networks")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{networks}");
    let names: Vec<&str> = networks
        .split("\"Name\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(!names.is_empty(), "{networks}");
    for name in &names {
        assert!(
            ["host", "none"].contains(name),
            "the engine has network {name:?}: {networks}"
        );
    }
    drop(samba);
    assert!(
        !peers::process::is_running(pid),
        "smbd (PID {pid}) survived the container's stop"
    );
}

#[test]
fn our_client_to_docker_samba_mandatory_every_dialect() {
    let samba = DockerSamba::start(SambaOptions {
        // tshark reads a non-445 port as NBSS (17-bit lengths): see WIRESHARK_SIZED.
        max_io: 65536,
        ..SambaOptions::default()
    });
    let capture = start_capture(samba.port());
    let mut runs = Vec::new();
    let cells = DIALECTS
        .iter()
        .map(|d| (*d, true))
        .chain([("2.1", false), ("3.1.1", false)]);
    for (dialect, required) in cells {
        // Samba 4.22 prefers AES-128-GMAC on 3.1.1, and our client offers it first.
        let signing = if dialect == "3.1.1" {
            "aes-gmac"
        } else {
            default_algorithm(dialect)
        };
        let policy = if required {
            "Samba mandatory, client required"
        } else {
            "Samba mandatory, client not required"
        };
        let key = CellKey::new(dialect, signing, policy);
        let tag = format!("d{}-{required}", dialect.replace('.', ""));
        let run = run_cell(key, || {
            put_ls_get(
                &samba,
                &["--dialect", dialect, "--require-signing", require(required)],
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
    let mut matrix = Matrix::new(
        &peer(&samba),
        "our_client_to_docker_samba_mandatory_every_dialect",
    );
    for (mut run, dialect, signing) in runs {
        let algorithm = (dialect == "3.1.1").then_some(signing);
        run.check_wire(wire.expect_signed(&run, dialect, algorithm));
        matrix.add(run);
    }
    matrix.finish();
}

/// 3.1.1 with the signing algorithm forced by Samba's `server smb3 signing algorithms`
/// (SMB_SIGNING_ALGORITHMS in the compose file), one container per algorithm.
fn our_client_to_docker_samba_311_forced(algorithm: &str, test: &str) {
    let samba = DockerSamba::start(SambaOptions {
        signing_algorithms: Some(samba_algorithm(algorithm)),
        max_io: 65536,
        ..SambaOptions::default().only_dialect("3.1.1")
    });
    let capture = start_capture(samba.port());
    let key = CellKey::new(
        "3.1.1",
        &format!("{algorithm} (forced by Samba)"),
        "Samba mandatory, client required",
    );
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
    let mut matrix = Matrix::new(&peer(&samba), test);
    matrix.add(run);
    matrix.finish();
}

#[test]
fn our_client_to_docker_samba_311_forced_aes_gmac() {
    our_client_to_docker_samba_311_forced(
        "aes-gmac",
        "our_client_to_docker_samba_311_forced_aes_gmac",
    );
}

#[test]
fn our_client_to_docker_samba_311_forced_aes_cmac() {
    our_client_to_docker_samba_311_forced(
        "aes-cmac",
        "our_client_to_docker_samba_311_forced_aes_cmac",
    );
}

#[test]
fn our_client_to_docker_samba_311_forced_hmac_sha256() {
    our_client_to_docker_samba_311_forced(
        "hmac-sha256",
        "our_client_to_docker_samba_311_forced_hmac_sha256",
    );
}

#[test]
fn our_client_to_docker_samba_auto_signs_only_when_the_client_requires() {
    let samba = DockerSamba::start(SambaOptions {
        signing: ServerSigning::Auto,
        max_io: 65536,
        ..SambaOptions::default()
    });
    let capture = start_capture(samba.port());
    let mut runs = Vec::new();
    for dialect in ["2.0.2", "3.1.1"] {
        for required in [false, true] {
            let signing = match (required, dialect) {
                (false, _) => "none",
                (true, "3.1.1") => "aes-gmac",
                (true, d) => default_algorithm(d),
            };
            let policy = if required {
                "Samba auto, client required"
            } else {
                "Samba auto, client not required"
            };
            let key = CellKey::new(dialect, signing, policy);
            let tag = format!("auto{}-{required}", dialect.replace('.', ""));
            let run = run_cell(key, || {
                put_ls_get(
                    &samba,
                    &["--dialect", dialect, "--require-signing", require(required)],
                    &Expect {
                        dialect,
                        signing,
                        signed: required,
                    },
                    &tag,
                    64 * 1024 + 3,
                )
            });
            runs.push((with_samba_log(run, &samba), dialect, required, signing));
        }
    }
    let wire = WireSessions::read(&capture.stop(), Interim::Allowed);
    let mut matrix = Matrix::new(
        &peer(&samba),
        "our_client_to_docker_samba_auto_signs_only_when_the_client_requires",
    );
    for (mut run, dialect, required, signing) in runs {
        let verdict = if required {
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
