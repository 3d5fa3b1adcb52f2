//! A private smbd for one test or one lab scenario.
//!
//! Its configuration, passdb, state and logs live in `target/peers/samba-PORT/` (root only
//! needs to reach them); its share lives in `TMP/smb-peers-share-PORT-PID/`, owned by the test
//! user, because smbd switches to that user to serve the share and the user must be able to
//! enter every directory above it: a checkout under `/root` or a `mktemp -d` directory (mode
//! 0700) would lock it out. `target/peers/samba-PORT/share` is a symlink to it, for the
//! post-mortem. Both are removed on drop, unless the thread is panicking (a failing test), so
//! config, logs and share stay for inspection.

use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::process::{free_port_on, stop_processes_naming, wait_for_listener};
use crate::tools::tool;
use crate::users::{ensure_unix_user, uid_gid};
use crate::{peers_dir, Error, Result};

/// The Unix and Samba account every harness Samba accepts (created by `cargo xtask peers`,
/// or by [`SambaServer::start`] when missing).
pub const SAMBA_USER: &str = "smbtest";
/// Its password (only ever used on loopback).
pub const SAMBA_PASSWORD: &str = "Smb-Test-Passw0rd";
/// The name of the read/write share of a [`SambaServer`].
pub const SAMBA_SHARE: &str = "data";

/// How long smbd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// SIGTERM → SIGKILL grace when stopping.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// `server signing` in smb.conf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSigning {
    /// Signing required (Windows: RequireSecuritySignature = 1).
    Mandatory,
    /// Signing offered, used when the client requires it.
    Auto,
}

impl ServerSigning {
    pub(crate) fn as_conf(self) -> &'static str {
        match self {
            ServerSigning::Mandatory => "mandatory",
            ServerSigning::Auto => "auto",
        }
    }
}

/// How to configure one [`SambaServer`].
#[derive(Debug, Clone)]
pub struct SambaOptions {
    /// The loopback address smbd binds to (127.0.0.1 by default; the lab uses 127.0.0.4).
    pub ip: IpAddr,
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
    /// Where `samba-PORT/` goes; [`peers_dir`] when None.
    pub peers_dir: Option<PathBuf>,
}

impl Default for SambaOptions {
    fn default() -> Self {
        SambaOptions {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            signing: ServerSigning::Mandatory,
            min_protocol: "SMB2_02",
            max_protocol: "SMB3_11",
            signing_algorithms: None,
            smb_encrypt: "off",
            max_io: 65536,
            extra_global: Vec::new(),
            peers_dir: None,
        }
    }
}

impl SambaOptions {
    /// Samba's protocol name for an SMB dialect in dotted form ("3.1.1" → "SMB3_11").
    /// Panics on anything else (a typo in a test table).
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

    /// Samba pinned to one dialect (dotted form, "3.0.2").
    pub fn only_dialect(mut self, dialect: &str) -> Self {
        let name = Self::protocol_name(dialect);
        self.min_protocol = name;
        self.max_protocol = name;
        self
    }
}

/// A private smbd on `IP:PORT`, stopped (with every helper it spawned) on drop.
#[derive(Debug)]
pub struct SambaServer {
    addr: SocketAddr,
    dir: PathBuf,
    conf: PathBuf,
    share: PathBuf,
    smbd: Option<Child>,
}

impl SambaServer {
    /// [`SambaServer::try_start`], panicking with its message on failure (a missing Samba is a
    /// test failure, not a skip).
    pub fn start(opts: SambaOptions) -> SambaServer {
        SambaServer::try_start(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates the test user when missing, writes `samba-PORT/smb.conf` and the user's
    /// password into the server's own passdb, starts smbd and waits until it accepts
    /// connections. A port handed out as free can be taken by someone else before smbd binds
    /// it; smbd then exits, and a fresh port is tried (three times).
    pub fn try_start(opts: SambaOptions) -> Result<SambaServer> {
        if !opts.ip.is_loopback() {
            return Err(Error::new(format!(
                "refusing to start Samba on {}: the harness binds loopback addresses only",
                opts.ip
            )));
        }
        ensure_unix_user(SAMBA_USER)?;
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port_on(opts.ip)?;
            match SambaServer::start_on(&opts, port) {
                Ok(samba) => return Ok(samba),
                Err(why) => failures.push(why.0),
            }
        }
        Err(Error::new(format!(
            "smbd did not start:\n{}",
            failures.join("\n\n")
        )))
    }

    fn start_on(opts: &SambaOptions, port: u16) -> Result<SambaServer> {
        let smbd_bin = tool("smbd")?;
        let smbpasswd = tool("smbpasswd")?;
        let addr = SocketAddr::new(opts.ip, port);

        let root = opts.peers_dir.clone().unwrap_or_else(peers_dir);
        let dir = server_dir(&root, port)?;
        let conf = dir.join("smb.conf");
        // A stale directory from an interrupted run: stop its processes and start clean.
        stop_processes_naming(&conf.to_string_lossy(), STOP_GRACE);
        let _ = fs::remove_dir_all(&dir);
        for name in [
            "lock", "state", "cache", "private", "run", "ncalrpc", "binddns", "log",
        ] {
            let path = dir.join(name);
            fs::create_dir_all(&path)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", path.display())))?;
        }
        let share = make_share_dir(port)?;
        // For the post-mortem: the share beside the config and the logs.
        let _ = std::os::unix::fs::symlink(&share, dir.join("share"));

        fs::write(&conf, smb_conf(&dir, &share, addr, opts))
            .map_err(|e| Error::new(format!("cannot write {}: {e}", conf.display())))?;
        let server = SambaServer {
            addr,
            dir,
            conf,
            share,
            smbd: None,
        };
        // From here on, dropping `server` cleans up whatever was started.
        server.set_password(&smbpasswd)?;
        server.spawn(&smbd_bin)
    }

    /// The password lives in this server's own passdb (private dir): servers never share it.
    fn set_password(&self, smbpasswd: &Path) -> Result<()> {
        let mut child = Command::new(smbpasswd)
            .arg("-c")
            .arg(&self.conf)
            .args(["-a", "-s", SAMBA_USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::new(format!("cannot run {}: {e}", smbpasswd.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{SAMBA_PASSWORD}\n{SAMBA_PASSWORD}")
                .map_err(|e| Error::new(format!("cannot write to smbpasswd: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::new(format!("smbpasswd: {e}")))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "smbpasswd -a failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    fn spawn(mut self, smbd_bin: &Path) -> Result<SambaServer> {
        let out = self.dir.join("smbd.out");
        let log = fs::File::create(&out)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", out.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::new(format!("cannot dup {}: {e}", out.display())))?;
        // Its own process group: smbd signals its whole group when it stops, and terminal
        // signals to the test's group must not reach it.
        let smbd = Command::new(smbd_bin)
            .process_group(0)
            .args(["--foreground", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log2)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::new(format!("cannot start {}: {e}", smbd_bin.display())))?;
        let smbd = self.smbd.insert(smbd);
        let ready = wait_for_listener(self.addr, START_TIMEOUT, Some(smbd))
            // Listening, and still ours: not another process that won the port.
            .and_then(|()| match smbd.try_wait() {
                Ok(None) => Ok(()),
                _ => Err(format!(
                    "smbd exited; something else listens on {}",
                    self.addr
                )),
            });
        match ready {
            Ok(()) => Ok(self),
            Err(why) => {
                let message = format!("{}: {why}\n--- smbd output ---\n{}", self.addr, self.log());
                self.stop();
                // Not a post-mortem case: the next attempt's error says the same.
                self.remove_files();
                Err(Error::new(message))
            }
        }
    }

    /// Writes `name` into the share, owned by the test user like everything smbd creates.
    pub fn put_file(&self, name: &str, contents: &[u8]) -> Result<()> {
        let path = self.share.join(name);
        fs::write(&path, contents)
            .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
        let (uid, gid) = uid_gid(SAMBA_USER)?;
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .map_err(|e| Error::new(format!("cannot chown {}: {e}", path.display())))
    }

    /// `IP:PORT` smbd listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `//IP/data` (pass the port separately, e.g. smbclient's `-p`).
    pub fn unc(&self) -> String {
        format!("//{}/{SAMBA_SHARE}", self.addr.ip())
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

    /// The private smb.conf; every process of this server names it on its command line.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// `samba-PORT/`: config, passdb, state, logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// smbd's own output, for error messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("smbd.out")).unwrap_or_default()
    }

    /// Stops smbd, its forked children and samba-dcerpcd/rpcd_* (which detach from smbd's
    /// session but carry `--configfile=CONF`): all name the private smb.conf on their command
    /// line, so they are found through /proc and stopped by PID.
    fn stop(&mut self) {
        stop_processes_naming(&self.conf.to_string_lossy(), STOP_GRACE);
        if let Some(mut smbd) = self.smbd.take() {
            let _ = smbd.kill();
            let _ = smbd.wait();
        }
    }

    fn remove_files(&self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_dir_all(&self.share);
    }
}

impl Drop for SambaServer {
    fn drop(&mut self) {
        self.stop();
        // Keep config, logs and share when a test failed, for the post-mortem.
        if !thread::panicking() {
            self.remove_files();
        }
    }
}

/// The first directory of `path` and its ancestors that others may not search, with its mode.
fn unsearchable_ancestor(path: &Path) -> Result<Option<(PathBuf, u32)>> {
    for ancestor in path.ancestors() {
        let mode = fs::metadata(ancestor)
            .map_err(|e| Error::new(format!("cannot stat {}: {e}", ancestor.display())))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Ok(Some((ancestor.to_path_buf(), mode & 0o7777)));
        }
    }
    Ok(None)
}

/// The directory of one server's smb.conf, state and logs: `PEERS/samba-PORT`, or, when a
/// directory above PEERS is closed to others (a checkout under `/root` or a `mktemp -d`),
/// `TMP/smb-peers-samba-PORT-PID` with `PEERS/samba-PORT` linking to it. smbd's forked
/// children act as the test user and must still reach the lock and state directories, or
/// share modes silently stop being shared between connections.
fn server_dir(root: &Path, port: u16) -> Result<PathBuf> {
    fs::create_dir_all(root)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", root.display())))?;
    let link = root.join(format!("samba-{port}"));
    if unsearchable_ancestor(root)?.is_none() {
        return Ok(link);
    }
    let dir = std::env::temp_dir().join(format!("smb-peers-samba-{port}-{}", std::process::id()));
    if let Some((closed, mode)) = unsearchable_ancestor(&std::env::temp_dir())? {
        return Err(Error::new(format!(
            "{} (mode {mode:o}) is not searchable by others, so Samba's user `{SAMBA_USER}` \
             cannot reach {}; set TMPDIR to a world-traversable directory",
            closed.display(),
            dir.display()
        )));
    }
    let _ = fs::remove_dir_all(&link);
    let _ = std::os::unix::fs::symlink(&dir, &link);
    Ok(dir)
}

/// `TMP/smb-peers-share-PORT-PID`, mode 0700, owned by the test user. Every directory above it
/// must let others through (search permission), or smbd, acting as the test user, cannot
/// reach it: that is checked here rather than discovered as a failed TREE_CONNECT.
fn make_share_dir(port: u16) -> Result<PathBuf> {
    let tmp = std::env::temp_dir();
    if let Some((closed, mode)) = unsearchable_ancestor(&tmp)? {
        return Err(Error::new(format!(
            "{} (mode {mode:o}) is not searchable by others, so Samba's user `{SAMBA_USER}` \
             cannot reach a share under {}; set TMPDIR to a world-traversable directory",
            closed.display(),
            tmp.display()
        )));
    }
    let share = tmp.join(format!("smb-peers-share-{port}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&share);
    fs::create_dir(&share)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", share.display())))?;
    fs::set_permissions(&share, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::new(format!("cannot chmod {}: {e}", share.display())))?;
    let (uid, gid) = uid_gid(SAMBA_USER)?;
    std::os::unix::fs::chown(&share, Some(uid), Some(gid))
        .map_err(|e| Error::new(format!("cannot chown {}: {e}", share.display())))?;
    Ok(share)
}

fn smb_conf(dir: &Path, share: &Path, addr: SocketAddr, opts: &SambaOptions) -> String {
    let d = dir.display();
    let mut conf = format!(
        "# Written by the peer harness (peers/src/samba.rs); private to one server.
[global]
    server role = standalone server
    workgroup = WORKGROUP
    netbios name = SMBTEST{port}
    interfaces = {ip}
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
        ip = addr.ip(),
        port = addr.port(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_binds_loopback_and_caps_io() {
        let opts = SambaOptions {
            signing_algorithms: Some("AES-128-GMAC"),
            extra_global: vec!["log level = 3".into()],
            ..SambaOptions::default().only_dialect("3.0.2")
        };
        let addr = SocketAddr::from(([127, 0, 0, 4], 4455));
        let conf = smb_conf(Path::new("/p/samba-4455"), Path::new("/t/s"), addr, &opts);
        for line in [
            "interfaces = 127.0.0.4",
            "bind interfaces only = yes",
            "smb ports = 4455",
            "server signing = mandatory",
            "server min protocol = SMB3_02",
            "server max protocol = SMB3_02",
            "smb2 max read = 65536",
            "server smb3 signing algorithms = AES-128-GMAC",
            "log level = 3",
            "private dir = /p/samba-4455/private",
            "path = /t/s",
        ] {
            assert!(conf.contains(line), "missing {line:?} in\n{conf}");
        }
    }

    #[test]
    fn refuses_non_loopback_addresses() {
        let err = SambaServer::try_start(SambaOptions {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            ..SambaOptions::default()
        })
        .unwrap_err();
        assert!(err.0.contains("loopback"), "{err}");
    }
}
