//! `smb-client bench //HOST[:PORT]/SHARE -U USER`: what signing costs a transfer against
//! the administrator's own server (issue 8's "baseline before and after").
//!
//! For each dialect asked for (2.1, 3.0.2 and 3.1.1 by default) it writes a test file of
//! `--size` MiB and reads it back, unsigned (when the server allows it: a server that requires
//! signing signs every session) and signed, and on 3.1.1 with each signing algorithm the
//! server accepts. Each transfer runs `--runs` times; the table shows medians, MiB/s, this
//! process's CPU seconds per GiB and the signed/unsigned ratio. The data is generated, never
//! read from disk, and checked on the way back. The test file is deleted at the end.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use smb_core::conn::client::{ClientConfig, Credentials};
use smb_core::header::Dialect;
use smb_core::policy::SigningPolicy;
use smb_core::signing::Algorithm;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::audit::AuditLog;
use crate::cli::{open_audit, resolve, ConnOpts};
use crate::client::{Client, SessionInfo};
use crate::target::{Service, UserSpec, DEFAULT_PORT};

const MIB: u64 = 1024 * 1024;

/// `smb-client bench`: signed versus unsigned transfer speed against one share.
#[derive(Debug, Parser)]
#[command(
    name = "smb-client bench",
    after_help = "Writes then reads a generated test file (checked on the way back) per \
                  dialect, signing mode and 3.1.1 algorithm the server accepts; prints medians \
                  and the signed/unsigned ratio. The test file is deleted at the end.\n\
                  Exit status: 0 when every measurement ran, 1 when one failed, 2 on bad input."
)]
pub struct BenchArgs {
    /// //HOST[:PORT]/SHARE
    pub service: String,
    /// [DOMAIN\]USER[%PASSWORD] (the password may also come from $PASSWD)
    #[arg(short = 'U', long = "user")]
    pub user: Option<String>,
    /// Domain (workgroup) for NTLM.
    #[arg(short = 'W', long = "workgroup")]
    pub workgroup: Option<String>,
    /// File size per transfer, MiB.
    #[arg(long, default_value_t = 256)]
    pub size: u64,
    /// Transfers per measurement (medians are shown).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// READ/WRITE sizes to try, comma-separated (e.g. 1M,8M or 64K); `max` = the server's
    /// MaxReadSize/MaxWriteSize.
    #[arg(long, default_value = "max")]
    pub io_size: String,
    /// Dialects to measure, comma-separated.
    #[arg(long, default_value = "2.1,3.0.2,3.1.1")]
    pub dialects: String,
    /// Name of the test file on the share.
    #[arg(long, default_value = "smb-client-bench.tmp")]
    pub file: String,
    /// JSON lines on stdout (one per transfer, then one per measurement) instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnOpts,
}

/// One measured configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    dialect: Dialect,
    /// `None`: unsigned.
    signing: Option<Algorithm>,
}

impl Mode {
    fn label(self) -> String {
        match self.signing {
            None => format!("{} unsigned", self.dialect.dotted()),
            Some(a) => format!("{} {}", self.dialect.dotted(), a.name()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    write_mib_s: f64,
    read_mib_s: f64,
    write_cpu_s: f64,
    read_cpu_s: f64,
}

#[derive(Debug)]
struct Measurement {
    mode: Mode,
    io: Option<u32>,
    /// The I/O size actually used (the cap, or the server's maximum).
    io_used: u32,
    runs: Vec<Run>,
}

pub async fn run(args: BenchArgs) -> ExitCode {
    match bench(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

fn parse_io_sizes(s: &str) -> Result<Vec<Option<u32>>, String> {
    s.split(',')
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            if v == "max" {
                return Ok(None);
            }
            let (num, unit) = match v.strip_suffix('m') {
                Some(n) => (n, 1024 * 1024),
                None => match v.strip_suffix('k') {
                    Some(n) => (n, 1024),
                    None => (v.as_str(), 1),
                },
            };
            let n: u64 = num
                .parse()
                .map_err(|_| format!("--io-size {v}: expected e.g. 64K, 1M, 8M or max"))?;
            let bytes = n * unit;
            if !(65_536..=8 * MIB).contains(&bytes) {
                return Err(format!("--io-size {v}: between 64K and 8M"));
            }
            Ok(Some(bytes as u32))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// This process's CPU seconds (user + system), from /proc/self/stat; 0 where unavailable.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct Progress {
    total: usize,
    done: usize,
    on: bool,
}

impl Progress {
    fn step(&mut self, what: &str) {
        if !self.on {
            return;
        }
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        eprint!(
            "\r[{}{}] {}/{} {what:<40}",
            "=".repeat(filled),
            " ".repeat(width - filled),
            self.done,
            self.total
        );
        let _ = std::io::stderr().flush();
    }
    fn advance(&mut self) {
        self.done += 1;
    }
    fn clear(&self) {
        if self.on {
            eprint!("\r{}\r", " ".repeat(90));
        }
    }
}

struct Target {
    addr: std::net::SocketAddr,
    name: String,
    unc: String,
    credentials: Credentials,
    timeout: Duration,
    audit: Arc<AuditLog>,
}

impl Target {
    fn config(&self, mode: Mode) -> ClientConfig {
        let mut c =
            ClientConfig::new(&self.name, self.credentials.clone()).only_dialect(mode.dialect);
        match mode.signing {
            None => c.signing = SigningPolicy::new(false),
            Some(a) => {
                c.signing = SigningPolicy::new(true);
                if mode.dialect == Dialect::SMB311 {
                    c.signing_algorithms = vec![a];
                }
            }
        }
        c
    }

    /// Connects, logs in and connects the share; returns the session as established.
    async fn open(&self, mode: Mode) -> Result<(Client, u32, SessionInfo), String> {
        let mut client = Client::connect_with(
            self.addr,
            self.config(mode),
            self.timeout,
            self.audit.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let session = client.login().await.map_err(|e| e.to_string())?;
        let tree = client
            .tree_connect(&self.unc)
            .await
            .map_err(|e| e.to_string())?;
        Ok((client, tree, session))
    }
}

/// What the session must look like for `mode` to be measurable.
fn session_matches(mode: Mode, s: &SessionInfo) -> bool {
    match mode.signing {
        None => !s.signed,
        Some(a) => s.signed && (mode.dialect != Dialect::SMB311 || s.algorithm == Some(a)),
    }
}

async fn bench(args: &BenchArgs) -> Result<bool, String> {
    let service = Service::parse(&args.service, true).map_err(|e| e.to_string())?;
    let port = args.conn.port.or(service.port).unwrap_or(DEFAULT_PORT);
    let addr = resolve(&service.host, port, &args.conn).await?;
    if args.size == 0 || args.runs == 0 {
        return Err("--size and --runs must be at least 1".into());
    }
    let ios = parse_io_sizes(&args.io_size)?;
    let dialects: Vec<Dialect> = args
        .dialects
        .split(',')
        .map(|d| {
            Dialect::parse(d.trim())
                .ok_or_else(|| format!("{d}: unknown dialect (2.0.2, 2.1, 3.0, 3.0.2, 3.1.1)"))
        })
        .collect::<Result<_, _>>()?;
    let spec = UserSpec::parse(args.user.as_deref().unwrap_or(""));
    let password = spec
        .password
        .clone()
        .or_else(|| std::env::var("PASSWD").ok())
        .unwrap_or_default();
    let domain = args.workgroup.clone().unwrap_or(spec.domain);
    let target = Target {
        addr,
        name: format!("{}:{port}", service.host),
        unc: service.unc(),
        credentials: Credentials::password(&spec.user, &domain, &password),
        timeout: Duration::from_secs(args.conn.timeout.max(1)),
        audit: open_audit(&args.conn)?,
    };

    // Which modes the server accepts: one session each, no data.
    let mut modes = Vec::new();
    let mut skipped = Vec::new();
    for &dialect in &dialects {
        let mut candidates = vec![Mode {
            dialect,
            signing: None,
        }];
        match dialect {
            Dialect::SMB311 => candidates.extend(
                [
                    Algorithm::HmacSha256,
                    Algorithm::AesCmac,
                    Algorithm::AesGmac,
                ]
                .map(|a| Mode {
                    dialect,
                    signing: Some(a),
                }),
            ),
            Dialect::SMB202 | Dialect::SMB21 => candidates.push(Mode {
                dialect,
                signing: Some(Algorithm::HmacSha256),
            }),
            _ => candidates.push(Mode {
                dialect,
                signing: Some(Algorithm::AesCmac),
            }),
        }
        for mode in candidates {
            match target.open(mode).await {
                Ok((mut c, tree, s)) if session_matches(mode, &s) => {
                    let _ = c.tree_disconnect(tree).await;
                    let _ = c.logoff().await;
                    modes.push(mode);
                }
                Ok((mut c, _, s)) => {
                    let _ = c.logoff().await;
                    skipped.push(format!("{}: the server gave {s}", mode.label()));
                }
                Err(e) => skipped.push(format!("{}: {e}", mode.label())),
            }
        }
    }
    if modes.is_empty() {
        return Err(format!(
            "no dialect and signing mode could be measured:\n  {}",
            skipped.join("\n  ")
        ));
    }

    let size = args.size * MIB;
    let mut progress = Progress {
        total: modes.len() * ios.len() * args.runs,
        done: 0,
        on: std::io::stderr().is_terminal() && !args.json,
    };
    let mut results: Vec<Measurement> = Vec::new();
    let mut ok = true;
    for &io in &ios {
        for &mode in &modes {
            results.push(Measurement {
                mode,
                io,
                io_used: 0,
                runs: Vec::new(),
            });
        }
    }
    // Run by run across all measurements, so a change in the network's load spreads over all.
    for run in 0..args.runs {
        for m in results.iter_mut() {
            progress.step(&format!("{} {}", m.mode.label(), io_label(m.io)));
            match one_run(&target, m.mode, m.io, size, &args.file).await {
                Ok((r, io_used)) => {
                    m.io_used = io_used;
                    if args.json {
                        println!(
                            "{}",
                            json!({
                                "type": "run",
                                "dialect": m.mode.dialect.dotted(),
                                "signing": m.mode.signing.map_or("none", Algorithm::name),
                                "io_size": io_used,
                                "run": run + 1,
                                "size": size,
                                "write_mib_s": round1(r.write_mib_s),
                                "read_mib_s": round1(r.read_mib_s),
                                "write_cpu_s": round3(r.write_cpu_s),
                                "read_cpu_s": round3(r.read_cpu_s),
                            })
                        );
                    }
                    m.runs.push(r);
                }
                Err(e) => {
                    progress.clear();
                    eprintln!("{} {}: {e}", m.mode.label(), io_label(m.io));
                    ok = false;
                }
            }
            progress.advance();
        }
    }
    progress.clear();
    // Clean up the test file (each run deletes it too; this covers a failed last run).
    if let Ok((mut c, tree, _)) = target.open(modes[0]).await {
        let _ = c.rm(tree, &args.file).await;
        let _ = c.tree_disconnect(tree).await;
        let _ = c.logoff().await;
    }

    let gib = size as f64 / (1024.0 * MIB as f64);
    if args.json {
        for m in &results {
            if m.runs.is_empty() {
                continue;
            }
            let s = summary(m, &results, gib);
            println!(
                "{}",
                json!({
                    "type": "summary",
                    "dialect": m.mode.dialect.dotted(),
                    "signing": m.mode.signing.map_or("none", Algorithm::name),
                    "io_size": m.io_used,
                    "runs": m.runs.len(),
                    "size": size,
                    "write_mib_s": round1(s.write),
                    "read_mib_s": round1(s.read),
                    "write_ratio": s.ratio.map(|r| round3(r.0)),
                    "read_ratio": s.ratio.map(|r| round3(r.1)),
                    "write_cpu_s_per_gib": round3(s.cpu.0),
                    "read_cpu_s_per_gib": round3(s.cpu.1),
                })
            );
        }
        for why in &skipped {
            println!("{}", json!({"type": "skipped", "reason": why}));
        }
    } else {
        print!("{}", table(&target.name, &results, args, gib, &skipped));
    }
    Ok(ok)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn io_label(io: Option<u32>) -> String {
    match io {
        None => "max I/O".into(),
        Some(b) if b % (1024 * 1024) == 0 => format!("{} MiB I/O", b / (1024 * 1024)),
        Some(b) => format!("{} KiB I/O", b / 1024),
    }
}

struct Summary {
    write: f64,
    read: f64,
    ratio: Option<(f64, f64)>,
    cpu: (f64, f64),
}

fn summary(m: &Measurement, all: &[Measurement], gib: f64) -> Summary {
    let med = |f: fn(&Run) -> f64, runs: &[Run]| median(runs.iter().map(f).collect());
    let (write, read) = (
        med(|r| r.write_mib_s, &m.runs),
        med(|r| r.read_mib_s, &m.runs),
    );
    let ratio = m.mode.signing.and_then(|_| {
        let base = all.iter().find(|o| {
            o.io == m.io && o.mode.dialect == m.mode.dialect && o.mode.signing.is_none()
        })?;
        if base.runs.is_empty() {
            return None;
        }
        Some((
            write / med(|r| r.write_mib_s, &base.runs),
            read / med(|r| r.read_mib_s, &base.runs),
        ))
    });
    Summary {
        write,
        read,
        ratio,
        cpu: (
            med(|r| r.write_cpu_s, &m.runs) / gib,
            med(|r| r.read_cpu_s, &m.runs) / gib,
        ),
    }
}

fn table(
    server: &str,
    results: &[Measurement],
    args: &BenchArgs,
    gib: f64,
    skipped: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "server {server}: {} MiB written then read, median of {} run(s)\n",
        args.size, args.runs
    );
    let _ = writeln!(
        s,
        "{:<22} {:>8} {:>11} {:>11} {:>13} {:>13} {:>16}",
        "dialect, signing",
        "I/O",
        "write MiB/s",
        "read MiB/s",
        "write vs none",
        "read vs none",
        "CPU s/GiB w/r"
    );
    for m in results {
        if m.runs.is_empty() {
            let _ = writeln!(s, "{:<22} {:>8} failed", m.mode.label(), io_label(m.io));
            continue;
        }
        let x = summary(m, results, gib);
        let (rw, rr) = x.ratio.map_or((String::new(), String::new()), |(w, r)| {
            (format!("{w:.2}"), format!("{r:.2}"))
        });
        let io = if m.io_used % (1024 * 1024) == 0 {
            format!("{} MiB", m.io_used / (1024 * 1024))
        } else {
            format!("{} KiB", m.io_used / 1024)
        };
        let _ = writeln!(
            s,
            "{:<22} {:>8} {:>11.0} {:>11.0} {:>13} {:>13} {:>16}",
            m.mode.label(),
            io,
            x.write,
            x.read,
            rw,
            rr,
            format!("{:.2}/{:.2}", x.cpu.0, x.cpu.1)
        );
    }
    for why in skipped {
        let _ = writeln!(s, "not measured: {why}");
    }
    s
}

/// One write and one read of `size` bytes on a fresh connection; the file is deleted after.
async fn one_run(
    target: &Target,
    mode: Mode,
    io: Option<u32>,
    size: u64,
    file: &str,
) -> Result<(Run, u32), String> {
    let (mut client, tree, session) = target.open(mode).await?;
    if !session_matches(mode, &session) {
        return Err(format!("the server gave {session}"));
    }
    client.set_io_size(io);
    let io_used = client.write_chunk();
    let result = async {
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let mut source = Pattern::new(size);
        let written = client
            .write_from(tree, file, &mut source)
            .await
            .map_err(|e| e.to_string())?;
        let (write_s, cpu1) = (t0.elapsed().as_secs_f64(), cpu_seconds());
        if written != size {
            return Err(format!("wrote {written} of {size} bytes"));
        }
        let t1 = Instant::now();
        let mut check = Pattern::new(size);
        let read = client
            .read_to(tree, file, &mut check)
            .await
            .map_err(|e| e.to_string())?;
        let (read_s, cpu2) = (t1.elapsed().as_secs_f64(), cpu_seconds());
        if read != size || check.mismatch || check.left != 0 {
            return Err(format!(
                "read back {read} bytes that differ from the {size} written"
            ));
        }
        let mib = size as f64 / MIB as f64;
        Ok(Run {
            write_mib_s: mib / write_s.max(1e-9),
            read_mib_s: mib / read_s.max(1e-9),
            write_cpu_s: cpu1 - cpu0,
            read_cpu_s: cpu2 - cpu1,
        })
    }
    .await;
    let removed = client.rm(tree, file).await;
    let _ = client.tree_disconnect(tree).await;
    let _ = client.logoff().await;
    let run = result?;
    removed.map_err(|e| format!("deleting the test file: {e}"))?;
    Ok((run, io_used))
}

/// Generated test data: an xorshift stream of `left` bytes. As an `AsyncRead` it is the
/// source of a write; as an `AsyncWrite` it checks that what is written equals the stream.
struct Pattern {
    state: u64,
    /// Bytes of the current 8-byte word already used.
    used: usize,
    word: [u8; 8],
    left: u64,
    mismatch: bool,
}

impl Pattern {
    fn new(len: u64) -> Pattern {
        Pattern {
            state: 0x2545_F491_4F6C_DD1D,
            used: 8,
            word: [0; 8],
            left: len,
            mismatch: false,
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.used == 8 {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            self.word = x.to_le_bytes();
            self.used = 0;
        }
        let b = self.word[self.used];
        self.used += 1;
        b
    }

    /// Fills `out` with the next bytes of the stream (whole words when aligned).
    fn fill(&mut self, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() && self.used < 8 {
            out[i] = self.next_byte();
            i += 1;
        }
        let mut chunks = out[i..].chunks_exact_mut(8);
        for c in &mut chunks {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            self.word = x.to_le_bytes();
            c.copy_from_slice(&self.word);
        }
        for b in chunks.into_remainder() {
            *b = self.next_byte();
        }
    }
}

impl AsyncRead for Pattern {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let n = (buf.remaining() as u64).min(me.left) as usize;
        let out = buf.initialize_unfilled_to(n);
        me.fill(out);
        buf.advance(n);
        me.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Pattern {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        if data.len() as u64 > me.left {
            me.mismatch = true;
            me.left = 0;
            return Poll::Ready(Ok(data.len()));
        }
        let mut expect = vec![0u8; data.len()];
        me.fill(&mut expect);
        me.mismatch |= expect != data;
        me.left -= data.len() as u64;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn io_sizes() {
        assert_eq!(
            parse_io_sizes("max,1M,64k,8M").unwrap(),
            vec![None, Some(1 << 20), Some(65536), Some(8 << 20)]
        );
        assert!(parse_io_sizes("16M").is_err());
        assert!(parse_io_sizes("1K").is_err());
        assert!(parse_io_sizes("lots").is_err());
    }

    #[tokio::test]
    async fn the_pattern_checks_what_it_generated_in_any_chunking() {
        let mut data = Vec::new();
        Pattern::new(100_003).read_to_end(&mut data).await.unwrap();
        assert_eq!(data.len(), 100_003);
        let mut check = Pattern::new(100_003);
        for chunk in data.chunks(997) {
            check.write_all(chunk).await.unwrap();
        }
        assert!(!check.mismatch && check.left == 0);
        let mut bad = Pattern::new(100_003);
        data[5000] ^= 1;
        bad.write_all(&data).await.unwrap();
        assert!(bad.mismatch);
    }
}
