//! The lab binary: address fencing, and `demo` end to end (exit code and lab-report.json).

use std::process::Command;

fn smb_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smb-lab"))
}

#[test]
fn relay_and_tamper_refuse_non_loopback_addresses() {
    let cases: [&[&str]; 5] = [
        &["relay", "--listen", "0.0.0.0:4455", "--target", "127.0.0.4:4455"],
        &["relay", "--listen", "127.0.0.3:4455", "--target", "192.168.1.10:445"],
        &[
            "tamper",
            "--listen",
            "127.0.0.3:4455",
            "--target",
            "10.1.2.3:445",
            "--mode",
            "flip-read",
        ],
        &["tamper", "--listen", "[::]:4455", "--target", "127.0.0.4:445", "--mode", "flip-read"],
        &["relay", "--listen", "127.0.0.3:445", "--target", "127.0.0.4:4455"],
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
        .args(["tamper", "--listen", "127.0.0.3:0", "--target", "127.0.0.4:1", "--mode", "nope"])
        .output()
        .expect("run smb-lab");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_exit_code_and_json_verdicts() {
    let dir = std::env::temp_dir().join(format!("smb-lab-demo-{}", std::process::id()));
    let out = smb_lab().args(["demo", "--out"]).arg(&dir).output().expect("run smb-lab demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = std::fs::read_to_string(dir.join("lab-report.json")).expect("lab-report.json");
    let md = std::fs::read_to_string(dir.join("lab-report.md")).expect("lab-report.md");
    let _ = std::fs::remove_dir_all(&dir);
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let table = report["signing_table"].as_array().expect("signing_table");
    // Every group of the issue is there.
    for group in ["relay", "victim-signing", "flip-read", "strip-signing-required", "guest"] {
        assert!(scenarios.iter().any(|s| s["group"] == group), "no {group} scenario");
    }
    assert_eq!(table.len(), 20, "4 policy pairs x 5 dialects");
    let failed: Vec<String> = scenarios
        .iter()
        .filter(|s| s["passed"] != true)
        .map(|s| format!("{}: observed {}", s["id"], s["observed"]))
        .chain(table.iter().filter(|c| c["passed"] != true).map(|c| c.to_string()))
        .collect();
    // The exit code carries the same verdict as the JSON.
    assert_eq!(report["all_passed"], failed.is_empty());
    assert_eq!(out.status.code(), Some(if failed.is_empty() { 0 } else { 1 }), "{stdout}");
    assert!(md.matches("```mermaid").count() == 2);
    assert!(stdout.contains("Signing table"));
    assert!(failed.is_empty(), "scenarios that did not end as expected:\n{}", failed.join("\n"));
}
