//! Harness for the integration and interop tests (`tests/tests/*.rs`).
//!
//! The real peers (Samba's smbd and smbclient, tshark/dumpcap, impacket and smbprotocol in a
//! venv) are installed by `cargo xtask peers`. This crate starts and stops them for one test:
//!
//! - [`SambaServer::start`] runs a private smbd on a free loopback port with its own smb.conf,
//!   passdb and share under `target/peers/samba-PORT/`; dropping it stops every process it
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
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// The Unix and Samba account every harness Samba accepts (created by `cargo xtask peers`,
/// or by [`SambaServer::start`] when missing).
pub const SAMBA_USER: &str = "smbtest";
/// Its password (only ever used on loopback).
pub const SAMBA_PASSWORD: &str = "Smb-Test-Passw0rd";
/// The name of the read/write share of a [`SambaServer`].
pub const SAMBA_SHARE: &str = "data";

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

const PEERS_HINT: &str = "run `cargo xtask peers` (as root) to install the interop peers";

// ---------------------------------------------------------------------------------------------
// Locating things

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// `target/peers` (or `$SMB_PEERS_DIR`, which `cargo xtask test` exports).
pub fn peers_dir() -> PathBuf {
    match std::env::var_os("SMB_PEERS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target").join("peers"),
    }
}

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

/// Full path of an installed program (searched on PATH and in /usr/sbin, /sbin).
/// Panics, naming the package to install, when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        let package = match name {
            "smbd" | "smbpasswd" | "testparm" => "samba",
            "smbclient" => "smbclient",
            "tshark" | "dumpcap" => "tshark",
            _ => "the package that provides it",
        };
        panic!("`{name}` is not installed (Debian package `{package}`); {PEERS_HINT}")
    })
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
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

/// A free TCP port on 127.0.0.1 (never 445 or 139: those are privileged and never handed out).
pub fn free_port() -> u16 {
    loop {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("cannot bind an ephemeral port on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("bound socket has an address")
            .port();
        if port != 445 && port != 139 {
            return port;
        }
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, polling (no fixed sleep).
/// Fails early when `child` exits first.
pub fn wait_for_port(
    port: u16,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(child) = child.as_deref_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the process exited ({status}) before listening on {addr}"
                ));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("nothing listens on {addr} after {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

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
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// PIDs of processes whose command line contains `needle` (zombies have an empty one), e.g.
/// every process of one [`SambaServer`] (`needle` = its smb.conf path).
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(needle)
        })
        .collect()
}

/// True while `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Samba

/// `server signing` in smb.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSigning {
    /// Signing required (Windows: RequireSecuritySignature = 1).
    Mandatory,
    /// Signing offered, used when the client requires it.
    Auto,
}

impl ServerSigning {
    fn as_conf(self) -> &'static str {
        match self {
            ServerSigning::Mandatory => "mandatory",
            ServerSigning::Auto => "auto",
        }
    }
}

/// How to configure one [`SambaServer`].
#[derive(Debug, Clone)]
pub struct SambaOptions {
    pub signing: ServerSigning,
    /// `server min protocol`: SMB2_02, SMB2_10, SMB3_00, SMB3_02 or SMB3_11.
    pub min_protocol: &'static str,
    /// `server max protocol`.
    pub max_protocol: &'static str,
    /// `server smb3 signing algorithms`, e.g. "AES-128-GMAC" to force GMAC on 3.1.1.
    pub signing_algorithms: Option<&'static str>,
    /// `server smb encrypt`: "off" by default, since an encrypted session hides the SMB2
    /// headers (and their signatures) that the interop tests check on the wire.
    pub smb_encrypt: &'static str,
    /// `smb2 max read`, `smb2 max write` and `smb2 max trans`, in bytes. 64 KiB by default:
    /// tshark decodes a non-445 port as NBSS (`-d tcp.port==PORT,nbss`), whose length field is
    /// 17 bits, so a message over 128 KiB (Samba's default is 8 MiB) would show as malformed.
    pub max_io: u32,
    /// Extra `name = value` lines for [global].
    pub extra_global: Vec<String>,
}

impl Default for SambaOptions {
    fn default() -> Self {
        SambaOptions {
            signing: ServerSigning::Mandatory,
            min_protocol: "SMB2_02",
            max_protocol: "SMB3_11",
            signing_algorithms: None,
            smb_encrypt: "off",
            max_io: 65536,
            extra_global: Vec::new(),
        }
    }
}

impl SambaOptions {
    /// Samba's protocol name for an SMB dialect in dotted form ("3.1.1" → "SMB3_11").
    pub fn protocol_name(dialect: &str) -> &'static str {
        match dialect {
            "2.0.2" => "SMB2_02",
            "2.1" | "2.1.0" => "SMB2_10",
            "3.0" | "3.0.0" => "SMB3_00",
            "3.0.2" => "SMB3_02",
            "3.1.1" => "SMB3_11",
            other => panic!("unknown SMB dialect {other:?}"),
        }
    }

    /// Samba pinned to one dialect.
    pub fn only_dialect(mut self, dialect: &str) -> Self {
        let name = Self::protocol_name(dialect);
        self.min_protocol = name;
        self.max_protocol = name;
        self
    }
}

/// A private smbd on 127.0.0.1:PORT, stopped (with every helper it spawned) on drop.
#[derive(Debug)]
pub struct SambaServer {
    port: u16,
    dir: PathBuf,
    conf: PathBuf,
    share: PathBuf,
    smbd: Option<Child>,
}

impl SambaServer {
    /// Writes `target/peers/samba-PORT/smb.conf`, creates the test user and its password,
    /// starts smbd and waits until it accepts connections. Panics with a clear message on any
    /// failure (a missing Samba is a test failure, not a skip).
    pub fn start(opts: SambaOptions) -> SambaServer {
        ensure_unix_user(SAMBA_USER);
        // A port handed out by free_port() can be taken by a parallel test before smbd binds
        // it; smbd then exits, and a fresh port is tried.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match SambaServer::try_start(&opts, free_port()) {
                Ok(samba) => return samba,
                Err(why) => failures.push(why),
            }
        }
        panic!("smbd did not start:\n{}", failures.join("\n\n"));
    }

    fn try_start(opts: &SambaOptions, port: u16) -> Result<SambaServer, String> {
        let smbd_bin = require_tool("smbd");
        let smbpasswd = require_tool("smbpasswd");
        let setsid = require_tool("setsid");

        let dir = peers_dir().join(format!("samba-{port}"));
        // A stale directory from an interrupted run: stop its processes and start clean.
        stop_processes_of(&dir.join("smb.conf"), Duration::from_secs(5));
        let _ = fs::remove_dir_all(&dir);
        let sub = |name: &str| {
            let path = dir.join(name);
            fs::create_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
            path
        };
        let share = sub("share");
        for name in [
            "lock", "state", "cache", "private", "run", "ncalrpc", "binddns", "log",
        ] {
            sub(name);
        }
        // The share belongs to the test user, who is who Samba writes as.
        let status = Command::new("chown")
            .arg(format!("{SAMBA_USER}:"))
            .arg(&share)
            .status()
            .expect("chown runs");
        assert!(
            status.success(),
            "chown {SAMBA_USER} {} failed",
            share.display()
        );

        let conf = dir.join("smb.conf");
        fs::write(&conf, smb_conf(&dir, &share, port, opts))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));

        // The password lives in this server's own passdb (private dir), so servers never share it.
        let mut child = Command::new(&smbpasswd)
            .arg("-c")
            .arg(&conf)
            .args(["-a", "-s", SAMBA_USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("smbpasswd starts");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped stdin");
            writeln!(stdin, "{SAMBA_PASSWORD}\n{SAMBA_PASSWORD}").expect("write to smbpasswd");
        }
        let out = child.wait_with_output().expect("smbpasswd finishes");
        assert!(out.status.success(), "smbpasswd -a failed:\n{}", show(&out));

        let log = fs::File::create(dir.join("smbd.out")).expect("create smbd.out");
        // setsid: smbd leads its own session, so the test's terminal signals never reach it.
        let mut smbd = Command::new(setsid)
            .arg(&smbd_bin)
            .args(["--foreground", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", smbd_bin.display()));

        let ready = wait_for_port(port, Duration::from_secs(30), Some(&mut smbd));
        // Listening, and still ours: not another process that won the port.
        let ready = ready.and_then(|()| match smbd.try_wait() {
            Ok(None) => Ok(()),
            _ => Err(format!(
                "smbd exited; something else listens on port {port}"
            )),
        });
        if let Err(why) = ready {
            let _ = smbd.kill();
            let _ = smbd.wait();
            stop_processes_of(&conf, Duration::from_secs(5));
            let out = fs::read_to_string(dir.join("smbd.out")).unwrap_or_default();
            return Err(format!("port {port}: {why}\n--- smbd output ---\n{out}"));
        }
        Ok(SambaServer {
            port,
            dir,
            conf,
            share,
            smbd: Some(smbd),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `//127.0.0.1/data` (pass the port separately, e.g. smbclient's `-p`).
    pub fn unc(&self) -> String {
        format!("//127.0.0.1/{SAMBA_SHARE}")
    }

    pub fn share_name(&self) -> &'static str {
        SAMBA_SHARE
    }

    /// The directory behind the share: tests check files here directly.
    pub fn share_path(&self) -> &Path {
        &self.share
    }

    pub fn user(&self) -> &'static str {
        SAMBA_USER
    }

    pub fn password(&self) -> &'static str {
        SAMBA_PASSWORD
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// smbd's own output, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("smbd.out")).unwrap_or_default()
    }
}

impl Drop for SambaServer {
    fn drop(&mut self) {
        // smbd, its forked children, and samba-dcerpcd/rpcd_* (which detach from smbd's session
        // but carry `--configfile=CONF`) all name our private smb.conf on their command line.
        stop_processes_of(&self.conf, Duration::from_secs(5));
        if let Some(mut smbd) = self.smbd.take() {
            let _ = smbd.kill();
            let _ = smbd.wait();
        }
        // Keep the directory (config, logs, share) when the test failed, for the post-mortem.
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// SIGTERM to every process started with `conf`, then SIGKILL to whatever is left at `grace`.
fn stop_processes_of(conf: &Path, grace: Duration) {
    let needle = conf.to_string_lossy().into_owned();
    let pids = pids_with_cmdline(&needle);
    if pids.is_empty() {
        return;
    }
    for &pid in &pids {
        signal(pid, "TERM");
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|&pid| is_running(pid)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    for &pid in pids.iter().filter(|&&pid| is_running(pid)) {
        signal(pid, "KILL");
    }
}

fn smb_conf(dir: &Path, share: &Path, port: u16, opts: &SambaOptions) -> String {
    let d = dir.display();
    let mut conf = format!(
        "# Written by the test harness (tests/src/lib.rs); private to one test.
[global]
    server role = standalone server
    workgroup = WORKGROUP
    netbios name = SMBTEST{port}
    interfaces = 127.0.0.1
    bind interfaces only = yes
    smb ports = {port}
    disable netbios = yes
    server signing = {signing}
    server min protocol = {min}
    server max protocol = {max}
    server smb encrypt = {encrypt}
    smb2 max read = {max_io}
    smb2 max write = {max_io}
    smb2 max trans = {max_io}
    passdb backend = tdbsam
    map to guest = never
    restrict anonymous = 2
    lock directory = {d}/lock
    state directory = {d}/state
    cache directory = {d}/cache
    private dir = {d}/private
    pid directory = {d}/run
    ncalrpc dir = {d}/ncalrpc
    binddns dir = {d}/binddns
    log file = {d}/log/log.%m
    max log size = 0
    log level = 1
    load printers = no
    printcap name = /dev/null
    disable spoolss = yes
    usershare max shares = 0
",
        signing = opts.signing.as_conf(),
        min = opts.min_protocol,
        max = opts.max_protocol,
        encrypt = opts.smb_encrypt,
        max_io = opts.max_io,
    );
    if let Some(algorithms) = opts.signing_algorithms {
        conf.push_str(&format!(
            "    server smb3 signing algorithms = {algorithms}\n"
        ));
    }
    for line in &opts.extra_global {
        conf.push_str(&format!("    {line}\n"));
    }
    conf.push_str(&format!(
        "
[{SAMBA_SHARE}]
    path = {}
    read only = no
    valid users = {SAMBA_USER}
    create mask = 0644
    directory mask = 0755
",
        share.display()
    ));
    conf
}

/// Creates the Unix account Samba maps logins to, when missing. Parallel tests may race on
/// /etc/passwd's lock, so retry; "already exists" (exit 9) counts as success.
fn ensure_unix_user(user: &str) {
    let exists = || {
        Command::new("id")
            .arg(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let useradd = require_tool("useradd");
    for _ in 0..50 {
        if exists() {
            return;
        }
        let out = Command::new(&useradd)
            .args(["-M", "-s", "/usr/sbin/nologin", user])
            .output()
            .expect("useradd runs");
        if out.status.success() || out.status.code() == Some(9) {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot create the Unix user `{user}` (are the tests running as root?); {PEERS_HINT}");
}

// ---------------------------------------------------------------------------------------------
// Captures

/// dumpcap recording `tcp port PORT` on the loopback interface.
#[derive(Debug)]
pub struct Capture {
    guard: ChildGuard,
    dir: ScratchDir,
    file: PathBuf,
    port: u16,
    progress: mpsc::Receiver<String>,
}

/// dumpcap hands packets over in batches, at least every 250 ms (its read timeout); a capture is
/// complete once no batch has come for longer than that.
const CAPTURE_QUIET: Duration = Duration::from_millis(750);

impl Capture {
    /// Starts dumpcap and returns once it is capturing (it says so on stderr).
    pub fn start(port: u16) -> Capture {
        let dumpcap = require_tool("dumpcap");
        let dir = scratch_dir("capture");
        let file = dir.join(format!("port-{port}.pcapng"));
        let mut child = Command::new(dumpcap)
            .args(["-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
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
        // SIGINT drops packets the kernel has not handed over yet: wait for a quiet spell.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut messages = Vec::new();
        while Instant::now() < deadline {
            match progress.recv_timeout(CAPTURE_QUIET) {
                Ok(line) => messages.push(line),
                Err(_) => break,
            }
        }
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
    /// `tshark -r FILE -d tcp.port==PORT,nbss -Y FILTER -T fields -e FIELD...`, one line a frame.
    pub fn fields(&self, filter: &str, fields: &[&str]) -> Vec<String> {
        let tshark = require_tool("tshark");
        let mut cmd = Command::new(tshark);
        cmd.arg("-r")
            .arg(&self.path)
            .args(["-n", "-d", &format!("tcp.port=={},nbss", self.port)])
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
