//! `cargo xtask bench e2e [FLAGS]`: the end-to-end transfer benchmark (issue 8).
//!
//! Builds the release binaries (smb-server, smb-client and the benchmark driver
//! `tests/src/bin/bench_e2e`, which starts Samba through the test harness), makes sure the
//! peers are installed, then runs the driver with `SMB_BIN_DIR=target/release`. By default it
//! replaces the e2e section of BENCHMARKS.md, draws docs/bench-e2e.svg and keeps every run as
//! JSON lines in target/bench-e2e/runs.jsonl; flags are passed through (`--size 64 --runs 1`
//! for a quick look, `--goals` for only the cells of issue 8's goals, more rounds, into their
//! own section and docs/bench-e2e-goals.svg; `--help` for the list).

use anyhow::Result;

use crate::run::{cargo, Step};
use crate::{peers, Paths};

pub fn run(args: &[&str]) -> Result<()> {
    let paths = Paths::new();
    std::env::set_current_dir(&paths.root)?;
    peers::install(&paths)?;
    Step::new(
        "release build",
        cargo([
            "build",
            "--release",
            "-p",
            "smb-server",
            "-p",
            "smb-client",
            "-p",
            "tests",
            "--bin",
            "smb-server",
            "--bin",
            "smb-client",
            "--bin",
            "bench_e2e",
        ]),
    )
    .run()?;
    let release = paths.target.join("release");
    let mut cmd = std::process::Command::new(release.join("bench_e2e"));
    let has = |flag: &str| args.contains(&flag);
    if !has("--markdown") {
        cmd.arg("--markdown").arg(paths.root.join("BENCHMARKS.md"));
    }
    if !has("--svg") {
        let chart = if has("--goals") {
            "docs/bench-e2e-goals.svg"
        } else {
            "docs/bench-e2e.svg"
        };
        cmd.arg("--svg").arg(paths.root.join(chart));
    }
    if !has("--json") {
        cmd.arg("--json")
            .arg(paths.target.join("bench-e2e/runs.jsonl"));
    }
    cmd.args(args).env("SMB_BIN_DIR", &release);
    Step::new("end-to-end benchmark", cmd).run()
}
