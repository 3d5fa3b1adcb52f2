//! Samba 4.22 (Debian 13) in Docker: the `samba` and `smbclient` services of
//! `docker/compose.yml`, started through compose exactly as a user would, on the suite's own
//! engine ([`DockerEngine`]).
//!
//! Each [`DockerSamba`] is one compose project (`smb-signing-PORT`): smbd on the host network,
//! bound to the loopback interface (`interfaces = lo`), on a free port of 127.0.0.1 (never 445
//! or 139); its share is `PEERS/docker/samba-PORT/share` on the host, bind-mounted at
//! `/srv/data`, so tests read what Samba wrote. Dropping it runs `compose down --volumes` and
//! then stops smbd by its host PID if it is still there; files stay when a test failed.
//!
//! [`DockerSmbclient`] runs the image's smbclient: one idle container of the `smbclient`
//! service (`compose run -d`), and `docker exec` per call, with the tests' scratch directory
//! mounted at the same path, for put and get.

use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::docker::{tail, DockerEngine};
use crate::process::{free_port_on, is_running, stop_pids};
use crate::samba::{SambaOptions, SAMBA_PASSWORD, SAMBA_SHARE, SAMBA_USER};
use crate::{Error, Result};

/// How long the container may take to listen (image already in the data root).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one compose command may take.
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(120);

/// smbd from Debian 13 in a container, stopped on drop.
#[derive(Debug)]
pub struct DockerSamba {
    container: Container,
    // Dropped after the container: the engine outlives what runs on it.
    engine: DockerEngine,
}

/// One started `samba` service.
#[derive(Debug)]
struct Container {
    project: String,
    addr: SocketAddr,
    dir: PathBuf,
    share: PathBuf,
    id: String,
    /// smbd's PID as the host sees it.
    pid: Option<u32>,
    version: String,
}

impl DockerSamba {
    /// [`DockerSamba::try_start`], panicking with its message (a missing Docker is a test
    /// failure that says what to install, never a skip).
    pub fn start(opts: SambaOptions) -> DockerSamba {
        DockerSamba::try_start(opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the engine when needed, then `compose up -d samba` with the settings of `opts`
    /// (signing, protocols, signing algorithms, I/O size) on a free port, and waits until smbd
    /// accepts connections. A port taken by someone else first makes smbd exit; a fresh port
    /// is tried (three times).
    pub fn try_start(opts: SambaOptions) -> Result<DockerSamba> {
        if opts.ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            return Err(Error::new(format!(
                "the Docker Samba listens on the host's loopback interface (127.0.0.1), not {}",
                opts.ip
            )));
        }
        if !opts.extra_global.is_empty() || opts.smb_encrypt != "off" {
            return Err(Error::new(
                "the Docker Samba takes its settings from docker/compose.yml's environment only \
                 (no extra smb.conf lines, encryption off)",
            ));
        }
        let engine = DockerEngine::acquire()?;
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port_on(opts.ip)?;
            match Container::up(&engine, &opts, port) {
                Ok(container) => return Ok(DockerSamba { container, engine }),
                Err(why) => failures.push(why.0),
            }
        }
        Err(Error::new(format!(
            "the Samba container did not start:\n{}",
            failures.join("\n\n")
        )))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.container.addr
    }

    pub fn port(&self) -> u16 {
        self.container.addr.port()
    }

    /// `//127.0.0.1/data` (pass the port separately).
    pub fn unc(&self) -> String {
        format!("//{}/{SAMBA_SHARE}", self.container.addr.ip())
    }

    pub fn share_name(&self) -> &'static str {
        SAMBA_SHARE
    }

    /// The host directory behind the share.
    pub fn share_path(&self) -> &Path {
        &self.container.share
    }

    pub fn user(&self) -> &'static str {
        SAMBA_USER
    }

    pub fn password(&self) -> &'static str {
        SAMBA_PASSWORD
    }

    /// `smbd --version` inside the container, e.g. "Version 4.22.11-Debian-4.22.11+dfsg-0+deb13u1".
    pub fn version(&self) -> &str {
        &self.container.version
    }

    /// The compose project, `smb-signing-PORT`.
    pub fn project(&self) -> &str {
        &self.container.project
    }

    /// smbd's PID on the host.
    pub fn pid(&self) -> Option<u32> {
        self.container.pid
    }

    pub fn engine(&self) -> &DockerEngine {
        &self.engine
    }

    /// The container's output (the entry point's and smbd's log), for error messages.
    pub fn log(&self) -> String {
        container_log(&self.engine, &self.container.id)
    }

    /// Writes `name` into the share, owned like the share (the container's test user).
    pub fn put_file(&self, name: &str, contents: &[u8]) -> Result<()> {
        let path = self.container.share.join(name);
        fs::write(&path, contents)
            .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
        let meta = fs::metadata(&self.container.share)
            .map_err(|e| Error::new(format!("cannot stat the share: {e}")))?;
        std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| Error::new(format!("cannot chown {}: {e}", path.display())))
    }
}

impl Drop for DockerSamba {
    fn drop(&mut self) {
        self.container.down(&self.engine);
        // Keep the share and the container's log when a test failed, for the post-mortem.
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.container.dir);
        }
    }
}

impl Container {
    /// `compose up -d samba` on `port`; on failure everything it started is stopped again.
    fn up(engine: &DockerEngine, opts: &SambaOptions, port: u16) -> Result<Container> {
        let dir = engine.paths().dir.join(format!("samba-{port}"));
        let share = dir.join("share");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&share)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", share.display())))?;
        fs::set_permissions(&share, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::new(format!("cannot chmod {}: {e}", share.display())))?;
        let mut container = Container {
            project: format!("smb-signing-{port}"),
            addr: SocketAddr::new(opts.ip, port),
            dir,
            share,
            id: String::new(),
            pid: None,
            version: String::new(),
        };
        match container.start(engine, opts) {
            Ok(()) => Ok(container),
            Err(why) => {
                let log = if container.id.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\n--- container log ---\n{}",
                        tail(&container_log(engine, &container.id), 20)
                    )
                };
                container.down(engine);
                let _ = fs::remove_dir_all(&container.dir);
                Err(Error::new(format!("{}: {why}{log}", container.addr)))
            }
        }
    }

    fn start(&mut self, engine: &DockerEngine, opts: &SambaOptions) -> Result<()> {
        let mut up = engine.compose(&self.project)?;
        up.args(["up", "-d", "samba"])
            .env("SMB_PORT", self.addr.port().to_string())
            .env("SMB_SHARE_DIR", &self.share)
            .env("SMB_INTEROP_USER", SAMBA_USER)
            .env("SMB_INTEROP_PASSWORD", SAMBA_PASSWORD)
            .env("SMB_SIGNING", opts.signing.as_conf())
            .env(
                "SMB_SIGNING_ALGORITHMS",
                opts.signing_algorithms.unwrap_or(""),
            )
            .env("SMB_MIN_PROTOCOL", opts.min_protocol)
            .env("SMB_MAX_PROTOCOL", opts.max_protocol)
            .env("SMB_MAX_IO", opts.max_io.to_string())
            .env_remove("SMB_SAMBA_IMAGE");
        let out = output_with_timeout(&mut up, COMPOSE_TIMEOUT)?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "`compose up -d samba` failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        self.id = project_container(engine, &self.project)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut next_check = Instant::now();
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() >= next_check {
                if container_state(engine, &self.id)?.is_none() {
                    return Err(Error::new("the container exited before listening"));
                }
                next_check = Instant::now() + Duration::from_millis(500);
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "nothing listens on {} after {START_TIMEOUT:?}",
                    self.addr
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
        // Listening, and still ours: smbd exits when another process holds the port.
        self.pid = container_state(engine, &self.id)?;
        if self.pid.is_none() {
            return Err(Error::new(format!(
                "the container exited; something else listens on {}",
                self.addr
            )));
        }
        self.version = container_log(engine, &self.id)
            .lines()
            .find_map(|line| line.strip_prefix("Version "))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| Error::new("the entry point did not print `smbd --version`"))?;
        Ok(())
    }

    /// `compose down --volumes` (stops and removes the container and the project's volume),
    /// then smbd by its PID when it somehow survived.
    fn down(&mut self, engine: &DockerEngine) {
        if let Ok(mut down) = engine.compose(&self.project) {
            down.args(["down", "--volumes", "--timeout", "5"]);
            let _ = output_with_timeout(&mut down, COMPOSE_TIMEOUT);
        }
        if let Some(pid) = self.pid.take() {
            if is_running(pid) {
                stop_pids(&[pid], Duration::from_secs(5));
            }
        }
        if !self.id.is_empty() {
            // Gone already after `down`; this only matters when compose failed.
            let _ = engine
                .docker()
                .args(["rm", "--force", "--volumes", &self.id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The ID of the one container of compose project `project`.
fn project_container(engine: &DockerEngine, project: &str) -> Result<String> {
    // filters={"label":["com.docker.compose.project=PROJECT"]}, URL-encoded.
    let path = format!(
        "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22com.docker.compose.project%3D{project}%22%5D%7D"
    );
    let (status, body) = engine.api_get(&path)?;
    if status != 200 {
        return Err(Error::new(format!(
            "GET {path}: HTTP {status}: {body:.300}"
        )));
    }
    json_string_field(&body, "Id")
        .ok_or_else(|| Error::new(format!("compose project {project} has no container")))
}

/// `Some(pid)` while the container runs, None once it stopped.
fn container_state(engine: &DockerEngine, id: &str) -> Result<Option<u32>> {
    let (status, body) = engine.api_get(&format!("/containers/{id}/json"))?;
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        return Err(Error::new(format!(
            "inspect {id}: HTTP {status}: {body:.300}"
        )));
    }
    let running = body.contains("\"Running\":true");
    let pid = json_number_field(&body, "Pid").filter(|&pid| pid > 0);
    Ok(if running { pid } else { None })
}

/// `docker logs ID`, stdout and stderr together.
fn container_log(engine: &DockerEngine, id: &str) -> String {
    match engine.docker().args(["logs", id]).output() {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("(docker logs {id}: {e})"),
    }
}

/// The first `"name":"value"` string in a JSON text (the engine's answers; no JSON parser in
/// this crate).
fn json_string_field(json: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\":\"");
    let start = json.find(&key)? + key.len();
    let end = json[start..].find('"')?;
    Some(json[start..start + end].to_string())
}

/// The first `"name":NUMBER` in a JSON text.
fn json_number_field(json: &str, name: &str) -> Option<u32> {
    let key = format!("\"{name}\":");
    let start = json.find(&key)? + key.len();
    let digits: String = json[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// How long a command's output may stay open after the command exited.
const PIPE_DRAIN: Duration = Duration::from_secs(10);

/// Runs `cmd` to completion, killing it after `timeout`.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("cannot run {cmd:?}: {e}")))?;
    // Each pipe is read on its own thread, which hands its bytes over a channel: a process
    // the command started in the background may keep a pipe open after the command exits,
    // and waiting for its end (a thread join) would then hang the test.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out_reader = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_reader = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::new(format!(
                    "{cmd:?} did not finish within {timeout:?}"
                )));
            }
            Err(e) => return Err(Error::new(format!("waiting for {cmd:?}: {e}"))),
        }
    };
    let collect = |rx: mpsc::Receiver<Vec<u8>>, what: &str| {
        rx.recv_timeout(PIPE_DRAIN).map_err(|_| {
            Error::new(format!(
                "{cmd:?} exited ({status}) but its {what} stayed open for {PIPE_DRAIN:?} \
                 (a process it started keeps it)"
            ))
        })
    };
    Ok(Output {
        status,
        stdout: collect(out_reader, "stdout")?,
        stderr: collect(err_reader, "stderr")?,
    })
}

/// The container's smbclient 4.22: one container of the `smbclient` service per handle,
/// created with `compose run -d` (the file users run: image, host network, mounts) idling on
/// `sleep infinity`, and `docker exec … smbclient ARGS` per call, so each call costs an exec
/// rather than a container. `PEERS/scratch` (where the tests keep their files) is mounted at
/// the same path. Removed (`docker rm --force`) on drop.
#[derive(Debug)]
pub struct DockerSmbclient {
    /// The container's name, `smb-signing-smbclient-PID-N`.
    name: String,
    dir: PathBuf,
    engine: DockerEngine,
}

impl DockerSmbclient {
    /// [`DockerSmbclient::try_start`], panicking with its message.
    pub fn start() -> DockerSmbclient {
        DockerSmbclient::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Joins (or starts) the engine, then creates the idle `smbclient` container.
    pub fn try_start() -> Result<DockerSmbclient> {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let engine = DockerEngine::acquire()?;
        let dir = crate::peers_dir().join("scratch");
        fs::create_dir_all(&dir)
            .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
        let name = format!(
            "smb-signing-smbclient-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let client = DockerSmbclient { name, dir, engine };
        let mut run = client.engine.compose("smb-signing-client")?;
        run.args(["run", "-d", "--name", &client.name])
            .args(["--entrypoint", "sleep", "smbclient", "infinity"])
            .env("SMB_CLIENT_DIR", &client.dir)
            .env_remove("SMB_SAMBA_IMAGE");
        let out = output_with_timeout(&mut run, COMPOSE_TIMEOUT)?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "`compose run -d smbclient` failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(client)
    }

    /// The host directory mounted at the same path inside: `put`/`get` paths must lie under it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs smbclient with `args` in the container. `dir` is where the caller's files are: it
    /// must lie under [`DockerSmbclient::dir`]. Killed after `timeout`.
    pub fn run(&self, dir: &Path, args: &[String], timeout: Duration) -> Result<Output> {
        if !dir.starts_with(&self.dir) {
            return Err(Error::new(format!(
                "{} is not under {}, the directory the smbclient container sees",
                dir.display(),
                self.dir.display()
            )));
        }
        let mut cmd = self.engine.docker();
        cmd.args(["exec", &self.name, "smbclient"]).args(args);
        output_with_timeout(&mut cmd, timeout)
    }

    /// `smbclient --version` of the image, e.g. "4.22.11-Debian-...".
    pub fn version(&self) -> Result<String> {
        let out = self.run(&self.dir, &["--version".to_string()], COMPOSE_TIMEOUT)?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("Version "))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| {
                Error::new(format!(
                    "smbclient --version in the container said: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            })
    }

    pub fn engine(&self) -> &DockerEngine {
        &self.engine
    }
}

impl Drop for DockerSmbclient {
    fn drop(&mut self) {
        // `sleep` as PID 1 ignores SIGTERM: --force kills it at once.
        let _ = self
            .engine
            .docker()
            .args(["rm", "--force", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `4.22` from "4.22.11-Debian-4.22.11+dfsg-0+deb13u1".
pub fn major_minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_engines_json() {
        let list = r#"[{"Id":"0ec4ea683283aa","Names":["/x"],"State":"running"}]"#;
        assert_eq!(
            json_string_field(list, "Id").as_deref(),
            Some("0ec4ea683283aa")
        );
        let inspect = r#"{"State":{"Status":"running","Running":true,"Pid":19061,"ExitCode":0}}"#;
        assert_eq!(json_number_field(inspect, "Pid"), Some(19061));
        assert_eq!(json_string_field("{}", "Id"), None);
        assert_eq!(major_minor("4.22.11-Debian-4.22.11+dfsg-0+deb13u1"), "4.22");
    }

    #[test]
    fn refuses_other_addresses_and_extra_settings() {
        let err = DockerSamba::try_start(SambaOptions {
            ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)),
            ..SambaOptions::default()
        })
        .unwrap_err();
        assert!(err.0.contains("127.0.0.1"), "{err}");
        let err = DockerSamba::try_start(SambaOptions {
            extra_global: vec!["log level = 3".into()],
            ..SambaOptions::default()
        })
        .unwrap_err();
        assert!(err.0.contains("environment only"), "{err}");
    }
}
