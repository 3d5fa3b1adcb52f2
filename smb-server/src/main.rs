//! `smb-server`: serve directories over SMB2/3 with Windows signing semantics.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use smb_server::{Server, Settings};

/// A minimal SMB2/3 file server (NTLMv2, signing per RequireSecuritySignature). Lab use:
/// it listens on loopback only unless told otherwise.
#[derive(Debug, Parser)]
#[command(name = "smb-server", version)]
struct Cli {
    /// ADDR:PORT to listen on; port 0 picks a free port [default: 127.0.0.1:4455]
    #[arg(long)]
    listen: Option<String>,
    /// A share, NAME=DIR (repeatable)
    #[arg(long = "share", value_name = "NAME=DIR")]
    shares: Vec<String>,
    /// A user, NAME:PASSWORD or NAME:nthash:HEX (repeatable)
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// RequireSecuritySignature [default: true]
    #[arg(long, value_name = "BOOL")]
    require_signing: Option<bool>,
    /// EnableSecuritySignature: accepted, no effect on SMB2+ [default: true]
    #[arg(long, value_name = "BOOL")]
    enable_signing: Option<bool>,
    /// Dialects to accept, e.g. 2.0.2,2.1,3.0,3.0.2,3.1.1 [default: all]
    #[arg(long)]
    dialects: Option<String>,
    /// 3.1.1 signing algorithms in preference order [default: aes-gmac,aes-cmac,hmac-sha256]
    #[arg(long)]
    signing_algorithms: Option<String>,
    /// Allow guest and anonymous sessions (refused anyway when signing is required) [default: false]
    #[arg(long, value_name = "BOOL")]
    guest: Option<bool>,
    /// Append audit events as JSON lines to FILE
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// TOML file with the same settings (flags win)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Allow listening on a non-loopback address
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    allow_non_loopback: Option<bool>,
    /// Most simultaneous connections; unauthenticated ones are evicted first [default: 4096]
    #[arg(long)]
    max_connections: Option<usize>,
    /// Most simultaneous connections from one address [default: 512]
    #[arg(long)]
    max_connections_per_address: Option<usize>,
    /// Failed logons of one user from one address before a 5-minute lockout of that pair
    /// (ten times as many across all names lock the address out) [default: 10]
    #[arg(long)]
    max_failed_logons: Option<u32>,
    /// Largest accepted message in bytes [default: 8454144]
    #[arg(long)]
    max_message_size: Option<usize>,
    /// Most credits a client may hold [default: 512]
    #[arg(long)]
    max_credits: Option<u16>,
    /// Most open files per connection [default: 1024]
    #[arg(long)]
    max_open_files: Option<usize>,
    /// MiB of frame buffers the whole server may hold at once [default: 1024]
    #[arg(long)]
    max_buffered_mib: Option<usize>,
    /// Seconds a connection has to authenticate a session [default: 30]
    #[arg(long)]
    auth_timeout_secs: Option<u64>,
    /// Seconds a transport frame has from its first byte to its last [default: 30]
    #[arg(long)]
    frame_timeout_secs: Option<u64>,
    /// Seconds an authenticated connection may stay silent [default: 900]
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
    /// Seconds a client has to take each response before it is dropped [default: 30]
    #[arg(long)]
    write_timeout_secs: Option<u64>,
    /// Milliseconds a CREATE waits for an oplock or lease break to be acknowledged
    /// [default: 35000]
    #[arg(long)]
    break_timeout_ms: Option<u64>,
}

impl Cli {
    fn settings(self) -> anyhow::Result<Settings> {
        let flags = Settings {
            listen: self.listen,
            share: self.shares,
            user: self.users,
            require_signing: self.require_signing,
            enable_signing: self.enable_signing,
            dialects: self.dialects,
            signing_algorithms: self.signing_algorithms,
            guest: self.guest,
            audit_log: self.audit_log,
            allow_non_loopback: self.allow_non_loopback,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            max_failed_logons: self.max_failed_logons,
            max_message_size: self.max_message_size,
            max_credits: self.max_credits,
            max_open_files: self.max_open_files,
            max_buffered_mib: self.max_buffered_mib,
            auth_timeout_secs: self.auth_timeout_secs,
            frame_timeout_secs: self.frame_timeout_secs,
            idle_timeout_secs: self.idle_timeout_secs,
            write_timeout_secs: self.write_timeout_secs,
            break_timeout_ms: self.break_timeout_ms,
            server_name: None,
            domain: None,
        };
        Ok(match &self.config {
            Some(path) => flags.over(Settings::from_file(path)?),
            None => flags,
        })
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smb-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut resolved = Cli::parse().settings()?.resolve()?;
    fit_fd_limit(&mut resolved);
    // The listener on this thread; connections on two single-threaded runtimes per core.
    // Runtimes do not steal work from each other: with one per core, a runtime whose thread
    // got less CPU held back all its connections (500 sessions under `cargo xtask load`: p99
    // 235-241 ms); with two per core the kernel balances twice as many threads (136-139 ms,
    // and 6,600 operations per second against 6,200-6,600).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = 2 * cores;
    let runtimes = smb_server::connection_runtimes(threads, BLOCKING_THREADS.div_ceil(threads))?;
    rt.block_on(async move {
        let server = Server::bind(resolved).await?.spread_over(runtimes);
        let addr = server.local_addr()?;
        // Signal handlers are installed before the line is printed, so a driver that
        // stops the server right after reading it is never too early.
        let shutdown = shutdown_signal()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        drop(out);
        server.run(shutdown).await
    })
}

/// Threads that run share requests (file-system work), shared out between the connection
/// runtimes. Tokio's default (512 per runtime) let the pool
/// grow with the number of busy connections, and the server's RSS with it (about 80 KiB a
/// thread: stack and allocator arenas, measured under `cargo xtask soak`); requests beyond
/// this wait in the pool's queue, which their connection's budget already bounds.
const BLOCKING_THREADS: usize = 64;

/// Descriptors kept for the listener, the audit log, the runtime and open files.
const FD_RESERVE: u64 = 256;

/// Raises the soft file-descriptor limit to the hard one so `max_connections` fit, and
/// lowers `max_connections` (with a warning) when even the hard limit is too small: running
/// out of descriptors would refuse connections blindly instead of by the eviction rules.
#[cfg(unix)]
fn fit_fd_limit(r: &mut smb_server::Resolved) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let need = r.max_connections as u64 + FD_RESERVE;
    // Room for the descriptors opens hold too, when the hard limit allows.
    let want = need + smb_server::disk::DEFAULT_MAX_HELD_HANDLES as u64;
    if lim.current.is_some_and(|cur| cur < want) {
        lim.current = match lim.maximum {
            Some(max) => Some(max.min(want.max(lim.current.unwrap_or(0)))),
            None => Some(want),
        };
        let _ = setrlimit(Resource::Nofile, lim);
    }
    if let Some(cur) = getrlimit(Resource::Nofile).current {
        if cur < need {
            let fit = cur.saturating_sub(FD_RESERVE).max(16) as usize;
            tracing::warn!(
                "file-descriptor limit {cur}: max-connections lowered from {} to {fit}",
                r.max_connections
            );
            r.max_connections = fit;
            r.max_connections_per_address = r.max_connections_per_address.min(fit);
        }
        // Opens hold what connections and the reserve leave (at least a few).
        let spare = cur.saturating_sub(r.max_connections as u64 + FD_RESERVE / 2);
        let held = spare.clamp(64, smb_server::disk::DEFAULT_MAX_HELD_HANDLES as u64);
        smb_server::disk::set_max_held_handles(held as usize);
    }
}

#[cfg(not(unix))]
fn fit_fd_limit(_: &mut smb_server::Resolved) {}

/// Completes on SIGINT or SIGTERM (Ctrl-C elsewhere).
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
