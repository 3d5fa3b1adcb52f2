//! Sans-IO SMB2/3 server connection: one TCP connection's state machine.
//!
//! # Call order (for a driver)
//! 1. [`ServerConnection::new`] when a transport connection is accepted.
//! 2. For each complete message (or compound chain) with the 4-byte transport prefix
//!    stripped: [`ServerConnection::handle_frame`] (the frame is kept, not copied: WRITE data goes to
//!    the share as a slice of it) or [`ServerConnection::handle_input`] (copies).
//! 3. Drain [`ServerConnection::poll_share_request`]: run each request's
//!    [`ShareOp::run`] where blocking is harmless (a thread pool, `spawn_blocking`), then
//!    give the outcome back with [`ServerConnection::handle_share_result`], in any order.
//!    A chain is suspended until its request's result arrives (later requests of a
//!    compound may use the FileId an earlier CREATE produced, MS-SMB2 3.3.5.2.7). Lone
//!    READ and WRITE requests (not in a compound) run beside each other: up to
//!    [`MAX_IN_FLIGHT`] of them are outstanding at once, as far as the memory budget has
//!    room for their responses, and each is answered when its result arrives (MS-SMB2
//!    lets responses complete in any order). Every other frame waits until nothing is
//!    outstanding, and input that cannot start yet is queued (see
//!    [`ServerConnection::accepts_input`] for back-pressure).
//!    [`ServerConnection::run_share_requests_inline`] does this loop on the calling thread
//!    (tests, embedders without a runtime).
//! 4. Drain [`ServerConnection::poll_event`] (audit records) and then
//!    [`ServerConnection::poll_transmit`] (send each buffer as one framed message, in
//!    order; drop the [`Transmit`] once written: it holds its share of the memory budget),
//!    then call [`ServerConnection::handle_sent`]: a READ or WRITE that waits for the
//!    memory those answers held starts then.
//!    On [`ServerEvent::Disconnect`], send what was already polled and close the transport.
//!
//! No sockets, threads, files or clocks live here: time and randomness come from
//! [`ServerConfig::clock`] and [`ServerConfig::random`], file-system work goes to the driver.
//! A connection that saw a protocol violation, a bad signature or a replayed MessageId is
//! failed for good: later input is ignored.
//!
//! # Request pipeline (MS-SMB2 3.3.5.2)
//! For each message of a chain: header checks, MessageId window (3.3.5.2.3), signature
//! (3.3.5.2.4), session and tree lookup (3.3.5.2.9, 3.3.5.2.11), the memory budget (see
//! [`MemoryBudget`]), then the command. A request rejected at any step is never executed.
//! Responses are chained, padded, then signed one by one (each signature covers its
//! padding).

mod auth_glue;
mod breaks;
mod budget;
mod chain;
mod config;
mod create;
mod events;
mod files;
mod io;
mod locks;
mod notify;
mod oplocks;
mod query;
mod rpc;
mod session;
mod sharing;
mod window;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

pub use budget::{MemoryBudget, Transmit};
pub use config::{Limits, ServerConfig, ShareConfig};
pub use events::{LogonRefusal, RejectReason, ServerEvent};
pub use io::{HandleKey, ShareOp, ShareOutcome, ShareRequest};
pub use locks::LockTable;
pub use notify::{ChangeHub, Waker};
pub use oplocks::OplockTable;
pub use sharing::FileTable;

use crate::header::{Dialect, Header, NtStatus};
use crate::messages::negotiate::Guid;
use crate::messages::{build, EncodeBody, FileId};
use crate::signing::{Algorithm, PreauthHash, SigningKey, TailDigest};

use auth_glue::AuthState;
use budget::Charge;
use window::MessageWindow;

/// STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP (MS-SMB2 3.3.5.4).
const NO_PREAUTH_OVERLAP: NtStatus = NtStatus(0xC05D_0000);
/// Full access, for MaximalAccess in TREE_CONNECT and CREATE responses.
const FULL_ACCESS: u32 = 0x001F_01FF;
/// Largest message before any session is authenticated: room for a large SPNEGO token
/// (a Kerberos ticket offered optimistically is up to 48000 bytes on Windows), far below
/// what an unauthenticated peer could otherwise make every connection buffer.
pub const UNAUTHENTICATED_MAX_MESSAGE: usize = 128 * 1024;
/// MaxRead/Write/TransactSize for 2.0.2, which has no multi-credit requests.
const SMB202_MAX_IO: u32 = 65_536;
/// Most lone READ/WRITE requests of one connection whose share work runs at once (each
/// also needs room in the memory budget for its response).
pub const MAX_IN_FLIGHT: usize = 8;

/// One server-side connection. See the module documentation for the call order.
#[derive(Debug)]
pub struct ServerConnection {
    config: Arc<ServerConfig>,
    /// This connection's share of memory (responses and queued input), see [`MemoryBudget`].
    budget: Arc<MemoryBudget>,
    /// The compound chain being processed (suspended while a share request runs).
    chain: Option<Box<chain::Chain>>,
    /// Frames that arrived while a chain was suspended, with their budget charge.
    queued: VecDeque<(Bytes, Charge)>,
    /// Share requests the driver has not polled yet.
    share_requests: VecDeque<ShareRequest>,
    /// Lone READ/WRITE requests running beside each other, by share request id.
    in_flight: HashMap<u64, Box<chain::Chain>>,
    next_request: u64,
    client_addr: Option<String>,
    state: State,
    window: MessageWindow,
    sessions: HashMap<u64, Session>,
    opens: files::OpenTable,
    /// CHANGE_NOTIFY watches and pending requests (asynchronous operations).
    notifier: notify::Notifier,
    /// This connection's byte-range locks and waiting LOCK requests.
    locks: locks::Locks,
    /// CREATEs waiting for oplock or lease breaks to end.
    pending: breaks::PendingCreates,
    transmit: VecDeque<Transmit>,
    events: VecDeque<ServerEvent>,
    next_session: u64,
    next_tree: u32,
}

#[derive(Debug)]
enum State {
    /// Nothing negotiated yet.
    Initial,
    /// An SMB1 NEGOTIATE was answered with 0x02FF: an SMB2 NEGOTIATE must follow.
    Wildcard,
    Negotiated(Box<Negotiated>),
    /// A protocol violation, bad signature or replay: nothing more is processed.
    Failed,
}

/// What NEGOTIATE settled (Connection.* in MS-SMB2 3.3.1.7).
#[derive(Debug)]
struct Negotiated {
    dialect: Dialect,
    client_guid: Guid,
    client_security_mode: u16,
    client_capabilities: u32,
    client_dialects: Vec<Dialect>,
    server_capabilities: u32,
    server_security_mode: u16,
    /// 3.1.1: the algorithm from SIGNING_CAPABILITIES.
    signing_algorithm: Option<Algorithm>,
    /// 3.1.1: Connection.PreauthIntegrityHashValue (NEGOTIATE request and response).
    preauth: Option<PreauthHash>,
}

#[derive(Debug)]
struct Session {
    state: SessionState,
    trees: HashMap<u32, Tree>,
}

#[derive(Debug)]
enum SessionState {
    InProgress {
        auth: Box<AuthState>,
        preauth: Option<PreauthHash>,
    },
    Valid(Box<ValidSession>),
}

#[derive(Debug)]
struct ValidSession {
    user: String,
    /// `None` for guest and anonymous sessions: they cannot sign.
    key: Option<SigningKey>,
    /// Session.SigningRequired (MS-SMB2 3.3.5.5.3).
    signing_required: bool,
}

#[derive(Debug, Clone)]
struct Tree {
    /// `None` for IPC$.
    share: Option<ShareConfig>,
}

/// Where a response's bytes go after it is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashInto {
    Connection,
    Session(u64),
}

/// A response before chaining and signing.
#[derive(Debug)]
struct Outgoing {
    msg: Vec<u8>,
    key: Option<SigningKey>,
    hash: Option<HashInto>,
    /// The MAC of the message's last bytes, taken ahead (READ data, see `Op::Read`).
    tail: Option<TailDigest>,
}

/// A handler's successful result: status (usually SUCCESS) and the message with a
/// placeholder header, plus header fields the handler decides.
#[derive(Debug)]
struct Reply {
    status: NtStatus,
    msg: Vec<u8>,
    session_id: Option<u64>,
    tree_id: Option<u32>,
    /// Overrides the signing decision (SESSION_SETUP's final response).
    key: Option<Option<SigningKey>>,
    hash: Option<HashInto>,
    /// The request went asynchronous: answer with an interim response (MS-SMB2 3.3.4.2).
    async_id: Option<u64>,
    /// The MAC of the message's last bytes, taken ahead (READ data, see `Op::Read`).
    tail: Option<TailDigest>,
}

impl Reply {
    fn new<B: EncodeBody>(req: &Header, body: &B) -> Reply {
        Reply::with_status(req, NtStatus::SUCCESS, body)
    }

    /// A SUCCESS reply around a message built in place (placeholder header first).
    fn from_msg(msg: Vec<u8>) -> Reply {
        Reply {
            status: NtStatus::SUCCESS,
            msg,
            session_id: None,
            tree_id: None,
            key: None,
            hash: None,
            async_id: None,
            tail: None,
        }
    }

    fn with_status<B: EncodeBody>(req: &Header, status: NtStatus, body: &B) -> Reply {
        Reply {
            status,
            msg: build(&req.response(status), body),
            session_id: None,
            tree_id: None,
            key: None,
            hash: None,
            async_id: None,
            tail: None,
        }
    }
}

/// The context a command handler runs in.
#[derive(Debug)]
struct Ctx<'a> {
    hdr: &'a Header,
    /// The request, a slice of the received frame.
    msg: &'a Bytes,
    session_id: u64,
    tree_id: u32,
    /// FileId of the preceding CREATE in a related chain.
    related_file: Option<FileId>,
}

/// A request refused before execution.
#[derive(Debug)]
struct Reject {
    status: NtStatus,
    reason: Option<RejectReason>,
    disconnect: bool,
}

impl Reject {
    fn status(status: NtStatus) -> Self {
        Reject {
            status,
            reason: None,
            disconnect: false,
        }
    }
}

type HandlerResult = Result<Reply, NtStatus>;

/// What a command handler produced: the reply, or share work to do first and what to do
/// with its outcome. (Short-lived: moved once per request, so the reply is not boxed.)
#[allow(clippy::large_enum_variant)]
enum Step {
    Reply(Reply),
    Io(io::Op, files::Then),
}

type StepResult = Result<Step, NtStatus>;

impl ServerConnection {
    /// A connection that has received nothing yet. `client_addr` only labels audit events.
    pub fn new(config: Arc<ServerConfig>, client_addr: Option<String>) -> Self {
        let window = MessageWindow::new(config.limits.max_credits);
        // Session ids need not be secret, but unpredictable ones make blind injection
        // harder; fall back to a fixed base if there is no randomness to give.
        let mut seed = [0u8; 8];
        let _ = config.random.fill(&mut seed);
        let base = (u64::from_le_bytes(seed) & 0x00FF_FFFF_0000_0000) | 0x0000_0001_0000_0000;
        let notifier = notify::Notifier::new(config.changes.clone());
        let locks = locks::Locks::new(config.locks.clone());
        let opens = files::OpenTable::new(config.files.clone(), config.oplocks.clone());
        ServerConnection {
            budget: MemoryBudget::new(config.limits.max_connection_buffer),
            chain: None,
            queued: VecDeque::new(),
            share_requests: VecDeque::new(),
            in_flight: HashMap::new(),
            next_request: 1,
            config,
            client_addr,
            state: State::Initial,
            window,
            sessions: HashMap::new(),
            opens,
            notifier,
            locks,
            pending: breaks::PendingCreates::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_session: base | 1,
            next_tree: 1,
        }
    }

    /// Sets the function called when another connection changed a share this connection
    /// watches (CHANGE_NOTIFY), released a lock a waiting LOCK wants, broke an oplock or
    /// lease this connection holds, or ended a break a pending CREATE waits for; the driver
    /// then calls
    /// [`ServerConnection::handle_wakeup`]. It may be called from any thread, and must not
    /// call into this connection itself.
    pub fn set_waker(&mut self, waker: Waker) {
        self.locks.set_waker(waker.clone());
        self.opens.oplocks.set_waker(self.opens.conn, waker.clone());
        self.notifier.set_waker(waker);
    }

    /// Sends the oplock and lease break notifications left for this connection, completes the
    /// CHANGE_NOTIFY requests that changes from other connections satisfy, the waiting LOCKs
    /// that can now be granted and the CREATEs whose breaks are over or timed out (call it
    /// again after [`ServerConnection::next_timeout`]); then drain
    /// [`ServerConnection::poll_transmit`] as after an input.
    pub fn handle_wakeup(&mut self) {
        if self.is_failed() {
            return;
        }
        self.complete_async();
    }

    /// Queues the completions of asynchronous requests that are now due.
    fn complete_async(&mut self) {
        // Break notifications first: a CREATE that waits may be answered after them.
        self.queue_notices();
        let done = self.notifier.dispatch();
        let granted = self.locks.retry();
        let created = self.complete_creates();
        self.queue_messages(done.into_iter().chain(granted).chain(created));
    }

    /// Queues complete messages (already signed) outside any chain.
    fn queue_messages(&mut self, msgs: impl IntoIterator<Item = Vec<u8>>) {
        for m in msgs {
            self.transmit.push_back(Transmit::new(m, None));
        }
    }

    /// The next message to send (one SMB2 message or chain, without the transport prefix).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    /// The next file-system request to run (several may be outstanding, see the module
    /// documentation).
    pub fn poll_share_request(&mut self) -> Option<ShareRequest> {
        self.share_requests.pop_front()
    }

    /// True while a request waits for the result of a share request (polled or not).
    pub fn is_waiting(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| c.is_suspended()) || !self.in_flight.is_empty()
    }

    /// Share requests whose results have not been handed back yet (polled or not).
    pub fn share_requests_outstanding(&self) -> usize {
        self.in_flight.len() + usize::from(self.chain.as_ref().is_some_and(|c| c.is_suspended()))
    }

    /// False while input would only be queued (a chain waits for the share, or frames are
    /// queued already, or [`MAX_IN_FLIGHT`] requests are outstanding): a driver then leaves
    /// further frames in the transport until a share result comes back, so what the
    /// connection buffers stays bounded. A frame handed over anyway is queued (and charged
    /// to the memory budget).
    pub fn accepts_input(&self) -> bool {
        self.chain.is_none() && self.queued.is_empty() && self.in_flight.len() < MAX_IN_FLIGHT
    }

    /// Runs every share request on the calling thread until nothing is left to do: the
    /// synchronous executor for tests and embedders that have no runtime.
    pub fn run_share_requests_inline(&mut self) {
        while let Some(req) = self.poll_share_request() {
            let outcome = req.op.run();
            self.handle_share_result(req.id, outcome);
        }
    }

    /// This connection's memory budget (bytes charged now, and the ceiling).
    pub fn memory_budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// The next event (audit record or disconnect order).
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The largest message or chain accepted now: [`UNAUTHENTICATED_MAX_MESSAGE`] until a
    /// session with a signing key is authenticated (NEGOTIATE and SESSION_SETUP are small), then the
    /// configured limit. A driver checks transport frames against it before buffering them.
    pub fn max_message_size(&self) -> usize {
        // Only a session with a key lifts the limit: a guest, anonymous or keyless
        // (relayed) session proves nothing about the peer, so it keeps the pre-auth one.
        let authenticated = self
            .sessions
            .values()
            .any(|s| matches!(&s.state, SessionState::Valid(v) if v.key.is_some()));
        if authenticated {
            self.config.limits.max_message_size
        } else {
            UNAUTHENTICATED_MAX_MESSAGE.min(self.config.limits.max_message_size)
        }
    }

    /// True once the connection has failed; the driver should close it.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// The negotiated dialect, once NEGOTIATE is done.
    pub fn dialect(&self) -> Option<Dialect> {
        match &self.state {
            State::Negotiated(n) => Some(n.dialect),
            _ => None,
        }
    }
}
