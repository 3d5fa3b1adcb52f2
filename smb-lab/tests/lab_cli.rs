//! The lab binary: address fencing, and `demo` end to end (exit code and lab-report.json).

use std::process::Command;

fn smb_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smb-lab"))
}

#[test]
fn relay_and_tamper_refuse_non_loopback_addresses() {
    let cases: [&[&str]; 5] = [
        &[
            "relay",
            "--listen",
            "0.0.0.0:4455",
            "--target",
            "127.0.0.4:4455",
        ],
        &[
            "relay",
            "--listen",
            "127.0.0.3:4455",
            "--target",
            "192.168.1.10:445",
        ],
        &[
            "tamper",
            "--listen",
            "127.0.0.3:4455",
            "--target",
            "10.1.2.3:445",
            "--mode",
            "flip-read",
        ],
        &[
            "tamper",
            "--listen",
            "[::]:4455",
            "--target",
            "127.0.0.4:445",
            "--mode",
            "flip-read",
        ],
        &[
            "relay",
            "--listen",
            "127.0.0.3:445",
            "--target",
            "127.0.0.4:4455",
        ],
    ];
    for args in cases {
        let out = smb_lab().args(args).output().expect("run smb-lab");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("not a loopback address") || stderr.contains("reserved"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing was started for {args:?}");
    }
}

#[test]
fn tamper_rejects_unknown_mode() {
    let out = smb_lab()
        .args([
            "tamper",
            "--listen",
            "127.0.0.3:0",
            "--target",
            "127.0.0.4:1",
            "--mode",
            "nope",
        ])
        .output()
        .expect("run smb-lab");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_exit_code_and_json_verdicts() {
    let dir = std::env::temp_dir().join(format!("smb-lab-demo-{}", std::process::id()));
    let out = smb_lab()
        .args(["demo", "--out"])
        .arg(&dir)
        .output()
        .expect("run smb-lab demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = std::fs::read_to_string(dir.join("lab-report.json")).expect("lab-report.json");
    let md = std::fs::read_to_string(dir.join("lab-report.md")).expect("lab-report.md");
    let _ = std::fs::remove_dir_all(&dir);
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let table = report["signing_table"].as_array().expect("signing_table");
    // Every group of the issue is there.
    for group in [
        "relay",
        "victim-signing",
        "flip-read",
        "strip-signing-required",
        "guest",
    ] {
        assert!(
            scenarios.iter().any(|s| s["group"] == group),
            "no {group} scenario"
        );
    }
    assert_eq!(table.len(), 20, "4 policy pairs x 5 dialects");
    let failed: Vec<String> = scenarios
        .iter()
        .filter(|s| s["passed"] != true)
        .map(|s| format!("{}: observed {}", s["id"], s["observed"]))
        .chain(
            table
                .iter()
                .filter(|c| c["passed"] != true)
                .map(|c| c.to_string()),
        )
        .collect();
    // The exit code carries the same verdict as the JSON.
    assert_eq!(report["all_passed"], failed.is_empty());
    assert_eq!(
        out.status.code(),
        Some(if failed.is_empty() { 0 } else { 1 }),
        "{stdout}"
    );
    assert!(md.matches("```mermaid").count() == 2);
    assert!(stdout.contains("Signing table"));
    assert!(
        failed.is_empty(),
        "scenarios that did not end as expected:\n{}",
        failed.join("\n")
    );
}

/// Starts `smb-lab ARGS`, waits for its `listening on ADDR` line; returns the child and address.
fn spawn_listening(args: &[&str]) -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = smb_lab()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start smb-lab");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout);
    let mut first = String::new();
    lines
        .read_line(&mut first)
        .expect("read the listening line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .parse()
        .unwrap();
    child.stdout = Some(lines.into_inner());
    (child, addr)
}

/// Waits for a `--once` child and returns its stdout, killing it after 30 s.
fn finish(mut child: std::process::Child) -> (Option<i32>, String) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("smb-lab --once did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    (status.code(), out)
}

async fn victim_login(addr: std::net::SocketAddr) -> String {
    let creds =
        smb_core::auth::Credentials::password(smb_lab::target::USER, "", smb_lab::target::PASSWORD);
    let cfg = smb_core::conn::client::ClientConfig::new(&addr.to_string(), creds);
    let mut c = smb_client::client::Client::connect(addr, cfg)
        .await
        .expect("connect");
    match c.login().await {
        Ok(s) => format!("logged in: {s}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_command_relays_one_victim_and_reports_json() {
    use smb_lab::target::{TargetServer, TargetSetup};
    let ip = "127.0.0.4".parse().unwrap();
    for require in [false, true] {
        let target = TargetServer::start(&TargetSetup::new(ip, require))
            .await
            .unwrap();
        let t = target.addr.to_string();
        let (child, addr) = spawn_listening(&[
            "relay",
            "--listen",
            "127.0.0.3:0",
            "--target",
            &t,
            "--once",
            "--json",
            "--source",
            "127.0.0.3",
        ]);
        let victim = victim_login(addr).await;
        assert!(
            victim.contains("LOGON_FAILURE"),
            "the victim sees a failed logon: {victim}"
        );
        let (code, out) = tokio::task::spawn_blocking(move || finish(child))
            .await
            .unwrap();
        assert_eq!(code, Some(0), "{out}");
        let attempt: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
        assert_eq!(attempt["auth_accepted"], true, "{attempt:#}");
        assert_eq!(attempt["relayed_user"], "alice");
        assert_eq!(attempt["first_post_auth_accepted"], !require, "{attempt:#}");
        assert_eq!(attempt["marker_written"], !require, "{attempt:#}");
        assert_eq!(target.has_file("RELAYED-BY-SMB-LAB.txt"), !require);
        if require {
            assert_eq!(attempt["stopped_at"]["request"], "TREE_CONNECT");
            assert_eq!(attempt["stopped_at"]["status"], "ACCESS_DENIED");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamper_command_strips_signing_required_and_reports() {
    use smb_lab::target::{TargetServer, TargetSetup};
    let setup = TargetSetup::new("127.0.0.4".parse().unwrap(), true)
        .dialect(smb_core::header::Dialect::SMB311);
    let target = TargetServer::start(&setup).await.unwrap();
    let t = target.addr.to_string();
    let (child, addr) = spawn_listening(&[
        "tamper",
        "--listen",
        "127.0.0.3:0",
        "--target",
        &t,
        "--mode",
        "strip-signing-required",
        "--once",
    ]);
    let victim = victim_login(addr).await;
    assert!(
        victim.contains("SESSION_SETUP"),
        "3.1.1 preauth integrity catches it: {victim}"
    );
    let (code, out) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("SecurityMode 0x0003 -> 0x0001"), "{out}");
    assert!(out.contains("the client closed the connection"), "{out}");
}
