//! Running commands: one named step at a time, with a clear message when it fails.

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// `cargo ARGS...` using the same cargo that runs xtask.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args);
    cmd
}

/// True when `cargo NAME --version` works (e.g. cargo-nextest is installed).
pub fn has_cargo_subcommand(name: &str) -> bool {
    cargo([name, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One step of a task: prints its name, runs, and names itself again if it fails.
#[derive(Debug)]
pub struct Step {
    name: &'static str,
    cmd: Command,
    hint: Option<&'static str>,
}

impl Step {
    pub fn new(name: &'static str, cmd: Command) -> Self {
        Step {
            name,
            cmd,
            hint: None,
        }
    }

    /// What the user should do when this step fails.
    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn run(mut self) -> Result<()> {
        println!("xtask: == {}: {}", self.name, describe(&self.cmd));
        let started = Instant::now();
        let status = self.cmd.status().with_context(|| {
            format!("step `{}`: cannot start {}", self.name, describe(&self.cmd))
        })?;
        if status.success() {
            println!(
                "xtask: ok {} ({:.1} s)",
                self.name,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        match self.hint {
            Some(hint) => bail!("step `{}` failed ({status}): {hint}", self.name),
            None => bail!("step `{}` failed ({status})", self.name),
        }
    }
}

/// `program arg arg ...` for messages.
pub fn describe(cmd: &Command) -> String {
    // The program by its file name: "cargo", not the toolchain path.
    let program = std::path::Path::new(cmd.get_program());
    let mut out = program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// Runs `cmd` to completion, capturing its output; fails with the output when it exits non-zero.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}):\n{}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
