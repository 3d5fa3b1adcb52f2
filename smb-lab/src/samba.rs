//! `smb-lab demo --target samba`: a private smbd as the relay's target, configured the way
//! the interop suite's harness (tests/src/lib.rs) does it, with `server signing = mandatory`
//! or `auto`, pinned to one dialect. Its processes are stopped by PID when it is dropped.

use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use smb_core::header::Dialect;

use crate::loopback;

/// The Unix account Samba maps the victim's logon to (the interop suite's).
pub const USER: &str = "smbtest";
/// Its Samba password, only ever used on loopback.
pub const PASSWORD: &str = "Smb-Test-Passw0rd";
/// The read/write share.
pub const SHARE: &str = "data";

/// A running private smbd.
#[derive(Debug)]
pub struct SambaTarget {
    pub addr: SocketAddr,
    dir: PathBuf,
    conf: PathBuf,
    share: PathBuf,
    smbd: Child,
}

fn protocol_name(d: Dialect) -> &'static str {
    match d {
        Dialect::SMB202 => "SMB2_02",
        Dialect::SMB21 => "SMB2_10",
        Dialect::SMB30 => "SMB3_00",
        Dialect::SMB302 => "SMB3_02",
        _ => "SMB3_11",
    }
}

fn tool(name: &str) -> anyhow::Result<PathBuf> {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!("{name} not found: install Samba (`cargo xtask peers`) to use --target samba")
}

impl SambaTarget {
    /// Starts smbd on `ip` (loopback) with `server signing = mandatory|auto`, pinned to
    /// `dialect`, with `file` (name, content) in its share.
    pub fn start(
        ip: IpAddr,
        mandatory: bool,
        dialect: Dialect,
        file: (&str, &[u8]),
    ) -> anyhow::Result<Self> {
        let mut errors = Vec::new();
        // A free port can be taken by someone else before smbd binds it: retry.
        for _ in 0..3 {
            match Self::try_start(ip, mandatory, dialect, file) {
                Ok(s) => return Ok(s),
                Err((e, dir)) => {
                    errors.push(format!("{e:#}"));
                    if let Some(dir) = dir {
                        let _ = fs::remove_dir_all(dir);
                    }
                }
            }
        }
        bail!("smbd did not start:\n{}", errors.join("\n"))
    }

    /// One attempt; on failure, the error and the directory to clean up.
    fn try_start(
        ip: IpAddr,
        mandatory: bool,
        dialect: Dialect,
        file: (&str, &[u8]),
    ) -> Result<Self, (anyhow::Error, Option<PathBuf>)> {
        let port = free_port(ip).map_err(|e| (e, None))?;
        let dir = std::env::temp_dir().join(format!("smb-lab-samba-{}-{port}", std::process::id()));
        Self::start_in(&dir, ip, port, mandatory, dialect, file).map_err(|e| (e, Some(dir)))
    }

    fn start_in(
        dir: &Path,
        ip: IpAddr,
        port: u16,
        mandatory: bool,
        dialect: Dialect,
        file: (&str, &[u8]),
    ) -> anyhow::Result<Self> {
        let smbd_bin = tool("smbd")?;
        let smbpasswd = tool("smbpasswd")?;
        ensure_user()?;
        let addr = loopback::check_listen("samba", SocketAddr::new(ip, port))?;
        let _ = fs::remove_dir_all(dir);
        let dir = dir.to_path_buf();
        let share = dir.join("share");
        for sub in [
            "share", "lock", "state", "cache", "private", "run", "ncalrpc", "binddns", "log",
        ] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::write(share.join(file.0), file.1)?;
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{USER}:"))
            .arg(&share)
            .status()?;
        if !status.success() {
            bail!("chown {USER} {} failed", share.display());
        }
        let conf = dir.join("smb.conf");
        fs::write(&conf, smb_conf(&dir, &share, addr, mandatory, dialect))?;

        let mut child = Command::new(&smbpasswd)
            .arg("-c")
            .arg(&conf)
            .args(["-a", "-s", USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting smbpasswd")?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{PASSWORD}\n{PASSWORD}")?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "smbpasswd -a failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let log = fs::File::create(dir.join("smbd.out"))?;
        // Its own process group: smbd signals its whole group when it stops, which must
        // not reach this process (the harness uses setsid for the same reason).
        let mut smbd = Command::new(&smbd_bin)
            .process_group(0)
            .args(["--foreground", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", smbd_bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = smbd.try_wait() {
                let out = fs::read_to_string(dir.join("smbd.out")).unwrap_or_default();
                stop_processes_of(&conf);
                bail!("smbd exited ({status}) on {addr}:\n{out}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = smbd.kill();
                let _ = smbd.wait();
                stop_processes_of(&conf);
                bail!("smbd did not listen on {addr} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(SambaTarget {
            addr,
            dir,
            conf,
            share,
            smbd,
        })
    }

    /// Whether `name` exists in the share directory.
    pub fn has_file(&self, name: &str) -> bool {
        self.share.join(name).exists()
    }
}

impl Drop for SambaTarget {
    fn drop(&mut self) {
        // smbd's forked children and samba-dcerpcd name our private smb.conf on their
        // command line; they are ours, stopped by PID.
        stop_processes_of(&self.conf);
        let _ = self.smbd.kill();
        let _ = self.smbd.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn free_port(ip: IpAddr) -> anyhow::Result<u16> {
    let l = TcpListener::bind(SocketAddr::new(ip, 0))?;
    Ok(l.local_addr()?.port())
}

/// The account exists already on machines set up by `cargo xtask peers`; create it if not.
fn ensure_user() -> anyhow::Result<()> {
    let exists = |u: &str| {
        Command::new("id")
            .arg(u)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if exists(USER) {
        return Ok(());
    }
    let status = Command::new(tool("useradd")?)
        .args(["-M", "-s", "/usr/sbin/nologin", USER])
        .status()?;
    if status.success() || status.code() == Some(9) {
        return Ok(());
    }
    bail!("cannot create the Unix user {USER} (run as root, or `cargo xtask peers`)")
}

fn smb_conf(
    dir: &Path,
    share: &Path,
    addr: SocketAddr,
    mandatory: bool,
    dialect: Dialect,
) -> String {
    let d = dir.display();
    let proto = protocol_name(dialect);
    format!(
        "# Written by smb-lab demo --target samba; private to one scenario.
[global]
    server role = standalone server
    workgroup = WORKGROUP
    netbios name = SMBLAB{port}
    interfaces = {ip}
    bind interfaces only = yes
    smb ports = {port}
    disable netbios = yes
    server signing = {signing}
    server min protocol = {proto}
    server max protocol = {proto}
    server smb encrypt = off
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

[{SHARE}]
    path = {share}
    read only = no
    valid users = {USER}
    create mask = 0644
    directory mask = 0755
",
        ip = addr.ip(),
        port = addr.port(),
        signing = if mandatory { "mandatory" } else { "auto" },
        share = share.display(),
    )
}

/// SIGTERM, then SIGKILL after a grace period, to each process whose command line names `conf`.
fn stop_processes_of(conf: &Path) {
    let needle = conf.to_string_lossy().into_owned();
    let pids = pids_naming(&needle);
    for pid in &pids {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pids_naming(&needle).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids_naming(&needle) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

fn pids_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let alive = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with(['Z', 'X']))
                })
                .is_some_and(|zombie| !zombie);
            alive
                && String::from_utf8_lossy(&cmd)
                    .replace('\0', " ")
                    .contains(needle)
        })
        .collect()
}
