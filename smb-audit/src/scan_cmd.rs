//! The `scan` command around [`crate::scan`]: bounded concurrency, results streamed as hosts
//! finish (table, JSON Lines, CSV, relay list), a progress line on a terminal, Ctrl-C.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use smb_core::conn::client::Credentials;
use tokio::task::JoinSet;

use crate::scan::{scan_host, HostReport, ScanOptions, Verdict};
use crate::targets::{expand_lenient, Target};

/// `smb-audit scan` options.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// host, host:port, [v6]:port, CIDR (127.0.0.0/24), range (127.0.0.1-20), @FILE.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Port for targets that name none.
    #[arg(short = 'p', long, default_value_t = 445)]
    pub port: u16,
    /// [DOMAIN\]USER%PASSWORD: log on and check that unsigned requests are refused.
    #[arg(short = 'U', long = "user")]
    pub user: Option<String>,
    /// Write JSON Lines (one object per host) to FILE, or `-` for standard output.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
    /// Write the same results flattened as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the hosts that do not require signing, one a line (NetExec's --gen-relay-list).
    #[arg(long, value_name = "FILE")]
    pub relay_list: Option<PathBuf>,
    /// Hosts scanned at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seconds allowed for each host (all of its probes).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Allow targets outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_non_loopback: bool,
}

/// Parses `[DOMAIN\]USER%PASSWORD` (also `DOMAIN/USER`).
pub fn parse_user(spec: &str) -> Result<Credentials> {
    let (who, password) = spec
        .split_once('%')
        .context("-U needs [DOMAIN\\]USER%PASSWORD")?;
    let (domain, user) = who.split_once(['\\', '/']).unwrap_or(("", who));
    anyhow::ensure!(!user.is_empty(), "-U: empty user name");
    Ok(Credentials::password(user, domain, password))
}

struct Sinks {
    table: bool,
    json: Option<Box<dyn Write + Send>>,
    csv: Option<Box<dyn Write + Send>>,
    relay: Option<Box<dyn Write + Send>>,
}

fn create(path: &PathBuf) -> Result<Box<dyn Write + Send>> {
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(io::BufWriter::new(f)))
}

impl Sinks {
    fn open(args: &ScanArgs) -> Result<Sinks> {
        let json: Option<Box<dyn Write + Send>> = match args.json.as_deref() {
            None => None,
            Some("-") => Some(Box::new(io::stdout())),
            Some(p) => Some(create(&PathBuf::from(p))?),
        };
        let mut csv = match &args.csv {
            Some(p) => Some(create(p)?),
            None => None,
        };
        if let Some(c) = csv.as_mut() {
            writeln!(c, "{}", crate::report::CSV_HEADER)?;
        }
        Ok(Sinks {
            table: args.json.as_deref() != Some("-"),
            json,
            csv,
            relay: match &args.relay_list {
                Some(p) => Some(create(p)?),
                None => None,
            },
        })
    }

    fn write(&mut self, target: Option<&Target>, r: &HostReport) -> Result<()> {
        if self.table {
            let mut out = io::stdout().lock();
            writeln!(out, "{}", crate::report::table_row(r))?;
            out.flush()?;
        }
        if let Some(j) = self.json.as_mut() {
            writeln!(j, "{}", serde_json::to_string(r)?)?;
            j.flush()?;
        }
        if let Some(c) = self.csv.as_mut() {
            writeln!(c, "{}", crate::report::csv_row(r))?;
            c.flush()?;
        }
        if let Some(l) = self.relay.as_mut() {
            if let Some(t) = target.filter(|_| r.relay_target()) {
                writeln!(l, "{}", t.relay_label())?;
                l.flush()?;
            }
        }
        Ok(())
    }
}

/// A one-line progress bar on standard error, drawn only when it is a terminal.
struct Progress {
    on: bool,
    total: usize,
}

impl Progress {
    fn draw(&self, done: usize, vulnerable: usize, errors: usize) {
        if !self.on {
            return;
        }
        let width = 30;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        eprint!(
            "\r\x1b[K[{}{}] {done}/{} hosts, {vulnerable} vulnerable, {errors} errors",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.total
        );
    }

    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

pub async fn run(args: ScanArgs) -> Result<ExitCode> {
    let (targets, bad) = expand_lenient(&args.targets, args.port, args.allow_non_loopback);
    anyhow::ensure!(
        args.timeout.is_finite() && args.timeout > 0.0,
        "--timeout must be a positive number of seconds"
    );
    let opts = ScanOptions {
        timeout: Duration::from_secs_f64(args.timeout),
        credentials: args.user.as_deref().map(parse_user).transpose()?,
        allow_non_loopback: args.allow_non_loopback,
    };
    let mut sinks = Sinks::open(&args)?;
    let progress = Progress {
        on: io::stderr().is_terminal(),
        total: targets.len() + bad.len(),
    };
    if sinks.table {
        println!("{}", crate::report::TABLE_HEADER);
    }
    let (mut done, mut vulnerable, mut errors) = (0usize, 0usize, 0usize);
    // Unusable targets are ERROR rows; the others are still scanned.
    for (spec, e) in &bad {
        sinks.write(None, &HostReport::error(spec, e.to_string()))?;
        done += 1;
        errors += 1;
    }
    let concurrency = args.concurrency.max(1);
    let mut pending = targets.into_iter();
    let mut running = JoinSet::new();
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        while running.len() < concurrency {
            let Some(t) = pending.next() else { break };
            let o = opts.clone();
            running.spawn(async move {
                let r = scan_host(t.clone(), o).await;
                (t, r)
            });
        }
        let next = tokio::select! {
            n = running.join_next() => n,
            _ = &mut ctrl_c => { interrupted = true; None }
        };
        let Some(joined) = next else { break };
        let (target, report) = match joined {
            Ok(x) => x,
            Err(e) => {
                errors += 1;
                progress.clear();
                eprintln!("a scan task failed: {e}");
                continue;
            }
        };
        done += 1;
        match report.verdict {
            Verdict::Vulnerable => vulnerable += 1,
            Verdict::Error => errors += 1,
            Verdict::Secure => {}
        }
        progress.clear();
        sinks.write(Some(&target), &report)?;
        progress.draw(done, vulnerable, errors);
    }
    progress.clear();
    let left = running.len() + pending.len();
    running.abort_all();
    if interrupted {
        eprintln!("interrupted: {done} hosts scanned, {left} not scanned");
    }
    eprintln!(
        "{done} hosts: {} secure, {vulnerable} vulnerable, {errors} errors",
        done - vulnerable - errors
    );
    Ok(if vulnerable > 0 {
        ExitCode::from(1)
    } else if errors > 0 || interrupted {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
