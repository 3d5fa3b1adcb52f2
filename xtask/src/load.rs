//! `cargo xtask load` and `cargo xtask soak` (issue 12): the release server under 500
//! concurrent signed sessions on loopback, from several 127.x source addresses, each
//! writing a file, reading it back and comparing, for 60 s (load) or 10 minutes (soak, not
//! in CI). The driver is `smb-server/examples/load.rs`; this starts the server, runs the
//! driver, stops the server by PID, fails on any error, and writes the figures into
//! BENCHMARKS.md (the load or soak section) and every run as JSON lines into
//! target/load/runs.jsonl.
//!
//! Flags (passed to the driver): `--sessions N`, `--seconds S`, `--sources K`, `--size B`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::run::{cargo, Step};
use crate::Paths;

const USER: &str = "load:L0ad!pass";

pub fn run(soak: bool, args: &[&str]) -> Result<()> {
    let paths = Paths::new();
    std::env::set_current_dir(&paths.root)?;
    Step::new(
        "release build",
        cargo([
            "build",
            "--release",
            "-p",
            "smb-server",
            "--bin",
            "smb-server",
            "--example",
            "load",
        ]),
    )
    .run()?;
    let release = paths.target.join("release");
    let dir = paths.target.join("load");
    let share = dir.join("share");
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(&share)?;
    let mut server = Command::new(release.join("smb-server"))
        .args(["--listen", "127.0.0.1:0", "--share"])
        .arg(format!("load={}", share.display()))
        .args(["--user", USER])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the release smb-server")?;
    let pid = server.id();
    let result = (|| -> Result<serde_json::Value> {
        let mut line = String::new();
        BufReader::new(server.stdout.take().context("server stdout")?).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected server output {line:?}"))?
            .to_string();
        let mut driver = Command::new(release.join("examples/load"));
        driver.args(["--server", &addr, "--pid", &pid.to_string()]);
        if soak && !args.contains(&"--seconds") {
            driver.args(["--seconds", "600"]);
        }
        driver.args(args);
        eprintln!(
            "xtask: {} against {addr} (server pid {pid})",
            if soak { "soak" } else { "load" }
        );
        let out = driver.output().context("running the load driver")?;
        if !out.status.success() {
            bail!(
                "the load driver failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("driver output")
    })();
    // Stop what was started, by PID.
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&share);
    let r = result?;
    let mut runs = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("runs.jsonl"))?;
    let mut record = r.clone();
    record["kind"] = if soak { "soak" } else { "load" }.into();
    record["date"] = date().into();
    writeln!(runs, "{record}")?;
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    println!(
        "{} sessions, {:.0} s: {:.0} ops/s, p50 {:.1} ms, p99 {:.1} ms, errors {}, peak RSS {:.0} MiB",
        f("sessions"),
        f("seconds"),
        f("ops_per_s"),
        f("p50_us") / 1000.0,
        f("p99_us") / 1000.0,
        f("errors"),
        f("peak_rss_kib") / 1024.0
    );
    if f("errors") != 0.0 {
        bail!("{} errors; first: {}", f("errors"), r["first_error"]);
    }
    let section = markdown(soak, &r);
    let bench = paths.root.join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&bench).unwrap_or_default();
    std::fs::write(&bench, replace_section(&text, soak, &section))?;
    println!("wrote {}", bench.display());
    Ok(())
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn markers(soak: bool) -> (&'static str, &'static str) {
    if soak {
        ("<!-- soak:start -->", "<!-- soak:end -->")
    } else {
        ("<!-- load:start -->", "<!-- load:end -->")
    }
}

/// Replaces the text between the markers, or appends the section with its markers.
fn replace_section(text: &str, soak: bool, section: &str) -> String {
    let (start, end) = markers(soak);
    match (text.find(start), text.find(end)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{start}\n{section}{}", &text[..a], &text[b..])
        }
        _ => format!("{}\n{start}\n{section}{end}\n", text.trim_end()),
    }
}

fn markdown(soak: bool, r: &serde_json::Value) -> String {
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    let mut s = String::new();
    let title = if soak { "Soak" } else { "Load" };
    let cmd = if soak {
        "cargo xtask soak"
    } else {
        "cargo xtask load"
    };
    s.push_str(&format!(
        "## {title} (issue 12)\n\n```\n{cmd}\n```\n\n\
         The release `smb-server` on 127.0.0.1 (default limits) and `smb-server/examples/load.rs`: \
         {} concurrent sessions (NTLM, signing required, 3.1.1 AES-GMAC) from {} loopback source \
         addresses (127.0.1.x), each writing a {} KiB file, reading it back and comparing, in a \
         loop. An operation is one write or one read-back (CREATE + WRITE/READ + CLOSE). Run {} \
         on the 2-vCPU machine described above, shared with other work.\n\n\
         | sessions | seconds | operations | ops/s | p50 latency | p99 latency | errors | server RSS start | end | peak (VmHWM) |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {:.0} | {} | {:.0} | {:.1} ms | {:.1} ms | {} | {:.0} MiB | {:.0} MiB | {:.0} MiB |\n\n",
        f("sessions"),
        f("sources"),
        f("size") / 1024.0,
        date(),
        f("sessions"),
        f("seconds"),
        f("ops"),
        f("ops_per_s"),
        f("p50_us") / 1000.0,
        f("p99_us") / 1000.0,
        f("errors"),
        f("rss_start_kib") / 1024.0,
        f("rss_end_kib") / 1024.0,
        f("peak_rss_kib") / 1024.0,
    ));
    if soak {
        s.push_str("Server RSS over time (sampled every second, shown every minute):\n\n| minute | RSS |\n|---:|---:|\n");
        if let Some(samples) = r["rss_kib_by_second"].as_array() {
            // The first sample of each minute (a busy sampler may skip a second).
            let mut minute = 1;
            for p in samples {
                let t = p[0].as_u64().unwrap_or(0);
                if t >= minute * 60 {
                    s.push_str(&format!(
                        "| {minute} | {:.0} MiB |\n",
                        p[1].as_f64().unwrap_or(0.0) / 1024.0
                    ));
                    minute = t / 60 + 1;
                }
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_in_place_or_appended() {
        let t = replace_section("# B\n\ntext\n", false, "one\n");
        assert!(t.ends_with("<!-- load:start -->\none\n<!-- load:end -->\n"));
        let t2 = replace_section(&t, false, "two\n");
        assert!(t2.contains("two\n") && !t2.contains("one\n"));
        assert_eq!(t2.matches("load:start").count(), 1);
        assert!(t2.starts_with("# B\n\ntext\n"));
    }
}
