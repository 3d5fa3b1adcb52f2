//! The demo's target: our server (the `smb-server` library, the same driver as the
//! `smb-server` binary), started in this process on a loopback address, with an in-memory
//! share whose contents the scenarios check afterwards (did the relay's marker land?) and
//! its JSON-lines audit log kept as evidence.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use smb_core::auth::UserTable;
use smb_core::conn::server::{ServerConfig, ShareConfig};
use smb_core::conn::share::MemoryShare;
use smb_core::header::Dialect;
use smb_core::policy::SigningPolicy;
use smb_server::{Resolved, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::loopback;

/// The victim's account on the target. The relay never sees this password.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "Corr3ct-Horse!";
/// The share the scenarios use.
pub const SHARE: &str = "data";
/// A file the victim reads in the tamper scenarios.
pub const SECRET_FILE: &str = "payroll.csv";

/// How to configure the target.
#[derive(Debug, Clone)]
pub struct TargetSetup {
    pub ip: IpAddr,
    pub require_signing: bool,
    pub dialects: Vec<Dialect>,
    pub allow_guest: bool,
}

impl TargetSetup {
    pub fn new(ip: IpAddr, require_signing: bool) -> Self {
        TargetSetup {
            ip,
            require_signing,
            dialects: Dialect::ALL.to_vec(),
            allow_guest: false,
        }
    }
    pub fn dialect(mut self, d: Dialect) -> Self {
        self.dialects = vec![d];
        self
    }
}

/// A running target server.
#[derive(Debug)]
pub struct TargetServer {
    pub addr: SocketAddr,
    pub share: Arc<MemoryShare>,
    audit_log: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// The content of [`SECRET_FILE`]: recognisable text, a few KiB.
pub fn secret_content() -> Vec<u8> {
    let mut s = String::from("employee,salary\n");
    for i in 0..200 {
        s.push_str(&format!("employee-{i:03},{}\n", 40_000 + i * 137));
    }
    s.into_bytes()
}

impl TargetServer {
    /// Binds `setup.ip` on a free port and serves until dropped.
    pub async fn start(setup: &TargetSetup) -> anyhow::Result<Self> {
        let listen = loopback::check_listen("target", SocketAddr::new(setup.ip, 0))?;
        let share = Arc::new(MemoryShare::new());
        share
            .put(SECRET_FILE, &secret_content())
            .map_err(|e| anyhow::anyhow!("preparing the share: {e:?}"))?;
        let mut users = UserTable::new();
        users.add_password(USER, PASSWORD);
        let config = Arc::new(ServerConfig {
            users: Arc::new(users),
            shares: vec![ShareConfig {
                name: SHARE.into(),
                backend: share.clone(),
            }],
            signing: SigningPolicy::new(setup.require_signing),
            dialects: setup.dialects.clone(),
            allow_guest: setup.allow_guest,
            ..ServerConfig::default()
        });
        let audit_log = audit_path();
        let server = Server::bind(Resolved {
            listen,
            config,
            audit_log: Some(audit_log.clone()),
            max_connections: 64,
            max_connections_per_address: 64,
            max_failed_logons: 1000,
            max_buffered: smb_server::settings::DEFAULT_MAX_BUFFERED,
            timeouts: Default::default(),
        })
        .await
        .with_context(|| format!("starting the target on {listen}"))?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .run(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(TargetServer {
            addr,
            share,
            audit_log,
            stop: Some(stop),
            task,
        })
    }

    /// The server's audit records so far (one JSON object each: `event`, `reason`, ...).
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Whether `path` exists on the share.
    pub fn has_file(&self, path: &str) -> bool {
        self.share.exists(path)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Graceful stop is asked for; the task is also aborted so nothing outlives the lab.
        self.task.abort();
        let _ = std::fs::remove_file(&self.audit_log);
    }
}

/// A fresh audit log path in the temp directory.
fn audit_path() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("smb-lab-audit-{}-{n}.jsonl", std::process::id()))
}
