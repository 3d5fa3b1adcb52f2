//! The demo's target: our server, started in this process on a loopback address, with an
//! in-memory share whose contents the scenarios can check afterwards (did the relay's
//! marker land?), and the server's audit events kept as evidence.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use smb_core::auth::UserTable;
use smb_core::conn::server::{ServerConfig, ServerConnection, ServerEvent, ShareConfig};
use smb_core::conn::share::MemoryShare;
use smb_core::header::Dialect;
use smb_core::policy::SigningPolicy;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::loopback;
use crate::transport::{write_frame, FrameReader};

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
        TargetSetup { ip, require_signing, dialects: Dialect::ALL.to_vec(), allow_guest: false }
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
    events: Arc<Mutex<Vec<ServerEvent>>>,
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
            shares: vec![ShareConfig { name: SHARE.into(), backend: share.clone() }],
            signing: SigningPolicy::new(setup.require_signing),
            dialects: setup.dialects.clone(),
            allow_guest: setup.allow_guest,
            ..ServerConfig::default()
        });
        let listener =
            TcpListener::bind(listen).await.with_context(|| format!("binding target {listen}"))?;
        let addr = listener.local_addr()?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let ev = events.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, peer, config.clone(), ev.clone()));
            }
        });
        Ok(TargetServer { addr, share, events, task })
    }

    /// The server's audit events so far.
    pub fn events(&self) -> Vec<ServerEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Whether `path` exists on the share.
    pub fn has_file(&self, path: &str) -> bool {
        self.share.exists(path)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    events: Arc<Mutex<Vec<ServerEvent>>>,
) {
    let _ = stream.set_nodelay(true);
    let (rx, mut tx) = stream.into_split();
    let mut frames = FrameReader::new(rx);
    let mut conn = ServerConnection::new(config, Some(peer.to_string()));
    while let Ok(frame) = frames.next().await {
        conn.set_time(filetime_now());
        conn.handle_input(&frame);
        while let Some(out) = conn.poll_transmit() {
            if write_frame(&mut tx, &out).await.is_err() {
                return;
            }
        }
        let mut disconnect = false;
        while let Some(e) = conn.poll_event() {
            disconnect |= matches!(e, ServerEvent::Disconnect { .. });
            if let Ok(mut all) = events.lock() {
                all.push(e);
            }
        }
        if disconnect {
            return;
        }
    }
}

fn filetime_now() -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() + EPOCH_DIFF_SECS) * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}
