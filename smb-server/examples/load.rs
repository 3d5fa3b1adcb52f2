//! Load driver for `cargo xtask load|soak` (xtask/src/load.rs starts the release server and
//! runs this): N concurrent signed sessions from several loopback source addresses, each
//! writing a file, reading it back and comparing, in a loop, for a fixed time. Prints one
//! JSON object: operations, ops/s, p50/p99 latency, errors, and the server's RSS sampled
//! from /proc every second (peak from VmHWM).
//!
//! `load --server ADDR --pid PID [--sessions 500] [--seconds 60] [--sources 8] [--size 65536]`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smb_client::audit::AuditLog;
use smb_client::client::Client;
use smb_core::auth::Credentials;
use smb_core::conn::client::ClientConfig;

struct Args {
    server: SocketAddr,
    pid: u32,
    sessions: usize,
    seconds: u64,
    sources: u8,
    size: usize,
    user: String,
    password: String,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        server: "127.0.0.1:4455".parse()?,
        pid: 0,
        sessions: 500,
        seconds: 60,
        sources: 8,
        size: 64 * 1024,
        user: "load".into(),
        password: "L0ad!pass".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--server" => a.server = v.parse()?,
            "--pid" => a.pid = v.parse()?,
            "--sessions" => a.sessions = v.parse()?,
            "--seconds" => a.seconds = v.parse()?,
            "--sources" => a.sources = v.parse()?,
            "--size" => a.size = v.parse()?,
            "--user" => a.user = v.clone(),
            "--password" => a.password = v.clone(),
            _ => anyhow::bail!("unknown flag {k}"),
        }
    }
    anyhow::ensure!(a.pid != 0, "--pid of the server is required (for its RSS)");
    Ok(a)
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let f = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (f("VmRSS:"), f("VmHWM:"))
}

#[derive(Default)]
struct Stats {
    ops: AtomicU64,
    errors: AtomicU64,
    /// Latencies in microseconds (one per operation: a write or a read-back).
    lat: Mutex<Vec<u32>>,
    first_error: Mutex<Option<String>>,
}

impl Stats {
    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.first_error.lock().unwrap().get_or_insert(e);
    }
}

async fn session(i: usize, a: Arc<Args>, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let ip = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1,
        1 + (i % usize::from(a.sources)) as u8,
    ));
    let config = ClientConfig::new(
        &a.server.to_string(),
        Credentials::password(&a.user, "", &a.password),
    );
    let connected = async {
        let mut c = Client::connect_from(
            a.server,
            Some(ip),
            config,
            Duration::from_secs(60),
            Arc::new(AuditLog::disabled()),
        )
        .await?;
        c.login().await?;
        let tree = c
            .tree_connect(&format!("\\\\{}\\load", a.server.ip()))
            .await?;
        anyhow::Ok((c, tree))
    };
    let (mut c, tree) = match connected.await {
        Ok(x) => x,
        Err(e) => return stats.error(format!("session {i} setup: {e:#}")),
    };
    let mut local = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Different content each round, so a stale read-back cannot pass.
        let data: Vec<u8> = (0..a.size)
            .map(|k| (k as u64 ^ n ^ i as u64).wrapping_mul(0x9E37) as u8)
            .collect();
        let name = format!("s{i}-{}", n % 4);
        let t = Instant::now();
        if let Err(e) = c.write_file(tree, &name, &data).await {
            stats.error(format!("session {i} write: {e:#}"));
            break;
        }
        local.push(t.elapsed().as_micros() as u32);
        let t = Instant::now();
        match c.read_file(tree, &name).await {
            Ok(back) if back == data => local.push(t.elapsed().as_micros() as u32),
            Ok(_) => {
                stats.error(format!("session {i}: read-back differs"));
                break;
            }
            Err(e) => {
                stats.error(format!("session {i} read: {e:#}"));
                break;
            }
        }
        stats.ops.fetch_add(2, Ordering::Relaxed);
        n += 1;
    }
    stats.lat.lock().unwrap().extend(local);
}

fn main() -> anyhow::Result<()> {
    let a = Arc::new(parse()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (rss_start, _) = memory(a.pid);
    let t0 = Instant::now();
    let samples: Vec<(u64, u64)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..a.sessions {
            tasks.push(tokio::spawn(session(
                i,
                a.clone(),
                stats.clone(),
                stop.clone(),
            )));
        }
        let mut samples = Vec::new();
        let end = t0 + Duration::from_secs(a.seconds);
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_secs(1)).await;
            samples.push((t0.elapsed().as_secs(), memory(a.pid).0));
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        samples
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let (rss_end, hwm) = memory(a.pid);
    let mut lat = std::mem::take(&mut *stats.lat.lock().unwrap());
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let ops = stats.ops.load(Ordering::Relaxed);
    let out = serde_json::json!({
        "sessions": a.sessions,
        "sources": a.sources,
        "size": a.size,
        "seconds": elapsed,
        "ops": ops,
        "ops_per_s": ops as f64 / elapsed,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "errors": stats.errors.load(Ordering::Relaxed),
        "first_error": *stats.first_error.lock().unwrap(),
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "peak_rss_kib": hwm,
        "rss_kib_by_second": samples,
    });
    println!("{out}");
    Ok(())
}
