//! `cargo xtask`: the project's task runner (std, anyhow and serde_json only).
//!
//! - `cargo xtask test`: fmt check, clippy, smb-core API docs, peers, binaries, doc tests,
//!   then the whole suite under cargo-nextest (or `cargo test` when nextest is absent). Stops at the first failing step.
//! - `cargo xtask peers [--stop]`: installs Samba, smbclient, tshark, the Python venv with
//!   impacket and smbprotocol, Docker and the Samba 4.22 image when missing. Samba itself (on
//!   the host or in Docker) is started per test by the peer harness (the `peers` crate), not here.
//! - `cargo xtask bench`: the signing benchmark.
//! - `cargo xtask bench e2e [FLAGS]`: the end-to-end transfer benchmark (bench_e2e.rs).
//! - `cargo xtask load|soak [FLAGS]`: 500 signed sessions against the release server (load.rs).

mod bench_e2e;
mod load;
mod matrix;
mod peers;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::run::{cargo, has_cargo_subcommand, Step};

const USAGE: &str = "usage: cargo xtask <test|peers [--stop]|bench [e2e [FLAGS]]|matrix>

  test          fmt check, clippy, smb-core API docs, peers, then every test (nextest)
  peers         install the interop peers (Samba, smbclient, tshark, impacket, smbprotocol,
                Docker and the Samba 4.22 image)
  peers --stop  stop any Samba (and the test Docker engine) the harness left running
  bench         cargo bench -p benches --bench signing
  bench e2e     end-to-end transfers on loopback (our client/server, smbclient, Samba);
                writes BENCHMARKS.md's e2e section and docs/bench-e2e.svg (--help: flags)
  matrix        render target/interop-matrix.md from the last interop results
  load          500 signed sessions write/read-back/verify for 60 s; figures into BENCHMARKS.md
  soak          the same for 10 minutes (RSS over time), not in CI";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["test"] => test(),
        ["peers"] => peers::install(&Paths::new()).map(|_| ()),
        ["peers", "--stop"] => peers::stop(&Paths::new()),
        ["bench"] => bench(),
        ["bench", "e2e", rest @ ..] => bench_e2e::run(rest),
        ["matrix"] => matrix::report(&Paths::new()),
        ["load", rest @ ..] => load::run(false, rest),
        ["soak", rest @ ..] => load::run(true, rest),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where things live: the repository root, the cargo target dir, the peers dir.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub target: PathBuf,
    pub peers: PathBuf,
}

impl Paths {
    fn new() -> Self {
        // xtask/ is one level below the workspace root.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives inside the workspace")
            .to_path_buf();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { root.join(t) })
            .unwrap_or_else(|| root.join("target"));
        let peers = target.join("peers");
        Paths {
            root,
            target,
            peers,
        }
    }
}

fn test() -> Result<()> {
    let paths = Paths::new();
    std::env::set_current_dir(&paths.root)?;

    Step::new("format check", cargo(["fmt", "--all", "--", "--check"]))
        .hint("run `cargo fmt --all` and commit the result")
        .run()?;
    Step::new(
        "clippy",
        cargo([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )
    .hint("fix the warnings above; the suite treats every clippy warning as an error")
    .run()?;
    // smb-core is the embeddable crate: its API docs (missing_docs on, links resolved) build
    // without a warning.
    let mut api_docs = cargo(["doc", "-p", "smb-core", "--no-deps"]);
    api_docs.env("RUSTDOCFLAGS", "-D warnings");
    Step::new("smb-core API docs", api_docs)
        .hint("document the item or fix the link rustdoc names above")
        .run()?;

    let peers = peers::install(&paths)?;

    // Interop tests drive the workspace binaries (smb-server, smb-client, smb-lab); build them
    // once here so no test has to run cargo itself.
    Step::new("build binaries", cargo(["build", "--workspace", "--bins"])).run()?;
    let bin_dir = paths.target.join("debug");

    let env: Vec<(&str, PathBuf)> = vec![
        ("SMB_PEERS_DIR", paths.peers.clone()),
        ("SMB_INTEROP_PYTHON", peers.python.clone()),
        ("SMB_BIN_DIR", bin_dir),
    ];
    for (key, value) in &env {
        println!("xtask: {key}={}", value.display());
    }

    // nextest does not run doc tests; run them first so nextest's summary stays last.
    let mut doc = cargo(["test", "--workspace", "--doc"]);
    doc.envs(env.iter().map(|(k, v)| (k, v)));
    Step::new("doc tests", doc).run()?;

    let mut tests = if has_cargo_subcommand("nextest") {
        cargo(["nextest", "run", "--workspace", "--no-fail-fast"])
    } else {
        println!("xtask: cargo-nextest not found, falling back to `cargo test`");
        // Doc tests already ran above.
        cargo([
            "test",
            "--workspace",
            "--no-fail-fast",
            "--lib",
            "--bins",
            "--tests",
        ])
    };
    tests.envs(env.iter().map(|(k, v)| (k, v)));
    // The interop matrix shows this run only; it is printed after the runner's summary.
    tests.env("SMB_INTEROP_RESULTS", matrix::clear(&paths)?);
    let junit = paths.target.join("nextest/default/junit.xml");
    let _ = std::fs::remove_file(&junit);
    let outcome = Step::new("tests", tests).run();
    matrix::report(&paths)?;
    // The matrix is printed after the runner's summary; repeat the totals as the last line.
    if let Some(totals) = std::fs::read_to_string(&junit)
        .ok()
        .and_then(|xml| junit_totals(&xml))
    {
        println!("\ntests: {totals}");
    }
    outcome
}

/// "N passed, N failed" from the root `<testsuites tests=.. failures=.. errors=..>` element of
/// nextest's JUnit report.
fn junit_totals(xml: &str) -> Option<String> {
    let start = xml.find("<testsuites")?;
    let element = &xml[start..start + xml[start..].find('>')?];
    let attr = |name: &str| -> Option<u64> {
        let key = format!(" {name}=\"");
        let from = element.find(&key)? + key.len();
        element[from..from + element[from..].find('"')?]
            .parse()
            .ok()
    };
    let (tests, failures) = (
        attr("tests")?,
        attr("failures")? + attr("errors").unwrap_or(0),
    );
    Some(format!(
        "{} passed, {failures} failed",
        tests.saturating_sub(failures)
    ))
}

fn bench() -> Result<()> {
    let paths = Paths::new();
    std::env::set_current_dir(&paths.root)?;
    Step::new(
        "signing benchmark",
        cargo(["bench", "-p", "benches", "--bench", "signing"]),
    )
    .run()
}

#[cfg(test)]
mod tests {
    use super::junit_totals;

    #[test]
    fn totals_come_from_the_root_element() {
        let xml = r#"<?xml version="1.0"?><testsuites name="nextest-run" tests="12" failures="2" errors="1" time="1.0"><testsuite name="a" tests="3" failures="0">"#;
        assert_eq!(junit_totals(xml).as_deref(), Some("9 passed, 3 failed"));
        assert_eq!(junit_totals("<testsuite tests=\"1\">"), None);
    }
}
