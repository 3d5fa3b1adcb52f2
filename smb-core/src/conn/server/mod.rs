//! Sans-IO SMB2/3 server connection: one TCP connection's state machine.
//!
//! # Call order (for a driver)
//! 1. [`ServerConnection::new`] when a transport connection is accepted.
//! 2. For each complete message (or compound chain) with the 4-byte transport prefix
//!    stripped: [`ServerConnection::handle_input`].
//! 3. After each input, drain [`ServerConnection::poll_transmit`] (send each buffer as one
//!    framed message, in order) and then [`ServerConnection::poll_event`] (audit records).
//!    On [`ServerEvent::Disconnect`], send what was already polled and close the transport.
//!
//! No sockets, threads or clocks live here: time and randomness come from
//! [`ServerConfig::clock`] and [`ServerConfig::random`]. A connection that saw a protocol violation, a
//! bad signature or a replayed MessageId is failed for good: later input is ignored.
//!
//! # Request pipeline (MS-SMB2 3.3.5.2)
//! For each message of a chain: header checks, MessageId window (3.3.5.2.3), signature
//! (3.3.5.2.4), session and tree lookup (3.3.5.2.9, 3.3.5.2.11), then the command. A request
//! rejected at any step is never executed. Responses are chained, padded, then signed one by
//! one (each signature covers its padding).

mod auth_glue;
mod config;
mod events;
mod files;
mod locks;
mod notify;
mod query;
mod rpc;
mod sharing;
mod window;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub use config::{Limits, ServerConfig, ShareConfig};
pub use events::{RejectReason, ServerEvent};
pub use locks::LockTable;
pub use notify::{ChangeHub, Waker};
pub use sharing::FileTable;

use crate::compound::{build_chain, split_chain};
use crate::header::{flags, Command, Dialect, Header, NtStatus, HEADER_LEN, TRANSFORM_PROTOCOL_ID};
use crate::messages::echo::EchoResponse;
use crate::messages::error::ErrorResponse;
use crate::messages::logoff::{LogoffRequest, LogoffResponse};
use crate::messages::negotiate::{
    capabilities, CipherId, Guid, HashAlgorithm, NegotiateContext, NegotiateContextType,
    NegotiateRequest, NegotiateResponse,
};
use crate::messages::session_setup::{
    request_flags, session_flags, SessionSetupRequest, SessionSetupResponse,
};
use crate::messages::smb1_negotiate::{is_smb1, Smb1Negotiate};
use crate::messages::tree_connect::{ShareType, TreeConnectRequest, TreeConnectResponse};
use crate::messages::tree_disconnect::{TreeDisconnectRequest, TreeDisconnectResponse};
use crate::messages::{build, EncodeBody, FileId};
use crate::policy::SIGNING_REQUIRED;
use crate::signing::{Algorithm, PreauthHash, SigningKey};

use auth_glue::{AuthState, AuthStep};
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

/// One server-side connection. See the module documentation for the call order.
#[derive(Debug)]
pub struct ServerConnection {
    config: Arc<ServerConfig>,
    client_addr: Option<String>,
    state: State,
    window: MessageWindow,
    sessions: HashMap<u64, Session>,
    opens: files::OpenTable,
    /// CHANGE_NOTIFY watches and pending requests (the only asynchronous operation).
    notifier: notify::Notifier,
    /// This connection's byte-range locks and waiting LOCK requests.
    locks: locks::Locks,
    transmit: VecDeque<Vec<u8>>,
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

/// Where a message sits in its compound chain.
#[derive(Debug, Clone, Copy)]
struct Place {
    first: bool,
    last: bool,
}

/// Per-chain state for related operations (MS-SMB2 3.3.5.2.7.2).
#[derive(Debug, Default)]
struct Related {
    session_id: u64,
    tree_id: u32,
    file_id: Option<FileId>,
    /// A failed CREATE fails the rest of the related chain with the same status.
    error: Option<NtStatus>,
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
}

impl Reply {
    fn new<B: EncodeBody>(req: &Header, body: &B) -> Reply {
        Reply::with_status(req, NtStatus::SUCCESS, body)
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
        }
    }
}

/// The context a command handler runs in.
#[derive(Debug)]
struct Ctx<'a> {
    hdr: &'a Header,
    msg: &'a [u8],
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
        let opens = files::OpenTable::new(config.files.clone());
        ServerConnection {
            config,
            client_addr,
            state: State::Initial,
            window,
            sessions: HashMap::new(),
            opens,
            notifier,
            locks,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            next_session: base | 1,
            next_tree: 1,
        }
    }

    /// Sets the function called when another connection changed a share this connection
    /// watches (CHANGE_NOTIFY); the driver then calls [`ServerConnection::handle_wakeup`].
    /// It may be called from any thread, and must not call into this connection itself.
    pub fn set_waker(&mut self, waker: Waker) {
        self.locks.set_waker(waker.clone());
        self.notifier.set_waker(waker);
    }

    /// Completes the CHANGE_NOTIFY requests that changes from other connections satisfy and
    /// the waiting LOCKs that can now be granted; then drain
    /// [`ServerConnection::poll_transmit`] as after an input.
    pub fn handle_wakeup(&mut self) {
        if self.is_failed() {
            return;
        }
        let done = self.notifier.dispatch();
        self.transmit.extend(done);
        let granted = self.locks.retry();
        self.transmit.extend(granted);
    }

    /// The next message to send (one SMB2 message or chain, without the transport prefix).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
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

    /// Handles one received message or compound chain (transport prefix stripped).
    pub fn handle_input(&mut self, input: &[u8]) {
        if self.is_failed() {
            return;
        }
        if input.len() > self.max_message_size() {
            return self.fail(format!(
                "message of {} bytes exceeds the limit",
                input.len()
            ));
        }
        if is_smb1(input) {
            return self.handle_smb1(input);
        }
        if input.starts_with(&TRANSFORM_PROTOCOL_ID) {
            // Encryption is never negotiated, so a TRANSFORM header is a violation.
            return self.fail("encrypted message, but encryption was not negotiated".into());
        }
        let ranges = match split_chain(input) {
            Ok(r) => r,
            Err(e) => return self.fail(format!("malformed message: {e}")),
        };
        let mut out = Vec::with_capacity(ranges.len());
        let mut related = Related::default();
        let count = ranges.len();
        for (i, range) in ranges.into_iter().enumerate() {
            let Some(msg) = input.get(range) else {
                return self.fail("chain range outside the input".into());
            };
            let place = Place {
                first: i == 0,
                last: i + 1 == count,
            };
            if let Some(o) = self.process(msg, place, &mut related) {
                out.push(o);
            }
            if self.is_failed() {
                // Send what was answered (e.g. the ACCESS_DENIED for a bad signature),
                // then the driver closes the connection.
                break;
            }
        }
        self.emit(out);
        // Completions caused by this input go after its own responses.
        if !self.is_failed() {
            let done = self.notifier.dispatch();
            self.transmit.extend(done);
            let granted = self.locks.retry();
            self.transmit.extend(granted);
        }
    }

    fn fail(&mut self, reason: String) {
        if !self.is_failed() {
            self.state = State::Failed;
            self.events.push_back(ServerEvent::Disconnect { reason });
        }
    }

    /// Chains the responses, signs each one, feeds preauth hashes, queues the result.
    fn emit(&mut self, out: Vec<Outgoing>) {
        if out.is_empty() {
            return;
        }
        let count = out.len();
        let (msgs, meta): (Vec<Vec<u8>>, Vec<_>) =
            out.into_iter().map(|o| (o.msg, (o.key, o.hash))).unzip();
        // A single response (the usual case) is sent as is, without a copy.
        let mut chain = if count == 1 {
            msgs.into_iter().next().unwrap_or_default()
        } else {
            build_chain(&msgs)
        };
        if chain.len() > crate::framing::MAX_STREAM_LEN {
            // MS-SMB2 2.1: a Direct-TCP frame carries at most 2^24 - 1 bytes. A compound
            // of large READs can ask for more than that; it cannot be answered at all.
            return self.fail(format!(
                "a compound answer of {} bytes does not fit one transport frame",
                chain.len()
            ));
        }
        let ranges = match split_chain(&chain) {
            Ok(r) if r.len() == count => r,
            _ => return self.fail("internal error: response chain".into()),
        };
        for ((key, hash), range) in meta.into_iter().zip(ranges) {
            let Some(part) = chain.get_mut(range) else {
                continue;
            };
            if let Some(key) = &key {
                if key.sign(part).is_err() {
                    return self.fail("internal error: signing failed".into());
                }
            }
            match hash {
                Some(HashInto::Connection) => {
                    if let State::Negotiated(n) = &mut self.state {
                        if let Some(h) = &mut n.preauth {
                            h.update(part);
                        }
                    }
                }
                Some(HashInto::Session(id)) => {
                    if let Some(Session {
                        state:
                            SessionState::InProgress {
                                preauth: Some(h), ..
                            },
                        ..
                    }) = self.sessions.get_mut(&id)
                    {
                        h.update(part);
                    }
                }
                None => {}
            }
        }
        self.transmit.push_back(chain);
    }

    // ---- SMB1 ----------------------------------------------------------------------

    /// MS-SMB2 3.3.5.3: an SMB1 multi-protocol NEGOTIATE is answered with an SMB2 NEGOTIATE
    /// response; SMB1 itself is never spoken.
    fn handle_smb1(&mut self, input: &[u8]) {
        if !matches!(self.state, State::Initial) {
            return self.fail("SMB1 message after negotiation".into());
        }
        let neg = match Smb1Negotiate::read(input) {
            Ok(n) => n,
            Err(e) => {
                self.events.push_back(ServerEvent::Smb1Attempt {
                    client_addr: self.client_addr.clone(),
                    dialects: Vec::new(),
                    answered: None,
                });
                return self.fail(format!("SMB1 message that is not a valid NEGOTIATE: {e}"));
            }
        };
        let supports_21 = self.config.dialects.iter().any(|d| *d >= Dialect::SMB21);
        let answered = neg
            .smb2_reply_dialect(supports_21)
            .filter(|d| *d == Dialect::WILDCARD || self.config.dialects.contains(d));
        self.events.push_back(ServerEvent::Smb1Attempt {
            client_addr: self.client_addr.clone(),
            dialects: neg.dialects.clone(),
            answered,
        });
        let Some(dialect) = answered else {
            return self.fail("client offered only SMB1, which is disabled".into());
        };
        // The SMB1 request counts as MessageId 0 (MS-SMB2 3.3.5.3.1).
        self.window.consume(0, 1);
        let credits = self.window.grant(1);
        let mut hdr = Header {
            command: Command::NEGOTIATE,
            ..Header::default()
        }
        .response(NtStatus::SUCCESS);
        hdr.credits = credits;
        let body = self.negotiate_response_body(dialect, Vec::new());
        self.transmit.push_back(build(&hdr, &body));
        self.state = if dialect == Dialect::WILDCARD {
            State::Wildcard
        } else {
            State::Negotiated(Box::new(Negotiated {
                dialect,
                client_guid: Guid::default(),
                client_security_mode: 0,
                client_capabilities: 0,
                client_dialects: vec![dialect],
                server_capabilities: 0,
                server_security_mode: self.config.signing.security_mode(),
                signing_algorithm: None,
                preauth: None,
            }))
        };
    }

    // ---- per-message pipeline ---------------------------------------------------------

    fn process(&mut self, msg: &[u8], place: Place, related: &mut Related) -> Option<Outgoing> {
        let first = place.first;
        let hdr = match Header::parse(msg) {
            Ok(h) => h,
            Err(e) => {
                self.fail(format!("bad SMB2 header: {e}"));
                return None;
            }
        };
        if hdr.is_response() || hdr.async_id.is_some() && hdr.command != Command::CANCEL {
            self.fail("response or async message sent to the server".into());
            return None;
        }
        let negotiated = matches!(self.state, State::Negotiated(_));
        if !negotiated && hdr.command != Command::NEGOTIATE
            || negotiated && hdr.command == Command::NEGOTIATE
        {
            // MS-SMB2 3.3.5.2: before NEGOTIATE only NEGOTIATE is valid, and 3.3.5.3.1 /
            // 3.3.5.4: a second NEGOTIATE on a negotiated connection ends it.
            self.fail(format!("{} in the wrong connection state", hdr.command));
            return None;
        }

        // Related operations take their ids from the previous one (MS-SMB2 3.3.5.2.7.2).
        let is_related = hdr.flags & flags::RELATED_OPERATIONS != 0 && !first;
        let (session_id, tree_id) = if is_related {
            (related.session_id, related.tree_id)
        } else {
            (hdr.session_id, hdr.tree_id)
        };

        if hdr.command == Command::CANCEL {
            // MS-SMB2 3.3.5.2.3: CANCEL consumes no MessageId, and has no response of its
            // own. It is verified like any request (3.3.5.2.4; its GMAC nonce carries the
            // CANCEL bit): an unsigned CANCEL on a signing-required session, or a badly
            // signed one, cancels nothing. 3.3.5.16: the request it names (by AsyncId, or by
            // MessageId when sync) completes with STATUS_CANCELLED, signed.
            match self.check_signature(&hdr, msg, session_id) {
                Ok(_) => {
                    let done = self.notifier.cancel(&hdr, session_id);
                    if let Some(done) = done.or_else(|| self.locks.cancel(&hdr, session_id)) {
                        self.transmit.push_back(done);
                    }
                }
                Err(r) if r.disconnect => self.fail("CANCEL with a bad signature".into()),
                Err(_) => {}
            }
            return None;
        }

        // MS-SMB2 3.3.5.2.3: "the server MUST verify that the MessageId ... is within the
        // CommandSequenceWindow"; a reused or ungranted id ends the connection.
        let charge = self.credit_charge(&hdr);
        if !self.window.consume(hdr.message_id, charge) {
            self.events.push_back(ServerEvent::RequestRejected {
                command: hdr.command,
                message_id: hdr.message_id,
                session_id,
                reason: RejectReason::Replay,
            });
            self.fail(format!(
                "MessageId {} replayed or outside the window",
                hdr.message_id
            ));
            return None;
        }
        let credits = self.window.grant(hdr.credits.max(1));

        let (result, key) = match self.check_signature(&hdr, msg, session_id) {
            Err(reject) => {
                if reject.disconnect {
                    self.fail(format!(
                        "{} request {} rejected: {}",
                        hdr.command,
                        hdr.message_id,
                        reject.reason.map_or("invalid", RejectReason::as_str)
                    ));
                }
                (Err(reject.status), None)
            }
            Ok(key) => {
                let result = match (is_related, related.error) {
                    (true, Some(status)) => Err(status),
                    _ if self.multi_credit() && charge < required_charge(&hdr, msg) => {
                        // MS-SMB2 3.3.5.2.5: "If CreditCharge is less than the calculated
                        // number of credits, the server MUST fail the request with the error
                        // code STATUS_INVALID_PARAMETER."
                        Err(NtStatus::INVALID_PARAMETER)
                    }
                    _ => {
                        let mut ctx = Ctx {
                            hdr: &hdr,
                            msg,
                            session_id,
                            tree_id,
                            related_file: if is_related { related.file_id } else { None },
                        };
                        self.dispatch(&mut ctx)
                    }
                };
                (result, key)
            }
        };

        let mut resp_hdr = hdr.response(NtStatus::SUCCESS);
        resp_hdr.credits = credits;
        resp_hdr.session_id = session_id;
        resp_hdr.tree_id = tree_id;
        // Opens closed by this request (CLOSE, TREE_DISCONNECT, LOGOFF) end their pending
        // CHANGE_NOTIFY requests first: STATUS_NOTIFY_CLEANUP goes before the response.
        for id in self.opens.take_closed() {
            let done = self.notifier.closed(id);
            self.transmit.extend(done);
            let done = self.locks.closed(id);
            self.transmit.extend(done);
        }
        for change in self.opens.take_removed() {
            self.notifier.changed(change);
        }
        let (mut msg_out, key, hash) = match result {
            Ok(reply) if reply.async_id.is_some() && !place.last => {
                // Going asynchronous is for the last request of a chain (MS-SMB2 3.3.4.2,
                // note on 3.3.5.2.7; Samba's smbd_smb2_request_pending_queue): a CHANGE_NOTIFY
                // or waiting LOCK inside a chain is cancelled at once, as Samba does.
                let async_id = reply.async_id.unwrap_or_default();
                self.notifier.forget(async_id);
                self.locks.forget(async_id);
                resp_hdr.status = NtStatus::CANCELLED;
                (build(&resp_hdr, &ErrorResponse::default()), key, None)
            }
            Ok(reply) if reply.async_id.is_some() => {
                // MS-SMB2 3.3.4.2: the interim response, async form, STATUS_PENDING, an
                // ERROR body, never signed (3.3.4.1.1); it grants the credits. The final
                // response is signed with the key this request was verified with.
                let async_id = reply.async_id.unwrap_or_default();
                self.locks.set_key(async_id, key.clone());
                self.notifier.set_key(async_id, key);
                resp_hdr.status = NtStatus::PENDING;
                resp_hdr.async_id = Some(async_id);
                (build(&resp_hdr, &ErrorResponse::default()), None, None)
            }
            Ok(reply) => {
                resp_hdr.status = reply.status;
                if let Some(s) = reply.session_id {
                    resp_hdr.session_id = s;
                }
                if let Some(t) = reply.tree_id {
                    resp_hdr.tree_id = t;
                }
                if hdr.command == Command::CREATE && reply.status.is_success() {
                    related.file_id = files::created_file_id(&reply.msg);
                }
                (reply.msg, reply.key.unwrap_or(key), reply.hash)
            }
            Err(status) => {
                resp_hdr.status = status;
                if hdr.command == Command::CREATE {
                    related.error = Some(status);
                }
                (build(&resp_hdr, &ErrorResponse::default()), key, None)
            }
        };
        related.session_id = resp_hdr.session_id;
        related.tree_id = resp_hdr.tree_id;
        // Write the final header over the handler's placeholder.
        let mut h = Vec::with_capacity(HEADER_LEN);
        resp_hdr.encode(&mut h);
        if let Some(slot) = msg_out.get_mut(..HEADER_LEN) {
            slot.copy_from_slice(&h);
        }
        Some(Outgoing {
            msg: msg_out,
            key,
            hash,
        })
    }

    /// CreditCharge as MS-SMB2 3.3.5.2.5 counts it: at least 1; 2.0.2 has no charge field.
    fn credit_charge(&self, hdr: &Header) -> u16 {
        if self.multi_credit() {
            hdr.credit_charge.max(1)
        } else {
            1
        }
    }

    /// Connection.SupportsMultiCredit: 2.1 and later (LARGE_MTU is always offered there).
    /// 2.0.2 payloads are at most 64 KiB, which one credit always covers.
    fn multi_credit(&self) -> bool {
        matches!(&self.state, State::Negotiated(n) if n.dialect != Dialect::SMB202)
    }

    /// MS-SMB2 3.3.5.2.4, Verifying the Signature. Returns the key to sign the response
    /// with (the request was signed and verified), or why the request is refused.
    fn check_signature(
        &mut self,
        hdr: &Header,
        msg: &[u8],
        session_id: u64,
    ) -> Result<Option<SigningKey>, Reject> {
        let signed = hdr.is_signed();
        if hdr.command == Command::NEGOTIATE {
            // "If the SMB2 header of the SMB2 NEGOTIATE request has the SMB2_FLAGS_SIGNED bit
            // set in the Flags field, the server MUST fail the request with
            // STATUS_INVALID_PARAMETER."
            return if signed {
                Err(Reject::status(NtStatus::INVALID_PARAMETER))
            } else {
                Ok(None)
            };
        }
        let session = match self.sessions.get(&session_id) {
            Some(s) => s,
            // "If the session is not found, the request MUST be failed ... with the error code
            // STATUS_USER_SESSION_DELETED." (Unsigned requests fail the same way at the
            // session lookup, unless they need no session, like ECHO.)
            None if signed => return Err(Reject::status(NtStatus::USER_SESSION_DELETED)),
            None => return Ok(None),
        };
        let valid = match &session.state {
            // No key exists before authentication completes; session binding (the only
            // signed SESSION_SETUP on an unauthenticated session) is not supported.
            SessionState::InProgress { .. } => return Ok(None),
            SessionState::Valid(v) => v,
        };
        let Some(key) = &valid.key else {
            // "If Session.SigningKey ... is NULL, the server MUST fail the request with
            // STATUS_NOT_SUPPORTED": guest and anonymous sessions cannot sign.
            return if signed {
                Err(Reject::status(NtStatus::NOT_SUPPORTED))
            } else {
                Ok(None)
            };
        };
        let rejected = |reason: RejectReason, disconnect: bool| Reject {
            status: NtStatus::ACCESS_DENIED,
            reason: Some(reason),
            disconnect,
        };
        if signed {
            // "If the signature verification fails, the server MUST fail the request with the
            // error code STATUS_ACCESS_DENIED. The server MAY also disconnect the
            // connection": we do, since only a tampering peer produces a bad signature.
            if key.verify(msg).is_err() {
                self.audit_reject(hdr, session_id, RejectReason::BadSignature);
                return Err(rejected(RejectReason::BadSignature, true));
            }
            return Ok(Some(key.clone()));
        }
        if valid.signing_required {
            // A request without SMB2_FLAGS_SIGNED on a session with Session.SigningRequired
            // is "a packet that required signing" that the client failed to sign: it is
            // failed with STATUS_ACCESS_DENIED and never executed. The SIGNED flag is the
            // attacker's to clear, so its absence is no excuse.
            self.audit_reject(hdr, session_id, RejectReason::Unsigned);
            return Err(rejected(RejectReason::Unsigned, false));
        }
        if hdr.command == Command::TREE_CONNECT && self.dialect() == Some(Dialect::SMB311) {
            // MS-SMB2 3.3.5.7: "If Connection.Dialect is "3.1.1" and Session.IsAnonymous and
            // Session.IsGuest are set to FALSE and the request is not signed or not
            // encrypted, then the server MUST disconnect the connection." (A session with a
            // key is neither guest nor anonymous.) This is what stops a 3.1.1 relay even
            // when the server does not require signing.
            self.audit_reject(hdr, session_id, RejectReason::Unsigned);
            return Err(rejected(RejectReason::Unsigned, true));
        }
        Ok(None)
    }

    fn audit_reject(&mut self, hdr: &Header, session_id: u64, reason: RejectReason) {
        self.events.push_back(ServerEvent::RequestRejected {
            command: hdr.command,
            message_id: hdr.message_id,
            session_id,
            reason,
        });
    }

    fn dispatch(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let cmd = ctx.hdr.command;
        match cmd {
            Command::NEGOTIATE => return self.negotiate(ctx),
            Command::SESSION_SETUP => return self.session_setup(ctx),
            Command::ECHO => return Ok(Reply::new(ctx.hdr, &EchoResponse)),
            _ => {}
        }
        // MS-SMB2 3.3.5.2.9: every other command needs an authenticated session.
        match self.sessions.get(&ctx.session_id) {
            Some(Session {
                state: SessionState::Valid(_),
                ..
            }) => {}
            _ => return Err(NtStatus::USER_SESSION_DELETED),
        }
        match cmd {
            Command::LOGOFF => return self.logoff(ctx),
            Command::TREE_CONNECT => return self.tree_connect(ctx),
            _ => {}
        }
        // MS-SMB2 3.3.5.2.11: the rest need a tree connect.
        let tree = self
            .sessions
            .get(&ctx.session_id)
            .and_then(|s| s.trees.get(&ctx.tree_id))
            .cloned()
            .ok_or(NtStatus::NETWORK_NAME_DELETED)?;
        match cmd {
            Command::TREE_DISCONNECT => self.tree_disconnect(ctx),
            _ => self.file_command(ctx, &tree),
        }
    }

    /// The signing key of a valid, keyed session.
    fn session_key(&self, session_id: u64) -> Option<SigningKey> {
        match self.sessions.get(&session_id) {
            Some(Session {
                state: SessionState::Valid(v),
                ..
            }) => v.key.clone(),
            _ => None,
        }
    }

    fn negotiated(&self) -> Result<&Negotiated, NtStatus> {
        match &self.state {
            State::Negotiated(n) => Ok(n),
            _ => Err(NtStatus::INVALID_PARAMETER),
        }
    }

    // ---- NEGOTIATE ---------------------------------------------------------------------

    fn negotiate_response_body(
        &self,
        dialect: Dialect,
        contexts: Vec<NegotiateContext>,
    ) -> NegotiateResponse {
        let max_io = if dialect == Dialect::SMB202 {
            SMB202_MAX_IO
        } else {
            self.config.limits.max_io_size
        };
        NegotiateResponse {
            security_mode: self.config.signing.security_mode(),
            dialect_revision: dialect,
            server_guid: Guid(self.config.server_guid),
            capabilities: server_capabilities(dialect),
            max_transact_size: max_io,
            max_read_size: max_io,
            max_write_size: max_io,
            system_time: self.config.clock.now(),
            server_start_time: 0,
            security_buffer: auth_glue::negotiate_token(),
            contexts,
        }
    }

    /// MS-SMB2 3.3.5.4: SMB2 NEGOTIATE. Unknown context types are ignored, contexts come in
    /// any order (2.2.3.1: "The server MUST support receiving negotiate contexts in any
    /// order"), and a context's DataLength may exceed its contents (as Windows and Samba do).
    fn negotiate(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let (mut req, list) = NegotiateRequest::read_without_contexts(ctx.msg)
            .map_err(|_| NtStatus::INVALID_PARAMETER)?;
        // MS-SMB2 3.3.5.4: "If the DialectCount of the SMB2 NEGOTIATE Request is 0, the
        // server MUST fail the request with STATUS_INVALID_PARAMETER."
        if req.dialects.is_empty() {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        // "If a common dialect is not found, the server MUST fail the request with
        // STATUS_NOT_SUPPORTED."
        let Some(dialect) = self.config.pick_dialect(&req.dialects) else {
            return Err(NtStatus::NOT_SUPPORTED);
        };
        let mut contexts = Vec::new();
        let mut signing_algorithm = None;
        let mut preauth = None;
        if dialect == Dialect::SMB311 {
            // The list is read only now: it is processed only when 3.1.1 is selected.
            // A list that runs outside the message does not conform (3.3.5.2.6).
            req.contexts = match list {
                Some(list) => list
                    .read(ctx.msg)
                    .map_err(|_| NtStatus::INVALID_PARAMETER)?,
                None => Vec::new(),
            };
            check_negotiate_contexts(&req.contexts)?;
            let mut salt = [0u8; 32];
            let _ = self.config.random.fill(&mut salt);
            for c in &req.contexts {
                match c {
                    NegotiateContext::PreauthIntegrity {
                        hash_algorithms, ..
                    } => {
                        if !hash_algorithms.contains(&HashAlgorithm::SHA512) {
                            return Err(NO_PREAUTH_OVERLAP);
                        }
                        contexts.insert(
                            0,
                            NegotiateContext::PreauthIntegrity {
                                hash_algorithms: vec![HashAlgorithm::SHA512],
                                salt: salt.to_vec(),
                            },
                        );
                    }
                    NegotiateContext::Encryption { .. } => {
                        // Encryption is parsed and declined: "no common cipher" is a single
                        // cipher id of 0 (MS-SMB2 3.3.5.4).
                        contexts.push(NegotiateContext::Encryption {
                            ciphers: vec![CipherId(0)],
                        });
                    }
                    NegotiateContext::Signing { algorithms } => {
                        let pick = self
                            .config
                            .signing_algorithms
                            .iter()
                            .copied()
                            .find(|a| algorithms.contains(&a.id()))
                            .unwrap_or(Algorithm::AesCmac);
                        signing_algorithm = Some(pick);
                        contexts.push(NegotiateContext::Signing {
                            algorithms: vec![pick.id()],
                        });
                    }
                    NegotiateContext::Other { .. } => {}
                }
            }
            let mut h = PreauthHash::new();
            h.update(ctx.msg);
            preauth = Some(h);
        }
        let body = self.negotiate_response_body(dialect, contexts);
        self.state = State::Negotiated(Box::new(Negotiated {
            dialect,
            client_guid: req.client_guid,
            client_security_mode: req.security_mode,
            client_capabilities: req.capabilities,
            client_dialects: req.dialects.clone(),
            server_capabilities: body.capabilities,
            server_security_mode: body.security_mode,
            signing_algorithm,
            preauth,
        }));
        let mut reply = Reply::new(ctx.hdr, &body);
        if dialect == Dialect::SMB311 {
            reply.hash = Some(HashInto::Connection);
        }
        Ok(reply)
    }

    // ---- SESSION_SETUP / LOGOFF --------------------------------------------------------

    /// MS-SMB2 3.3.5.5.
    fn session_setup(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let req = SessionSetupRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let (dialect, client_mode, conn_preauth, negotiated_alg) = {
            let n = self.negotiated()?;
            (
                n.dialect,
                n.client_security_mode,
                n.preauth.clone(),
                n.signing_algorithm,
            )
        };
        if req.flags & request_flags::BINDING != 0 {
            // Multichannel is not offered, so there is nothing to bind to.
            return Err(NtStatus::REQUEST_NOT_ACCEPTED);
        }
        let session_id = if ctx.hdr.session_id == 0 {
            if self.sessions.len() >= self.config.limits.max_sessions {
                return Err(NtStatus::INSUFFICIENT_RESOURCES);
            }
            let id = self.next_session;
            self.next_session = self.next_session.wrapping_add(1);
            let auth = Box::new(AuthState::new(&self.config));
            self.sessions.insert(
                id,
                Session {
                    state: SessionState::InProgress {
                        auth,
                        preauth: conn_preauth,
                    },
                    trees: HashMap::new(),
                },
            );
            id
        } else {
            match self.sessions.get(&ctx.hdr.session_id) {
                Some(Session {
                    state: SessionState::InProgress { .. },
                    ..
                }) => ctx.hdr.session_id,
                // Re-authentication of a valid session is not supported.
                Some(_) => return Err(NtStatus::REQUEST_NOT_ACCEPTED),
                None => return Err(NtStatus::USER_SESSION_DELETED),
            }
        };
        let Some(Session {
            state: SessionState::InProgress { auth, preauth },
            ..
        }) = self.sessions.get_mut(&session_id)
        else {
            return Err(NtStatus::USER_SESSION_DELETED);
        };
        // 3.1.1: Session.PreauthIntegrityHashValue covers every SESSION_SETUP request.
        if let Some(h) = preauth {
            h.update(ctx.msg);
        }
        let preauth_value = preauth.as_ref().map(PreauthHash::value);
        match auth.step(&req.security_buffer) {
            AuthStep::Continue(token) => {
                let body = SessionSetupResponse {
                    session_flags: 0,
                    security_buffer: token,
                };
                let mut reply =
                    Reply::with_status(ctx.hdr, NtStatus::MORE_PROCESSING_REQUIRED, &body);
                reply.session_id = Some(session_id);
                reply.hash = Some(HashInto::Session(session_id));
                Ok(reply)
            }
            AuthStep::Failed { user, reason } => {
                self.sessions.remove(&session_id);
                self.events.push_back(ServerEvent::LogonFailed {
                    user,
                    client_addr: self.client_addr.clone(),
                    reason,
                });
                Err(NtStatus::LOGON_FAILURE)
            }
            AuthStep::Done(done) => {
                // MS-SMB2 3.3.5.5.3: Session.SigningRequired is TRUE when the server requires
                // signing or the client's SecurityMode has SIGNING_REQUIRED (in this
                // request, or in NEGOTIATE: either side requiring it signs the session).
                let signing_required = self.config.signing.require_security_signature
                    || (u16::from(req.security_mode) | client_mode) & SIGNING_REQUIRED != 0;
                let unkeyed = done.guest || done.anonymous;
                if unkeyed && (signing_required || !self.config.allow_guest) {
                    // A guest or anonymous session has no key, so it cannot be signed: when
                    // signing is required it is refused, as Windows does.
                    self.sessions.remove(&session_id);
                    let reason = if self.config.allow_guest {
                        "guest or anonymous session refused: signing is required"
                    } else {
                        "guest and anonymous access are disabled"
                    };
                    self.events.push_back(ServerEvent::LogonFailed {
                        user: done.user,
                        client_addr: self.client_addr.clone(),
                        reason: reason.into(),
                    });
                    return Err(NtStatus::LOGON_FAILURE);
                }
                let (key, algorithm) = if unkeyed {
                    (None, None)
                } else {
                    let Some(session_key) = done.session_key.as_deref() else {
                        self.sessions.remove(&session_id);
                        return Err(NtStatus::INTERNAL_ERROR);
                    };
                    let algorithm = Algorithm::for_dialect(dialect, negotiated_alg);
                    let key = crate::conn::session_signing_key(
                        dialect,
                        algorithm,
                        session_key,
                        preauth_value.as_ref(),
                    );
                    match key {
                        Ok(k) => (Some(k), Some(algorithm)),
                        Err(_) => {
                            self.sessions.remove(&session_id);
                            return Err(NtStatus::INTERNAL_ERROR);
                        }
                    }
                };
                let signed = key.is_some() && signing_required;
                self.events.push_back(ServerEvent::SessionEstablished {
                    session_id,
                    user: done.user.clone(),
                    dialect,
                    algorithm,
                    signed,
                    guest: done.guest,
                    anonymous: done.anonymous,
                });
                if !signed {
                    self.events.push_back(ServerEvent::SessionUnsigned {
                        session_id,
                        user: done.user.clone(),
                        client_addr: self.client_addr.clone(),
                        reason: if unkeyed {
                            "guest or anonymous session"
                        } else {
                            "client did not require signing"
                        },
                    });
                }
                // MS-SMB2 3.3.5.5.3: for 3.x the final response is signed with the new key
                // (unless guest/anonymous); for 2.x only when the session is signed.
                let response_key = match &key {
                    Some(k) if dialect.is_smb3() || signing_required => Some(k.clone()),
                    _ => None,
                };
                let session_flags = if done.anonymous {
                    session_flags::IS_NULL
                } else if done.guest {
                    session_flags::IS_GUEST
                } else {
                    0
                };
                if let Some(s) = self.sessions.get_mut(&session_id) {
                    s.state = SessionState::Valid(Box::new(ValidSession {
                        user: done.user,
                        key,
                        signing_required,
                    }));
                }
                let body = SessionSetupResponse {
                    session_flags,
                    security_buffer: done.token,
                };
                let mut reply = Reply::new(ctx.hdr, &body);
                reply.session_id = Some(session_id);
                reply.key = Some(response_key);
                Ok(reply)
            }
        }
    }

    /// MS-SMB2 3.3.5.6.
    fn logoff(&mut self, ctx: &mut Ctx) -> HandlerResult {
        LogoffRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        self.opens.close_session(ctx.session_id);
        if let Some(Session {
            state: SessionState::Valid(v),
            ..
        }) = self.sessions.remove(&ctx.session_id)
        {
            self.events.push_back(ServerEvent::LoggedOff {
                session_id: ctx.session_id,
                user: v.user,
            });
        }
        Ok(Reply::new(ctx.hdr, &LogoffResponse))
    }

    // ---- TREE_CONNECT / TREE_DISCONNECT ------------------------------------------------

    /// MS-SMB2 3.3.5.7: disk shares from the configuration, and IPC$ as a pipe share.
    fn tree_connect(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let req = TreeConnectRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let name = req.share_name().to_string();
        let (tree, share_type) = if name.eq_ignore_ascii_case("IPC$") {
            (Tree { share: None }, ShareType::PIPE)
        } else {
            match self.config.share(&name) {
                Some(s) => (
                    Tree {
                        share: Some(s.clone()),
                    },
                    ShareType::DISK,
                ),
                // MS-SMB2 3.3.5.7: "If no share with a matching share name and server name
                // is found, the server MUST fail the request with STATUS_BAD_NETWORK_NAME."
                None => return Err(NtStatus::BAD_NETWORK_NAME),
            }
        };
        let max_trees = self.config.limits.max_trees;
        let tree_id = self.next_tree;
        let session = self
            .sessions
            .get_mut(&ctx.session_id)
            .ok_or(NtStatus::USER_SESSION_DELETED)?;
        if session.trees.len() >= max_trees {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        session.trees.insert(tree_id, tree);
        self.next_tree = self.next_tree.wrapping_add(1).max(1);
        let body = TreeConnectResponse {
            share_type,
            share_flags: 0,
            capabilities: 0,
            maximal_access: FULL_ACCESS,
        };
        let mut reply = Reply::new(ctx.hdr, &body);
        reply.tree_id = Some(tree_id);
        Ok(reply)
    }

    /// MS-SMB2 3.3.5.8.
    fn tree_disconnect(&mut self, ctx: &mut Ctx) -> HandlerResult {
        TreeDisconnectRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        self.opens.close_tree(ctx.session_id, ctx.tree_id);
        if let Some(s) = self.sessions.get_mut(&ctx.session_id) {
            s.trees.remove(&ctx.tree_id);
        }
        Ok(Reply::new(ctx.hdr, &TreeDisconnectResponse))
    }
}

/// MS-SMB2 3.3.5.2.5: the credits a request must be charged, from the larger of what it
/// sends and what it asks back: `(max(send, expected) - 1) / 65536 + 1`. Fields are read
/// raw (missing bytes count as 0; the command's own decoder rejects short bodies).
fn required_charge(hdr: &Header, msg: &[u8]) -> u16 {
    let field = |off: usize| -> u64 {
        msg.get(HEADER_LEN + off..HEADER_LEN + off + 4)
            .map_or(0, |b| {
                u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            })
    };
    let payload = match hdr.command {
        // Length.
        Command::READ | Command::WRITE => field(4),
        // OutputBufferLength; FileNameLength is small (u16).
        Command::QUERY_DIRECTORY => field(28),
        // max(InputCount + OutputCount, MaxInputResponse + MaxOutputResponse).
        Command::IOCTL => (field(28) + field(40)).max(field(32) + field(44)),
        // max(InputBufferLength, OutputBufferLength).
        Command::QUERY_INFO => field(4).max(field(12)),
        // BufferLength.
        Command::SET_INFO => field(4),
        _ => 0,
    };
    crate::conn::credits_for_payload(payload)
}

/// The context-list rules of MS-SMB2 3.3.5.4 for a 3.1.1 NEGOTIATE: "The server MUST fail the
/// negotiate request with STATUS_INVALID_PARAMETER" if the list does not hold exactly one
/// SMB2_PREAUTH_INTEGRITY_CAPABILITIES, or more than one SMB2_ENCRYPTION_CAPABILITIES,
/// SMB2_COMPRESSION_CAPABILITIES, SMB2_RDMA_TRANSFORM_CAPABILITIES or
/// SMB2_SIGNING_CAPABILITIES; and a context whose algorithm count is zero (2.2.3.1.x: the count
/// "MUST be greater than zero"; 3.3.5.4 fails CompressionAlgorithmCount and TransformCount 0,
/// Samba fails HashAlgorithmCount, CipherCount and SigningAlgorithmCount 0 the same way).
/// Other types, known or not, are ignored whatever their number and contents.
fn check_negotiate_contexts(contexts: &[NegotiateContext]) -> Result<(), NtStatus> {
    let of_type = |t: NegotiateContextType| contexts.iter().filter(move |c| c.context_type() == t);
    if of_type(NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES).count() != 1 {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    for t in [
        NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES,
        NegotiateContextType::ENCRYPTION_CAPABILITIES,
        NegotiateContextType::COMPRESSION_CAPABILITIES,
        NegotiateContextType::RDMA_TRANSFORM_CAPABILITIES,
        NegotiateContextType::SIGNING_CAPABILITIES,
    ] {
        let mut found = of_type(t);
        let first = found.next();
        if found.next().is_some() || first.is_some_and(|c| c.leading_count().unwrap_or(0) == 0) {
            return Err(NtStatus::INVALID_PARAMETER);
        }
    }
    Ok(())
}

/// Capabilities the server announces: LARGE_MTU from 2.1 on (multi-credit requests);
/// no leasing, multichannel, persistent handles or encryption.
fn server_capabilities(dialect: Dialect) -> u32 {
    if dialect == Dialect::SMB202 {
        0
    } else {
        capabilities::LARGE_MTU
    }
}
