//! Sans-IO SMB2/3 client connection: requests in, bytes out; bytes in, events out.
//!
//! # Call order (quinn-proto style)
//! 1. `ClientConnection::new(config)`.
//! 2. Queue a request: [`negotiate`](ClientConnection::negotiate), then
//!    [`session_setup`](ClientConnection::session_setup), then
//!    [`tree_connect`](ClientConnection::tree_connect), then file requests
//!    ([`create`](ClientConnection::create), [`read`](ClientConnection::read), ...).
//!    Each returns the request's MessageId; its answer comes back as a
//!    [`ClientEvent::Response`] with the same id.
//! 3. Drain [`poll_transmit`](ClientConnection::poll_transmit) and send every buffer
//!    (one SMB2 message each, without the 4-byte TCP prefix).
//! 4. Feed every received frame to [`handle_input`](ClientConnection::handle_input)
//!    (a single message or a compound chain, prefix stripped).
//! 5. Drain [`poll_event`](ClientConnection::poll_event); then go back to 3: handling a
//!    response may queue messages of its own (the next SESSION_SETUP leg, the
//!    FSCTL_VALIDATE_NEGOTIATE_INFO after a 3.0 TREE_CONNECT).
//!
//! A SESSION_SETUP exchange spans several messages but is one request: its
//! `Response` (and `SessionEstablished`) carry the id `session_setup` returned.
//! A TREE_CONNECT on 3.0/3.0.2 is answered only once the negotiation was validated.
//!
//! Unsolicited messages: a server may send an oplock or lease break notification at any
//! time to a client that asked for oplocks or leases ([`OpenRequest::with_caching`]); it
//! comes out as [`ClientEvent::OplockBreak`] or [`ClientEvent::LeaseBreak`], unsigned by
//! design (MessageId 0xFFFFFFFFFFFFFFFF), and the driver answers those with `ack_required`
//! through [`acknowledge_oplock_break`](ClientConnection::acknowledge_oplock_break) or
//! [`acknowledge_lease_break`](ClientConnection::acknowledge_lease_break): ordinary signed
//! requests whose responses are checked like every other. Interim STATUS_PENDING responses
//! are absorbed (counted by [`interim_responses`](ClientConnection::interim_responses); their
//! AsyncId is what [`cancel`](ClientConnection::cancel) names).
//!
//! A connection that failed (bad signature, protocol violation, validation mismatch)
//! stays failed: every later call returns [`ClientError::Failed`] with the first reason.
//!
//! # Files
//! - `config.rs`: [`ClientConfig`], with the clock and the random source.
//! - `events.rs`: [`ClientEvent`] and the decoded answers; `error.rs`: [`ClientError`] and
//!   the enums of its reasons.
//! - `state.rs`: the phase enum (each variant holds only what is valid in it).
//! - `requests.rs`: the request builders ([`OpenRequest`], `negotiate`, `read`, ...) and
//!   the one function that numbers, charges, signs and queues a request.
//! - `responses.rs`: `handle_input`, the signature check and the response handlers.
//! - `auth_glue.rs`: SESSION_SETUP and the [`Authenticator`] hook.
//! - `async_ops.rs`: CHANGE_NOTIFY, which the server completes asynchronously, and CANCEL.
//! - `caching.rs`: oplocks asked for and granted, break notifications, acknowledgements.

mod async_ops;
mod auth_glue;
mod caching;
#[cfg(test)]
mod caching_tests;
mod config;
mod error;
mod events;
mod requests;
mod responses;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};

pub use crate::auth::Credentials;
pub use auth_glue::{Authenticator, NtlmAuthenticator};
pub use caching::Caching;
pub use config::ClientConfig;
pub use error::{
    AuthFailure, ClientError, NegotiateMismatch, ProtocolError, SignatureFailure, StateError,
    ValidationFailure,
};
pub use events::{ClientEvent, DirEntry, NegotiateInfo, ResponseBody};
pub use requests::OpenRequest;

use crate::header::Dialect;
use crate::messages::negotiate::capabilities;
use state::{Outstanding, Phase};

/// Credits asked for in every request: enough for a few 1 MiB reads in flight.
const CREDIT_REQUEST: u16 = 64;
/// Largest READ/WRITE we issue, whatever the server allows (keeps frames well under the
/// 16 MiB Direct-TCP limit).
const MAX_IO: u32 = 8 * 1024 * 1024;
/// Without LARGE_MTU (and always on 2.0.2) one request moves at most 64 KiB.
const SMALL_MTU: u32 = 64 * 1024;
/// Where a WRITE request's data starts in its message (header and 48-byte fixed part,
/// MS-SMB2 2.2.21): the room a buffer for
/// [`write_in_place`](ClientConnection::write_in_place) keeps before the data.
pub const WRITE_DATA_AT: usize = crate::messages::write::WriteRequest::DATA_OFFSET as usize;

/// The sans-IO client. See the module documentation for the call order.
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConfig,
    phase: Phase,
    next_message_id: u64,
    /// Credits granted and not yet spent.
    credits: u32,
    outstanding: HashMap<u64, Outstanding>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    /// Oplocks held on this connection's opens.
    caching: caching::CachingTable,
    /// Interim (STATUS_PENDING) responses received.
    interim_responses: u64,
}

impl ClientConnection {
    /// A connection that has sent nothing yet, with one credit (for NEGOTIATE).
    pub fn new(config: ClientConfig) -> Self {
        ClientConnection {
            config,
            phase: Phase::Idle,
            next_message_id: 0,
            credits: 1,
            outstanding: HashMap::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            caching: caching::CachingTable::default(),
            interim_responses: 0,
        }
    }

    /// The configuration this connection was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What NEGOTIATE settled, once it has (still known after a failure).
    pub fn negotiated(&self) -> Option<&NegotiateInfo> {
        match &self.phase {
            Phase::Failed { negotiated, .. } => negotiated.as_ref(),
            phase => phase.negotiated().map(|n| &n.info),
        }
    }

    /// The established session's id.
    pub fn session_id(&self) -> Option<u64> {
        self.phase.session().map(|s| s.id)
    }

    /// Whether requests and responses of the session are signed.
    pub fn session_signed(&self) -> bool {
        self.phase.session().is_some_and(|s| s.signed())
    }

    /// Whether the established session is a guest session (unsigned by nature).
    pub fn session_is_guest(&self) -> bool {
        self.phase.session().is_some_and(|s| s.guest)
    }

    /// Whether the established session is anonymous (null session).
    pub fn session_is_anonymous(&self) -> bool {
        self.phase.session().is_some_and(|s| s.anonymous)
    }

    /// Credits granted and not yet spent.
    pub fn credits(&self) -> u32 {
        self.credits
    }

    /// How many interim STATUS_PENDING responses arrived (unsigned by design, absorbed).
    pub fn interim_responses(&self) -> u64 {
        self.interim_responses
    }

    /// The first failure, if the connection has failed.
    pub fn failure(&self) -> Option<&ClientError> {
        match &self.phase {
            Phase::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The largest READ length to ask for.
    pub fn max_read_size(&self) -> u32 {
        self.io_limit(self.negotiated().map_or(SMALL_MTU, |n| n.max_read_size))
    }

    /// The largest WRITE length to send.
    pub fn max_write_size(&self) -> u32 {
        self.io_limit(self.negotiated().map_or(SMALL_MTU, |n| n.max_write_size))
    }

    /// The next message to send (one SMB2 message, no TCP prefix).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// `server_max` capped at what one request may move (MS-SMB2 3.2.4.1.5: beyond 64 KiB
    /// only with LARGE_MTU, never on 2.0.2).
    fn io_limit(&self, server_max: u32) -> u32 {
        let large = self.negotiated().is_some_and(|n| {
            n.dialect != Dialect::SMB202 && n.server_capabilities & capabilities::LARGE_MTU != 0
        });
        let cap = if large { MAX_IO } else { SMALL_MTU };
        server_max.clamp(1, cap)
    }

    /// Output buffer size for QUERY_DIRECTORY / QUERY_INFO.
    fn transact_size(&self) -> u32 {
        self.io_limit(self.negotiated().map_or(SMALL_MTU, |n| n.max_transact_size))
            .min(SMALL_MTU)
    }

    fn check_alive(&self) -> Result<(), ClientError> {
        match &self.phase {
            Phase::Failed { error, .. } => Err(ClientError::Failed(Box::new(error.clone()))),
            _ => Ok(()),
        }
    }

    /// The established session's id, or why there is none.
    fn established(&self) -> Result<u64, ClientError> {
        self.check_alive()?;
        self.session_id()
            .ok_or(ClientError::State(StateError::NoSession))
    }

    /// Takes the phase out to move it to the next one (the caller puts a phase back).
    fn take_phase(&mut self) -> Phase {
        std::mem::replace(&mut self.phase, Phase::Idle)
    }

    /// Fails the connection for good (keeping the first reason) and returns `e`. Keys and
    /// everything queued or outstanding are dropped.
    fn fail(&mut self, e: ClientError) -> ClientError {
        if !matches!(self.phase, Phase::Failed { .. }) {
            let negotiated = self.phase.negotiated().map(|n| n.info.clone());
            self.phase = Phase::Failed {
                error: e.clone(),
                negotiated,
            };
        }
        self.outstanding.clear();
        self.transmit.clear();
        self.caching = caching::CachingTable::default();
        e
    }
}

/// MS-SMB2 3.2.4.1.5: one credit per 64 KiB of payload, at least one.
fn credit_charge(len: usize) -> u16 {
    super::credits_for_payload(len as u64)
}
