//! Harness for the integration and interop tests (`tests/tests/*.rs`).
//!
//! The real peers (Samba's smbd and smbclient, tshark/dumpcap, impacket and smbprotocol in a
//! venv) are installed by `cargo xtask peers`. This crate starts and stops them for one test:
//!
//! - [`SambaServer::start`] runs a private smbd on a free loopback port (from the `peers`
//!   crate, the one Samba harness, re-exported here); dropping it stops every process it
//!   spawned, by PID.
//! - [`Capture::start`] records a port with dumpcap; [`CaptureFile`] counts messages with tshark.
//! - [`python`], [`require_tool`] and [`workspace_bin`] find the peers and our own binaries.
//!   A missing peer is a test failure whose message says what to install, never a silent skip.
//!
//! Everything listens and connects on 127.0.0.1 only, never on ports 445 or 139.

pub mod interop;

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

pub use peers::process::{free_port, pids_with_cmdline, wait_for_port};
pub use peers::{
    DockerSamba, DockerSmbclient, SambaOptions, SambaServer, ServerSigning, PEERS_HINT,
    SAMBA_PASSWORD, SAMBA_SHARE, SAMBA_USER,
};

/// Display filter from issue 4 for messages sent unsigned after authentication: every command
/// but NEGOTIATE (0) and SESSION_SETUP (1). It also matches the messages MS-SMB2 never signs.
pub const UNSIGNED_AFTER_AUTH_RAW: &str =
    "smb2.flags.signature == 0 && smb2.cmd != 0 && smb2.cmd != 1";

/// [`UNSIGNED_AFTER_AUTH_RAW`] minus the messages that are unsigned by design: async
/// STATUS_PENDING interim responses (MS-SMB2 3.3.4.1.1 signs a response only if it "is not an
/// interim response to an asynchronously processed request") and oplock/lease breaks
/// (MessageId 0xFFFFFFFFFFFFFFFF); the client skips verification for both (3.2.5.1.3).
/// Samba sends interim responses for large READs and WRITEs, so this is the one to count.
pub const UNSIGNED_AFTER_AUTH: &str = "smb2.flags.signature == 0 && smb2.cmd != 0 \
    && smb2.cmd != 1 && !(smb2.flags.async == 1 && smb2.nt_status == 0x00000103) \
    && smb2.msg_id != 0xffffffffffffffff";

/// Frames a dissector could not parse: Wireshark's "[Malformed Packet]" (an exception, error
/// severity). Warnings in the malformed group are left out: Wireshark's BER decoder warns about
/// the SPNEGO negHints in Samba's own NEGOTIATE response, which every client accepts.
pub const MALFORMED: &str = "_ws.malformed && _ws.expert.severity == error";

// ---------------------------------------------------------------------------------------------
// Locating things

pub use peers::{peers_dir, workspace_root};

/// The venv Python with impacket and smbprotocol (`$SMB_INTEROP_PYTHON` when set).
/// Panics, naming the fix, when it is missing.
pub fn python() -> PathBuf {
    let python = match std::env::var_os("SMB_INTEROP_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => peers_dir().join("venv").join("bin").join("python"),
    };
    assert!(
        python.is_file(),
        "the Python peers are missing: {} does not exist; {PEERS_HINT} \
         (a venv with impacket==0.13.1 and smbprotocol==1.17.0)",
        python.display()
    );
    python
}

/// Runs `python -c SCRIPT ARGS...` in the peers venv, with a time limit, and returns its output.
/// The script is passed inline, so tests keep their peer code next to their assertions.
pub fn run_python(script: &str, args: &[&str], timeout: Duration) -> Output {
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(script).args(args);
    run_with_timeout(&mut cmd, timeout)
}

/// Full path of an installed program (searched on PATH and in the sbin directories).
/// Panics, naming the package to install, when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    peers::tool(name).unwrap_or_else(|e| panic!("{e}"))
}

/// A workspace binary (`smb-server`, `smb-client`, `smb-lab`) built by `cargo xtask test`
/// into `$SMB_BIN_DIR` (default `target/debug`). Panics with the build command when missing.
pub fn workspace_bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("SMB_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target").join("debug"),
    };
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} does not exist: run `cargo build --workspace --bins` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// A fresh, empty directory under `target/peers/scratch/` for one test's files, removed on
/// drop unless the test is failing (then it stays for the post-mortem). Derefs to its path.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = peers_dir()
            .join("scratch")
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Shorthand for [`ScratchDir::new`].
pub fn scratch_dir(name: &str) -> ScratchDir {
    ScratchDir::new(name)
}

/// `len` bytes that are not all alike (so a misplaced block shows), deterministic per `seed`.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    // xorshift64*: cheap, and good enough to make every block distinct.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Ports and processes

/// Kills (SIGKILL) and reaps a child process when dropped, so a failing test leaves nothing.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until drop")
    }

    /// Hands the child back without killing it.
    pub fn into_inner(mut self) -> Child {
        self.child.take().expect("child present until drop")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts a server that announces itself with a line `listening on ADDR:PORT` on stdout (as
/// `smb-server` and `smb-lab relay` do), waits for that line and returns the process (killed on
/// drop) and the address. Later stdout is drained in the background so the server never blocks.
pub fn spawn_listening(cmd: &mut Command, timeout: Duration) -> (ChildGuard, SocketAddr) {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut guard = ChildGuard::new(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let _ = tx.send(
                    addr.parse::<SocketAddr>()
                        .map_err(|e| format!("{line:?}: {e}")),
                );
                // Keep reading so the server's later writes never fill the pipe.
                for _ in lines.by_ref() {}
                return;
            }
            seen.push(line);
        }
        let _ = tx.send(Err(format!(
            "stdout closed; it printed:\n{}",
            seen.join("\n")
        )));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(addr)) => (guard, addr),
        Ok(Err(why)) => {
            let status = guard.child().try_wait().ok().flatten();
            panic!("{what} did not announce `listening on ADDR:PORT` ({status:?}): {why}")
        }
        Err(_) => panic!("{what} printed no `listening on ADDR:PORT` within {timeout:?}"),
    }
}

/// Runs `cmd` to completion, killing it after `timeout`; stdin is closed.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let what = describe(cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            signal(pid, "KILL");
            panic!("{what} did not finish within {timeout:?} (killed pid {pid})");
        }
    }
}

/// Formats a command's output for an assertion message.
pub fn show(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn describe(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

fn signal(pid: u32, sig: &str) {
    peers::process::signal(pid, sig);
}

// ---------------------------------------------------------------------------------------------
// Captures

/// Sends a UDP datagram to [`MARKER_TO`] (the capture filter takes it) until dumpcap has
/// written it to `file`, and returns dumpcap's progress messages meanwhile. The kernel hands
/// packets over in order: once the marker is in the file, so is every packet sent before it.
fn await_marker(
    file: &Path,
    progress: &mpsc::Receiver<String>,
    pid: u32,
    what: &str,
) -> Vec<String> {
    // Unique to this capture: other captures (threads, processes) record markers too.
    let marker = format!(
        "smb-signing capture {what} marker {} {:?}",
        std::process::id(),
        Instant::now()
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("UDP socket for the marker");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut messages = Vec::new();
    let mut sent = None::<Instant>;
    let mut scanned = 0usize;
    loop {
        // Resent now and then: a datagram the kernel dropped is not waited for forever.
        if sent.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            udp.send_to(marker.as_bytes(), MARKER_TO)
                .expect("send the capture marker");
            sent = Some(Instant::now());
        }
        if let Ok(line) = progress.recv_timeout(Duration::from_millis(50)) {
            messages.push(line);
        }
        // dumpcap flushes the file whenever it reports a packet count.
        let written = fs::read(file).unwrap_or_default();
        let from = scanned.saturating_sub(marker.len()).min(written.len());
        if written[from..]
            .windows(marker.len())
            .any(|w| w == marker.as_bytes())
        {
            return messages;
        }
        scanned = written.len();
        assert!(
            Instant::now() < deadline,
            "dumpcap (pid {pid}) did not write the {what} marker in 30 s:\n{}",
            messages.join("\n")
        );
    }
}

/// dumpcap recording `tcp port PORT` on the loopback interface.
#[derive(Debug)]
pub struct Capture {
    guard: ChildGuard,
    dir: ScratchDir,
    file: PathBuf,
    port: u16,
    progress: mpsc::Receiver<String>,
}

/// Where `Capture` sends its start and end markers: a loopback address and port (discard) nobody
/// listens on.
const MARKER_TO: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 253)),
    9,
);

impl Capture {
    /// Starts dumpcap and returns once it is capturing (it says so on stderr).
    pub fn start(port: u16) -> Capture {
        let dumpcap = require_tool("dumpcap");
        let dir = scratch_dir("capture");
        let file = dir.join(format!("port-{port}.pcapng"));
        let mut child = Command::new(dumpcap)
            .args([
                "-i",
                "lo",
                // A 64 MiB kernel buffer (the default is 2 MiB): with the default, the 1 MiB
                // transfers of interop_breaks lost segments on every run on a loaded machine
                // (tshark and smb-audit then disagree). What -B 64 cost, a slow start whose
                // first packets were lost, `start` now waits out with a marker.
                "-B",
                "64",
                "-f",
                // The UDP datagram to MARKER_TO is the end marker `stop` waits for.
                &format!("tcp port {port} or (udp and dst host {})", MARKER_TO.ip()),
                "-w",
            ])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dumpcap starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let guard = ChildGuard::new(child);

        // dumpcap reports "Capturing on ..." once, then "\rPackets: N " after every batch it
        // writes; forward each piece, split on \r and \n.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut piece = Vec::new();
            let mut byte = [0u8; 1];
            while reader.read(&mut byte).is_ok_and(|n| n == 1) {
                if byte[0] == b'\r' || byte[0] == b'\n' {
                    let text = String::from_utf8_lossy(&piece).trim().to_string();
                    piece.clear();
                    if !text.is_empty() && tx.send(text).is_err() {
                        break;
                    }
                } else {
                    piece.push(byte[0]);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("Capturing on") => break,
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(_) => panic!("dumpcap did not start capturing on lo:\n{seen}"),
            }
        }
        // "Capturing on" comes before the kernel hands packets over: wait until a marker sent
        // now is in the file, so the test's first packets are recorded.
        await_marker(&file, &rx, guard.id(), "start");
        Capture {
            guard,
            dir,
            file,
            port,
            progress: rx,
        }
    }

    /// Waits until dumpcap has written every packet already sent, stops it (SIGINT, so it
    /// closes the file properly) and returns the capture.
    pub fn stop(self) -> CaptureFile {
        let Capture {
            mut guard,
            dir,
            file,
            port,
            progress,
        } = self;
        // On SIGINT dumpcap discards, silently (its statistics say 0 dropped, 0 flushed), what
        // it has not read from the kernel yet. A quiet spell alone is not enough: on a loaded
        // machine dumpcap can go unscheduled for longer than any spell, and the tail of the
        // capture is lost (the last break notification of interop_breaks). So send an end
        // marker after all the traffic, a UDP datagram nobody reads (tshark shows it as plain
        // data, smb-audit reads TCP only), and stop dumpcap only once the file holds it: the
        // kernel hands packets over in order.
        let mut messages = await_marker(&file, &progress, guard.id(), "end");
        signal(guard.id(), "INT");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match guard.child().try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() >= deadline => {
                    panic!("dumpcap (pid {}) did not stop on SIGINT", guard.id())
                }
                _ => thread::sleep(Duration::from_millis(10)),
            }
        }
        messages.extend(progress.try_iter());
        assert!(
            file.is_file(),
            "dumpcap wrote no file {}:\n{}",
            file.display(),
            messages.join("\n")
        );
        CaptureFile {
            path: file,
            port,
            _dir: Arc::new(dir),
        }
    }
}

/// A finished capture, read with tshark (port decoded as SMB over direct TCP). The file is
/// deleted with the last clone, unless the test is failing.
#[derive(Debug, Clone)]
pub struct CaptureFile {
    pub path: PathBuf,
    pub port: u16,
    _dir: Arc<ScratchDir>,
}

impl CaptureFile {
    /// `tshark -r FILE -d tcp.port==PORT,nbss -Y FILTER -T fields -e FIELD...` (out-of-order
    /// segments reassembled), one line a frame.
    pub fn fields(&self, filter: &str, fields: &[&str]) -> Vec<String> {
        let tshark = require_tool("tshark");
        let mut cmd = Command::new(tshark);
        cmd.arg("-r")
            .arg(&self.path)
            .args(["-n", "-d", &format!("tcp.port=={},nbss", self.port)])
            // dumpcap on lo sometimes records a segment after the one that follows it (two
            // CPUs sending); by default tshark then drops the messages in it, smb-audit does not
            // (a run: tshark 206 signed messages, smb-audit 212; with this option both 212).
            .args(["-o", "tcp.reassemble_out_of_order:TRUE"])
            .args(["-Y", filter, "-T", "fields"]);
        for field in fields {
            cmd.args(["-e", field]);
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
        assert!(out.status.success(), "tshark failed:\n{}", show(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Number of frames matching a display filter.
    pub fn count(&self, filter: &str) -> usize {
        self.fields(filter, &["frame.number"]).len()
    }

    /// Frames with SMB2 messages.
    pub fn smb2_frames(&self) -> usize {
        self.count("smb2")
    }

    /// Frames carrying an SMB2 message sent unsigned after authentication ([`UNSIGNED_AFTER_AUTH`]).
    pub fn unsigned_after_auth(&self) -> usize {
        self.count(UNSIGNED_AFTER_AUTH)
    }

    /// Frames a dissector could not parse ([`MALFORMED`]).
    pub fn malformed(&self) -> usize {
        self.count(MALFORMED)
    }

    /// Every frame in Wireshark's malformed group, warnings included, with the expert message.
    pub fn malformed_summary(&self) -> String {
        self.fields(
            "_ws.malformed",
            &[
                "frame.number",
                "smb2.cmd",
                "_ws.expert.severity",
                "_ws.expert.message",
            ],
        )
        .join("\n")
    }

    /// A readable summary (frame, command, flags, status) of the frames matching `filter`.
    pub fn summary(&self, filter: &str) -> String {
        self.fields(
            filter,
            &[
                "frame.number",
                "smb2.cmd",
                "smb2.flags",
                "smb2.msg_id",
                "smb2.nt_status",
            ],
        )
        .join("\n")
    }
}

impl fmt::Display for CaptureFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (tcp port {})", self.path.display(), self.port)
    }
}

// ---------------------------------------------------------------------------------------------
// External servers

/// An SMB server outside this machine's harness (a Windows host, a Docker Samba), named by
/// `SMB_INTEROP_SERVER=host:port`, `SMB_INTEROP_USER`, `SMB_INTEROP_PASSWORD`.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalServer {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl fmt::Debug for ExternalServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ExternalServer {
    /// The server named by the environment, or None when `SMB_INTEROP_SERVER` is unset.
    /// Panics when it is set but malformed or the credentials are missing.
    pub fn from_env() -> Option<ExternalServer> {
        let server = std::env::var("SMB_INTEROP_SERVER").ok()?;
        let var = |name: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| panic!("SMB_INTEROP_SERVER is set but {name} is not"))
        };
        Some(
            ExternalServer::parse(
                &server,
                &var("SMB_INTEROP_USER"),
                &var("SMB_INTEROP_PASSWORD"),
            )
            .unwrap_or_else(|why| panic!("SMB_INTEROP_SERVER={server:?}: {why}")),
        )
    }

    /// `host:port` (IPv6 as `[addr]:port`) plus credentials.
    pub fn parse(server: &str, user: &str, password: &str) -> Result<ExternalServer, String> {
        let (host, port) = server.rsplit_once(':').ok_or("expected host:port")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("empty host".into());
        }
        let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
        Ok(ExternalServer {
            host: host.to_string(),
            port,
            user: user.to_string(),
            password: password.to_string(),
        })
    }
}

/// The Samba an interop test talks to: the one named by `SMB_INTEROP_SERVER` when set
/// (a Windows host, the Docker service), otherwise a private local smbd.
#[derive(Debug)]
pub enum SambaPeer {
    Local(SambaServer),
    External(ExternalServer),
}

impl SambaPeer {
    /// [`ExternalServer::from_env`] if set, else [`SambaServer::start`] with `opts`.
    /// An external server's own configuration decides signing and dialects: `opts` is ignored.
    pub fn from_env_or_start(opts: SambaOptions) -> SambaPeer {
        match ExternalServer::from_env() {
            Some(server) => SambaPeer::External(server),
            None => SambaPeer::Local(SambaServer::start(opts)),
        }
    }

    pub fn host(&self) -> &str {
        match self {
            SambaPeer::Local(_) => "127.0.0.1",
            SambaPeer::External(server) => &server.host,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            SambaPeer::Local(samba) => samba.port(),
            SambaPeer::External(server) => server.port,
        }
    }

    pub fn user(&self) -> &str {
        match self {
            SambaPeer::Local(samba) => samba.user(),
            SambaPeer::External(server) => &server.user,
        }
    }

    pub fn password(&self) -> &str {
        match self {
            SambaPeer::Local(samba) => samba.password(),
            SambaPeer::External(server) => &server.password,
        }
    }

    /// The share every peer exports (`data`).
    pub fn share_name(&self) -> &'static str {
        SAMBA_SHARE
    }

    /// The local server, whose share directory a test may inspect; None for an external one.
    pub fn local(&self) -> Option<&SambaServer> {
        match self {
            SambaPeer::Local(samba) => Some(samba),
            SambaPeer::External(_) => None,
        }
    }
}

/// Reads a whole file, panicking with its path.
pub fn read(path: &Path) -> Vec<u8> {
    let mut data = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    data
}
