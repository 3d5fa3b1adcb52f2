//! Tokio SMB2/3 server: the thin driver around `smb_core::conn::server::ServerConnection`.
//!
//! All socket code is here: an accept loop with connection limits (total and per address),
//! a lockout of addresses with too many failed logons, one task per connection that frames
//! messages (`smb_core::framing`), and graceful shutdown. The protocol lives in `smb-core`.

pub mod audit;
pub mod disk;
pub mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Buf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use smb_core::conn::server::{ServerConnection, ServerEvent};
use smb_core::framing::{frame_header, frame_len, PREFIX_LEN};

pub use audit::Audit;
pub use settings::{Resolved, Settings};

/// How long an address stays locked out after too many failed logons.
const LOCKOUT: Duration = Duration::from_secs(300);
/// A connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(900);
/// A started frame whose next bytes take longer than this ends the connection.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    resolved: Resolved,
    audit: Audit,
    /// Open connections per address.
    per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Failed logons per address: count and start of the counting window.
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Shared {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn locked_out(&self, ip: IpAddr) -> bool {
        let mut f = Self::lock(&self.failures);
        match f.get(&ip) {
            Some((_, since)) if since.elapsed() > LOCKOUT => {
                f.remove(&ip);
                false
            }
            Some((n, _)) => *n >= self.resolved.max_failed_logons,
            None => false,
        }
    }

    /// Counts a failed logon; true when the address is now locked out.
    fn logon_failed(&self, ip: IpAddr) -> bool {
        let mut f = Self::lock(&self.failures);
        let e = f.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() > LOCKOUT {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        e.0 >= self.resolved.max_failed_logons
    }
}

/// Releases a connection slot when the task ends (even by panic).
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = Shared::lock(&self.shared.per_address);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Server {
    /// Binds the listening socket (port 0 picks a free port) and opens the audit log.
    pub async fn bind(resolved: Resolved) -> Result<Server> {
        let listener = TcpListener::bind(resolved.listen)
            .await
            .with_context(|| format!("cannot listen on {}", resolved.listen))?;
        let audit = Audit::open(resolved.audit_log.as_deref())?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                resolved,
                audit,
                per_address: Mutex::new(HashMap::new()),
                failures: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then stops accepting, tells every connection to
    /// close and waits (a bounded time) for them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if let Some(slot) = self.admit(peer) {
                        let shared = self.shared.clone();
                        let stop = stop_rx.clone();
                        tasks.spawn(async move {
                            let _slot = slot;
                            if let Err(e) = serve_connection(stream, peer, shared, stop).await {
                                tracing::debug!(%peer, "connection ended: {e:#}");
                            }
                        });
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        Ok(())
    }

    /// Applies the connection limits and the logon lockout; `None` refuses (closes).
    fn admit(&self, peer: SocketAddr) -> Option<Slot> {
        let ip = peer.ip();
        if self.shared.locked_out(ip) {
            tracing::warn!(%peer, "refused: too many failed logons from this address");
            return None;
        }
        let r = &self.shared.resolved;
        let mut m = Shared::lock(&self.shared.per_address);
        let total: usize = m.values().sum();
        let here = m.get(&ip).copied().unwrap_or(0);
        if total >= r.max_connections || here >= r.max_connections_per_address {
            tracing::warn!(%peer, total, here, "refused: connection limit reached");
            return None;
        }
        *m.entry(ip).or_insert(0) += 1;
        Some(Slot {
            shared: self.shared.clone(),
            ip,
        })
    }
}

/// Writes every message the state machine has queued, one frame each.
async fn send_all(conn: &mut ServerConnection, stream: &mut TcpStream) -> Result<()> {
    while let Some(msg) = conn.poll_transmit() {
        // A compound of large READs can answer more than one frame may carry: that
        // ends the connection (an error, not a panic in this task).
        let prefix = frame_header(msg.len())?;
        // One vectored write: the response (up to MaxReadSize) is not copied again.
        let mut frame = Buf::chain(&prefix[..], msg.as_slice());
        stream.write_all_buf(&mut frame).await?;
    }
    Ok(())
}

/// One connection: read frames, feed the state machine, write what it says, audit events.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let config = shared.resolved.config.clone();
    let mut conn = ServerConnection::new(config, Some(peer.to_string()));
    // Another connection changed a share this one watches (CHANGE_NOTIFY): wake this task.
    let wake = Arc::new(tokio::sync::Notify::new());
    let waker = wake.clone();
    conn.set_waker(Arc::new(move || waker.notify_one()));
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Process every complete frame already buffered.
        loop {
            let len = match frame_len(&buf, conn.max_message_size()) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    shared.audit.record(
                        &ServerEvent::Disconnect {
                            reason: format!("bad transport frame: {e}"),
                        },
                        Some(peer),
                    );
                    return Ok(());
                }
            };
            conn.set_time(smb_core::codec::filetime_now());
            conn.handle_input(&buf[PREFIX_LEN..PREFIX_LEN + len]);
            buf.drain(..PREFIX_LEN + len);
            // Audit first, so a record is on disk before the peer sees the answer.
            let mut close = false;
            while let Some(ev) = conn.poll_event() {
                shared.audit.record(&ev, Some(peer));
                match ev {
                    ServerEvent::Disconnect { .. } => close = true,
                    ServerEvent::LogonFailed { .. } if shared.logon_failed(peer.ip()) => {
                        tracing::warn!(%peer, "too many failed logons: closing and locking out");
                        close = true;
                    }
                    _ => {}
                }
            }
            send_all(&mut conn, &mut stream).await?;
            if close || conn.is_failed() {
                let _ = stream.shutdown().await;
                return Ok(());
            }
        }
        // The buffer never exceeds one frame (checked against the limit by frame_len as
        // soon as its prefix is in) plus one read. A frame once started must keep coming.
        let timeout = if buf.is_empty() {
            IDLE_TIMEOUT
        } else {
            FRAME_TIMEOUT
        };
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = wake.notified() => {
                conn.handle_wakeup();
                send_all(&mut conn, &mut stream).await?;
                continue;
            }
            r = tokio::time::timeout(timeout, stream.read(&mut chunk)) => {
                let n = match r {
                    Ok(r) => r?,
                    Err(_) => return Ok(()), // idle
                };
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}
