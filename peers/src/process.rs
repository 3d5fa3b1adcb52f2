//! Ports and processes: a free loopback port, waiting for a listener, and finding the
//! processes of one peer by their command line (through /proc) to stop them by PID.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// A free TCP port on `ip` (a loopback address; never 445 or 139: those are privileged and
/// never handed out as ephemeral ports, and are skipped anyway).
pub fn free_port_on(ip: IpAddr) -> Result<u16> {
    loop {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0))
            .map_err(|e| Error::new(format!("cannot bind an ephemeral port on {ip}: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::new(format!("bound socket without an address: {e}")))?
            .port();
        if port != 445 && port != 139 {
            return Ok(port);
        }
    }
}

/// A free TCP port on 127.0.0.1. Panics when none can be bound (no loopback interface).
pub fn free_port() -> u16 {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, polling (no fixed sleep).
/// Fails early when `child` exits first.
pub fn wait_for_port(
    port: u16,
    timeout: Duration,
    child: Option<&mut Child>,
) -> std::result::Result<(), String> {
    wait_for_listener(SocketAddr::from(([127, 0, 0, 1], port)), timeout, child)
}

/// [`wait_for_port`] for any address.
pub fn wait_for_listener(
    addr: SocketAddr,
    timeout: Duration,
    mut child: Option<&mut Child>,
) -> std::result::Result<(), String> {
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

/// PIDs of live processes (not this one, not zombies) whose command line contains `needle`,
/// e.g. every process of one Samba (`needle` = its smb.conf path).
pub fn pids_with_cmdline(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && is_running(pid))
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(needle)
        })
        .collect()
}

/// True while `pid` exists and is not a zombie.
pub fn is_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // "pid (comm) state ..."; comm may hold spaces, so split after the last ')'.
            let (_, rest) = stat.rsplit_once(')')?;
            let state = rest.split_whitespace().next()?;
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Sends `sig` ("TERM", "KILL", "INT", ...) to `pid`; a process already gone is not an error.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// What [`stop_pids`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Every PID that got SIGTERM.
    pub terminated: Vec<u32>,
    /// Those still running after the grace period, which got SIGKILL.
    pub killed: Vec<u32>,
}

/// SIGTERM to each of `pids`, then SIGKILL to whatever still runs after `grace`.
pub fn stop_pids(pids: &[u32], grace: Duration) -> Stopped {
    for &pid in pids {
        signal(pid, "TERM");
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|&pid| is_running(pid)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let killed: Vec<u32> = pids.iter().copied().filter(|&p| is_running(p)).collect();
    for &pid in &killed {
        signal(pid, "KILL");
    }
    Stopped {
        terminated: pids.to_vec(),
        killed,
    }
}

/// Stops every process whose command line contains `needle` ([`pids_with_cmdline`]), by PID.
/// Processes that fork while being stopped (smbd's children) are caught by a second pass.
pub fn stop_processes_naming(needle: &str, grace: Duration) -> Stopped {
    let mut all = Stopped::default();
    for _ in 0..3 {
        let pids = pids_with_cmdline(needle);
        if pids.is_empty() {
            break;
        }
        let round = stop_pids(&pids, grace);
        all.terminated.extend(round.terminated);
        all.killed.extend(round.killed);
    }
    all.terminated.sort_unstable();
    all.terminated.dedup();
    all
}
