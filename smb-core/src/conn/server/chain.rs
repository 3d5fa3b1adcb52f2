//! The request pipeline: chains, per-message checks, suspension around share requests.

use std::ops::Range;

use bytes::Bytes;

use super::budget::Charge;
use super::files::Then;
use super::io::{Op, ShareOp, ShareOutcome, ShareRequest};
use super::{
    files, Ctx, HandlerResult, HashInto, Negotiated, Outgoing, Reject, RejectReason, Reply,
    ServerConnection, ServerEvent, Session, SessionState, State, Step, StepResult, Transmit,
};
use crate::compound::split_chain;
use crate::header::{flags, Command, Dialect, Header, NtStatus, HEADER_LEN, TRANSFORM_PROTOCOL_ID};
use crate::messages::build;
use crate::messages::echo::EchoResponse;
use crate::messages::error::ErrorResponse;
use crate::messages::smb1_negotiate::is_smb1;
use crate::signing::{must_verify, SigningKey, TailDigest};

/// Where NextCommand sits in the SMB2 header.
const NEXT_COMMAND_OFFSET: usize = 20;
/// What a response other than READ, QUERY_DIRECTORY, QUERY_INFO and IOCTL is charged
/// before it runs: more than any of them needs (the largest, a NEGOTIATE or SESSION_SETUP
/// response, is a few hundred bytes); the charge is settled to the real size afterwards.
const SMALL_RESPONSE: usize = 1024;

/// A compound chain being answered (MS-SMB2 3.3.5.2.7).
#[derive(Debug)]
pub(super) struct Chain {
    input: Bytes,
    ranges: Vec<Range<usize>>,
    next: usize,
    related: Related,
    /// The responses so far, chained in place: each but the last padded to 8 bytes.
    out: Vec<u8>,
    parts: Vec<Part>,
    /// What the responses are charged against the memory budgets (worst case until built).
    charge: Charge,
    suspended: Option<Suspended>,
}

/// One response inside [`Chain::out`] and how to finish it.
#[derive(Debug)]
struct Part {
    range: Range<usize>,
    key: Option<SigningKey>,
    hash: Option<HashInto>,
    tail: Option<TailDigest>,
}

/// Per-chain state for related operations (MS-SMB2 3.3.5.2.7.2).
#[derive(Debug, Default)]
pub(super) struct Related {
    session_id: u64,
    tree_id: u32,
    file_id: Option<crate::messages::FileId>,
    /// A failed CREATE fails the rest of the related chain with the same status.
    error: Option<NtStatus>,
}

/// Where a message sits in its compound chain.
#[derive(Debug, Clone, Copy)]
struct Place {
    first: bool,
    last: bool,
}

/// A request whose command waits for a share request.
#[derive(Debug)]
struct Suspended {
    id: u64,
    hdr: Header,
    msg: Bytes,
    session_id: u64,
    tree_id: u32,
    credits: u16,
    key: Option<SigningKey>,
    then: Then,
}

/// What [`ServerConnection::process`] did with one message. (Short-lived: moved once per
/// request, so the large variant is not boxed.)
#[allow(clippy::large_enum_variant)]
enum Processed {
    /// No response (CANCEL, or the connection failed).
    Nothing,
    Out(Outgoing),
    /// The command needs the share first.
    Wait(Box<Suspended>, Op),
}

impl Chain {
    pub(super) fn is_suspended(&self) -> bool {
        self.suspended.is_some()
    }

    /// Appends a response: pads the previous one to 8 bytes and points its NextCommand
    /// here (MS-SMB2 3.3.4.1.3). A lone response is kept as is, without a copy.
    fn push(&mut self, o: Outgoing) {
        let start = if let Some(prev) = self.parts.last_mut() {
            let padded = prev.range.len().next_multiple_of(8);
            let end = prev.range.start + padded;
            self.out.resize(end, 0);
            let field = prev.range.start + NEXT_COMMAND_OFFSET;
            if let Some(slot) = self.out.get_mut(field..field + 4) {
                slot.copy_from_slice(&u32::try_from(padded).unwrap_or(0).to_le_bytes());
            }
            prev.range.end = end;
            // Grow by an eighth (at least the message): a large first response (READ) is
            // not doubled for the small ones after it.
            let need = o.msg.len();
            if self.out.capacity() - self.out.len() < need {
                self.out
                    .reserve_exact(need.max(self.out.len() / 8).max(4096));
            }
            self.out.extend_from_slice(&o.msg);
            end
        } else {
            self.out = o.msg;
            0
        };
        let end = self.out.len();
        if let Some(slot) = self
            .out
            .get_mut(start + NEXT_COMMAND_OFFSET..start + NEXT_COMMAND_OFFSET + 4)
        {
            slot.fill(0);
        }
        self.parts.push(Part {
            range: start..end,
            key: o.key,
            hash: o.hash,
            tail: o.tail,
        });
    }
}

impl ServerConnection {
    /// Handles one received message or compound chain (transport prefix stripped), copying
    /// it; a driver that owns the frame calls [`ServerConnection::handle_frame`] instead.
    pub fn handle_input(&mut self, input: &[u8]) {
        self.handle_frame(Bytes::copy_from_slice(input));
    }

    /// Handles one received message or compound chain (transport prefix stripped). The
    /// frame is kept while its chain is processed: WRITE data reaches the share as a slice
    /// of it. While a chain waits for a share request the frame is queued (and charged to
    /// the memory budget; a connection that queues more than its budget is closed).
    pub fn handle_frame(&mut self, frame: Bytes) {
        if self.is_failed() {
            return;
        }
        if frame.len() > self.max_message_size() {
            return self.fail(format!(
                "message of {} bytes exceeds the limit",
                frame.len()
            ));
        }
        if self.chain.is_some() || !self.queued.is_empty() || !self.may_start(&frame) {
            let mut charge = Charge::new(&self.budget, &self.config.memory);
            if !charge.try_grow(frame.len()) {
                return self.fail("too much input queued while share requests run".into());
            }
            self.queued.push_back((frame, charge));
            return;
        }
        self.start_chain(frame);
        self.run_chain();
    }

    /// Gives back the outcome of the share request `id` and resumes its chain (or answers
    /// its lone READ/WRITE).
    pub fn handle_share_result(&mut self, id: u64, outcome: ShareOutcome) {
        if self.is_failed() {
            return;
        }
        let (mut chain, beside) = match self.in_flight.remove(&id) {
            Some(c) => (c, true),
            None => match self.chain.take() {
                Some(c) => (c, false),
                None => return self.fail(format!("share result {id} with no request outstanding")),
            },
        };
        let Some(s) = chain.suspended.take().filter(|s| s.id == id) else {
            return self.fail(format!("share result {id} does not answer the request"));
        };
        let ctx = Ctx {
            hdr: &s.hdr,
            msg: &s.msg,
            session_id: s.session_id,
            tree_id: s.tree_id,
            related_file: None,
        };
        let result = self.finish(s.then, outcome.0, &ctx);
        let last = chain.next >= chain.ranges.len();
        let out = self.respond(
            &s.hdr,
            s.session_id,
            s.tree_id,
            s.credits,
            s.key,
            result,
            &mut chain.related,
            last,
        );
        chain.push(out);
        if beside {
            // A lone request: answered now, whatever else is still running.
            self.emit(*chain);
            if !self.is_failed() {
                self.complete_async();
            }
        } else {
            self.chain = Some(chain);
        }
        self.run_chain();
    }

    /// Tells the connection that transmits were written (and dropped): the memory they
    /// held may let queued READ/WRITE requests start. Poll share requests afterwards.
    pub fn handle_sent(&mut self) {
        if !self.is_failed() {
            self.run_chain();
        }
    }

    /// Whether a frame may start now. While share requests run beside, only another lone
    /// READ or WRITE, below [`MAX_IN_FLIGHT`](super::MAX_IN_FLIGHT), and only while both
    /// memory budgets have room for its response. With nothing running, anything; but a
    /// lone READ or WRITE whose response does not fit while answers of this connection
    /// are still being sent waits for [`handle_sent`](Self::handle_sent) (they give their
    /// memory back then). Either way a request that does not fit waits rather than being
    /// refused, as long as something of this connection will free memory: a client that
    /// keeps several READs of MaxReadSize in flight is slowed, not failed.
    fn may_start(&self, frame: &[u8]) -> bool {
        if self.in_flight.len() >= super::MAX_IN_FLIGHT {
            return false;
        }
        let Some(command) = lone_io(frame) else {
            return self.in_flight.is_empty();
        };
        let need = response_estimate(command, frame, self.max_io());
        let room = |b: &super::MemoryBudget| b.in_use().saturating_add(need) <= b.limit();
        if room(&self.budget) && room(&self.config.memory) {
            return true;
        }
        // Memory this connection holds beyond its queued input: answers in flight or
        // being sent, which come back without the client doing anything.
        let queued: usize = self.queued.iter().map(|(_, charge)| charge.bytes()).sum();
        let releasing = self.budget.in_use() > queued;
        // Nothing to wait for: start, and let the budget refuse it.
        self.in_flight.is_empty() && !releasing
    }

    /// Splits a frame into its chain, or answers SMB1, or fails on what cannot be parsed.
    fn start_chain(&mut self, input: Bytes) {
        if is_smb1(&input) {
            return self.handle_smb1(&input);
        }
        if input.starts_with(&TRANSFORM_PROTOCOL_ID) {
            // Encryption is never negotiated, so a TRANSFORM header is a violation.
            return self.fail("encrypted message, but encryption was not negotiated".into());
        }
        let ranges = match split_chain(&input) {
            Ok(r) => r,
            Err(e) => return self.fail(format!("malformed message: {e}")),
        };
        let charge = Charge::new(&self.budget, &self.config.memory);
        self.chain = Some(Box::new(Chain {
            input,
            ranges,
            next: 0,
            related: Related::default(),
            out: Vec::new(),
            parts: Vec::new(),
            charge,
            suspended: None,
        }));
    }

    /// Processes messages until the chain waits for a share request or is answered, then
    /// goes on with queued frames.
    fn run_chain(&mut self) {
        loop {
            let Some(mut chain) = self.chain.take() else {
                if self.is_failed() {
                    self.queued.clear();
                    return;
                }
                match self.queued.front() {
                    Some((frame, _)) if self.may_start(frame) => {
                        if let Some((frame, _charge)) = self.queued.pop_front() {
                            self.start_chain(frame);
                        }
                        continue;
                    }
                    // Nothing queued, or the next frame waits for what runs beside.
                    _ => return,
                }
            };
            if chain.suspended.is_some() {
                self.chain = Some(chain);
                return;
            }
            if self.is_failed() || chain.next >= chain.ranges.len() {
                // Send what was answered (e.g. the ACCESS_DENIED for a bad signature);
                // after a failure the driver closes the connection.
                self.emit(*chain);
                // Completions caused by this chain go after its own responses.
                if !self.is_failed() {
                    self.complete_async();
                }
                continue;
            }
            let i = chain.next;
            chain.next += 1;
            let Some(msg) = chain.ranges.get(i).map(|r| chain.input.slice(r.clone())) else {
                self.fail("chain range outside the input".into());
                continue;
            };
            let place = Place {
                first: i == 0,
                last: i + 1 == chain.ranges.len(),
            };
            match self.process(&msg, place, &mut chain) {
                Processed::Nothing => {}
                Processed::Out(o) => chain.push(o),
                Processed::Wait(mut s, op) => {
                    let id = self.next_request;
                    self.next_request += 1;
                    s.id = id;
                    chain.suspended = Some(*s);
                    let beside = chain.ranges.len() == 1 && op.runs_beside();
                    self.share_requests.push_back(ShareRequest {
                        id,
                        op: ShareOp(op),
                    });
                    if beside {
                        // A lone READ/WRITE does not hold up the input behind it.
                        self.in_flight.insert(id, chain);
                        continue;
                    }
                }
            }
            self.chain = Some(chain);
        }
    }

    pub(super) fn fail(&mut self, reason: String) {
        if !self.is_failed() {
            self.state = State::Failed;
            self.events.push_back(ServerEvent::Disconnect { reason });
        }
    }

    /// Signs each response of the chain in place, feeds preauth hashes, queues the chain
    /// with its budget charge settled to its real size.
    fn emit(&mut self, chain: Chain) {
        let Chain {
            mut out,
            parts,
            mut charge,
            ..
        } = chain;
        if parts.is_empty() {
            return;
        }
        if out.len() > crate::framing::MAX_STREAM_LEN {
            // MS-SMB2 2.1: a Direct-TCP frame carries at most 2^24 - 1 bytes (the budget
            // normally refuses such a chain first).
            return self.fail(format!(
                "a compound answer of {} bytes does not fit one transport frame",
                out.len()
            ));
        }
        for p in parts {
            let Some(part) = out.get_mut(p.range) else {
                continue;
            };
            if let Some(key) = &p.key {
                let signed = match &p.tail {
                    // Only the header and READ's fixed part are read here; the data was
                    // hashed on the thread that read it.
                    Some(tail) => key.sign_with_tail(part, tail),
                    None => key.sign(part),
                };
                if signed.is_err() {
                    return self.fail("internal error: signing failed".into());
                }
            }
            match p.hash {
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
        charge.settle(out.len());
        self.transmit.push_back(Transmit::new(out, Some(charge)));
    }

    // ---- per-message pipeline ---------------------------------------------------------

    fn process(&mut self, msg: &Bytes, place: Place, chain: &mut Chain) -> Processed {
        let first = place.first;
        let hdr = match Header::parse(msg) {
            Ok(h) => h,
            Err(e) => {
                self.fail(format!("bad SMB2 header: {e}"));
                return Processed::Nothing;
            }
        };
        if hdr.is_response() || hdr.async_id.is_some() && hdr.command != Command::CANCEL {
            self.fail("response or async message sent to the server".into());
            return Processed::Nothing;
        }
        let negotiated = matches!(self.state, State::Negotiated(_));
        if !negotiated && hdr.command != Command::NEGOTIATE
            || negotiated && hdr.command == Command::NEGOTIATE
        {
            // MS-SMB2 3.3.5.2: before NEGOTIATE only NEGOTIATE is valid, and 3.3.5.3.1 /
            // 3.3.5.4: a second NEGOTIATE on a negotiated connection ends it.
            self.fail(format!("{} in the wrong connection state", hdr.command));
            return Processed::Nothing;
        }

        // Related operations take their ids from the previous one (MS-SMB2 3.3.5.2.7.2).
        let is_related = hdr.flags & flags::RELATED_OPERATIONS != 0 && !first;
        let (session_id, tree_id) = if is_related {
            (chain.related.session_id, chain.related.tree_id)
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
                    let done = done
                        .or_else(|| self.locks.cancel(&hdr, session_id))
                        .or_else(|| self.cancel_create(&hdr, session_id));
                    if let Some(done) = done {
                        self.queue_messages([done]);
                    }
                }
                Err(r) if r.disconnect => self.fail("CANCEL with a bad signature".into()),
                Err(_) => {}
            }
            return Processed::Nothing;
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
            return Processed::Nothing;
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
                let result = match (is_related, chain.related.error) {
                    (true, Some(status)) => Err(status),
                    _ if self.multi_credit() && charge < required_charge(&hdr, msg) => {
                        // MS-SMB2 3.3.5.2.5: "If CreditCharge is less than the calculated
                        // number of credits, the server MUST fail the request with the error
                        // code STATUS_INVALID_PARAMETER."
                        Err(NtStatus::INVALID_PARAMETER)
                    }
                    _ if !chain.charge.try_grow(response_estimate(
                        hdr.command,
                        msg,
                        self.max_io(),
                    )) =>
                    {
                        // Every request pays for its worst-case response before it runs
                        // (see budget.rs): what does not fit is never executed.
                        Err(NtStatus::INSUFFICIENT_RESOURCES)
                    }
                    _ => {
                        let mut ctx = Ctx {
                            hdr: &hdr,
                            msg,
                            session_id,
                            tree_id,
                            related_file: if is_related {
                                chain.related.file_id
                            } else {
                                None
                            },
                        };
                        match self.dispatch(&mut ctx) {
                            Ok(Step::Io(mut op, then)) => {
                                op.digest_data_with(key.as_ref());
                                let s = Suspended {
                                    id: 0,
                                    hdr,
                                    msg: msg.clone(),
                                    session_id,
                                    tree_id,
                                    credits,
                                    key,
                                    then,
                                };
                                return Processed::Wait(Box::new(s), op);
                            }
                            Ok(Step::Reply(r)) => Ok(r),
                            Err(e) => Err(e),
                        }
                    }
                };
                (result, key)
            }
        };

        Processed::Out(self.respond(
            &hdr,
            session_id,
            tree_id,
            credits,
            key,
            result,
            &mut chain.related,
            place.last,
        ))
    }

    /// The response to one request: the handler's reply (or an error response) under the
    /// final header.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        hdr: &Header,
        session_id: u64,
        tree_id: u32,
        credits: u16,
        key: Option<SigningKey>,
        result: HandlerResult,
        related: &mut Related,
        last: bool,
    ) -> Outgoing {
        let mut resp_hdr = hdr.response(NtStatus::SUCCESS);
        resp_hdr.credits = credits;
        resp_hdr.session_id = session_id;
        resp_hdr.tree_id = tree_id;
        // Opens closed by this request (CLOSE, TREE_DISCONNECT, LOGOFF) end their pending
        // CHANGE_NOTIFY and LOCK requests first: STATUS_NOTIFY_CLEANUP goes before the
        // response.
        for id in self.opens.take_closed() {
            let done = self.notifier.closed(id);
            let unlocked = self.locks.closed(id);
            self.create_closed(id);
            self.queue_messages(done.into_iter().chain(unlocked));
        }
        for change in self.opens.take_removed() {
            self.notifier.changed(change);
        }
        let (mut msg_out, key, hash, tail) = match result {
            Ok(reply) if reply.async_id.is_some() && !last => {
                // Going asynchronous is for the last request of a chain (MS-SMB2 3.3.4.2,
                // note on 3.3.5.2.7; Samba's smbd_smb2_request_pending_queue): a CHANGE_NOTIFY
                // or waiting LOCK inside a chain is cancelled at once, as Samba does.
                let async_id = reply.async_id.unwrap_or_default();
                self.notifier.forget(async_id);
                self.locks.forget(async_id);
                self.forget_create(async_id);
                resp_hdr.status = NtStatus::CANCELLED;
                (build(&resp_hdr, &ErrorResponse::default()), key, None, None)
            }
            Ok(reply) if reply.async_id.is_some() => {
                // MS-SMB2 3.3.4.2: the interim response, async form, STATUS_PENDING, an
                // ERROR body, never signed (3.3.4.1.1); it grants the credits. The final
                // response is signed with the key this request was verified with.
                let async_id = reply.async_id.unwrap_or_default();
                self.locks.set_key(async_id, key.clone());
                self.set_create_key(async_id, key.clone());
                self.notifier.set_key(async_id, key);
                resp_hdr.status = NtStatus::PENDING;
                resp_hdr.async_id = Some(async_id);
                (
                    build(&resp_hdr, &ErrorResponse::default()),
                    None,
                    None,
                    None,
                )
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
                (reply.msg, reply.key.unwrap_or(key), reply.hash, reply.tail)
            }
            Err(status) => {
                resp_hdr.status = status;
                if hdr.command == Command::CREATE {
                    related.error = Some(status);
                }
                (build(&resp_hdr, &ErrorResponse::default()), key, None, None)
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
        Outgoing {
            msg: msg_out,
            key,
            hash,
            tail,
        }
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
        // The one rule (signing::must_verify): signed, or on a session with
        // Session.SigningRequired. A related request belongs to the previous one's session
        // (3.3.5.2.7.2), whatever its own SessionId field says.
        let bound = Header {
            session_id,
            ..hdr.clone()
        };
        if must_verify(&bound, valid.signing_required) {
            if !signed {
                // A request without SMB2_FLAGS_SIGNED on a session with
                // Session.SigningRequired is "a packet that required signing" that the client
                // failed to sign: it is failed with STATUS_ACCESS_DENIED and never executed.
                // The SIGNED flag is the attacker's to clear, so its absence is no excuse.
                self.audit_reject(hdr, session_id, RejectReason::Unsigned);
                return Err(rejected(RejectReason::Unsigned, false));
            }
            // "If the signature verification fails, the server MUST fail the request with the
            // error code STATUS_ACCESS_DENIED. The server MAY also disconnect the
            // connection": we do, since only a tampering peer produces a bad signature.
            if key.verify(msg).is_err() {
                self.audit_reject(hdr, session_id, RejectReason::BadSignature);
                return Err(rejected(RejectReason::BadSignature, true));
            }
            return Ok(Some(key.clone()));
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

    fn dispatch(&mut self, ctx: &mut Ctx) -> StepResult {
        let cmd = ctx.hdr.command;
        let reply = |r: HandlerResult| r.map(Step::Reply);
        match cmd {
            Command::NEGOTIATE => return reply(self.negotiate(ctx)),
            Command::SESSION_SETUP => return reply(self.session_setup(ctx)),
            Command::ECHO => return Ok(Step::Reply(Reply::new(ctx.hdr, &EchoResponse))),
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
            Command::TREE_CONNECT => return reply(self.tree_connect(ctx)),
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
    pub(super) fn session_key(&self, session_id: u64) -> Option<SigningKey> {
        match self.sessions.get(&session_id) {
            Some(Session {
                state: SessionState::Valid(v),
                ..
            }) => v.key.clone(),
            _ => None,
        }
    }

    pub(super) fn negotiated(&self) -> Result<&Negotiated, NtStatus> {
        match &self.state {
            State::Negotiated(n) => Ok(n),
            _ => Err(NtStatus::INVALID_PARAMETER),
        }
    }
}

/// The command of a frame that is one READ or WRITE (no compound), read raw: such a frame
/// may run beside others. Anything else (or unparsable) is `None`.
fn lone_io(frame: &[u8]) -> Option<Command> {
    if frame.len() < HEADER_LEN || frame[..4] != crate::header::PROTOCOL_ID {
        return None;
    }
    let next = u32::from_le_bytes([frame[20], frame[21], frame[22], frame[23]]);
    let command = Command(u16::from_le_bytes([frame[12], frame[13]]));
    (next == 0 && (command == Command::READ || command == Command::WRITE)).then_some(command)
}

/// The most bytes a request's response may take, charged to the memory budgets before it
/// runs: header and fixed body plus the payload the client asks for (capped at the
/// negotiated maximum: larger requests are refused by their handler anyway).
fn response_estimate(command: Command, msg: &[u8], max_io: u32) -> usize {
    let field = |off: usize| -> usize {
        let v = msg
            .get(HEADER_LEN + off..HEADER_LEN + off + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        v.min(max_io) as usize
    };
    match command {
        // Length; the data follows the 16-byte fixed part.
        Command::READ => HEADER_LEN + 16 + field(4),
        // OutputBufferLength; the buffer follows an 8-byte fixed part.
        Command::QUERY_DIRECTORY => HEADER_LEN + 8 + field(28),
        Command::QUERY_INFO => HEADER_LEN + 8 + field(4),
        // MaxOutputResponse (the input is never echoed); 48-byte fixed part.
        Command::IOCTL => HEADER_LEN + 48 + field(44),
        _ => SMALL_RESPONSE,
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
