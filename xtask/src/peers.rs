//! `cargo xtask peers`: installs the real SMB peers the interop tests run against.
//!
//! Idempotent and quick when everything is present (a few `dpkg-query` calls and one Python
//! start). It never starts Samba: each interop test starts its own private smbd through the
//! peer harness (the `peers` crate), on a free loopback port. The test user, program lookup
//! and process lookup for `--stop` are the harness's too.
//!
//! It also installs Docker (`docker.io`, `docker-compose`, `debootstrap`) and builds, once,
//! the Samba 4.22 (Debian 13) image the Docker rows run (`peers::docker::build_image`:
//! debootstrap, cached once per machine as `~/.cache/smb-signing/samba-debian13.tar`; under
//! 3 minutes cold, nothing when cached). The tests start and stop the Docker engine themselves.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::run::{describe, output};
use crate::Paths;

/// Debian packages: Samba's server and client, tshark/dumpcap for captures, nmap (its
/// smb2-* scripts are how administrators read a server's posture), and samba-testsuite
/// (`smbtorture`: Samba's own smb2.oplock and smb2.lease tests).
/// The Docker peer (Samba 4.22 in a container) adds `::peers::docker::DOCKER_DEBIAN_PACKAGES`.
const DEBIAN_PACKAGES: &[&str] = &["samba", "smbclient", "tshark", "nmap", "samba-testsuite"];
/// Pinned Python peers, installed into `target/peers/venv`.
const PYTHON_PACKAGES: &[(&str, &str)] = &[("impacket", "0.13.1"), ("smbprotocol", "1.17.0")];
/// Programs the harness runs; checked after installing.
const PROGRAMS: &[&str] = &[
    "smbd",
    "smbpasswd",
    "smbclient",
    "tshark",
    "dumpcap",
    "nmap",
    "smbtorture",
    "setsid",
    "useradd",
    "dockerd",
    "docker",
    "docker-compose",
    "debootstrap",
];

/// What the tests need to know about the installed peers.
#[derive(Debug)]
pub struct Peers {
    pub python: PathBuf,
}

pub fn install(paths: &Paths) -> Result<Peers> {
    let started = Instant::now();
    println!("xtask: == peers: {}", paths.peers.display());
    fs::create_dir_all(&paths.peers)
        .with_context(|| format!("cannot create {}", paths.peers.display()))?;

    // apt and pip are independent and both mostly wait on the network: run them side by side.
    let venv_dir = paths.peers.join("venv");
    let venv = thread::spawn(move || ensure_venv(&venv_dir));
    let apt = ensure_debian_packages(&debian_packages());
    let python = venv
        .join()
        .map_err(|_| anyhow!("the venv thread panicked"))?;
    // Report both failures when both fail: each names what to install.
    let python = match (apt, python) {
        (Ok(()), Ok(python)) => python,
        (Err(a), Ok(_)) => return Err(a),
        (Ok(()), Err(p)) => return Err(p),
        (Err(a), Err(p)) => bail!("{a:#}\n{p:#}"),
    };

    for program in PROGRAMS {
        ::peers::find_program(program).ok_or_else(|| {
            anyhow!(
                "`{program}` is not on PATH after installing {:?}",
                debian_packages()
            )
        })?;
    }
    ensure_test_user()?;
    ensure_no_smb_listener()?;
    ensure_docker_image(paths)?;

    println!(
        "xtask: ok peers ({:.1} s): {} + {} + image {}",
        started.elapsed().as_secs_f64(),
        debian_packages().join(", "),
        PYTHON_PACKAGES
            .iter()
            .map(|(name, version)| format!("{name}=={version}"))
            .collect::<Vec<_>>()
            .join(", "),
        ::peers::SAMBA_IMAGE
    );
    Ok(Peers { python })
}

/// Every Debian package the peers need: the host's Samba and tools, and Docker.
fn debian_packages() -> Vec<&'static str> {
    DEBIAN_PACKAGES
        .iter()
        .chain(::peers::docker::DOCKER_DEBIAN_PACKAGES)
        .copied()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The Samba 4.22 image

/// Builds the Samba 4.22 root file system with debootstrap unless it is cached (the tests
/// import it into their engine's data root on first use).
fn ensure_docker_image(paths: &Paths) -> Result<()> {
    match ::peers::docker::build_image(&paths.peers).map_err(|e| anyhow!(e))? {
        ::peers::docker::ImageBuild::Cached(_) => {}
        ::peers::docker::ImageBuild::Built(tar, took) => println!(
            "xtask: built the Samba 4.22 image's root file system in {:.1} s: {}",
            took.as_secs_f64(),
            tar.display()
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Debian packages

fn ensure_debian_packages(packages: &[&'static str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|pkg| !debian_package_installed(pkg))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    if !::peers::users::running_as_root() {
        bail!(
            "missing Debian packages {missing:?}; run `cargo xtask peers` as root, or \
             `sudo apt-get install {}`",
            missing.join(" ")
        );
    }

    // Never ask whether non-root users may capture: tshark's postinst would otherwise prompt.
    let mut preseed = Command::new("debconf-set-selections");
    preseed.stdin(Stdio::piped());
    let mut child = preseed
        .spawn()
        .context("cannot run debconf-set-selections")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin for debconf-set-selections"))?
        .write_all(b"wireshark-common wireshark-common/install-setuid boolean false\n")?;
    if !child.wait()?.success() {
        bail!("debconf-set-selections failed");
    }

    // The samba package's postinst would start smbd/nmbd on ports 445/139 through invoke-rc.d;
    // policy-rc.d exit code 101 ("action forbidden") stops that. Keep an existing one.
    let _guard = PolicyRcGuard::install()?;

    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = Command::new("apt-get");
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {}", describe(&cmd)))?;
        if !status.success() {
            bail!(
                "`{}` failed ({status}); install {} by hand",
                describe(&cmd),
                missing.join(" ")
            );
        }
        Ok(())
    };
    apt(&["-q", "update"])?;
    let mut install = vec![
        "-q",
        "-y",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "install",
    ];
    install.extend(&missing);
    apt(&install)?;

    let still_missing: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|pkg| !debian_package_installed(pkg))
        .collect();
    if !still_missing.is_empty() {
        bail!("apt-get did not install {still_missing:?}");
    }
    Ok(())
}

fn debian_package_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .stderr(Stdio::null())
        .output()
        .map(|out| out.status.success() && out.stdout.ends_with(b" installed"))
        .unwrap_or(false)
}

/// A temporary `/usr/sbin/policy-rc.d` that forbids starting services, removed on drop
/// (only if we created it).
#[derive(Debug)]
struct PolicyRcGuard {
    created: Option<PathBuf>,
}

impl PolicyRcGuard {
    fn install() -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let path = PathBuf::from("/usr/sbin/policy-rc.d");
        if path.exists() {
            return Ok(PolicyRcGuard { created: None });
        }
        fs::write(
            &path,
            "#!/bin/sh\n# written by cargo xtask peers\nexit 101\n",
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(PolicyRcGuard {
            created: Some(path),
        })
    }
}

impl Drop for PolicyRcGuard {
    fn drop(&mut self) {
        if let Some(path) = &self.created {
            let _ = fs::remove_file(path);
        }
    }
}

/// The packages' own smbd/nmbd must not be serving ports 445/139: the tests never use them,
/// and nothing here listens there. policy-rc.d prevents it; this checks it.
fn ensure_no_smb_listener() -> Result<()> {
    const LISTEN: &str = "0A";
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        // "sl local_address rem_address st ...", local_address = HEXADDR:HEXPORT.
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                continue;
            };
            let port = local
                .rsplit_once(':')
                .and_then(|(_, port)| u16::from_str_radix(port, 16).ok());
            if *state == LISTEN && matches!(port, Some(445 | 139)) {
                bail!(
                    "something listens on TCP port {} (the Debian smbd/nmbd service?); \
                     stop it (`service smbd stop; service nmbd stop`): the tests never use \
                     ports 445 or 139",
                    port.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Python venv

fn ensure_venv(dir: &Path) -> Result<PathBuf> {
    let python = dir.join("bin").join("python");
    if python.exists() {
        match installed_versions(&python) {
            Some(versions) if versions_match(&versions) => return Ok(python),
            Some(_) => {
                // Reuse the venv; pip replaces the wrong versions.
                println!(
                    "xtask: updating the pinned Python packages in {}",
                    dir.display()
                );
            }
            None => {
                println!("xtask: {} is broken; recreating it", dir.display());
                fs::remove_dir_all(dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
            }
        }
    }
    if !python.exists() {
        let base = std::env::var("SMB_PEERS_BASE_PYTHON").unwrap_or_else(|_| "python3".into());
        println!("xtask: creating venv {} with {base}", dir.display());
        output(Command::new(&base).arg("-m").arg("venv").arg(dir)).with_context(|| {
            format!(
                "cannot create the venv; install Python 3 with its venv module ({base} -m venv)"
            )
        })?;
    }
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
    ]);
    for (name, version) in PYTHON_PACKAGES {
        pip.arg(format!("{name}=={version}"));
    }
    output(&mut pip).context("pip could not install the pinned Python peers")?;

    match installed_versions(&python) {
        Some(versions) if versions_match(&versions) => Ok(python),
        other => bail!(
            "after pip install, {} reports {other:?}, expected {PYTHON_PACKAGES:?}",
            python.display()
        ),
    }
}

/// `[(name, version)]` of the pinned packages as the venv sees them, or None when the venv's
/// Python does not run.
fn installed_versions(python: &Path) -> Option<Vec<(String, String)>> {
    let names: Vec<String> = PYTHON_PACKAGES
        .iter()
        .map(|(n, _)| format!("'{n}'"))
        .collect();
    let script = format!(
        "import importlib.metadata as m\n\
         for n in [{}]:\n\
         \x20   try: print(n, m.version(n))\n\
         \x20   except m.PackageNotFoundError: print(n, '-')\n",
        names.join(", ")
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

fn versions_match(installed: &[(String, String)]) -> bool {
    PYTHON_PACKAGES
        .iter()
        .all(|(name, version)| installed.iter().any(|(n, v)| n == name && v == version))
}

// ---------------------------------------------------------------------------------------------
// Test user and helpers

/// The Unix account Samba maps the test login to. Its Samba password lives in each test
/// server's private passdb (the harness runs smbpasswd per server).
fn ensure_test_user() -> Result<()> {
    ::peers::ensure_unix_user(::peers::SAMBA_USER).map_err(|e| anyhow!(e))
}

// ---------------------------------------------------------------------------------------------
// --stop

/// Stops every Samba process that a killed test run left behind: smbd, its children and the
/// samba-dcerpcd/rpcd_* helpers all carry their private `target/peers/samba-PORT/smb.conf` on
/// their command line. Found through /proc and stopped by PID (the harness's own lookup).
pub fn stop(paths: &Paths) -> Result<()> {
    let needle = ::peers::samba_dir_prefix(&paths.peers)
        .to_string_lossy()
        .into_owned();
    let stopped = ::peers::stop_processes_naming(&needle, std::time::Duration::from_secs(5));
    println!(
        "xtask: stopped {} Samba process(es){}",
        stopped.terminated.len(),
        if stopped.killed.is_empty() {
            String::new()
        } else {
            format!(", {} of them with SIGKILL", stopped.killed.len())
        }
    );
    // The Docker engine a killed run left behind (its containers stop with it).
    match ::peers::docker::stop_unused_engine(&paths.peers).map_err(|e| anyhow!(e))? {
        Some(stopped) if !stopped.terminated.is_empty() => println!(
            "xtask: stopped the test Docker engine (PIDs {:?})",
            stopped.terminated
        ),
        Some(_) => {}
        None => println!("xtask: the test Docker engine is in use by a running test; left alone"),
    }
    Ok(())
}
