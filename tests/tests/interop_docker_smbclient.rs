//! Samba 4.22's smbclient (Debian 13, the `smbclient` service of `docker/compose.yml`: one
//! container per test from `compose run -d`, on the host network, `docker exec` per cell) →
//! our server (issue 9), beside the host's smbclient 4.17 rows:
//! - each dialect, and 3.1.1 with each signing algorithm, `client signing=required` against
//!   `smb-server` requiring signing;
//! - the signing policy table: server required + client disabled (signed), server not required
//!   + client required (signed), neither (unsigned, which also shows the capture check can fail).
//!
//! Each cell puts, lists, gets and removes a file in one smbclient run: the bytes are checked
//! on the share and read back, the file is gone after `rm`; one capture per server shows each
//! session's dialect and algorithm and every message after authentication signed.

use std::fs;
use std::process::Output;

use tests::interop::{
    check_round_trip, default_algorithm, failure, run_cell, samba_algorithm, start_capture,
    CellKey, CellRun, Interim, Matrix, OurServer, WireSessions, ALGORITHMS, DIALECTS, OUR_PASSWORD,
    OUR_SHARE, OUR_USER, PEER_TIMEOUT, WIRESHARK_SIZED,
};
use tests::{test_bytes, DockerSmbclient, SambaOptions};

const POLICY: &str = "server required, client required";

/// The peer as the matrix names it, with the container's smbclient version.
fn peer(smbclient: &DockerSmbclient) -> String {
    let version = smbclient.version().unwrap_or_else(|e| panic!("{e}"));
    format!(
        "smbclient {} (Docker, Debian 13) → our server",
        peers::docker_samba::major_minor(&version)
    )
}

fn smbclient(
    client: &DockerSmbclient,
    server: &OurServer,
    max_protocol: &str,
    options: &[String],
    commands: &str,
) -> Output {
    let mut args = vec![
        format!("//127.0.0.1/{OUR_SHARE}"),
        "-p".to_string(),
        server.port().to_string(),
        "-U".to_string(),
        format!("{OUR_USER}%{OUR_PASSWORD}"),
        "-m".to_string(),
        max_protocol.to_string(),
    ];
    if !options.iter().any(|o| o.starts_with("client signing=")) {
        args.push("--option=client signing=required".to_string());
    }
    args.extend(options.iter().map(|o| format!("--option={o}")));
    args.extend(["-c".to_string(), commands.to_string()]);
    client
        .run(server.work_dir(), &args, PEER_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// put, ls, get, rm in one run; the bytes are checked on the share and read back, and the
/// file must be gone afterwards.
fn put_ls_get_rm(
    client: &DockerSmbclient,
    server: &OurServer,
    max_protocol: &str,
    options: &[String],
    tag: &str,
    seed: u64,
) -> Result<String, String> {
    let original = test_bytes(256 * 1024 + 77, seed);
    let local = server.work_dir().join(format!("{tag}.up"));
    let back = server.work_dir().join(format!("{tag}.down"));
    fs::write(&local, &original).map_err(|e| e.to_string())?;
    let remote = format!("smbclient422-{tag}.bin");
    // smbclient stops at the first failing command: the listing after `get` proves the file
    // was there, the one after `rm` that it is gone.
    let out = smbclient(
        client,
        server,
        max_protocol,
        options,
        &format!(
            "put {} {remote}; get {remote} {}; ls {remote}; rm {remote}; ls",
            local.display(),
            back.display()
        ),
    );
    if !out.status.success() {
        return Err(failure("smbclient (Docker) put/get/ls/rm", &out));
    }
    check_round_trip(
        &String::from_utf8_lossy(&out.stdout),
        &remote,
        None,
        &back,
        &original,
    )?;
    if server.share_path().join(&remote).exists() {
        return Err(format!("`rm {remote}` left the file on the share"));
    }
    Ok(format!(
        "put/get/ls/rm of {} bytes identical, removed from the share",
        original.len()
    ))
}

fn with_server_log(mut run: CellRun, server: &OurServer) -> CellRun {
    if run.outcome.is_err() {
        run.outcome = run
            .outcome
            .map_err(|why| format!("{why}\n--- server log ---\n{}", server.log_tail(15)));
    }
    run
}

#[test]
fn docker_smbclient_to_our_server_every_dialect_and_algorithm() {
    let client = DockerSmbclient::start();
    let server = OurServer::start("interop-docker-smbclient", &WIRESHARK_SIZED);
    let peer = peer(&client);
    let capture = start_capture(server.port());

    let mut runs: Vec<(CellRun, &str, Option<&str>)> = Vec::new();
    for (i, dialect) in DIALECTS.iter().enumerate() {
        let max = SambaOptions::protocol_name(dialect);
        let algorithm = match *dialect {
            "3.1.1" => "aes-gmac (server's first choice)".to_string(),
            other => default_algorithm(other).to_string(),
        };
        let key = CellKey::new(dialect, &algorithm, POLICY);
        let tag = format!("d{}", dialect.replace('.', ""));
        let run = run_cell(key, || {
            put_ls_get_rm(&client, &server, max, &[], &tag, i as u64)
        });
        runs.push((with_server_log(run, &server), dialect, None));
    }
    for (i, algorithm) in ALGORITHMS.iter().enumerate() {
        let key = CellKey::new("3.1.1", algorithm, POLICY);
        let options = [format!(
            "client smb3 signing algorithms={}",
            samba_algorithm(algorithm)
        )];
        let tag = format!("a-{algorithm}");
        let run = run_cell(key, || {
            put_ls_get_rm(&client, &server, "SMB3_11", &options, &tag, 10 + i as u64)
        });
        runs.push((with_server_log(run, &server), "3.1.1", Some(algorithm)));
    }

    let wire = WireSessions::read(&capture.stop(), Interim::Forbidden);
    let mut matrix = Matrix::new(
        &peer,
        "docker_smbclient_to_our_server_every_dialect_and_algorithm",
    );
    for (mut run, dialect, algorithm) in runs {
        // 3.1.1 without a forced algorithm: our server's first preference, AES-GMAC.
        let expected = algorithm.or((dialect == "3.1.1").then_some("aes-gmac"));
        run.check_wire(wire.expect_signed(&run, dialect, expected));
        matrix.add(run);
    }
    matrix.finish();
}

/// The SMB2 column of the signing guidance: the session is signed when either side requires
/// it, and only then; our server's audit log must agree with the wire.
#[test]
fn docker_smbclient_to_our_server_signing_policy() {
    let client = DockerSmbclient::start();
    let mut matrix = None;
    // Captures of failed cells are kept while the test fails: hold them until `finish`.
    let mut captures = Vec::new();
    for (require_server, client_signing, signed) in [
        (true, "disabled", true),
        (false, "required", true),
        (false, "disabled", false),
    ] {
        let mut extra = WIRESHARK_SIZED.to_vec();
        extra.extend([
            "--require-signing",
            if require_server { "true" } else { "false" },
        ]);
        let server = OurServer::start("interop-docker-smbclient-policy", &extra);
        let matrix = matrix.get_or_insert_with(|| {
            Matrix::new(
                &peer(&client),
                "docker_smbclient_to_our_server_signing_policy",
            )
        });
        let capture = start_capture(server.port());
        let policy = format!(
            "server {}, client signing={client_signing}",
            if require_server {
                "required"
            } else {
                "not required"
            }
        );
        let algorithm = if signed {
            "aes-gmac (server's first choice)"
        } else {
            "none"
        };
        let key = CellKey::new("3.1.1", algorithm, &policy);
        let options = [format!("client signing={client_signing}")];
        let tag = format!("policy-{require_server}-{client_signing}");
        let run = run_cell(key, || {
            let evidence = put_ls_get_rm(&client, &server, "SMB3_11", &options, &tag, 40)?;
            let audit = server.audit();
            let unsigned_event = audit.contains(r#""event":"session_unsigned""#);
            if signed == unsigned_event {
                return Err(format!(
                    "server audit log disagrees (expected a {} session):\n{audit}",
                    if signed { "signed" } else { "unsigned" }
                ));
            }
            Ok(format!(
                "{evidence}; server audit: {}",
                if signed {
                    "signed session"
                } else {
                    "session_unsigned event"
                }
            ))
        });
        let wire = WireSessions::read(&capture.stop(), Interim::Forbidden);
        let mut run = with_server_log(run, &server);
        run.check_wire(if signed {
            wire.expect_signed(&run, "3.1.1", Some("aes-gmac"))
        } else {
            wire.expect_unsigned(&run, "3.1.1")
        });
        matrix.add(run);
        captures.push(wire);
    }
    if let Some(matrix) = matrix {
        matrix.finish();
    }
    drop(captures);
}
