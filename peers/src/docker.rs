//! The Docker engine the suite runs itself, and the Samba 4.22 image it runs.
//!
//! No image registry is reachable from the test machines, and the host needs no Docker
//! service: the harness starts Debian's `dockerd` by hand with its own data root
//! (`target/peers/docker/data`, where the image stays cached between runs), its own exec root
//! and socket (a short directory under the system temporary directory: a Unix socket path is
//! limited to 108 bytes), and `--bridge=none --iptables=false --ip6tables=false`, so it creates
//! no network and touches no firewall rule. Every container runs on the host network
//! (`docker/compose.yml`), with Samba bound to the loopback interface.
//!
//! The engine is shared by every test process of a run (nextest runs tests in parallel
//! processes) and reference-counted with `flock`: each [`DockerEngine`] holds a shared lock on
//! `engine.users` for its lifetime; starting and stopping happen under an exclusive lock on
//! `engine.lock`, and the last user to leave (the one that gets `engine.users` exclusively)
//! stops dockerd by its PID. A killed test process releases its locks with its file handles.
//!
//! The image (`smb-signing/samba:debian13`) is built by [`build_image`] (`cargo xtask peers`):
//! `debootstrap --variant=minbase --include=samba,smbclient trixie` from the Debian mirror,
//! packed as `~/.cache/smb-signing/samba-debian13.tar` (see [`image_cache_dir`]: once per
//! machine, like an installed package) and imported with `docker import`. A data
//! root without the image imports that tarball again (seconds); without the tarball the tests
//! fail, saying to run `cargo xtask peers`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{is_running, pids_with_cmdline, stop_pids, Stopped};
use crate::tools::{find_program, PEERS_HINT};
use crate::users::running_as_root;
use crate::{workspace_root, Error, Result};

/// The image `docker/compose.yml` runs (its default `SMB_SAMBA_IMAGE`).
pub const SAMBA_IMAGE: &str = "smb-signing/samba:debian13";
/// Debian 13, whose Samba is 4.22.
pub const DEBIAN_SUITE: &str = "trixie";
/// Where debootstrap fetches the packages.
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// How long dockerd may take to answer on its socket.
const ENGINE_START_TIMEOUT: Duration = Duration::from_secs(60);
/// SIGTERM → SIGKILL grace when stopping dockerd (it stops its containerd first).
const ENGINE_STOP_GRACE: Duration = Duration::from_secs(20);

/// The packed root file system of the Samba 4.22 image.
const IMAGE_TAR: &str = "samba-debian13.tar";

/// Where the image's tarball is cached for every checkout of the machine, as installed
/// packages are: `$SMB_IMAGE_CACHE`, else `$XDG_CACHE_HOME/smb-signing`, else
/// `~/.cache/smb-signing`. The debootstrap build (about 3 minutes) is paid once per machine,
/// not once per clone; a machine without the cache builds it (`cargo xtask peers`).
/// `None` (no home directory): the peers directory holds it.
pub fn image_cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("SMB_IMAGE_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("smb-signing")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("smb-signing")))
}

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub struct DockerPaths {
    /// `PEERS/docker`: locks, log, the image tarball.
    pub dir: PathBuf,
    /// dockerd's `--data-root`: images (the cache) and containers.
    pub data_root: PathBuf,
    /// `TMP/smb-docker-HASH`: exec root, socket and pidfile (short paths).
    pub run_dir: PathBuf,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    /// The debootstrap root file system, packed: in the machine's cache (see
    /// [`image_cache_dir`]), so a fresh clone does not build it again.
    pub image_tar: PathBuf,
}

impl DockerPaths {
    /// The paths for the peers directory `peers` (usually `target/peers`).
    pub fn new(peers: &Path) -> DockerPaths {
        let dir = peers.join("docker");
        let data_root = dir.join("data");
        // One engine per data root: the run directory is named after it.
        let run_dir = std::env::temp_dir().join(format!(
            "smb-docker-{:012x}",
            fnv1a(data_root.to_string_lossy().as_bytes()) & 0xffff_ffff_ffff
        ));
        DockerPaths {
            socket: run_dir.join("docker.sock"),
            pidfile: run_dir.join("dockerd.pid"),
            image_tar: image_cache_dir()
                .unwrap_or_else(|| dir.clone())
                .join(IMAGE_TAR),
            dir,
            data_root,
            run_dir,
        }
    }

    /// `DOCKER_HOST` for this engine.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn exec_root(&self) -> PathBuf {
        self.run_dir.join("exec")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The Debian packages the Docker peers need (installed by `cargo xtask peers`).
pub const DOCKER_DEBIAN_PACKAGES: &[&str] = &["docker.io", "docker-compose", "debootstrap"];

/// [`find_program`], or an error naming the Debian package that provides it.
fn docker_tool(name: &str) -> Result<PathBuf> {
    let package = match name {
        "dockerd" | "docker" => "docker.io",
        "docker-compose" => "docker-compose",
        "debootstrap" => "debootstrap",
        _ => "the package that provides it",
    };
    find_program(name).ok_or_else(|| {
        Error::new(format!(
            "`{name}` is not installed (Debian package `{package}`; the Samba 4.22 peer runs in \
             Docker); {PEERS_HINT}"
        ))
    })
}

/// A handle on the suite's dockerd: started by the first user, stopped by the last (by PID).
#[derive(Debug)]
pub struct DockerEngine {
    paths: DockerPaths,
    /// Shared lock on `engine.users`, held while this handle lives.
    users: Option<File>,
    pid: u32,
}

impl DockerEngine {
    /// [`DockerEngine::acquire_in`] for [`crate::peers_dir`].
    pub fn acquire() -> Result<DockerEngine> {
        DockerEngine::acquire_in(&crate::peers_dir())
    }

    /// Joins the running engine of `peers`, or starts it; then makes sure the Samba image is
    /// in its data root (importing the cached tarball when it is not).
    pub fn acquire_in(peers: &Path) -> Result<DockerEngine> {
        let paths = DockerPaths::new(peers);
        if !running_as_root() {
            return Err(Error::new(
                "the Samba 4.22 peer runs in Docker, and dockerd needs root: run the tests as root",
            ));
        }
        let dockerd = docker_tool("dockerd")?;
        docker_tool("docker")?;
        for dir in [&paths.dir, &paths.data_root, &paths.run_dir] {
            fs::create_dir_all(dir)
                .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
        }
        let _mutex = lock_exclusive(&paths.dir.join("engine.lock"))?;
        let users = open_lock_file(&paths.dir.join("engine.users"))?;
        // Nobody else holds the engine: one that runs was left by a killed run (with whatever
        // containers it had), so it is replaced by a fresh one, which this run will stop.
        let first = users.try_lock().is_ok();
        users
            .lock_shared()
            .map_err(|e| Error::new(format!("cannot lock engine.users: {e}")))?;
        let pid = match running_engine(&paths) {
            Some(pid) if !first => pid,
            _ => start_engine(&paths, &dockerd)?,
        };
        let engine = DockerEngine {
            paths,
            users: Some(users),
            pid,
        };
        // Still under the mutex: two processes never import at once.
        engine.ensure_image()?;
        Ok(engine)
    }

    /// dockerd's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn paths(&self) -> &DockerPaths {
        &self.paths
    }

    /// The `docker` CLI, talking to this engine.
    pub fn docker(&self) -> Command {
        let program = find_program("docker").unwrap_or_else(|| PathBuf::from("docker"));
        let mut cmd = Command::new(program);
        cmd.env("DOCKER_HOST", self.paths.docker_host())
            .stdin(Stdio::null());
        cmd
    }

    /// `docker compose` (v2) when the CLI has it, else `docker-compose` (v1, the Debian
    /// package), with `-p PROJECT -f docker/compose.yml`: the file users run.
    pub fn compose(&self, project: &str) -> Result<Command> {
        let mut cmd = if self.has_compose_plugin() {
            let mut cmd = self.docker();
            cmd.arg("compose");
            cmd
        } else {
            let mut cmd = Command::new(docker_tool("docker-compose")?);
            cmd.env("DOCKER_HOST", self.paths.docker_host())
                .stdin(Stdio::null());
            cmd
        };
        cmd.args(["--ansi", "never"]).args(["-p", project]);
        cmd.arg("-f").arg(compose_file());
        Ok(cmd)
    }

    fn has_compose_plugin(&self) -> bool {
        self.docker()
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// GET `path` on the engine's API; (status, body).
    pub fn api_get(&self, path: &str) -> Result<(u16, String)> {
        api_get(&self.paths.socket, path)
    }

    /// Imports the cached image tarball when the data root lacks the image.
    fn ensure_image(&self) -> Result<()> {
        let (status, _) = self.api_get(&format!("/images/{SAMBA_IMAGE}/json"))?;
        if status == 200 {
            return Ok(());
        }
        if !self.paths.image_tar.is_file() {
            return Err(Error::new(format!(
                "the Samba 4.22 image {SAMBA_IMAGE} is not built ({} is missing); run `cargo \
                 xtask peers` (as root): it builds it once with debootstrap (a few minutes)",
                self.paths.image_tar.display()
            )));
        }
        import_image(&self.paths, &self.paths.image_tar)
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        // Under the mutex: nobody joins while the last user decides to stop the engine.
        let Ok(_mutex) = lock_exclusive(&self.paths.dir.join("engine.lock")) else {
            return;
        };
        drop(self.users.take());
        let Ok(users) = open_lock_file(&self.paths.dir.join("engine.users")) else {
            return;
        };
        if users.try_lock().is_ok() {
            stop_engine(&self.paths);
        }
    }
}

/// The path of `docker/compose.yml` in the workspace.
pub fn compose_file() -> PathBuf {
    workspace_root().join("docker").join("compose.yml")
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::new(format!("cannot open {}: {e}", path.display())))
}

fn lock_exclusive(path: &Path) -> Result<File> {
    let file = open_lock_file(path)?;
    file.lock()
        .map_err(|e| Error::new(format!("cannot lock {}: {e}", path.display())))?;
    Ok(file)
}

/// dockerd's PID when the engine of `paths` runs and answers.
fn running_engine(paths: &DockerPaths) -> Option<u32> {
    let pid = engine_pid(paths)?;
    let (status, _) = api_get(&paths.socket, "/_ping").ok()?;
    (status == 200).then_some(pid)
}

/// The PID in the pidfile, when that process is our dockerd (its command line names our data
/// root: a recycled PID is not ours).
fn engine_pid(paths: &DockerPaths) -> Option<u32> {
    let pid: u32 = fs::read_to_string(&paths.pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let names_root =
        String::from_utf8_lossy(&cmdline).contains(&*paths.data_root.to_string_lossy());
    (is_running(pid) && names_root).then_some(pid)
}

fn start_engine(paths: &DockerPaths, dockerd: &Path) -> Result<u32> {
    // Leftovers of a killed run: its dockerd (by PID) and a stale socket.
    stop_engine(paths);
    let _ = fs::remove_file(&paths.socket);
    let log = File::create(paths.log())
        .map_err(|e| Error::new(format!("cannot create {}: {e}", paths.log().display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::new(format!("cannot dup the dockerd log: {e}")))?;
    let mut child = Command::new(dockerd)
        // Its own process group: a terminal's Ctrl-C to the test run must not reach it
        // half-way; the last user stops it.
        .process_group(0)
        .arg("--data-root")
        .arg(&paths.data_root)
        .arg("--exec-root")
        .arg(paths.exec_root())
        .arg("--pidfile")
        .arg(&paths.pidfile)
        .arg("-H")
        .arg(paths.docker_host())
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--log-level=warn",
        ])
        .stdin(Stdio::null())
        .stdout(log2)
        .stderr(log)
        .spawn()
        .map_err(|e| Error::new(format!("cannot start {}: {e}", dockerd.display())))?;
    let pid = child.id();
    let deadline = Instant::now() + ENGINE_START_TIMEOUT;
    loop {
        if matches!(api_get(&paths.socket, "/_ping"), Ok((200, _))) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::new(format!(
                "dockerd exited ({status}) before answering on {}:\n{}",
                paths.socket.display(),
                tail(&fs::read_to_string(paths.log()).unwrap_or_default(), 20)
            )));
        }
        if Instant::now() >= deadline {
            stop_pids(&[pid], ENGINE_STOP_GRACE);
            let _ = child.wait();
            return Err(Error::new(format!(
                "dockerd did not answer on {} within {ENGINE_START_TIMEOUT:?}:\n{}",
                paths.socket.display(),
                tail(&fs::read_to_string(paths.log()).unwrap_or_default(), 20)
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Stopped by PID by the last user, possibly another process: never waited for here.
    drop(child);
    // Containers a killed run left behind (stopped when their engine died): all in this
    // private data root are ours.
    let _ = Command::new(find_program("docker").unwrap_or_else(|| PathBuf::from("docker")))
        .env("DOCKER_HOST", paths.docker_host())
        .args(["container", "prune", "--force"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // And the volumes of their compose projects (`compose down --volumes` never ran).
    let _ = Command::new(find_program("docker").unwrap_or_else(|| PathBuf::from("docker")))
        .env("DOCKER_HOST", paths.docker_host())
        .args(["volume", "prune", "--force"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    Ok(pid)
}

/// Stops the engine of `paths` by PID (dockerd stops its containers' processes and its
/// containerd), then any containerd or shim of its exec root that outlived it.
pub fn stop_engine(paths: &DockerPaths) -> Stopped {
    let mut stopped = Stopped::default();
    if let Some(pid) = engine_pid(paths) {
        stopped = stop_pids(&[pid], ENGINE_STOP_GRACE);
    }
    let leftovers = pids_with_cmdline(&paths.exec_root().to_string_lossy());
    if !leftovers.is_empty() {
        let more = stop_pids(&leftovers, Duration::from_secs(5));
        stopped.terminated.extend(more.terminated);
        stopped.killed.extend(more.killed);
    }
    // dockerd leaves its network namespace bind-mounted (exec/netns/default) in the run
    // directory: unmount what lies under it, so the machine is left as found.
    let run_dir = paths.run_dir.to_string_lossy().into_owned();
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for point in mounts.lines().filter_map(|line| line.split(' ').nth(1)) {
        if point.starts_with(&run_dir) {
            let _ = Command::new("umount")
                .arg(point)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    stopped
}

/// Stops the engine of `peers` unless a test holds it (`cargo xtask peers --stop`, after a
/// killed run): Some(what was stopped), or None when it is in use.
pub fn stop_unused_engine(peers: &Path) -> Result<Option<Stopped>> {
    let paths = DockerPaths::new(peers);
    if !paths.dir.is_dir() {
        return Ok(Some(Stopped::default()));
    }
    let _mutex = lock_exclusive(&paths.dir.join("engine.lock"))?;
    let users = open_lock_file(&paths.dir.join("engine.users"))?;
    if users.try_lock().is_err() {
        return Ok(None);
    }
    Ok(Some(stop_engine(&paths)))
}

/// A minimal HTTP/1.0 GET over the engine's Unix socket (no CLI start-up per check).
fn api_get(socket: &Path, path: &str) -> Result<(u16, String)> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| Error::new(format!("cannot connect to {}: {e}", socket.display())))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| Error::new(format!("cannot write to {}: {e}", socket.display())))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| Error::new(format!("cannot read from {}: {e}", socket.display())))?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            Error::new(format!(
                "not an HTTP response from dockerd: {response:.200}"
            ))
        })?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn import_image(paths: &DockerPaths, tar: &Path) -> Result<()> {
    let program = docker_tool("docker")?;
    let out = Command::new(program)
        .env("DOCKER_HOST", paths.docker_host())
        .arg("import")
        .args([
            "--message",
            "debootstrap --variant=minbase --include=samba,smbclient trixie",
        ])
        .arg(tar)
        .arg(SAMBA_IMAGE)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot run docker import: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "docker import {} failed ({}): {}",
            tar.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// What [`build_image`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageBuild {
    /// The tarball was there already.
    Cached(PathBuf),
    /// Built now, in that time.
    Built(PathBuf, Duration),
}

/// Builds the Samba 4.22 root file system with debootstrap and packs it into
/// [`image_cache_dir`]`/samba-debian13.tar`, unless that tarball exists (the cache). The engine
/// imports it on first use. Needs root and the Debian mirror; a few minutes cold.
pub fn build_image(peers: &Path) -> Result<ImageBuild> {
    let paths = DockerPaths::new(peers);
    if paths.image_tar.is_file() {
        return Ok(ImageBuild::Cached(paths.image_tar));
    }
    if !running_as_root() {
        return Err(Error::new(
            "building the Samba 4.22 image needs root (debootstrap): run `cargo xtask peers` as root",
        ));
    }
    let debootstrap = docker_tool("debootstrap")?;
    let started = Instant::now();
    fs::create_dir_all(&paths.dir)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", paths.dir.display())))?;
    let rootfs = paths.dir.join(format!("rootfs-{DEBIAN_SUITE}"));
    // A half-built root from an interrupted run: start over.
    let _ = fs::remove_dir_all(&rootfs);
    let log_path = paths.dir.join("debootstrap.log");
    let log = File::create(&log_path)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", log_path.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::new(format!("cannot dup the debootstrap log: {e}")))?;
    let status = Command::new(&debootstrap)
        .args([
            "--variant=minbase",
            "--include=samba,smbclient",
            DEBIAN_SUITE,
        ])
        .arg(&rootfs)
        .arg(DEBIAN_MIRROR)
        .stdin(Stdio::null())
        .stdout(log2)
        .stderr(log)
        .status()
        .map_err(|e| Error::new(format!("cannot run {}: {e}", debootstrap.display())))?;
    if !status.success() {
        return Err(Error::new(format!(
            "debootstrap {DEBIAN_SUITE} failed ({status}); see {}:\n{}",
            log_path.display(),
            tail(&fs::read_to_string(&log_path).unwrap_or_default(), 15)
        )));
    }
    // What the image does not need: the downloaded packages and the package lists.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        if let Ok(entries) = fs::read_dir(rootfs.join(dir)) {
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
    if let Some(cache) = paths.image_tar.parent() {
        fs::create_dir_all(cache)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", cache.display())))?;
    }
    let partial = paths.image_tar.with_extension("tar.partial");
    let out = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&partial)
        .arg(".")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot run tar: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "tar of {} failed: {}",
            rootfs.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    fs::rename(&partial, &paths.image_tar)
        .map_err(|e| Error::new(format!("cannot rename {}: {e}", partial.display())))?;
    let _ = fs::remove_dir_all(&rootfs);
    Ok(ImageBuild::Built(paths.image_tar, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry point refuses the SMB ports of the host before it writes anything (safe to
    /// run here: it exits on its first check).
    #[test]
    fn entrypoint_refuses_ports_445_and_139() {
        let script = workspace_root().join("docker").join("samba-entrypoint.sh");
        for port in ["445", "139", "44x5"] {
            let out = Command::new("sh")
                .arg(&script)
                .env("SMB_PORT", port)
                .stdin(Stdio::null())
                .output()
                .expect("run sh");
            assert_eq!(out.status.code(), Some(2), "SMB_PORT={port}: {out:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("refusing SMB_PORT"), "{stderr}");
        }
    }

    #[test]
    fn run_dir_is_short_and_per_data_root() {
        let a = DockerPaths::new(Path::new(
            "/very/long/checkout/path/of/some/user/target/peers",
        ));
        let b = DockerPaths::new(Path::new("/other/target/peers"));
        assert_ne!(a.run_dir, b.run_dir);
        // exec root + containerd's socket names must fit a sockaddr_un (108 bytes).
        assert!(
            a.socket.to_string_lossy().len() < 60,
            "{}",
            a.socket.display()
        );
        assert!(a.docker_host().starts_with("unix:///"));
        assert_eq!(
            a.data_root,
            Path::new("/very/long/checkout/path/of/some/user/target/peers/docker/data")
        );
    }

    /// What the suite starts must create no Docker network and publish nothing: every service
    /// of compose.yml on the host network (Samba then binds the loopback interface).
    #[test]
    fn compose_file_puts_every_service_on_the_host_network() {
        let text = fs::read_to_string(compose_file()).expect("read docker/compose.yml");
        let services: Vec<&str> = text
            .lines()
            .skip_while(|line| *line != "services:")
            .skip(1)
            .take_while(|line| line.is_empty() || line.starts_with(' ') || line.starts_with('#'))
            .filter(|line| {
                line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':')
            })
            .collect();
        assert_eq!(services, ["  samba:", "  smbclient:"], "{text}");
        assert_eq!(
            text.matches("\n    network_mode: host\n").count(),
            2,
            "{text}"
        );
        for key in ["\n    ports:", "\n    networks:", "\nnetworks:"] {
            assert!(!text.contains(key), "compose.yml has {key:?}");
        }
        assert!(text.contains("SMB_INTERFACES: lo"), "{text}");
    }
}
