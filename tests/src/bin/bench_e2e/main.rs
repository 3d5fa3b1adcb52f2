//! `bench-e2e`: the end-to-end transfer benchmark of issue 8, run by `cargo xtask bench e2e`.
//!
//! On loopback, with every share and the source file on tmpfs (/dev/shm), each cell writes a
//! file of `--size` MiB to the share (put) and reads it back (get), `--runs` times,
//! interleaving the cells run by run so the machine's background load spreads over all of
//! them. The measured `get`s write to /dev/null (`--sink null`, the default) after a first,
//! unmeasured round trip per cell whose bytes are compared: a tmpfs destination made the
//! client allocate a GiB of pages per run, which dominated the read figures' spread (two
//! identical servers differed by 18 % in medians of 7). `--sink file` measures into a tmpfs
//! file instead. Cells: client → server pair × server I/O size (the server's MaxReadSize and
//! MaxWriteSize, which both clients use) × dialect and signing (2.1, 3.0.2, 3.1.1 unsigned;
//! 2.1 HMAC, 3.0.2 CMAC, 3.1.1 HMAC, CMAC and GMAC signed). Per cell it reports medians of
//! MiB/s (as the client reports its own transfer), CPU seconds per GiB of the client and of
//! the server (from /proc/PID/stat), peak RSS (VmHWM) of each, and the signed/unsigned ratio.
//! It writes its section of BENCHMARKS.md (between markers), an SVG chart and JSON lines of
//! every run.

mod procstat;
mod report;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tests::{spawn_listening, workspace_bin, ChildGuard, SambaOptions, SambaServer, ServerSigning};

use crate::procstat::Sampler;

const USAGE: &str =
    "usage: bench-e2e [--goals] [--size MIB] [--runs N] [--io MIB,MIB] [--pairs LIST] \
[--modes LIST] [--sink null|file] [--no-warm] [--markdown FILE] [--svg FILE] [--json FILE] [--note TEXT]
[--section NAME]

  --goals         only the cells issue 8's goals compare (3.1.1 unsigned and GMAC, 1 MiB
                  I/O, every pair), 11 runs, into the e2e-goals section; flags after it
                  override these
  --size MIB      file size per transfer (default 1024)
  --runs N        runs per cell; medians are reported (default 5)
  --io LIST       server MaxRead/MaxWrite sizes in MiB (default 1,8)
  --pairs LIST    of ours-ours, smbclient-ours, smbclient-samba, ours-samba (default: all)
  --modes LIST    of 2.1, 2.1-hmac, 3.0.2, 3.0.2-cmac, 3.1.1, 3.1.1-hmac, 3.1.1-cmac,
                  3.1.1-gmac (default: all)
  --sink null|file where measured reads go: /dev/null after one checked, unmeasured round
                  trip per cell (default), or a tmpfs file, checked on the first run
  --no-warm       do not touch and free memory before each put (see warm_free_memory)
  --markdown FILE replace the e2e section of FILE (e.g. BENCHMARKS.md)
  --svg FILE      draw the chart into FILE
  --json FILE     write one JSON line per run into FILE
  --note TEXT     a sentence printed under the figures (e.g. the machine's other load)
  --section NAME  the BENCHMARKS.md section to replace (default e2e; markers bench-NAME:begin/end)";

/// Runs per cell with `--goals`.
const GOAL_RUNS: usize = 11;
/// The BENCHMARKS.md section `--goals` writes.
pub const GOALS_SECTION: &str = "e2e-goals";

const OUR_USER: &str = "bench";
const OUR_PASSWORD: &str = "Bench-Passw0rd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Ours,
    Smbclient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Ours,
    Samba,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub client: ClientKind,
    pub server: ServerKind,
}

impl Pair {
    pub const ALL: [Pair; 4] = [
        Pair {
            client: ClientKind::Ours,
            server: ServerKind::Ours,
        },
        Pair {
            client: ClientKind::Smbclient,
            server: ServerKind::Ours,
        },
        Pair {
            client: ClientKind::Smbclient,
            server: ServerKind::Samba,
        },
        Pair {
            client: ClientKind::Ours,
            server: ServerKind::Samba,
        },
    ];

    pub fn key(self) -> &'static str {
        match (self.client, self.server) {
            (ClientKind::Ours, ServerKind::Ours) => "ours-ours",
            (ClientKind::Smbclient, ServerKind::Ours) => "smbclient-ours",
            (ClientKind::Smbclient, ServerKind::Samba) => "smbclient-samba",
            (ClientKind::Ours, ServerKind::Samba) => "ours-samba",
        }
    }

    pub fn label(self) -> &'static str {
        match (self.client, self.server) {
            (ClientKind::Ours, ServerKind::Ours) => "our client → our server",
            (ClientKind::Smbclient, ServerKind::Ours) => "smbclient → our server",
            (ClientKind::Smbclient, ServerKind::Samba) => "smbclient → Samba",
            (ClientKind::Ours, ServerKind::Samba) => "our client → Samba",
        }
    }
}

/// A signing algorithm as each peer spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hmac,
    Cmac,
    Gmac,
}

impl Alg {
    fn ours(self) -> &'static str {
        match self {
            Alg::Hmac => "hmac-sha256",
            Alg::Cmac => "aes-cmac",
            Alg::Gmac => "aes-gmac",
        }
    }
    fn samba(self) -> &'static str {
        match self {
            Alg::Hmac => "HMAC-SHA256",
            Alg::Cmac => "AES-128-CMAC",
            Alg::Gmac => "AES-128-GMAC",
        }
    }
    pub fn short(self) -> &'static str {
        match self {
            Alg::Hmac => "HMAC",
            Alg::Cmac => "CMAC",
            Alg::Gmac => "GMAC",
        }
    }
}

/// A dialect and, when signed, the algorithm (2.1 signs with HMAC, 3.0.2 with CMAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub dialect: &'static str,
    pub signing: Option<Alg>,
}

impl Mode {
    pub const ALL: [Mode; 8] = [
        Mode::new("2.1", None),
        Mode::new("2.1", Some(Alg::Hmac)),
        Mode::new("3.0.2", None),
        Mode::new("3.0.2", Some(Alg::Cmac)),
        Mode::new("3.1.1", None),
        Mode::new("3.1.1", Some(Alg::Hmac)),
        Mode::new("3.1.1", Some(Alg::Cmac)),
        Mode::new("3.1.1", Some(Alg::Gmac)),
    ];

    /// The two modes issue 8's goals compare: 3.1.1 unsigned and 3.1.1 AES-GMAC.
    pub const GOALS: [Mode; 2] = [Mode::ALL[4], Mode::ALL[7]];

    const fn new(dialect: &'static str, signing: Option<Alg>) -> Mode {
        Mode { dialect, signing }
    }

    /// `3.1.1-gmac`, `2.1`.
    pub fn key(self) -> String {
        match self.signing {
            None => self.dialect.to_string(),
            Some(a) => format!("{}-{}", self.dialect, a.short().to_ascii_lowercase()),
        }
    }

    /// `3.1.1 GMAC`, `3.1.1 unsigned`.
    pub fn label(self) -> String {
        match self.signing {
            None => format!("{} unsigned", self.dialect),
            Some(a) => format!("{} {}", self.dialect, a.short()),
        }
    }

    /// The same dialect, unsigned: the reference of the signed/unsigned ratio.
    pub fn unsigned(self) -> Mode {
        Mode::new(self.dialect, None)
    }
}

#[derive(Debug, Clone)]
struct Opts {
    size_mib: u64,
    runs: usize,
    io_mib: Vec<u32>,
    pairs: Vec<Pair>,
    modes: Vec<Mode>,
    markdown: Option<PathBuf>,
    svg: Option<PathBuf>,
    json: Option<PathBuf>,
    note: String,
    section: String,
    /// Measured reads go to /dev/null (after a checked round trip) rather than a file.
    null_sink: bool,
    /// Memory is touched and freed before each put (`warm_free_memory`).
    warm: bool,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        size_mib: 1024,
        runs: 5,
        io_mib: vec![1, 8],
        pairs: Pair::ALL.to_vec(),
        modes: Mode::ALL.to_vec(),
        markdown: None,
        svg: None,
        json: None,
        note: String::new(),
        section: "e2e".into(),
        null_sink: true,
        warm: true,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        match flag.as_str() {
            "--goals" => {
                // Eight cells a round: the two cells of each goal run within a minute of
                // each other, so more rounds fit in the time of the full benchmark's five.
                o.modes = Mode::GOALS.to_vec();
                o.io_mib = vec![1];
                o.runs = GOAL_RUNS;
                o.section = GOALS_SECTION.into();
            }
            "--size" => {
                o.size_mib = value()?
                    .parse()
                    .map_err(|e| format!("--size: {e}"))
                    .and_then(|n: u64| {
                        if n == 0 {
                            Err("--size must be at least 1".to_string())
                        } else {
                            Ok(n)
                        }
                    })?
            }
            "--runs" => {
                o.runs = value()?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))
                    .and_then(|n: usize| {
                        if n == 0 {
                            Err("--runs must be at least 1".to_string())
                        } else {
                            Ok(n)
                        }
                    })?
            }
            "--io" => {
                o.io_mib = list(value()?)
                    .iter()
                    .map(|s| match s.parse::<u32>() {
                        Ok(n @ 1..=8) => Ok(n),
                        _ => Err(format!("--io {s}: between 1 and 8 (MiB)")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--pairs" => {
                o.pairs = list(value()?)
                    .iter()
                    .map(|s| {
                        Pair::ALL
                            .into_iter()
                            .find(|p| p.key() == s)
                            .ok_or_else(|| format!("--pairs: unknown pair {s}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--modes" => {
                o.modes = list(value()?)
                    .iter()
                    .map(|s| {
                        Mode::ALL
                            .into_iter()
                            .find(|m| m.key() == *s)
                            .ok_or_else(|| format!("--modes: unknown mode {s}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--markdown" => o.markdown = Some(value()?.into()),
            "--svg" => o.svg = Some(value()?.into()),
            "--json" => o.json = Some(value()?.into()),
            "--note" => o.note = value()?,
            "--sink" => {
                o.null_sink = match value()?.as_str() {
                    "null" => true,
                    "file" => false,
                    other => return Err(format!("--sink {other}: null or file")),
                }
            }
            "--no-warm" => o.warm = false,
            "--section" => {
                o.section = value()?;
                if o.section.is_empty()
                    || !o
                        .section
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return Err("--section: letters, digits and '-' only".into());
                }
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if o.io_mib.is_empty() || o.pairs.is_empty() || o.modes.is_empty() {
        return Err("--io, --pairs and --modes need at least one entry".into());
    }
    Ok(o)
}

/// One direction of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Leg {
    pub mib_s: f64,
    pub wall_s: f64,
    pub client_cpu_s: f64,
    pub server_cpu_s: f64,
    pub client_rss_kib: u64,
    pub server_rss_kib: u64,
}

/// One cell's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub pair: Pair,
    pub io_mib: u32,
    pub mode: Mode,
}

impl Cell {
    /// "client → server | N MiB I/O | mode", for progress and failure lines.
    fn label(&self) -> String {
        format!(
            "{} | {} MiB I/O | {}",
            self.pair.label(),
            self.io_mib,
            self.mode.label()
        )
    }
}

/// Every run of one cell.
#[derive(Debug, Clone)]
pub struct CellResult {
    pub cell: Cell,
    pub write: Vec<Leg>,
    pub read: Vec<Leg>,
    /// Why the cell failed, if it did (its runs stop there).
    pub error: Option<String>,
}

/// A running server of the benchmark.
enum Server {
    Ours {
        guard: ChildGuard,
        port: u16,
        share: PathBuf,
    },
    Samba(SambaServer),
}

impl Server {
    fn port(&self) -> u16 {
        match self {
            Server::Ours { port, .. } => *port,
            Server::Samba(s) => s.port(),
        }
    }
    fn pid(&self) -> u32 {
        match self {
            Server::Ours { guard, .. } => guard.id(),
            Server::Samba(s) => samba_pid(s),
        }
    }
    fn share(&self) -> &Path {
        match self {
            Server::Ours { share, .. } => share,
            Server::Samba(s) => s.share_path(),
        }
    }
    fn user(&self) -> (&str, &str) {
        match self {
            Server::Ours { .. } => (OUR_USER, OUR_PASSWORD),
            Server::Samba(s) => (s.user(), s.password()),
        }
    }
    fn forking(&self) -> bool {
        matches!(self, Server::Samba(_))
    }
}

/// smbd's main process: the one started with the conf whose parent is not itself an smbd.
fn samba_pid(s: &SambaServer) -> u32 {
    let pids = tests::pids_with_cmdline(&s.conf_path().to_string_lossy());
    pids.iter()
        .copied()
        .filter(|&p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "smbd")
        })
        .min()
        .unwrap_or(0)
}

fn start_ours(root: &Path, io_mib: u32) -> Server {
    let share = root.join(format!("ours-{io_mib}m"));
    fs::create_dir_all(&share).expect("create our share on tmpfs");
    let max_message = u64::from(io_mib) * 1024 * 1024 + 1024;
    let (guard, addr) = spawn_listening(
        Command::new(workspace_bin("smb-server"))
            .args(["--listen", "127.0.0.1:0", "--share"])
            .arg(format!("data={}", share.display()))
            .args(["--user", &format!("{OUR_USER}:{OUR_PASSWORD}")])
            .args(["--require-signing", "false"])
            .args(["--max-message-size", &max_message.to_string()])
            // The audit trail (a line per session) is not what is measured.
            .env("RUST_LOG", "error"),
        Duration::from_secs(20),
    );
    Server::Ours {
        guard,
        port: addr.port(),
        share,
    }
}

fn start_samba(io_mib: u32) -> Server {
    Server::Samba(SambaServer::start(SambaOptions {
        // The client decides: a session is signed when the client requires it.
        signing: ServerSigning::Auto,
        max_io: io_mib * 1024 * 1024,
        ..SambaOptions::default()
    }))
}

/// The client command line for one leg.
fn client_command(kind: ClientKind, server: &Server, mode: Mode, script: &str) -> Command {
    let (user, password) = server.user();
    match kind {
        ClientKind::Ours => {
            let mut c = Command::new(workspace_bin("smb-client"));
            c.arg(format!("//127.0.0.1:{}/data", server.port()))
                .args(["-U", &format!("{user}%{password}")])
                .args(["--dialect", mode.dialect])
                .args([
                    "--require-signing",
                    if mode.signing.is_some() {
                        "true"
                    } else {
                        "false"
                    },
                ]);
            if let Some(a) = mode.signing {
                c.args(["--signing-algorithm", a.ours()]);
            }
            c.args(["-c", script]);
            c
        }
        ClientKind::Smbclient => {
            let proto = SambaOptions::protocol_name(mode.dialect);
            let mut c = Command::new(tests::require_tool("smbclient"));
            c.arg("//127.0.0.1/data")
                .args(["-p", &server.port().to_string()])
                .args(["-U", &format!("{user}%{password}")])
                .arg(format!("--option=client min protocol={proto}"))
                .arg(format!("--option=client max protocol={proto}"))
                .arg(format!(
                    "--option=client signing={}",
                    if mode.signing.is_some() {
                        "mandatory"
                    } else {
                        "disabled"
                    }
                ));
            if let Some(a) = mode.signing {
                c.arg(format!(
                    "--option=client smb3 signing algorithms={}",
                    a.samba()
                ));
            }
            c.args(["-c", script]);
            c
        }
    }
}

/// The rate a client printed for its transfer: smbclient's `(123.4 kb/s)` and our
/// client's `(123.4 KiloBytes/sec)` are both KiB/s over the open-to-close time.
fn parse_rate(stdout: &str) -> Option<f64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("putting file") || l.starts_with("getting file"))?;
    let from = line.rfind(" as ")?;
    let rest = &line[from..];
    let open = rest.find('(')?;
    let num: String = rest[open + 1..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse::<f64>().ok().map(|kib| kib / 1024.0)
}

/// Runs one client process and measures it and the server.
fn leg(server: &Server, mut cmd: Command) -> Result<Leg, String> {
    let spid = server.pid();
    let before_children = if server.forking() {
        procstat::children(spid)
    } else {
        procstat::reset_peak_rss(spid);
        Vec::new()
    };
    let server_cpu_before = procstat::tree_cpu(spid);
    let start = Instant::now();
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the client: {e}"))?;
    let sampler = Sampler::start(child.id(), spid, server.forking(), before_children.clone());
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // Wait for the exit without reaping, so the sampler reads the zombie's CPU times.
    let deadline = start + Duration::from_secs(600);
    while sampler.peek().client_cpu.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let wall_s = start.elapsed().as_secs_f64();
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the client: {e}"))?;
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    // smbd's connection process ends after the client; its CPU lands in smbd's cutime
    // once reaped. Wait for that (bounded).
    if server.forking() {
        let until = Instant::now() + Duration::from_secs(5);
        while procstat::children(spid)
            .iter()
            .any(|p| !before_children.contains(p))
            && Instant::now() < until
        {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let sampled = sampler.finish();
    let server_cpu_s = procstat::tree_cpu(spid) - server_cpu_before;
    if !status.success() {
        return Err(format!(
            "client failed ({status}):\n{}\n{}",
            stdout.trim(),
            stderr.trim()
        ));
    }
    // smbclient prints its rate on stderr, ours on stdout.
    let mib_s = parse_rate(&format!("{stdout}\n{stderr}"))
        .ok_or_else(|| format!("no transfer rate in the client's output:\n{stdout}\n{stderr}"))?;
    Ok(Leg {
        mib_s,
        wall_s,
        client_cpu_s: sampled.client_cpu.unwrap_or(0.0),
        server_cpu_s,
        client_rss_kib: sampled.client_rss_kib,
        server_rss_kib: sampled.server_rss_kib,
    })
}

/// Writes `size` bytes of xorshift output to `path`.
fn make_source(path: &Path, size: u64) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()
}

fn same_file(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Touches, then frees, a quarter more memory than the file a `put` is about to write (at
/// most half of what is available), so that the pages the share's file takes are backed
/// by the hypervisor already. On a VM whose host takes back the guest's free pages (free
/// page reporting, as on the Firecracker machines this project is measured on), each of
/// them would otherwise trap to the host: after a few idle seconds, writing 1 GiB to tmpfs
/// cost 1.0-1.5 s of system time instead of 0.7, and now and then a put cost its server,
/// ours or Samba, twice its usual CPU. Freed just now, these pages are the first the
/// kernel hands out again.
fn warm_free_memory(bytes: u64) {
    let available = procstat::mem_available_kib().map_or(0, |kib| kib * 1024);
    let n = (bytes + bytes / 4).min(available / 2) as usize;
    let mut pages = Vec::<u8>::with_capacity(n);
    pages.resize(n, 1);
    std::hint::black_box(&pages);
}

/// One run of one cell: put then get, checking the bytes on the first run.
fn run_cell(
    server: &Server,
    cell: Cell,
    src: &Path,
    dst: &Path,
    check: bool,
    warm: bool,
) -> Result<(Leg, Leg), String> {
    let name = format!("bench-{}.bin", cell.mode.key());
    let on_share = server.share().join(&name);
    let put = format!("put {} {name}", src.display());
    let get = format!("get {name} {}", dst.display());
    let result = (|| {
        if warm {
            warm_free_memory(fs::metadata(src).map_err(|e| e.to_string())?.len());
        }
        let w = leg(
            server,
            client_command(cell.pair.client, server, cell.mode, &put),
        )?;
        let r = leg(
            server,
            client_command(cell.pair.client, server, cell.mode, &get),
        )?;
        if check {
            if !same_file(src, &on_share).map_err(|e| e.to_string())? {
                return Err(format!(
                    "{} differs from the source after put",
                    on_share.display()
                ));
            }
            if !same_file(src, dst).map_err(|e| e.to_string())? {
                return Err(format!(
                    "{} differs from the source after get",
                    dst.display()
                ));
            }
        }
        Ok((w, r))
    })();
    let _ = fs::remove_file(&on_share);
    if dst != Path::new(NULL_SINK) {
        let _ = fs::remove_file(dst);
    }
    result
}

/// Where measured reads go with `--sink null`.
const NULL_SINK: &str = "/dev/null";

/// /dev/shm/smb-bench-e2e-PID, removed on drop.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("bench-e2e: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Opts) -> Result<(), String> {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        return Err("/dev/shm (tmpfs) is missing: the benchmark keeps every file there".into());
    }
    let tmp = Tmpfs(shm.join(format!("smb-bench-e2e-{}", std::process::id())));
    fs::create_dir_all(&tmp.0).map_err(|e| format!("{}: {e}", tmp.0.display()))?;
    // Samba's directories and its share (under the temporary directory) go to tmpfs too.
    std::env::set_var("SMB_PEERS_DIR", tmp.0.join("peers"));
    std::env::set_var("TMPDIR", &tmp.0);
    let src = tmp.0.join("source.bin");
    let dst = tmp.0.join("back.bin");
    let size = opts.size_mib * 1024 * 1024;
    make_source(&src, size).map_err(|e| format!("writing {}: {e}", src.display()))?;

    let mut servers: Vec<((ServerKind, u32), Server)> = Vec::new();
    for &io in &opts.io_mib {
        if opts.pairs.iter().any(|p| p.server == ServerKind::Ours) {
            servers.push(((ServerKind::Ours, io), start_ours(&tmp.0, io)));
        }
        if opts.pairs.iter().any(|p| p.server == ServerKind::Samba) {
            servers.push(((ServerKind::Samba, io), start_samba(io)));
        }
    }
    let server_for = |kind: ServerKind, io: u32| -> &Server {
        &servers
            .iter()
            .find(|(k, _)| *k == (kind, io))
            .expect("started above")
            .1
    };

    let mut results: Vec<CellResult> = Vec::new();
    for &io_mib in &opts.io_mib {
        for &pair in &opts.pairs {
            for &mode in &opts.modes {
                results.push(CellResult {
                    cell: Cell { pair, io_mib, mode },
                    write: Vec::new(),
                    read: Vec::new(),
                    error: None,
                });
            }
        }
    }
    let mut json = match &opts.json {
        Some(p) => {
            if let Some(dir) = p.parent() {
                let _ = fs::create_dir_all(dir);
            }
            Some(fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    if opts.null_sink {
        // One round trip per cell into a file, compared with the source and not measured;
        // the measured reads then go to /dev/null.
        for r in results.iter_mut() {
            let server = server_for(r.cell.pair.server, r.cell.io_mib);
            if let Err(why) = run_cell(server, r.cell, &src, &dst, true, false) {
                eprintln!("{}: FAILED: {why}", r.cell.label());
                r.error = Some(why);
            }
        }
    }
    let sink = if opts.null_sink {
        Path::new(NULL_SINK)
    } else {
        dst.as_path()
    };
    let total = results.len() * opts.runs;
    let mut done = 0;
    let started = Instant::now();
    for run in 0..opts.runs {
        for r in results.iter_mut() {
            done += 1;
            if r.error.is_some() {
                continue;
            }
            let cell = r.cell;
            let server = server_for(cell.pair.server, cell.io_mib);
            let label = cell.label();
            match run_cell(
                server,
                cell,
                &src,
                sink,
                run == 0 && !opts.null_sink,
                opts.warm,
            ) {
                Ok((w, rd)) => {
                    eprintln!(
                        "[{done}/{total} {:.0}s] run {} {label}: write {:.0} MiB/s, read {:.0} MiB/s",
                        started.elapsed().as_secs_f64(),
                        run + 1,
                        w.mib_s,
                        rd.mib_s
                    );
                    if let Some(f) = json.as_mut() {
                        let _ = writeln!(
                            f,
                            "{}",
                            report::json_line(cell, run, opts.size_mib, &w, &rd)
                        );
                    }
                    r.write.push(w);
                    r.read.push(rd);
                }
                Err(why) => {
                    eprintln!("[{done}/{total}] {label}: FAILED: {why}");
                    r.error = Some(why);
                }
            }
        }
    }
    let machine = report::machine_line(opts.size_mib, opts.runs, opts.null_sink, opts.warm);
    // The chart as the markdown file links it: relative to the markdown file's directory.
    let svg_link = opts.svg.as_ref().map(|svg| {
        let base = opts
            .markdown
            .as_ref()
            .and_then(|m| m.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        svg.strip_prefix(&base).unwrap_or(svg).display().to_string()
    });
    let md = report::markdown(
        &results,
        opts.size_mib,
        &machine,
        &opts.note,
        &opts.section,
        svg_link.as_deref(),
    );
    println!("{md}");
    if let Some(path) = &opts.markdown {
        report::replace_section(path, &opts.section, &md)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench-e2e: wrote its section of {}", path.display());
    }
    if let Some(path) = &opts.svg {
        if let Some(dir) = path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        fs::write(path, report::svg(&results, opts.size_mib))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench-e2e: drew {}", path.display());
    }
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.error.as_ref().map(|e| {
                format!(
                    "{} {} MiB {}: {e}",
                    r.cell.pair.label(),
                    r.cell.io_mib,
                    r.cell.mode.label()
                )
            })
        })
        .collect();
    drop(servers);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} cell(s) failed:\n{}",
            failed.len(),
            failed.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests_ {
    use super::*;

    #[test]
    fn rates_from_both_clients() {
        let smbclient = "putting file /dev/shm/x/source.bin as \\bench.bin (1048576.0 kb/s) (average 1048576.0 kb/s)\n";
        assert_eq!(parse_rate(smbclient), Some(1024.0));
        let ours = "getting file \\bench.bin of size 5 as /tmp/back.bin (512.0 KiloBytes/sec)\n";
        assert_eq!(parse_rate(ours), Some(0.5));
        assert_eq!(parse_rate("nothing"), None);
    }

    #[test]
    fn arguments() {
        let o = parse_args(&[
            "--size".into(),
            "64".into(),
            "--runs".into(),
            "1".into(),
            "--io".into(),
            "1".into(),
            "--modes".into(),
            "3.1.1,3.1.1-gmac".into(),
        ])
        .unwrap();
        assert_eq!((o.size_mib, o.runs, o.io_mib.clone()), (64, 1, vec![1]));
        assert_eq!(
            o.modes,
            vec![
                Mode::new("3.1.1", None),
                Mode::new("3.1.1", Some(Alg::Gmac))
            ]
        );
        let g = parse_args(&["--goals".into()]).unwrap();
        assert_eq!(
            (g.modes, g.io_mib, g.runs, g.section.as_str()),
            (Mode::GOALS.to_vec(), vec![1], GOAL_RUNS, GOALS_SECTION)
        );
        let g = parse_args(&["--goals".into(), "--runs".into(), "3".into()]).unwrap();
        assert_eq!((g.runs, g.pairs, g.warm), (3, Pair::ALL.to_vec(), true));
        assert!(!parse_args(&["--no-warm".into()]).unwrap().warm);
        assert!(parse_args(&["--io".into(), "16".into()]).is_err());
        assert!(parse_args(&["--pairs".into(), "x".into()]).is_err());
    }
}
