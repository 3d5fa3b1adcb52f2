//! Per-process CPU time and peak RSS from /proc (Linux), for the end-to-end benchmark.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// One /proc/PID/stat line, the fields the benchmark uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub state: char,
    /// utime + stime of the process (all its threads), in seconds.
    pub cpu: f64,
    /// cutime + cstime: children it has waited for, in seconds.
    pub children_cpu: f64,
}

pub fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let (_, rest) = text.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, so rest[11].
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) as f64;
    Some(Stat {
        state: f.first()?.chars().next()?,
        cpu: (num(11) + num(12)) / TICKS_PER_SEC,
        children_cpu: (num(13) + num(14)) / TICKS_PER_SEC,
    })
}

/// VmHWM (peak resident set) in KiB; `None` for a zombie or a vanished process.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    kib_field(&format!("/proc/{pid}/status"), "VmHWM:")
}

/// MemAvailable of the machine in KiB.
pub fn mem_available_kib() -> Option<u64> {
    kib_field("/proc/meminfo", "MemAvailable:")
}

/// The value of a `Key:   123 kB` line of a /proc file.
fn kib_field(path: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets VmHWM to the current RSS (`echo 5 > clear_refs`, Linux 4.0+), so a long-lived
/// server's peak is measured per transfer.
pub fn reset_peak_rss(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Direct children of `pid` (from /proc/PID/task/*/children).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// CPU seconds spent so far by `pid`, its live children and the children it reaped: what a
/// forking server (smbd: one process per connection) spent, read before and after a run.
pub fn tree_cpu(pid: u32) -> f64 {
    let own = stat(pid).map_or(0.0, |s| s.cpu + s.children_cpu);
    own + children(pid)
        .into_iter()
        .filter_map(stat)
        .map(|s| s.cpu + s.children_cpu)
        .sum::<f64>()
}

/// Samples peak RSS of a set of processes every few milliseconds while a transfer runs, and
/// the CPU time of one watched process when it becomes a zombie (exited, not yet reaped).
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Sampled>>,
    thread: Option<thread::JoinHandle<()>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Sampled {
    /// Largest VmHWM of the client, KiB.
    pub client_rss_kib: u64,
    /// Largest VmHWM of any server process (ours, or one of smbd's connection processes), KiB.
    pub server_rss_kib: u64,
    /// The client's own CPU seconds (with any children it waited for), read at exit.
    pub client_cpu: Option<f64>,
}

impl Sampler {
    /// `client`: the client process. `server`: the server's main pid; with `forking`, its
    /// children (smbd's per-connection processes not in `before`) are the server instead.
    pub fn start(client: u32, server: u32, forking: bool, before: Vec<u32>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Sampled::default()));
        let (stop2, state2) = (stop.clone(), state.clone());
        let thread = thread::spawn(move || loop {
            let done = stop2.load(Ordering::Relaxed);
            let mut s = state2.lock().map(|g| *g).unwrap_or_default();
            if s.client_cpu.is_none() {
                match stat(client) {
                    Some(st) if st.state == 'Z' || st.state == 'X' => {
                        s.client_cpu = Some(st.cpu + st.children_cpu);
                    }
                    Some(_) => {
                        if let Some(kib) = peak_rss_kib(client) {
                            s.client_rss_kib = s.client_rss_kib.max(kib);
                        }
                    }
                    None => {}
                }
            }
            let servers = if forking {
                children(server)
                    .into_iter()
                    .filter(|p| !before.contains(p))
                    .collect()
            } else {
                vec![server]
            };
            for pid in servers {
                if let Some(kib) = peak_rss_kib(pid) {
                    s.server_rss_kib = s.server_rss_kib.max(kib);
                }
            }
            if let Ok(mut g) = state2.lock() {
                *g = s;
            }
            if done {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        });
        Sampler {
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// What was sampled so far (the client's CPU appears once it has exited).
    pub fn peek(&self) -> Sampled {
        self.state.lock().map(|g| *g).unwrap_or_default()
    }

    /// Stops sampling (after one last sample) and returns the figures.
    pub fn finish(mut self) -> Sampled {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peek()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
