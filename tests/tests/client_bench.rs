//! `smb-client bench` against our server (issue 8): the JSON records name every dialect and
//! signing mode the server accepts, with sizes, rates and signed/unsigned ratios; the modes
//! the server refuses are reported as skipped; the test file is gone afterwards; a
//! non-loopback target is refused before any connection.

use std::fs;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tests::{run_with_timeout, scratch_dir, show, spawn_listening, workspace_bin, ChildGuard};

const MIB: u64 = 1024 * 1024;

fn server(share: &std::path::Path, extra: &[&str]) -> (ChildGuard, u16) {
    let (guard, addr) = spawn_listening(
        Command::new(workspace_bin("smb-server"))
            .args(["--listen", "127.0.0.1:0", "--share"])
            .arg(format!("data={}", share.display()))
            .args(["--user", "alice:Passw0rd!"])
            .args(extra),
        Duration::from_secs(20),
    );
    (guard, addr.port())
}

fn bench(port: u16, extra: &[&str]) -> Output {
    run_with_timeout(
        Command::new(workspace_bin("smb-client"))
            .args(["bench", &format!("//127.0.0.1:{port}/data")])
            .args(["-U", "alice%Passw0rd!", "--json"])
            .args(extra),
        Duration::from_secs(300),
    )
}

fn records(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}\n{}", show(out))))
        .collect()
}

fn of_type<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["type"] == kind).collect()
}

#[test]
fn bench_measures_every_mode_the_server_accepts() {
    let root = scratch_dir("client-bench-open");
    let share = root.join("share");
    fs::create_dir_all(&share).unwrap();
    let (_guard, port) = server(&share, &["--require-signing", "false"]);
    let out = bench(
        port,
        &[
            "--size",
            "3",
            "--runs",
            "2",
            "--io-size",
            "1M",
            "--dialects",
            "2.1,3.1.1",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let all = records(&out);
    let runs = of_type(&all, "run");
    let summaries = of_type(&all, "summary");
    // 2.1: unsigned, HMAC; 3.1.1: unsigned, HMAC, CMAC, GMAC; two runs each.
    assert_eq!(runs.len(), 12, "{}", show(&out));
    assert_eq!(summaries.len(), 6, "{}", show(&out));
    assert!(of_type(&all, "skipped").is_empty(), "{}", show(&out));
    let modes: Vec<(String, String)> = summaries
        .iter()
        .map(|s| {
            (
                s["dialect"].as_str().unwrap().to_string(),
                s["signing"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (d, a) in [
        ("2.1", "none"),
        ("2.1", "hmac-sha256"),
        ("3.1.1", "none"),
        ("3.1.1", "hmac-sha256"),
        ("3.1.1", "aes-cmac"),
        ("3.1.1", "aes-gmac"),
    ] {
        assert!(
            modes.contains(&(d.to_string(), a.to_string())),
            "{d} {a} missing: {modes:?}"
        );
    }
    for r in runs.iter().chain(&summaries) {
        assert_eq!(r["size"], 3 * MIB, "{r}");
        assert_eq!(r["io_size"], MIB, "{r}");
        assert!(r["write_mib_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["read_mib_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    for s in &summaries {
        let signed = s["signing"] != "none";
        assert_eq!(s["write_ratio"].is_f64(), signed, "{s}");
        assert_eq!(s["read_ratio"].is_f64(), signed, "{s}");
        assert_eq!(s["runs"], 2, "{s}");
    }
    let left: Vec<_> = fs::read_dir(&share).unwrap().flatten().collect();
    assert!(left.is_empty(), "the test file was left behind: {left:?}");
}

#[test]
fn bench_skips_what_the_server_refuses() {
    let root = scratch_dir("client-bench-strict");
    let share = root.join("share");
    fs::create_dir_all(&share).unwrap();
    // Signing required, and only CMAC on 3.1.1: no unsigned session, no GMAC, no HMAC.
    let (_guard, port) = server(&share, &["--signing-algorithms", "aes-cmac"]);
    let out = bench(
        port,
        &[
            "--size",
            "1",
            "--runs",
            "1",
            "--dialects",
            "3.1.1",
            "--file",
            "probe.tmp",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let all = records(&out);
    let summaries = of_type(&all, "summary");
    assert_eq!(summaries.len(), 1, "{}", show(&out));
    assert_eq!(summaries[0]["signing"], "aes-cmac");
    // No unsigned reference, so no ratio.
    assert!(summaries[0]["write_ratio"].is_null());
    let skipped: Vec<String> = of_type(&all, "skipped")
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    for mode in ["3.1.1 unsigned", "3.1.1 hmac-sha256", "3.1.1 aes-gmac"] {
        assert!(
            skipped.iter().any(|s| s.starts_with(mode)),
            "{mode} not reported as skipped: {skipped:?}"
        );
    }
    assert!(!share.join("probe.tmp").exists());
}

#[test]
fn bench_refuses_non_loopback_targets() {
    // 192.0.2.1 is TEST-NET-1: the guard refuses it before any connection attempt.
    let out = run_with_timeout(
        Command::new(workspace_bin("smb-client")).args([
            "bench",
            "//192.0.2.1:4455/data",
            "-U",
            "a%b",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{}",
        show(&out)
    );
}
