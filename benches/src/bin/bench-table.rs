//! Prints the signing micro-benchmark table (Markdown) from criterion's results:
//! `cargo bench -p benches --bench signing` first, then `cargo run -p benches --bin bench-table
//! [GHZ]`. GB/s = 10^9 bytes of whole message per second from criterion's median time;
//! cycles per byte = median seconds × GHZ × 10^9 / bytes (GHZ defaults to the nominal
//! frequency /proc/cpuinfo reports, which under a hypervisor is the TSC rate, not the turbo).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

/// (group, function, size label) -> (bytes, median ns)
type Results = BTreeMap<(String, String, String), (u64, f64)>;

fn collect(dir: &Path, out: &mut Results) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let bench = path.join("new/benchmark.json");
        if bench.is_file() {
            let b: Value = serde_json::from_str(&std::fs::read_to_string(&bench)?)?;
            let e: Value =
                serde_json::from_str(&std::fs::read_to_string(path.join("new/estimates.json"))?)?;
            let bytes = b["throughput"]["Bytes"].as_u64().unwrap_or(0);
            let median = e["median"]["point_estimate"].as_f64().context("median")?;
            let s = |k: &str| b[k].as_str().unwrap_or("").to_string();
            out.insert(
                (s("group_id"), s("function_id"), s("value_str")),
                (bytes, median),
            );
        } else {
            collect(&path, out)?;
        }
    }
    Ok(())
}

fn nominal_ghz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map(|mhz| mhz / 1000.0)
        .unwrap_or(1.0)
}

fn main() -> Result<()> {
    let ghz: f64 = match std::env::args().nth(1) {
        Some(a) => a.parse().context("GHZ")?,
        None => nominal_ghz(),
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    let mut r = Results::new();
    collect(&root, &mut r).with_context(|| format!("reading {}", root.display()))?;
    let gbs = |g: &str, f: &str, s: &str| -> Option<f64> {
        r.get(&(g.into(), f.into(), s.into()))
            .map(|(bytes, ns)| *bytes as f64 / ns)
    };
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "–".into(),
    };
    println!("Cycles per byte at {ghz:.2} GHz.\n");
    println!(
        "| MAC | size | ours | aws-lc-rs | OpenSSL | RustCrypto | ours / aws-lc-rs | ours c/B | fallbacks (GB/s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for alg in ["aes-gmac", "aes-cmac", "hmac-sha256"] {
        let g = format!("sign/{alg}");
        for size in ["64B", "1KiB", "4KiB", "16KiB", "64KiB", "1MiB"] {
            let ours = gbs(&g, "ours", size);
            if ours.is_none() {
                continue;
            }
            let cpb = ours.map(|v| ghz / v);
            let mut fallbacks = Vec::new();
            for f in [
                "ours-vpclmulqdq-512-gfni",
                "ours-vpclmulqdq-512",
                "ours-vpclmulqdq-256",
                "ours-pclmulqdq",
                "ours-portable",
            ] {
                if let Some(v) = gbs(&g, f, size) {
                    fallbacks.push(format!("{} {v:.2}", f.trim_start_matches("ours-")));
                }
            }
            println!(
                "| {alg} | {size} | {} | {} | {} | {} | {} | {} | {} |",
                fmt(ours),
                fmt(gbs(&g, "aws-lc-rs", size)),
                fmt(gbs(&g, "openssl", size)),
                fmt(gbs(&g, "rustcrypto", size)),
                ratio(ours, gbs(&g, "aws-lc-rs", size)),
                cpb.map_or("–".into(), |c| format!("{c:.2}")),
                fallbacks.join(", ")
            );
        }
    }
    let b = "batch/aes-cmac";
    let batch = gbs(b, "ours-batch-8x4KiB", "");
    let serial = gbs(b, "ours-serial-8x4KiB", "");
    let aws = gbs(b, "aws-lc-rs-1x4KiB", "");
    if batch.is_some() {
        println!("\n| AES-CMAC, 4 KiB messages | GB/s | vs aws-lc-rs single |");
        println!("|---|---:|---:|");
        println!(
            "| ours, batch of 8 | {} | {} |",
            fmt(batch),
            ratio(batch, aws)
        );
        println!(
            "| ours, 8 one by one | {} | {} |",
            fmt(serial),
            ratio(serial, aws)
        );
        println!("| aws-lc-rs, one message | {} | 1.00 |", fmt(aws));
    }
    Ok(())
}
