//! Tokio SMB2/3 server: the thin driver around `smb_core::conn::server::ServerConnection`.
//!
//! All socket code is here: an accept loop with connection limits (total and per address)
//! that evicts unauthenticated connections before refusing anyone, a lockout per (address,
//! user) after too many failed logons, one task per connection that frames messages
//! (`smb_core::framing`) under deadlines (authentication, whole frame, idle, write) and runs
//! its share requests on the blocking pool (WRITEs to one file one after another), and
//! graceful shutdown. The binary runs each connection on one of two single-threaded runtimes
//! per core ([`connection_runtimes`]). The protocol lives in `smb-core`.

pub mod audit;
pub mod disk;
pub mod settings;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::{Buf, BufMut, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use smb_core::conn::server::{
    HandleKey, ServerConnection, ServerEvent, ShareOutcome, ShareRequest,
};
use smb_core::framing::{frame_header, frame_len, PREFIX_LEN};

pub use audit::Audit;
pub use settings::{Resolved, Settings, Timeouts};

/// How long an (address, user) pair stays locked out after too many failed logons.
const LOCKOUT: Duration = Duration::from_secs(300);
/// Failed logons from one address, whatever the user names, before the whole address is
/// locked out (password spraying across many names): this many times `max_failed_logons`.
const ADDRESS_LOCKOUT_FACTOR: u32 = 10;
/// Most (address, user) pairs whose failures are remembered; past it, expired entries are
/// purged and then new pairs are counted against their address only.
const MAX_TRACKED_FAILURES: usize = 65_536;
/// User names are kept for the lockout up to this many bytes.
const MAX_TRACKED_NAME: usize = 256;
/// How long shutdown waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    /// Where connections run: these runtimes in turn ([`Server::spread_over`]), or the
    /// runtime that runs the server when empty.
    runtimes: Vec<tokio::runtime::Handle>,
}

/// Starts `threads` threads, each running a single-threaded tokio runtime whose blocking
/// pool has at most `blocking_threads` threads, and returns their handles for
/// [`Server::spread_over`]. The threads live as long as the process.
///
/// Why not one multi-threaded runtime: a connection's task would move between its worker
/// threads, and every share result coming back from the blocking pool would wake an idle
/// worker to look for work. Kept on one thread, a connection is woken once per result; a
/// `put` of 1 GiB from smbclient made 5,500 context switches instead of 8,000, and the
/// smbclient transfers ran 2 to 6 % faster (BENCHMARKS.md). The runtimes do not steal work
/// from each other, so give the kernel more threads than cores to balance (the binary
/// starts two per core).
pub fn connection_runtimes(
    threads: usize,
    blocking_threads: usize,
) -> std::io::Result<Vec<tokio::runtime::Handle>> {
    (0..threads.max(1))
        .map(|i| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                // Its blocking pool's threads too.
                .thread_name(format!("smb-conn-{i}"))
                .max_blocking_threads(blocking_threads.max(1))
                .build()?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name(format!("smb-conn-{i}"))
                .spawn(move || rt.block_on(std::future::pending::<()>()))?;
            Ok(handle)
        })
        .collect()
}

#[derive(Debug)]
struct Shared {
    resolved: Resolved,
    audit: Audit,
    conns: Mutex<Registry>,
    failures: Mutex<Failures>,
    /// Server-wide budget of frame buffers, in KiB: a connection takes its frame's size
    /// from it before buffering a frame larger than `READ_AHEAD`, and gives it back once the
    /// frame is handled. When it is spent, connections wait (their frame deadline runs).
    input_budget: Arc<Semaphore>,
}

/// Every open connection, for the limits and for eviction.
#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    /// By id, so the oldest come first.
    conns: BTreeMap<u64, ConnEntry>,
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct ConnEntry {
    ip: IpAddr,
    /// A session finished authenticating on it.
    authenticated: bool,
    /// Told when the connection is evicted to make room.
    evict: Arc<Notify>,
}

impl Registry {
    fn remove(&mut self, id: u64) -> Option<ConnEntry> {
        let e = self.conns.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&e.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&e.ip);
            }
        }
        Some(e)
    }

    /// The oldest connection that has not authenticated (from `ip` only, if given).
    fn oldest_unauthenticated(&self, ip: Option<IpAddr>) -> Option<u64> {
        self.conns
            .iter()
            .find(|(_, e)| !e.authenticated && ip.is_none_or(|ip| e.ip == ip))
            .map(|(id, _)| *id)
    }
}

/// Failed logons: per (address, user) and per address, each with the start of its window.
#[derive(Debug, Default)]
struct Failures {
    pairs: HashMap<(IpAddr, String), (u32, Instant)>,
    addresses: HashMap<IpAddr, (u32, Instant)>,
}

/// Counts one failure in a (count, since) entry, restarting an expired window.
fn bump(e: &mut (u32, Instant)) -> u32 {
    if e.1.elapsed() > LOCKOUT {
        *e = (0, Instant::now());
    }
    e.0 = e.0.saturating_add(1);
    e.0
}

fn live(e: Option<&(u32, Instant)>) -> u32 {
    match e {
        Some((n, since)) if since.elapsed() <= LOCKOUT => *n,
        _ => 0,
    }
}

/// The lockout key of a user name: case-folded (as Windows compares them) and bounded.
fn user_key(user: &str) -> String {
    let mut u = user.to_lowercase();
    if u.len() > MAX_TRACKED_NAME {
        let mut cut = MAX_TRACKED_NAME;
        while !u.is_char_boundary(cut) {
            cut -= 1;
        }
        u.truncate(cut);
    }
    u
}

impl Shared {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The whole address is locked out (failures across many user names).
    fn address_locked_out(&self, ip: IpAddr) -> bool {
        let f = Self::lock(&self.failures);
        live(f.addresses.get(&ip))
            >= self
                .resolved
                .max_failed_logons
                .saturating_mul(ADDRESS_LOCKOUT_FACTOR)
    }

    /// This user is locked out from this address (or the address as a whole is).
    fn user_locked_out(&self, ip: IpAddr, user: &str) -> bool {
        let max = self.resolved.max_failed_logons;
        let f = Self::lock(&self.failures);
        live(f.pairs.get(&(ip, user_key(user)))) >= max
            || live(f.addresses.get(&ip)) >= max.saturating_mul(ADDRESS_LOCKOUT_FACTOR)
    }

    /// Counts a failed logon of `user` from `ip`; true when the pair (or the address) is
    /// now locked out. A local process can thus lock out only the names it tries, not
    /// every client of the address.
    fn logon_failed(&self, ip: IpAddr, user: &str) -> bool {
        let max = self.resolved.max_failed_logons;
        let mut f = Self::lock(&self.failures);
        if f.pairs.len() >= MAX_TRACKED_FAILURES {
            f.pairs.retain(|_, e| e.1.elapsed() <= LOCKOUT);
            f.addresses.retain(|_, e| e.1.elapsed() <= LOCKOUT);
        }
        let pair = if f.pairs.len() < MAX_TRACKED_FAILURES {
            bump(
                f.pairs
                    .entry((ip, user_key(user)))
                    .or_insert((0, Instant::now())),
            )
        } else {
            0
        };
        let addr = bump(f.addresses.entry(ip).or_insert((0, Instant::now())));
        pair >= max || addr >= max.saturating_mul(ADDRESS_LOCKOUT_FACTOR)
    }

    fn mark_authenticated(&self, id: u64) {
        if let Some(e) = Self::lock(&self.conns).conns.get_mut(&id) {
            e.authenticated = true;
        }
    }
}

/// Releases a connection slot when the task ends (even by panic).
struct Slot {
    shared: Arc<Shared>,
    id: u64,
    evict: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        Shared::lock(&self.shared.conns).remove(self.id);
    }
}

impl Server {
    /// Binds the listening socket (port 0 picks a free port) and opens the audit log.
    pub async fn bind(resolved: Resolved) -> Result<Server> {
        let listener = TcpListener::bind(resolved.listen)
            .await
            .with_context(|| format!("cannot listen on {}", resolved.listen))?;
        let audit = Audit::open(resolved.audit_log.as_deref())?;
        audit.set_server_address(listener.local_addr()?);
        // Never below one largest frame, so any single frame can always be buffered.
        let input_kib = resolved
            .max_buffered
            .max(resolved.config.limits.max_message_size + PREFIX_LEN)
            .div_ceil(1024)
            .min(Semaphore::MAX_PERMITS);
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                resolved,
                audit,
                conns: Mutex::new(Registry::default()),
                failures: Mutex::new(Failures::default()),
                input_budget: Arc::new(Semaphore::new(input_kib)),
            }),
            runtimes: Vec::new(),
        })
    }

    /// Runs each connection on one of `runtimes`, in turn (see [`connection_runtimes`]),
    /// instead of on the runtime that runs the server.
    pub fn spread_over(mut self, runtimes: Vec<tokio::runtime::Handle>) -> Server {
        self.runtimes = runtimes;
        self
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then stops accepting, tells every connection to
    /// close and waits (a bounded time) for them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut accepted_count = 0usize;
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
                        // The socket is registered again by the runtime the connection
                        // runs on, so its readiness wakes that thread directly.
                        let stream = match stream.into_std() {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!(%peer, "cannot hand the connection over: {e}");
                                continue;
                            }
                        };
                        let serve = async move {
                            let served = match TcpStream::from_std(stream) {
                                Ok(stream) => serve_connection(stream, peer, shared, stop, &slot).await,
                                Err(e) => Err(e.into()),
                            };
                            if let Err(e) = served {
                                tracing::debug!(%peer, "connection ended: {e:#}");
                            }
                            drop(slot);
                        };
                        accepted_count += 1;
                        match self.runtimes.get(accepted_count % self.runtimes.len().max(1)) {
                            Some(rt) => tasks.spawn_on(serve, rt),
                            None => tasks.spawn(serve),
                        };
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

    /// Applies the lockout and the connection limits; `None` refuses (closes). When a limit
    /// is reached, the oldest connection that has not authenticated (from the same address
    /// for the per-address limit) is evicted to make room: idle or slow sockets can never
    /// keep a client out, and authenticated connections are never evicted.
    fn admit(&self, peer: SocketAddr) -> Option<Slot> {
        let ip = peer.ip();
        if self.shared.address_locked_out(ip) {
            tracing::warn!(%peer, "refused: too many failed logons from this address");
            return None;
        }
        let r = &self.shared.resolved;
        let mut reg = Shared::lock(&self.shared.conns);
        let here = reg.per_address.get(&ip).copied().unwrap_or(0);
        if here >= r.max_connections_per_address {
            let Some(victim) = reg.oldest_unauthenticated(Some(ip)) else {
                tracing::warn!(%peer, here, "refused: per-address connection limit reached");
                return None;
            };
            evict(&mut reg, victim, peer);
        }
        if reg.conns.len() >= r.max_connections {
            let Some(victim) = reg.oldest_unauthenticated(None) else {
                tracing::warn!(%peer, total = reg.conns.len(), "refused: connection limit reached");
                return None;
            };
            evict(&mut reg, victim, peer);
        }
        let id = reg.next_id;
        reg.next_id += 1;
        let evict = Arc::new(Notify::new());
        reg.conns.insert(
            id,
            ConnEntry {
                ip,
                authenticated: false,
                evict: evict.clone(),
            },
        );
        *reg.per_address.entry(ip).or_insert(0) += 1;
        Some(Slot {
            shared: self.shared.clone(),
            id,
            evict,
        })
    }
}

/// Frees `victim`'s slot now and tells its task to close.
fn evict(reg: &mut Registry, victim: u64, for_peer: SocketAddr) {
    if let Some(e) = reg.remove(victim) {
        tracing::info!(%for_peer, evicted = %e.ip, "connection limit: evicting an unauthenticated connection");
        // notify_one keeps a permit, so a task not waiting right now still sees it.
        e.evict.notify_one();
    }
}

/// Writes every message the state machine has queued, one frame each; returns how many.
async fn send_all(
    conn: &mut ServerConnection,
    stream: &mut TcpStream,
    write: std::time::Duration,
) -> Result<usize> {
    let mut sent = 0;
    while let Some(msg) = conn.poll_transmit() {
        sent += 1;
        // A compound of large READs can answer more than one frame may carry: that
        // ends the connection (an error, not a panic in this task).
        let prefix = frame_header(msg.len())?;
        // One vectored write: the response (up to MaxReadSize) is not copied again.
        // A client that stops reading gets `write` to drain it, then is dropped.
        let mut frame = Buf::chain(&prefix[..], &msg[..]);
        tokio::time::timeout(write, stream.write_all_buf(&mut frame))
            .await
            .map_err(|_| anyhow::anyhow!("write timed out: the client stopped reading"))??;
    }
    Ok(sent)
}

/// Why the read side of a connection stopped.
enum ReadEnd {
    /// Another connection's change or unlock concerns this one.
    Wake,
    /// A frame (or more) arrived in the buffer.
    Data,
    /// A share request finished on the blocking pool.
    Done(std::result::Result<(u64, ShareOutcome), tokio::task::JoinError>),
    /// The peer closed, a deadline passed, the server is stopping or the slot was evicted.
    Close(&'static str),
}

/// The WRITEs to one file: the one running, and those queued behind it in arrival order.
struct WriteLane {
    running: u64,
    waiting: VecDeque<ShareRequest>,
}

/// Runs a share request on the blocking pool.
fn spawn(running: &mut JoinSet<(u64, ShareOutcome)>, req: ShareRequest) {
    let ShareRequest { id, op } = req;
    running.spawn_blocking(move || (id, op.run()));
}

/// One connection's driver state: the socket, the share requests running on tokio's
/// blocking pool, and what the audit and the lockout need.
struct Driver<'a> {
    conn: ServerConnection,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &'a Shared,
    slot: &'a Slot,
    write: Duration,
    /// File-system work in flight: several lone READs/WRITEs may run at once (the state
    /// machine bounds how many, and charges their responses to the memory budget).
    running: JoinSet<(u64, ShareOutcome)>,
    /// WRITEs to one file run one after another (`ShareOp::writes_to`), by file.
    write_lanes: HashMap<HandleKey, WriteLane>,
    authenticated: bool,
    rejections: RejectionAudit,
}

impl Driver<'_> {
    /// Starts every share request the state machine handed out, each on the blocking pool
    /// (a large READ or WRITE never blocks a runtime worker thread).
    fn spawn_share_requests(&mut self) -> bool {
        let mut any = false;
        while let Some(req) = self.conn.poll_share_request() {
            any = true;
            if let Some(file) = req.op.writes_to() {
                match self.write_lanes.entry(file) {
                    Entry::Occupied(mut lane) => {
                        lane.get_mut().waiting.push_back(req);
                        continue;
                    }
                    Entry::Vacant(lane) => {
                        lane.insert(WriteLane {
                            running: req.id,
                            waiting: VecDeque::new(),
                        });
                    }
                }
            }
            spawn(&mut self.running, req);
        }
        any
    }

    /// Share request `id` finished: the next WRITE to the same file, if any, starts.
    fn share_request_done(&mut self, id: u64) {
        let Some((&file, lane)) = self.write_lanes.iter_mut().find(|(_, l)| l.running == id) else {
            return;
        };
        match lane.waiting.pop_front() {
            Some(next) => {
                lane.running = next.id;
                spawn(&mut self.running, next);
            }
            None => {
                self.write_lanes.remove(&file);
            }
        }
    }

    /// After input, a share result or a wakeup: starts new share requests, audits events,
    /// writes every queued response, and repeats while that lets queued requests start.
    /// `false` when the connection is to close.
    async fn pump(&mut self) -> Result<bool> {
        loop {
            let spawned = self.spawn_share_requests();
            // Audit first, so a record is on disk before the peer sees the answer.
            let mut close = false;
            let mut withhold = false;
            while let Some(ev) = self.conn.poll_event() {
                if self.rejections.admit(&ev) {
                    self.shared.audit.record(&ev, Some(self.peer));
                }
                match &ev {
                    ServerEvent::Disconnect { .. } => close = true,
                    ServerEvent::LogonFailed { user, .. }
                        if self.shared.logon_failed(self.peer.ip(), user) =>
                    {
                        tracing::warn!(peer = %self.peer, user, "too many failed logons: closing and locking out");
                        close = true;
                    }
                    ServerEvent::SessionEstablished { user, .. } => {
                        if self.shared.user_locked_out(self.peer.ip(), user) {
                            // The right password during a lockout is not let in (and the
                            // answer is never sent, so it does not tell the guess was good).
                            tracing::warn!(peer = %self.peer, user, "logon during a lockout: closing");
                            withhold = true;
                        } else if !self.authenticated {
                            self.authenticated = true;
                            self.shared.mark_authenticated(self.slot.id);
                        }
                    }
                    _ => {}
                }
            }
            if withhold {
                let _ = tokio::time::timeout(self.write, self.stream.shutdown()).await;
                return Ok(false);
            }
            let sent = send_all(&mut self.conn, &mut self.stream, self.write).await?;
            if close || self.conn.is_failed() {
                let _ = tokio::time::timeout(self.write, self.stream.shutdown()).await;
                return Ok(false);
            }
            if !spawned && sent == 0 {
                return Ok(true);
            }
            // The answers just written gave their memory back: queued READs/WRITEs may
            // start now.
            self.conn.handle_sent();
        }
    }
}

/// One connection: read frames, feed the state machine, run its share requests (several
/// at once), write what it says, audit events.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    slot: &Slot,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let config = shared.resolved.config.clone();
    let t = shared.resolved.timeouts;
    let mut conn = ServerConnection::new(config, Some(peer.to_string()));
    // Another connection changed a share this one watches (CHANGE_NOTIFY) or released a
    // range it waits for (LOCK): wake this task.
    let wake = Arc::new(tokio::sync::Notify::new());
    let waker = wake.clone();
    conn.set_waker(Arc::new(move || waker.notify_one()));
    let mut d = Driver {
        conn,
        stream,
        peer,
        shared: &shared,
        slot,
        write: t.write,
        running: JoinSet::new(),
        write_lanes: HashMap::new(),
        authenticated: false,
        rejections: RejectionAudit::default(),
    };
    // Nothing is buffered for an idle connection; see `read_more`. Frames are cut out of
    // this buffer without a copy (`split_to`), and WRITE data goes to the share as a slice
    // of its frame.
    let mut buf = BytesMut::new();
    let auth_deadline = Instant::now() + t.auth;
    let mut frame_start: Option<Instant> = None;
    let mut frame_permit: Option<OwnedSemaphorePermit> = None;
    loop {
        // Hand over every complete frame buffered, as long as the state machine can start
        // it; otherwise it stays here (and nothing more is read) until a share result
        // comes back, so what a connection buffers stays bounded.
        while d.conn.accepts_input() || d.running.is_empty() {
            let len = match frame_len(&buf, d.conn.max_message_size()) {
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
            let mut frame = buf.split_to(PREFIX_LEN + len);
            frame.advance(PREFIX_LEN);
            d.conn.handle_frame(frame.freeze());
            frame_permit = None;
            frame_start = (!buf.is_empty()).then(Instant::now);
            if !d.pump().await? {
                return Ok(());
            }
        }
        if buf.is_empty() && buf.capacity() > RETAINED_BUFFER {
            // Give a large frame's memory back once it is handled.
            buf = BytesMut::new();
        }
        let max = d.conn.max_message_size();
        // A whole frame waits for the state machine: read no further for now.
        let frame_waiting = matches!(frame_len(&buf, max), Ok(Some(_)));
        // Deadlines: a frame once started must be complete within `frame` (whole frame,
        // not per byte); a connection must authenticate within `auth`; an authenticated
        // one may then idle for `idle`.
        let mut deadline = if d.authenticated {
            Instant::now() + t.idle
        } else {
            auth_deadline
        };
        if let Some(start) = frame_start {
            deadline = deadline.min(start + t.frame);
        }
        // A frame larger than the read-ahead is paid for from the server-wide budget before
        // its bytes are buffered.
        let need_kib = match declared_len(&buf) {
            Some(len) if len <= max && PREFIX_LEN + len > READ_AHEAD && frame_permit.is_none() => {
                Some(u32::try_from((PREFIX_LEN + len).div_ceil(1024)).unwrap_or(u32::MAX))
            }
            _ => None,
        };
        let budget = shared.input_budget.clone();
        let permit_slot = &mut frame_permit;
        let stream = &d.stream;
        let buf_ref = &mut buf;
        let read = async {
            if let Some(kib) = need_kib {
                let p = budget
                    .acquire_many_owned(kib)
                    .await
                    .map_err(|_| anyhow::anyhow!("input budget closed"))?;
                *permit_slot = Some(p);
            }
            read_more(stream, buf_ref, max).await
        };
        // A CREATE waiting for an oplock or lease break completes when the break times out.
        let break_timeout = d.conn.next_timeout();
        let authenticated = d.authenticated;
        let end = tokio::select! {
            _ = stop.changed() => ReadEnd::Close("server stopping"),
            _ = sleep_or_never(break_timeout) => ReadEnd::Wake,
            _ = slot.evict.notified() => ReadEnd::Close("evicted to make room"),
            _ = wake.notified() => ReadEnd::Wake,
            Some(done) = d.running.join_next(), if !d.running.is_empty() => ReadEnd::Done(done),
            r = tokio::time::timeout_at(deadline.into(), read), if !frame_waiting => match r {
                Err(_) => ReadEnd::Close(if frame_start.is_some() {
                    "frame deadline passed"
                } else if authenticated {
                    "idle"
                } else {
                    "authentication deadline passed"
                }),
                Ok(r) => r?,
            },
        };
        match end {
            ReadEnd::Wake => {
                d.conn.handle_wakeup();
                if !d.pump().await? {
                    return Ok(());
                }
            }
            ReadEnd::Done(done) => {
                let (id, outcome) = done.context("share request panicked")?;
                d.share_request_done(id);
                d.conn.handle_share_result(id, outcome);
                if !d.pump().await? {
                    return Ok(());
                }
            }
            ReadEnd::Data => {
                if frame_start.is_none() && !buf.is_empty() {
                    frame_start = Some(Instant::now());
                }
            }
            ReadEnd::Close(why) => {
                tracing::debug!(%peer, "closing: {why}");
                return Ok(());
            }
        }
    }
}

/// Sleeps `d`, or forever when there is nothing to wait for.
async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Rate limit for the audit records of refused requests (unsigned or wrongly signed on a
/// signing session, replays): each costs the peer a few dozen bytes and the server a line
/// on disk. The first `BURST` of a connection are all written, then at most one per
/// `INTERVAL`; the number left out is logged with the next one written.
#[derive(Debug, Default)]
struct RejectionAudit {
    written: u32,
    last: Option<Instant>,
    suppressed: u64,
}

impl RejectionAudit {
    const BURST: u32 = 32;
    const INTERVAL: Duration = Duration::from_secs(1);

    fn admit(&mut self, ev: &ServerEvent) -> bool {
        if !matches!(ev, ServerEvent::RequestRejected { .. }) {
            return true;
        }
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t) >= Self::INTERVAL);
        if self.written < Self::BURST || due {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "audit records of refused requests left out (rate limit)"
                );
                self.suppressed = 0;
            }
            self.written = self.written.saturating_add(1);
            self.last = Some(now);
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// Buffer kept between frames; a larger one (left by a large frame) is released.
const RETAINED_BUFFER: usize = 64 * 1024;
/// Read size while the frame length is unknown.
const READ_AHEAD: usize = 4096;

/// Waits until the socket is readable, and only then reserves room and reads, so an idle
/// connection holds no buffer. The buffer never exceeds the current frame (its length is
/// checked against `max` by `frame_len` as soon as the prefix is in) plus `READ_AHEAD`.
async fn read_more(stream: &TcpStream, buf: &mut BytesMut, max: usize) -> Result<ReadEnd> {
    loop {
        stream.readable().await?;
        let want = match declared_len(buf) {
            Some(len) if len <= max => (PREFIX_LEN + len).saturating_sub(buf.len()),
            _ => READ_AHEAD,
        };
        let room = want.max(READ_AHEAD);
        buf.reserve(room);
        // `reserve` may leave more room than asked (it doubles a buffer it can keep):
        // reading into all of it would pull in most of the next frame, beyond this frame's
        // budget, and the next `reserve` would then move those bytes.
        match stream.try_read_buf(&mut (&mut *buf).limit(room)) {
            Ok(0) => return Ok(ReadEnd::Close("peer closed")),
            Ok(_) => return Ok(ReadEnd::Data),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The length a buffered transport prefix announces (`None` before 4 bytes are in).
fn declared_len(buf: &[u8]) -> Option<usize> {
    let p = buf.get(..PREFIX_LEN)?;
    Some(usize::from(p[1]) << 16 | usize::from(p[2]) << 8 | usize::from(p[3]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::conn::server::RejectReason;
    use smb_core::header::Command;

    /// Frames sent back to back, a large one first: each read stops at the current frame
    /// plus `READ_AHEAD`, even in the room the large frame's buffer left.
    #[tokio::test]
    async fn reads_stop_near_the_end_of_the_current_frame() {
        const LENS: [usize; 6] = [600_000, 100_000, 100_000, 100_000, 100_000, 100_000];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut all = Vec::new();
            for (i, len) in LENS.into_iter().enumerate() {
                all.extend_from_slice(&(len as u32).to_be_bytes());
                all.resize(all.len() + len, i as u8);
            }
            s.write_all(&all).await.unwrap();
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let mut frames = 0;
        while frames < LENS.len() {
            assert!(matches!(
                read_more(&stream, &mut buf, 1 << 20).await.unwrap(),
                ReadEnd::Data
            ));
            let len = declared_len(&buf).unwrap_or(0);
            assert!(
                buf.len() <= PREFIX_LEN + len + READ_AHEAD,
                "{} bytes buffered for a frame of {len}",
                buf.len()
            );
            while let Some(len) = declared_len(&buf).filter(|&n| buf.len() >= PREFIX_LEN + n) {
                let frame = buf.split_to(PREFIX_LEN + len);
                assert!(frame[PREFIX_LEN..].iter().all(|&b| b == frames as u8));
                frames += 1;
            }
        }
        assert!(buf.is_empty());
        sender.await.unwrap();
    }

    #[test]
    fn refused_request_records_are_rate_limited() {
        let ev = ServerEvent::RequestRejected {
            command: Command::ECHO,
            message_id: 1,
            session_id: 1,
            reason: RejectReason::Unsigned,
        };
        let mut r = RejectionAudit::default();
        let written = (0..10_000).filter(|_| r.admit(&ev)).count();
        assert_eq!(
            written,
            RejectionAudit::BURST as usize,
            "a burst, then one per second"
        );
        assert_eq!(r.suppressed, 10_000 - u64::from(RejectionAudit::BURST));
        // Other events are never held back.
        let other = ServerEvent::LoggedOff {
            session_id: 1,
            user: "a".into(),
        };
        assert!(r.admit(&other));
    }
}
