//! The interop matrix (issue 4): cells, the results file, our binaries as peers, and the
//! per-session evidence read from a capture.
//!
//! Each `tests/tests/interop_*.rs` test runs a group of cells (one peer, several dialects or
//! algorithms) with a [`Matrix`]: every cell is run even when an earlier one failed, the
//! outcome of each is appended to the results file as one JSON line, and [`Matrix::finish`]
//! fails the test naming every failed cell and why. `cargo xtask test` clears the results file
//! before the run and renders `target/interop-matrix.md` from it afterwards (xtask/src/matrix.rs).
//!
//! One capture covers a whole group: cells run one after another, each on its own TCP
//! connection, and [`WireSessions::read`] splits the capture back into one session per TCP
//! stream, matched to the cell whose time window saw that stream open.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{
    run_with_timeout, scratch_dir, spawn_listening, test_bytes, workspace_bin, Capture,
    CaptureFile, ChildGuard, ScratchDir,
};

/// The five SMB2/3 dialects, dotted, oldest first.
pub const DIALECTS: [&str; 5] = ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"];

/// The three 3.1.1 signing algorithms, in our names (smb-client/smb-server flags).
pub const ALGORITHMS: [&str; 3] = ["aes-gmac", "aes-cmac", "hmac-sha256"];

/// The user our server accepts in interop tests.
pub const OUR_USER: &str = "alice";
/// Its password (loopback only).
pub const OUR_PASSWORD: &str = "Passw0rd!";
/// The share our server exports in interop tests.
pub const OUR_SHARE: &str = "data";

/// `smb-server` flags for a server whose traffic is dissected with the issue's
/// `tshark -d tcp.port==PORT,nbss`: on a port other than 445 Wireshark's NBSS dissector reads a
/// 17-bit length, so any message over 128 KiB shows as malformed. Capping the message size at
/// 128 KiB caps MaxReadSize/MaxWriteSize below it (the harness does the same to Samba with
/// `smb2 max read/write`). Uncaptured cells keep the 8 MiB default.
pub const WIRESHARK_SIZED: [&str; 2] = ["--max-message-size", "131072"];

/// How long any one peer process may run.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(120);

/// A dialect's signing algorithm when none was negotiated (MS-SMB2 3.1.4.1): HMAC-SHA256
/// for 2.0.2 and 2.1, AES-CMAC for 3.x (3.1.1 without SIGNING_CAPABILITIES included).
pub fn default_algorithm(dialect: &str) -> &'static str {
    match dialect {
        "2.0.2" | "2.1" => "hmac-sha256",
        _ => "aes-cmac",
    }
}

/// Samba's name for one of [`ALGORITHMS`] (`server/client smb3 signing algorithms`).
pub fn samba_algorithm(ours: &str) -> &'static str {
    match ours {
        "aes-gmac" => "AES-128-GMAC",
        "aes-cmac" => "AES-128-CMAC",
        "hmac-sha256" => "HMAC-SHA256",
        other => panic!("unknown signing algorithm {other:?}"),
    }
}

/// Our name for a SigningAlgorithmId (MS-SMB2 2.2.3.1.7).
pub fn algorithm_from_id(id: u16) -> Option<&'static str> {
    match id {
        0 => Some("hmac-sha256"),
        1 => Some("aes-cmac"),
        2 => Some("aes-gmac"),
        _ => None,
    }
}

/// The dotted dialect for a DialectRevision (0x0311 -> "3.1.1").
pub fn dialect_from_revision(revision: u16) -> Option<&'static str> {
    match revision {
        0x0202 => Some("2.0.2"),
        0x0210 => Some("2.1"),
        0x0300 => Some("3.0"),
        0x0302 => Some("3.0.2"),
        0x0311 => Some("3.1.1"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Cells and the results file

/// What became of one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// Only for the external-server cell when `SMB_INTEROP_SERVER` is unset.
    NotConfigured,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotConfigured => "not configured",
        }
    }
}

/// One cell of the matrix: peer × dialect × algorithm × policy → status, with the reason
/// (the evidence when it passed, the failure when it did not).
#[derive(Debug, Clone)]
pub struct Cell {
    pub peer: String,
    pub dialect: String,
    pub algorithm: String,
    pub policy: String,
    pub status: Status,
    pub reason: String,
    /// The test that produced it.
    pub test: String,
}

impl Cell {
    /// One JSON object on one line (no serde here: every value is a string).
    pub fn to_json_line(&self) -> String {
        let fields = [
            ("peer", self.peer.as_str()),
            ("dialect", &self.dialect),
            ("algorithm", &self.algorithm),
            ("policy", &self.policy),
            ("status", self.status.as_str()),
            ("reason", &self.reason),
            ("test", &self.test),
        ];
        let mut line = String::from("{");
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&json_string(name));
            line.push(':');
            line.push_str(&json_string(value));
        }
        line.push_str("}\n");
        line
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `$SMB_INTEROP_RESULTS`, or `target/interop-results.jsonl` in the workspace.
pub fn results_path() -> PathBuf {
    match std::env::var_os("SMB_INTEROP_RESULTS") {
        Some(path) => PathBuf::from(path),
        None => crate::workspace_root()
            .join("target")
            .join("interop-results.jsonl"),
    }
}

/// Appends one cell to the results file. Tests run in parallel processes: the file is opened
/// with O_APPEND and each line goes out in a single write(2), so lines never interleave.
pub fn record(cell: &Cell) {
    let path = results_path();
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let line = cell.to_json_line();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let written = file
        .write(line.as_bytes())
        .unwrap_or_else(|e| panic!("cannot append to {}: {e}", path.display()));
    assert_eq!(
        written,
        line.len(),
        "short append to {} (the line would interleave)",
        path.display()
    );
}

/// A cell's coordinates, before it has an outcome.
#[derive(Debug, Clone)]
pub struct CellKey {
    pub dialect: String,
    pub algorithm: String,
    pub policy: String,
}

impl CellKey {
    pub fn new(dialect: &str, algorithm: &str, policy: &str) -> CellKey {
        CellKey {
            dialect: dialect.to_string(),
            algorithm: algorithm.to_string(),
            policy: policy.to_string(),
        }
    }
}

/// The outcome of running one cell's peer work, before the capture is read.
#[derive(Debug)]
pub struct CellRun {
    pub key: CellKey,
    /// Ok(evidence) or Err(why it failed).
    pub outcome: Result<String, String>,
    /// Wall-clock window (seconds since the epoch) the cell ran in.
    pub started: f64,
    pub ended: f64,
}

impl CellRun {
    /// Adds wire evidence to a passing cell, or turns it into a failure.
    pub fn check_wire(&mut self, wire: Result<String, String>) {
        self.outcome = match (
            std::mem::replace(&mut self.outcome, Ok(String::new())),
            wire,
        ) {
            (Ok(peer), Ok(wire)) => Ok(format!("{peer}; {wire}")),
            (Ok(_), Err(why)) => Err(format!("on the wire: {why}")),
            (Err(why), _) => Err(why),
        };
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs `work` for one cell, turning a panic into a failure so the other cells still run.
pub fn run_cell(key: CellKey, work: impl FnOnce() -> Result<String, String>) -> CellRun {
    let started = now();
    let outcome = match panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(outcome) => outcome,
        Err(payload) => Err(match payload.downcast_ref::<String>() {
            Some(msg) => format!("panicked: {msg}"),
            None => match payload.downcast_ref::<&str>() {
                Some(msg) => format!("panicked: {msg}"),
                None => "panicked".to_string(),
            },
        }),
    };
    CellRun {
        key,
        outcome,
        started,
        ended: now(),
    }
}

/// A group of cells of one peer, recorded together.
#[derive(Debug)]
pub struct Matrix {
    peer: String,
    test: String,
    cells: Vec<Cell>,
}

impl Matrix {
    /// `peer` reads like "smbclient → our server"; `test` names the test function.
    pub fn new(peer: &str, test: &str) -> Matrix {
        Matrix {
            peer: peer.to_string(),
            test: test.to_string(),
            cells: Vec::new(),
        }
    }

    /// Records a finished cell (appending it to the results file at once).
    pub fn add(&mut self, run: CellRun) {
        let (status, reason) = match run.outcome {
            Ok(evidence) => (Status::Pass, evidence),
            Err(why) => (Status::Fail, why),
        };
        self.push(run.key, status, reason);
    }

    /// Records the external-server cell when no server is configured.
    pub fn add_not_configured(&mut self, key: CellKey, reason: &str) {
        self.push(key, Status::NotConfigured, reason.to_string());
    }

    fn push(&mut self, key: CellKey, status: Status, reason: String) {
        let cell = Cell {
            peer: self.peer.clone(),
            dialect: key.dialect,
            algorithm: key.algorithm,
            policy: key.policy,
            status,
            reason,
            test: self.test.clone(),
        };
        record(&cell);
        eprintln!(
            "cell: {} | {} | {} | {} | {} | {}",
            cell.peer,
            cell.dialect,
            cell.algorithm,
            cell.policy,
            cell.status.as_str(),
            cell.reason
        );
        self.cells.push(cell);
    }

    /// Fails the test when any cell failed, naming each with its reason.
    pub fn finish(self) {
        let failed: Vec<String> = self
            .cells
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| {
                format!(
                    "  {} {} {} [{}]: {}",
                    c.peer, c.dialect, c.algorithm, c.policy, c.reason
                )
            })
            .collect();
        assert!(!self.cells.is_empty(), "{}: no cells were run", self.test);
        assert!(
            failed.is_empty(),
            "{} of {} cells failed:\n{}",
            failed.len(),
            self.cells.len(),
            failed.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Our binaries

/// A running `smb-server` with one share, `data`, and one user, stopped (by PID) on drop.
#[derive(Debug)]
pub struct OurServer {
    guard: ChildGuard,
    addr: SocketAddr,
    dir: ScratchDir,
}

impl OurServer {
    /// `smb-server --listen 127.0.0.1:0 --share data=DIR --user alice:Passw0rd! EXTRA...`
    /// (signing required by default, as on Windows 11 24H2), with an audit log.
    pub fn start(name: &str, extra: &[&str]) -> OurServer {
        let dir = scratch_dir(name);
        let share = dir.join("share");
        fs::create_dir_all(&share).expect("create the share directory");
        let mut cmd = Command::new(workspace_bin("smb-server"));
        cmd.args(["--listen", "127.0.0.1:0"])
            .arg("--share")
            .arg(format!("{OUR_SHARE}={}", share.display()))
            .arg("--user")
            .arg(format!("{OUR_USER}:{OUR_PASSWORD}"))
            .arg("--audit-log")
            .arg(dir.join("audit.jsonl"))
            .args(extra)
            .stderr(fs::File::create(dir.join("server.log")).expect("create server.log"));
        let (guard, addr) = spawn_listening(&mut cmd, Duration::from_secs(20));
        OurServer { guard, addr, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn pid(&self) -> u32 {
        self.guard.id()
    }

    /// The directory behind the share.
    pub fn share_path(&self) -> PathBuf {
        self.dir.join("share")
    }

    /// A scratch directory for the peer's local files.
    pub fn work_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's audit events (JSON lines) so far.
    pub fn audit(&self) -> String {
        fs::read_to_string(self.dir.join("audit.jsonl")).unwrap_or_default()
    }

    /// The server's log (stderr) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The last lines of the log, for failure reasons.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `smb-client //HOST:PORT/SHARE -U USER%PASSWORD ARGS... -c COMMANDS`.
pub fn our_client(
    host: &str,
    port: u16,
    share: &str,
    user: &str,
    password: &str,
    args: &[&str],
    commands: &str,
) -> Output {
    let mut cmd = Command::new(workspace_bin("smb-client"));
    cmd.arg(format!("//{host}:{port}/{share}"))
        .arg("-U")
        .arg(format!("{user}%{password}"))
        .args(args)
        .args(["-c", commands]);
    run_with_timeout(&mut cmd, PEER_TIMEOUT)
}

/// The `session: dialect=D signing=A signed=B guest=G` line our client prints, as pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLine {
    pub dialect: String,
    pub signing: String,
    pub signed: bool,
    pub guest: bool,
}

impl SessionLine {
    pub fn find(stderr: &str) -> Option<SessionLine> {
        let line = stderr.lines().find_map(|l| l.strip_prefix("session: "))?;
        let value = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(SessionLine {
            dialect: value("dialect")?,
            signing: value("signing")?,
            signed: value("signed")? == "true",
            guest: value("guest")? == "true",
        })
    }
}

/// The checks after a put/ls/get round trip: the listing names `remote`, the file on the
/// share (when the test can see the share's directory) and the one read back both hold
/// `original`.
pub fn check_round_trip(
    listing: &str,
    remote: &str,
    on_share: Option<&Path>,
    back: &Path,
    original: &[u8],
) -> Result<(), String> {
    if !listing.contains(remote) {
        return Err(format!("`ls` does not list {remote}:\n{listing}"));
    }
    if let Some(path) = on_share {
        let held = fs::read(path).map_err(|e| e.to_string())?;
        if held != original {
            return Err(format!(
                "the share holds {} bytes that differ from the {} put",
                held.len(),
                original.len()
            ));
        }
    }
    let got = fs::read(back).map_err(|e| e.to_string())?;
    if got != original {
        return Err(format!(
            "`get` returned {} bytes that differ from the {} put",
            got.len(),
            original.len()
        ));
    }
    Ok(())
}

/// Short text of a failed process for a cell's reason: exit status and the last stderr lines.
pub fn failure(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    format!(
        "{what} exited {}: {}",
        out.status,
        tail(text.trim(), 6).replace('\n', " | ")
    )
}

// ---------------------------------------------------------------------------------------------
// Evidence from a capture, per TCP connection

/// [`Capture::start`], then waits until the capture really records: dumpcap announces
/// "Capturing on" some 15-20 ms before packets reach its file (measured: the first of a burst
/// of connections right after the announcement is missing from the capture), so a cell run at
/// once would lose its NEGOTIATE. Bare TCP probes (no SMB2, so no session in
/// [`WireSessions`]) are sent until the file grows.
pub fn start_capture(port: u16) -> Capture {
    let before = SystemTime::now() - Duration::from_secs(1);
    let capture = Capture::start(port);
    // The harness writes `port-PORT.pcapng` in a scratch directory of its own.
    let scratch = crate::peers_dir().join("scratch");
    let file_name = format!("port-{port}.pcapng");
    let find = || -> Option<PathBuf> {
        fs::read_dir(&scratch)
            .ok()?
            .flatten()
            .map(|e| e.path().join(&file_name))
            // Not a stale file of an earlier, failed run that used the same port.
            .find(|p| {
                fs::metadata(p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= before)
            })
    };
    let size = |path: &Path| fs::metadata(path).map_or(0, |m| m.len());
    let probe = || {
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(500),
        );
        thread::sleep(Duration::from_millis(50));
    };

    let started = Instant::now();
    let file = loop {
        if let Some(file) = find() {
            break file;
        }
        if started.elapsed() > Duration::from_secs(3) {
            // The harness moved its files: fall back to a settle time. A capture that still
            // misses a cell's opening fails that cell ("no NEGOTIATE response"), never passes it.
            eprintln!(
                "start_capture: no {file_name} under {}; settling 300 ms instead",
                scratch.display()
            );
            thread::sleep(Duration::from_millis(300));
            return capture;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let initial = size(&file);
    while started.elapsed() < Duration::from_secs(15) {
        probe();
        if size(&file) > initial {
            return capture;
        }
    }
    panic!(
        "dumpcap on tcp port {port} recorded none of the probe connections within 15 s ({})",
        file.display()
    );
}

/// What the wire shows about one TCP connection (one cell) in a capture.
#[derive(Debug, Clone, Default)]
pub struct WireSession {
    pub stream: u32,
    /// Time of the stream's first SMB2 frame.
    pub first_seen: f64,
    /// The dialect of the last NEGOTIATE response (smbclient's SMB1 opening gets 0x02FF first).
    pub dialect: Option<String>,
    /// The SigningAlgorithmId the server chose (3.1.1 SIGNING_CAPABILITIES), if any.
    pub signing_algorithm: Option<String>,
    /// The server's NEGOTIATE SecurityMode had SIGNING_REQUIRED.
    pub server_requires_signing: bool,
    pub smb2_frames: usize,
    pub signed_frames: usize,
    /// Frames matching the issue's filter ([`crate::UNSIGNED_AFTER_AUTH_RAW`]) that hold a
    /// message a signed session must sign: `frame cmd response status` of each.
    pub unsigned_after_auth: Vec<String>,
    /// Frames matching the issue's filter whose unsigned messages are all unsigned by design
    /// (STATUS_PENDING interim responses, oplock breaks), where [`Interim::Allowed`].
    pub unsigned_by_design: usize,
    pub malformed: Vec<String>,
    /// NEGOTIATE responses with Wireshark's BER warning about SPNEGO negHints (not counted).
    pub spnego_warnings: usize,
}

/// Which unsigned messages a signed session may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interim {
    /// None: our server sends no interim responses or oplock breaks, so the issue's filter
    /// must match nothing.
    Forbidden,
    /// Async STATUS_PENDING interim responses (MS-SMB2 3.3.4.1.1 signs a response only if it
    /// "is not an interim response to an asynchronously processed request") and oplock/lease
    /// breaks (MessageId 0xFFFFFFFFFFFFFFFF, 3.2.5.1.3): Samba sends interims for READ/WRITE.
    Allowed,
}

/// Every SMB2 connection in one capture.
#[derive(Debug)]
pub struct WireSessions {
    pub sessions: Vec<WireSession>,
    /// Held so the file outlives a failing test (it is kept for the post-mortem then).
    pub capture: CaptureFile,
}

impl WireSessions {
    /// Reads `capture` with three tshark passes; the unsigned messages are counted with the
    /// issue's own filter ([`crate::UNSIGNED_AFTER_AUTH_RAW`]), and `interim` says which of
    /// the matches are unsigned by design.
    pub fn read(capture: &CaptureFile, interim: Interim) -> WireSessions {
        let mut sessions: Vec<WireSession> = Vec::new();
        fn entry(sessions: &mut Vec<WireSession>, stream: u32, time: f64) -> &mut WireSession {
            let i = match sessions.iter().position(|s| s.stream == stream) {
                Some(i) => i,
                None => {
                    sessions.push(WireSession {
                        stream,
                        first_seen: time,
                        ..WireSession::default()
                    });
                    sessions.len() - 1
                }
            };
            &mut sessions[i]
        }
        let parse_row = |row: &str| -> (u32, f64, Vec<String>) {
            let mut cols = row.split('\t').map(str::to_string);
            let stream = cols.next().and_then(|s| s.parse().ok()).unwrap_or(u32::MAX);
            let time = cols.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
            (stream, time, cols.collect())
        };

        // One pass over every SMB2 frame; NEGOTIATE responses also give the dialect, the
        // signing algorithm and the server's SecurityMode.
        for row in capture.fields(
            "smb2",
            &[
                "tcp.stream",
                "frame.time_epoch",
                "smb2.flags.signature",
                "smb2.cmd",
                "smb2.flags.response",
                "smb2.dialect",
                "smb2.negotiate_context.signing_id",
                "smb2.sec_mode.sign_required",
            ],
        ) {
            let (stream, time, cols) = parse_row(&row);
            let col = |i: usize| cols.get(i).map(String::as_str).unwrap_or("");
            let is_true = |v: &str| matches!(v, "1" | "True");
            let s = entry(&mut sessions, stream, time);
            s.first_seen = s.first_seen.min(time);
            s.smb2_frames += 1;
            // A frame of several messages lists one value each: count it signed if all are.
            if !col(0).is_empty() && col(0).split(',').all(is_true) {
                s.signed_frames += 1;
            }
            if col(1) != "0" || !is_true(col(2)) {
                continue;
            }
            // The last NEGOTIATE response wins (smbclient's SMB1 opening is answered 0x02FF).
            let revision = u16::from_str_radix(col(3).trim_start_matches("0x"), 16).ok();
            s.dialect = revision.map(|r| match dialect_from_revision(r) {
                Some(d) => d.to_string(),
                None => format!("{r:#06x}"),
            });
            s.signing_algorithm = u16::from_str_radix(col(4).trim_start_matches("0x"), 16)
                .ok()
                .map(|id| algorithm_from_id(id).map_or(format!("{id:#06x}"), str::to_string));
            s.server_requires_signing = is_true(col(5));
        }
        for row in capture.fields(
            crate::UNSIGNED_AFTER_AUTH_RAW,
            &[
                "tcp.stream",
                "frame.time_epoch",
                "frame.number",
                "smb2.cmd",
                "smb2.flags.response",
                "smb2.nt_status",
                "smb2.flags.signature",
                "smb2.flags.async",
                "smb2.msg_id",
            ],
        ) {
            let (stream, time, cols) = parse_row(&row);
            let list = |i: usize| -> Vec<&str> {
                cols.get(i).map_or(Vec::new(), |v| v.split(',').collect())
            };
            let (cmds, statuses, signed, asyncs, ids) =
                (list(1), list(3), list(4), list(5), list(6));
            // A frame may hold several messages: each field lists one value per message.
            let must_have_been_signed = (0..cmds.len()).any(|i| {
                fn at<'a>(v: &[&'a str], i: usize) -> &'a str {
                    v.get(i).copied().unwrap_or("")
                }
                let unsigned = matches!(at(&signed, i), "0" | "False");
                let cmd = at(&cmds, i);
                let interim_response =
                    matches!(at(&asyncs, i), "1" | "True") && at(&statuses, i) == "0x00000103";
                let oplock_break = at(&ids, i) == "18446744073709551615"
                    || at(&ids, i).eq_ignore_ascii_case("0xffffffffffffffff");
                let by_design = interim == Interim::Allowed && (interim_response || oplock_break);
                unsigned && cmd != "0" && cmd != "1" && !by_design
            });
            let s = entry(&mut sessions, stream, time);
            if must_have_been_signed {
                s.unsigned_after_auth
                    .push(cols[..cols.len().min(4)].join(" "));
            } else {
                s.unsigned_by_design += 1;
            }
        }
        // Every frame in Wireshark's malformed group, warnings included (stricter than
        // `tests::MALFORMED`), except one known dissector quirk: the SPNEGO negHints in a
        // NEGOTIATE response (NegTokenInit2, as Windows and Samba send it), which Wireshark
        // 4.0 reads as a malformed mechListMIC and flags with a BER *warning*.
        for row in capture.fields(
            "_ws.malformed",
            &[
                "tcp.stream",
                "frame.time_epoch",
                "frame.number",
                "smb2.cmd",
                "smb2.flags.response",
                "_ws.expert.severity",
                "_ws.expert.message",
            ],
        ) {
            let (stream, time, cols) = parse_row(&row);
            let col = |i: usize| cols.get(i).map(String::as_str).unwrap_or("");
            let negotiate_response = col(1) == "0" && matches!(col(2), "1" | "True");
            // PI_ERROR (0x00800000) and above are real dissection failures.
            let errors = col(3)
                .split(',')
                .filter_map(|v| v.trim().parse::<u32>().ok())
                .any(|severity| severity >= 0x0080_0000);
            let known_quirk = negotiate_response && !errors && col(4).contains("BER Error");
            let s = entry(&mut sessions, stream, time);
            if known_quirk {
                s.spnego_warnings += 1;
            } else {
                s.malformed.push(cols.join(" "));
            }
        }
        sessions.sort_by_key(|s| s.stream);
        WireSessions {
            sessions,
            capture: capture.clone(),
        }
    }

    /// The connections opened within a cell's time window.
    pub fn of(&self, run: &CellRun) -> Vec<&WireSession> {
        // dumpcap stamps packets with the same realtime clock the cell's window was read
        // from, and the peer connects after the window opens and is done before it closes.
        // No slack: cells run back to back, the next one's connection opens milliseconds later.
        self.sessions
            .iter()
            .filter(|s| s.first_seen >= run.started && s.first_seen <= run.ended)
            .collect()
    }

    /// Checks a cell's connection(s) for a session that must be signed: the expected dialect
    /// and algorithm were negotiated, signed frames are there, and nothing after
    /// authentication went unsigned or failed to dissect. Ok(evidence) or Err(reason).
    /// `algorithm`: the SigningAlgorithmId the server must have chosen, `Some("none")` for no
    /// SIGNING_CAPABILITIES in the response, None for no check.
    pub fn expect_signed(
        &self,
        run: &CellRun,
        dialect: &str,
        algorithm: Option<&str>,
    ) -> Result<String, String> {
        self.expect_signed_inner(run, dialect, algorithm)
            .map_err(|why| format!("{why} (capture kept: {})", self.capture))
    }

    fn expect_signed_inner(
        &self,
        run: &CellRun,
        dialect: &str,
        algorithm: Option<&str>,
    ) -> Result<String, String> {
        let sessions = self.of(run);
        let Some(main) = sessions.iter().rev().find(|s| s.dialect.is_some()) else {
            return Err(format!(
                "no NEGOTIATE response in the cell's window in {}",
                self.capture
            ));
        };
        if main.dialect.as_deref() != Some(dialect) {
            return Err(format!("negotiated {:?}, expected {dialect}", main.dialect));
        }
        if algorithm == Some("none") {
            if let Some(chosen) = &main.signing_algorithm {
                return Err(format!(
                    "SIGNING_CAPABILITIES chose {chosen}, expected none"
                ));
            }
        } else if let Some(algorithm) = algorithm {
            if main.signing_algorithm.as_deref() != Some(algorithm) {
                return Err(format!(
                    "SIGNING_CAPABILITIES chose {:?}, expected {algorithm}",
                    main.signing_algorithm
                ));
            }
        }
        let unsigned: Vec<&String> = sessions
            .iter()
            .flat_map(|s| &s.unsigned_after_auth)
            .collect();
        if !unsigned.is_empty() {
            return Err(format!(
                "{} unsigned message(s) after authentication (frame cmd response status): {:?}",
                unsigned.len(),
                unsigned
            ));
        }
        let malformed: Vec<&String> = sessions.iter().flat_map(|s| &s.malformed).collect();
        if !malformed.is_empty() {
            return Err(format!(
                "{} malformed frame(s): {:?}",
                malformed.len(),
                malformed
            ));
        }
        let signed: usize = sessions.iter().map(|s| s.signed_frames).sum();
        if signed < 4 {
            return Err(format!("only {signed} signed frames"));
        }
        let frames: usize = sessions.iter().map(|s| s.smb2_frames).sum();
        let warnings: usize = sessions.iter().map(|s| s.spnego_warnings).sum();
        let by_design: usize = sessions.iter().map(|s| s.unsigned_by_design).sum();
        let by_design = if by_design > 0 {
            format!(
                " ({by_design} frame(s) matched the filter: STATUS_PENDING interim responses, \
                 unsigned by design)"
            )
        } else {
            String::new()
        };
        Ok(format!(
            "wire: dialect {dialect}{}, server SecurityMode {}, {signed}/{frames} frames signed, \
             0 unsigned after auth{by_design}, 0 malformed ({warnings} SPNEGO negHints BER \
             warning(s) on NEGOTIATE responses, a Wireshark quirk)",
            main.signing_algorithm
                .as_deref()
                .map(|a| format!(" {a}"))
                .unwrap_or_default(),
            if main.server_requires_signing {
                "signing required"
            } else {
                "signing enabled"
            }
        ))
    }

    /// Checks a cell's connection for a session that must NOT be signed (the control): the
    /// issue's filter does find unsigned messages after authentication.
    pub fn expect_unsigned(&self, run: &CellRun, dialect: &str) -> Result<String, String> {
        self.expect_unsigned_inner(run, dialect)
            .map_err(|why| format!("{why} (capture kept: {})", self.capture))
    }

    fn expect_unsigned_inner(&self, run: &CellRun, dialect: &str) -> Result<String, String> {
        let sessions = self.of(run);
        let Some(main) = sessions.iter().rev().find(|s| s.dialect.is_some()) else {
            return Err(format!(
                "no NEGOTIATE response in the cell's window in {}",
                self.capture
            ));
        };
        if main.dialect.as_deref() != Some(dialect) {
            return Err(format!("negotiated {:?}, expected {dialect}", main.dialect));
        }
        let unsigned: usize = sessions.iter().map(|s| s.unsigned_after_auth.len()).sum();
        let malformed: usize = sessions.iter().map(|s| s.malformed.len()).sum();
        if unsigned < 3 {
            return Err(format!(
                "expected unsigned TREE_CONNECT/CREATE/... after authentication, found {unsigned}"
            ));
        }
        if malformed > 0 {
            return Err(format!("{malformed} malformed frame(s)"));
        }
        Ok(format!(
            "wire: dialect {dialect}, {unsigned} unsigned messages after auth (as expected), 0 malformed"
        ))
    }
}

/// Runs the smbprotocol driver `tests/peers/SCRIPT` against `127.0.0.1:port` with one account,
/// share and dialect (its remote file named `FILE_PREFIX-DIALECT.bin`), and returns the lines it
/// printed, one a step: the form the LOCK and sharing cells compare between our server and Samba.
pub fn run_step_script(
    script: &str,
    file_prefix: &str,
    port: u16,
    user: &str,
    password: &str,
    share: &str,
    dialect: &str,
) -> Result<Vec<String>, String> {
    let script = crate::workspace_root()
        .join("tests")
        .join("peers")
        .join(script);
    let mut cmd = std::process::Command::new(crate::python());
    cmd.arg(script)
        .args([
            "127.0.0.1",
            &port.to_string(),
            user,
            password,
            share,
            dialect,
        ])
        .arg(format!("{file_prefix}-{dialect}.bin"));
    let out = crate::run_with_timeout(&mut cmd, PEER_TIMEOUT);
    if !out.status.success() {
        return Err(failure("smbprotocol", &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// What the `session:` line of our client must say.
#[derive(Debug)]
pub struct Expect<'a> {
    pub dialect: &'a str,
    pub signing: &'a str,
    pub signed: bool,
}

/// A Samba server our client is pointed at: where it listens, and where its share lies on this
/// host (for the host's Samba and for the one in Docker, through its bind mount).
#[derive(Debug)]
pub struct SambaTarget<'a> {
    pub port: u16,
    pub share: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    pub share_path: &'a Path,
    /// Prefix of the scratch directory of each cell.
    pub scratch: &'a str,
}

/// put, ls, get against `samba` with our client; checks the session line, the listing, the
/// file on the share and the file read back. Ok(evidence) or Err(reason).
pub fn our_client_put_ls_get(
    samba: &SambaTarget,
    args: &[&str],
    expect: &Expect,
    tag: &str,
    len: usize,
) -> Result<String, String> {
    let dir = scratch_dir(&format!("{}-{tag}", samba.scratch));
    let original = test_bytes(len, len as u64 ^ tag.len() as u64);
    let local = dir.join("up.bin");
    let back = dir.join("down.bin");
    fs::write(&local, &original).map_err(|e| e.to_string())?;
    let remote = format!("ours-{tag}.bin");

    let out = our_client(
        "127.0.0.1",
        samba.port,
        samba.share,
        samba.user,
        samba.password,
        args,
        &format!(
            "put {} {remote}; ls; get {remote} {}",
            local.display(),
            back.display()
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let session = SessionLine::find(&stderr);
    if !out.status.success() {
        return Err(format!(
            "{} (session: {session:?})",
            failure("smb-client", &out)
        ));
    }
    let Some(session) = session else {
        return Err(format!("no `session:` line on stderr: {stderr}"));
    };
    if session.dialect != expect.dialect
        || session.signing != expect.signing
        || session.signed != expect.signed
        || session.guest
    {
        return Err(format!(
            "session dialect={} signing={} signed={} guest={}, expected dialect={} signing={} signed={} guest=false",
            session.dialect,
            session.signing,
            session.signed,
            session.guest,
            expect.dialect,
            expect.signing,
            expect.signed
        ));
    }
    check_round_trip(
        &String::from_utf8_lossy(&out.stdout),
        &remote,
        Some(&samba.share_path.join(&remote)),
        &back,
        &original,
    )?;
    Ok(format!(
        "session dialect={} signing={} signed={}; put/ls/get of {} bytes identical on the share and back",
        session.dialect, session.signing, session.signed, len
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_line_is_read_from_stderr() {
        let stderr =
            "connecting\nsession: dialect=3.1.1 signing=aes-gmac signed=true guest=false\n";
        assert_eq!(
            SessionLine::find(stderr),
            Some(SessionLine {
                dialect: "3.1.1".into(),
                signing: "aes-gmac".into(),
                signed: true,
                guest: false,
            })
        );
        assert_eq!(SessionLine::find("session: dialect=2.1 signed=false"), None);
        assert_eq!(SessionLine::find("no session here"), None);
    }

    #[test]
    fn cells_are_one_json_line_with_escapes() {
        let cell = Cell {
            peer: "smbclient → our server".into(),
            dialect: "3.1.1".into(),
            algorithm: "aes-gmac".into(),
            policy: "a \"quoted\" policy".into(),
            status: Status::Fail,
            reason: "line 1\nline 2\t\\ \u{1}".into(),
            test: "t".into(),
        };
        let line = cell.to_json_line();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.ends_with("}\n"));
        assert!(line.contains(r#""policy":"a \"quoted\" policy""#), "{line}");
        assert!(
            line.contains(r#""reason":"line 1\nline 2\t\\ \u0001""#),
            "{line}"
        );
        assert!(line.contains(r#""status":"fail""#), "{line}");
    }

    #[test]
    fn a_panicking_cell_fails_with_its_message_and_the_next_one_runs() {
        let run = run_cell(CellKey::new("2.1", "x", "y"), || panic!("boom {}", 42));
        assert_eq!(run.outcome.as_ref().unwrap_err(), "panicked: boom 42");
        assert!(run.started <= run.ended);
        let mut run = run_cell(CellKey::new("2.1", "x", "y"), || Ok("peer ok".into()));
        run.check_wire(Err("2 unsigned".into()));
        assert_eq!(run.outcome.unwrap_err(), "on the wire: 2 unsigned");
    }
}
