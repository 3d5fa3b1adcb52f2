//! `smb-audit probe-client`: the client side of the signing policy ("Microsoft network
//! client: Digitally sign communications (always)").
//!
//! Clients are pointed at the listener. Each connection is relayed to an in-process
//! `smb-server` (a scratch share `data`, the users given with `--user`), and the relay reads
//! what the client says: SMB1 attempts, the dialects and SecurityMode of NEGOTIATE, the
//! SecurityMode of SESSION_SETUP, the NTLM flags, user and domain (never a response or a
//! password). Actively, the first response after a (non-guest) logon and its TREE_CONNECT goes
//! out with its signature removed: a client that goes on using the session accepted an
//! unsigned response, which a client that requires signing must discard (MS-SMB2 3.2.5.1.3).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use smb_core::header::{flags, Command, Header, NtStatus, SIGNATURE_OFFSET};
use smb_core::messages::negotiate::NegotiateRequest;
use smb_core::messages::session_setup::{SessionSetupRequest, SessionSetupResponse};
use smb_core::messages::smb1_negotiate::{is_smb1, Smb1Negotiate};
use smb_core::policy::SIGNING_REQUIRED;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::ntlmssp::{self, Ntlm};
use crate::scan::Verdict;
use crate::targets::is_loopback;

/// The client policy a client that does not require signing fails.
pub const CLIENT_POLICY: &str = "Microsoft network client: Digitally sign communications (always)";

#[derive(Debug, clap::Args)]
pub struct ProbeClientArgs {
    /// ADDR:PORT to listen on (loopback unless --allow-non-loopback).
    #[arg(long)]
    pub listen: SocketAddr,
    /// What the server side offers: `required` (signing required), `enabled` (signing not
    /// required) or `guest` (signing not required, unknown users become guests).
    #[arg(long, default_value = "enabled", value_parser = ["required", "enabled", "guest"])]
    pub offer: String,
    /// NAME:PASSWORD the clients log on with (repeatable); without one, logons fail after the
    /// AUTHENTICATE is read (or become guest with --offer guest).
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub users: Vec<String>,
    /// JSON Lines, one object per client connection, to FILE or `-`.
    #[arg(long, value_name = "FILE|-")]
    pub json: Option<String>,
    /// Stop after this many client connections (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<usize>,
    /// Seconds a client may stay silent before its connection is closed and reported.
    #[arg(long, default_value_t = 5)]
    pub idle: u64,
    #[arg(long)]
    pub allow_non_loopback: bool,
}

/// One client connection, as `--json` writes it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ClientReport {
    pub client: String,
    /// SMB2 dialects offered in NEGOTIATE.
    pub dialects: Vec<String>,
    /// An SMB1 NEGOTIATE offering SMB1 dialects (SMB1-only strings, not just "SMB 2.???").
    pub smb1: bool,
    pub smb1_dialects: Vec<String>,
    /// SecurityMode of NEGOTIATE and of SESSION_SETUP (null when not sent).
    pub negotiate_security_mode: Option<u16>,
    pub session_setup_security_mode: Option<u8>,
    /// The client's own SecurityMode requires signing (in NEGOTIATE or SESSION_SETUP).
    pub signing_required: bool,
    pub dialect: Option<String>,
    pub ntlm_version: Option<String>,
    pub ntlm_flags: Vec<String>,
    pub user: Option<String>,
    pub domain: Option<String>,
    /// Whether the session was granted as guest and the client went on using it.
    pub accepts_guest: Option<bool>,
    /// Whether the client used the session after a response whose signature was removed.
    pub accepts_unsigned: Option<bool>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

fn finish(r: &mut ClientReport) {
    let mut reasons = Vec::new();
    if r.dialects.is_empty() && !r.smb1 {
        r.verdict = Verdict::Error;
        r.reasons = vec!["the client sent no NEGOTIATE".into()];
        return;
    }
    if !r.signing_required {
        reasons.push(format!(
            "SMB Client signing is NOT enforced ({CLIENT_POLICY} = Disabled; LanmanWorkstation \
             RequireSecuritySignature = 0)"
        ));
    }
    if r.accepts_unsigned == Some(true) {
        reasons.push(format!(
            "the client accepted an unsigned response after authentication ({CLIENT_POLICY})"
        ));
    }
    if r.smb1 {
        reasons.push("SMBv1 enabled (the client offered SMB1 dialects)".into());
    }
    if r.accepts_guest == Some(true) {
        reasons.push(
            "the client accepted a guest session (Enable insecure guest logons; \
             AllowInsecureGuestAuth = 1)"
                .into(),
        );
    }
    if reasons.is_empty() {
        r.verdict = Verdict::Secure;
        reasons.push("SMB Client signing is enforced (RequireSecuritySignature = 1)".into());
    } else {
        r.verdict = Verdict::Vulnerable;
    }
    r.reasons = reasons;
}

pub async fn run(args: ProbeClientArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        args.allow_non_loopback || is_loopback(args.listen.ip()),
        "{} is not a loopback address (pass --allow-non-loopback)",
        args.listen
    );
    let share = std::env::temp_dir().join(format!("smb-audit-probe-{}", std::process::id()));
    std::fs::create_dir_all(&share).context("cannot create the scratch share")?;
    let settings = smb_server::settings::Settings {
        listen: Some("127.0.0.1:0".into()),
        share: vec![format!("data={}", share.display())],
        user: args.users.clone(),
        require_signing: Some(args.offer == "required"),
        guest: Some(args.offer == "guest"),
        max_connections_per_address: Some(4096),
        max_failed_logons: Some(u32::MAX),
        ..Default::default()
    };
    let server = smb_server::Server::bind(settings.resolve()?).await?;
    let upstream = server.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_task = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("listening on {}", listener.local_addr()?);
    let _ = std::io::stdout().flush();
    let mut json: Option<Box<dyn Write + Send>> = match args.json.as_deref() {
        None => None,
        Some("-") => Some(Box::new(std::io::stdout())),
        Some(p) => Some(Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {p}"))?,
        )),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ClientReport>(64);
    let idle = Duration::from_secs(args.idle.max(1));
    let mut reported = 0usize;
    let mut vulnerable = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            accepted = listener.accept() => {
                let Ok((client, peer)) = accepted else { continue };
                let tx = tx.clone();
                let guest = args.offer == "guest";
                tokio::spawn(async move {
                    let report = relay(client, peer, upstream, idle, guest).await;
                    let _ = tx.send(report).await;
                });
            }
            Some(mut r) = rx.recv() => {
                finish(&mut r);
                vulnerable |= r.verdict == Verdict::Vulnerable;
                eprintln!("{} {} {}", r.client, r.verdict.as_str(), r.reasons.join("; "));
                if let Some(j) = json.as_mut() {
                    writeln!(j, "{}", serde_json::to_string(&r)?)?;
                    j.flush()?;
                }
                reported += 1;
                if args.count.is_some_and(|c| reported >= c) {
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(());
    let _ = server_task.await;
    let _ = std::fs::remove_dir_all(&share);
    Ok(if vulnerable {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads one Direct-TCP frame from `buf`, refilling from `s`; None at EOF.
async fn next_frame(s: &mut tokio::net::tcp::OwnedReadHalf, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if buf.len() >= 4 {
            let len = u32::from_be_bytes([0, buf[1], buf[2], buf[3]]) as usize;
            if buf[0] != 0 {
                return None;
            }
            if buf.len() >= 4 + len {
                let f = buf[4..4 + len].to_vec();
                buf.drain(..4 + len);
                return Some(f);
            }
        }
        let mut chunk = vec![0u8; 65536];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[derive(Debug, Default)]
struct Relay {
    report: ClientReport,
    /// `--offer guest`: the client's SIGNING_REQUIRED is hidden from the server, which would
    /// otherwise refuse the guest session (MS-SMB2 3.3.5.5.3) before the client can show
    /// whether it takes one. A guest session has no key, so nothing signed depends on it.
    offer_guest: bool,
    /// The session whose first response after logon goes out unsigned.
    strip_session: Option<u64>,
    /// MessageId of the response that went out unsigned.
    stripped: Option<u64>,
    guest_session: Option<u64>,
}

impl Relay {
    fn client_message(&mut self, msg: &mut [u8]) {
        self.observe_client(msg);
        if self.offer_guest && msg.len() > 68 && msg.starts_with(&smb_core::header::PROTOCOL_ID) {
            // SecurityMode: NEGOTIATE request at 64 + 4 (two bytes), SESSION_SETUP at 64 + 3.
            match u16::from_le_bytes([msg[12], msg[13]]) {
                0 => msg[68] &= !(SIGNING_REQUIRED as u8),
                1 => msg[67] &= !(SIGNING_REQUIRED as u8),
                _ => {}
            }
        }
    }

    fn observe_client(&mut self, msg: &[u8]) {
        if is_smb1(msg) {
            if let Ok(n) = Smb1Negotiate::read(msg) {
                let smb1_only: Vec<String> = n
                    .dialects
                    .iter()
                    .filter(|d| !d.starts_with("SMB 2."))
                    .cloned()
                    .collect();
                self.report.smb1 |= !smb1_only.is_empty();
                self.report.smb1_dialects = smb1_only;
            }
            return;
        }
        let Ok(h) = Header::parse(msg) else { return };
        if let Some(id) = self.stripped {
            if h.session_id == self.strip_session.unwrap_or(0) && h.message_id > id {
                // Anything but LOGOFF on the session means the client took the response.
                if h.command != Command::LOGOFF {
                    self.report.accepts_unsigned = Some(true);
                }
            }
        }
        if let Some(g) = self.guest_session {
            if h.session_id == g && h.command != Command::SESSION_SETUP {
                self.report.accepts_guest = Some(true);
            }
        }
        match h.command {
            Command::NEGOTIATE => {
                if let Ok(n) = NegotiateRequest::read(msg) {
                    self.report.dialects = n.dialects.iter().map(|d| d.dotted()).collect();
                    self.report.negotiate_security_mode = Some(n.security_mode);
                    self.report.signing_required |= n.security_mode & SIGNING_REQUIRED != 0;
                }
            }
            Command::SESSION_SETUP => {
                if let Ok(s) = SessionSetupRequest::read(msg) {
                    self.report.session_setup_security_mode = Some(s.security_mode);
                    self.report.signing_required |=
                        u16::from(s.security_mode) & SIGNING_REQUIRED != 0;
                    match ntlmssp::find(&s.security_buffer) {
                        Some(Ntlm::Negotiate { flags }) => {
                            self.report.ntlm_flags = ntlmssp::flag_names(flags)
                                .iter()
                                .map(|s| s.to_string())
                                .collect();
                        }
                        Some(Ntlm::Authenticate(a)) => {
                            self.report.ntlm_version = Some(a.version().into());
                            self.report.ntlm_flags = ntlmssp::flag_names(a.flags)
                                .iter()
                                .map(|s| s.to_string())
                                .collect();
                            self.report.user = Some(a.user.clone());
                            self.report.domain = Some(a.domain.clone());
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// May rewrite `msg` (removes the signature of the first response after logon).
    fn server_message(&mut self, msg: &mut [u8]) {
        let Ok(h) = Header::parse(msg) else { return };
        if h.command == Command::NEGOTIATE {
            if let Ok(r) = smb_core::messages::negotiate::NegotiateResponse::read(msg) {
                self.report.dialect = Some(r.dialect_revision.dotted());
            }
        }
        if h.command == Command::SESSION_SETUP && h.status == NtStatus::SUCCESS {
            if let Ok(r) = SessionSetupResponse::read(msg) {
                if r.is_guest() {
                    self.guest_session = Some(h.session_id);
                    self.report.accepts_guest.get_or_insert(false);
                } else if !r.is_null() && self.strip_session.is_none() {
                    self.strip_session = Some(h.session_id);
                    self.report.accepts_unsigned = None;
                }
            }
            return;
        }
        // Not the TREE_CONNECT response: on 3.1.1 every client must find it signed
        // (MS-SMB2 3.2.5.5), whatever its policy, so it tells nothing about the policy.
        if self.stripped.is_none()
            && self.strip_session == Some(h.session_id)
            && h.command != Command::TREE_CONNECT
            && h.status != NtStatus::PENDING
            && h.message_id != u64::MAX
        {
            let flags_at = smb_core::header::FLAGS_OFFSET;
            let f = u32::from_le_bytes(msg[flags_at..flags_at + 4].try_into().unwrap_or([0; 4]));
            msg[flags_at..flags_at + 4].copy_from_slice(&(f & !flags::SIGNED).to_le_bytes());
            msg[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 16].fill(0);
            self.stripped = Some(h.message_id);
            self.report.accepts_unsigned = Some(false);
        }
    }
}

/// Relays one client until either side closes or the client is idle for `idle`.
async fn relay(
    client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    idle: Duration,
    offer_guest: bool,
) -> ClientReport {
    let mut st = Relay {
        offer_guest,
        ..Relay::default()
    };
    st.report.client = peer.to_string();
    let Ok(server) = TcpStream::connect(upstream).await else {
        st.report.reasons.push("internal server unreachable".into());
        return st.report;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (mut cbuf, mut sbuf) = (Vec::new(), Vec::new());
    loop {
        tokio::select! {
            f = tokio::time::timeout(idle, next_frame(&mut cr, &mut cbuf)) => {
                let Ok(Some(mut f)) = f else { break };
                st.client_message(&mut f);
                let mut out = (f.len() as u32).to_be_bytes().to_vec();
                out[0] = 0;
                out.extend_from_slice(&f);
                if sw.write_all(&out).await.is_err() { break }
            }
            f = next_frame(&mut sr, &mut sbuf) => {
                let Some(mut f) = f else { break };
                // In a compound response, the first message is the one looked at (and
                // stripped); each message of a chain is signed on its own.
                st.server_message(&mut f);
                let mut out = (f.len() as u32).to_be_bytes().to_vec();
                out[0] = 0;
                out.extend_from_slice(&f);
                if cw.write_all(&out).await.is_err() { break }
            }
        }
    }
    st.report
}
