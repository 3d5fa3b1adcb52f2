//! `smb-audit scan`: one server's signing posture, measured from the outside.
//!
//! Every probe is its own TCP connection: each dialect offered alone, each 3.1.1 signing
//! algorithm offered alone and all three together, a multi-protocol SMB1 NEGOTIATE, an
//! anonymous and a guest logon, and, with credentials, the enforcement check: after a real
//! logon on the lowest accepted dialect, one request without a signature and one with a wrong
//! signature, which a server that enforces signing refuses (MS-SMB2 3.3.5.2.4) without
//! executing them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use smb_core::conn::client::{
    ClientConfig, ClientConnection, ClientEvent, Credentials, NegotiateInfo,
};
use smb_core::header::{flags, Command, Dialect, Header, NtStatus, SMB1_PROTOCOL_ID};
use smb_core::messages::build;
use smb_core::messages::echo::EchoRequest;
use smb_core::messages::smb1_negotiate::{Smb1Negotiate, SMB1_COM_NEGOTIATE, SMB1_HEADER_LEN};
use smb_core::messages::tree_connect::TreeConnectRequest;
use smb_core::policy::{SigningPolicy, SIGNING_ENABLED, SIGNING_REQUIRED};
use smb_core::signing::Algorithm;
use tokio::time::Instant;

use crate::targets::{is_loopback, Host, Target};
use crate::wire::{Wire, WireError};

/// The Windows policy a server that does not require signing fails.
pub const SERVER_POLICY: &str = "Microsoft network server: Digitally sign communications \
     (always)";
/// Dialect strings of the SMB1 probe (what nmap's smb-protocols and old Windows offer).
const SMB1_DIALECTS: [&str; 6] = [
    "PC NETWORK PROGRAM 1.0",
    "LANMAN1.0",
    "Windows for Workgroups 3.1a",
    "LM1.2X002",
    "LANMAN2.1",
    "NT LM 0.12",
];

/// What one scan needs besides the target.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Budget for the whole host (every probe).
    pub timeout: Duration,
    pub credentials: Option<Credentials>,
    pub allow_non_loopback: bool,
}

/// One dialect offered alone.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DialectResult {
    pub accepted: bool,
    /// SecurityMode bits, null when refused.
    pub signing_enabled: Option<bool>,
    pub signing_required: Option<bool>,
}

/// The 3.1.1 SIGNING_CAPABILITIES the server accepts.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct SigningAlgorithms {
    /// Each algorithm the server picked when offered alone.
    pub accepted: Vec<String>,
    /// What it picked when offered aes-gmac, aes-cmac, hmac-sha256 (in that order); `aes-cmac`
    /// also when it answered no SIGNING_CAPABILITIES (the 3.1.1 default).
    pub preferred: Option<String>,
}

/// The enforcement check (with credentials).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Enforcement {
    pub dialect: String,
    /// The command sent unsigned and with a wrong signature.
    pub request: String,
    /// `executed: STATUS`, `refused: STATUS` or `refused: connection closed`.
    pub unsigned: String,
    pub bad_signature: String,
}

/// One host, as `--json` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub target: String,
    /// The address connected to.
    pub address: Option<String>,
    pub reachable: bool,
    /// A multi-protocol SMB1 NEGOTIATE was answered with an SMB1 dialect.
    pub smb1: Option<bool>,
    pub dialects: BTreeMap<String, DialectResult>,
    pub signing_algorithms: Option<SigningAlgorithms>,
    /// True only when required on every accepted dialect.
    pub signing_required: bool,
    /// A guest session was granted (an unknown user with a wrong password).
    pub guest: Option<bool>,
    /// An anonymous (null) session was granted.
    pub anonymous: Option<bool>,
    /// Null without credentials (or when the logon failed).
    pub enforced: Option<bool>,
    pub enforcement: Option<Enforcement>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// Why a probe could not be made (logon failures, unreachable host, garbage answers).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verdict {
    #[serde(rename = "SECURE")]
    Secure,
    #[serde(rename = "VULNERABLE")]
    Vulnerable,
    #[serde(rename = "ERROR")]
    #[default]
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Secure => "SECURE",
            Verdict::Vulnerable => "VULNERABLE",
            Verdict::Error => "ERROR",
        }
    }
}

impl HostReport {
    fn new(target: &Target) -> Self {
        Self::new_labelled(target.label())
    }

    fn new_labelled(target: String) -> Self {
        HostReport {
            target,
            address: None,
            reachable: false,
            smb1: None,
            dialects: BTreeMap::new(),
            signing_algorithms: None,
            signing_required: false,
            guest: None,
            anonymous: None,
            enforced: None,
            enforcement: None,
            verdict: Verdict::Error,
            reasons: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// An ERROR report for a target that could not be scanned at all.
    pub fn error(label: &str, why: String) -> Self {
        let mut r = HostReport::new_labelled(label.to_owned());
        r.errors.push(why);
        r
    }

    /// Hosts that do not require signing are relay targets.
    pub fn relay_target(&self) -> bool {
        self.reachable && self.verdict != Verdict::Error && !self.signing_required
            || self.enforced == Some(false)
    }
}

/// Scans one host. Never fails: what went wrong is in `errors` and the verdict.
pub async fn scan_host(target: Target, opts: ScanOptions) -> HostReport {
    let mut report = HostReport::new(&target);
    let deadline = Instant::now() + opts.timeout;
    let addr = match resolve(&target, opts.allow_non_loopback).await {
        Ok(a) => a,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    report.address = Some(addr.to_string());
    let server = target.host.to_string();
    let cx = Probe {
        addr,
        deadline,
        server: server.clone(),
    };

    // Each dialect alone.
    for d in Dialect::ALL {
        let config = cx.config(Credentials::anonymous()).only_dialect(d);
        match cx.negotiate(config).await {
            Ok((_, info)) if info.dialect == d => {
                report.reachable = true;
                report.dialects.insert(
                    d.dotted(),
                    DialectResult {
                        accepted: true,
                        signing_enabled: Some(info.server_security_mode & SIGNING_ENABLED != 0),
                        signing_required: Some(info.server_security_mode & SIGNING_REQUIRED != 0),
                    },
                );
            }
            other => {
                match other {
                    Err(WireError::Connect(e)) => {
                        report.errors.push(format!("{}: cannot connect: {e}", addr));
                        return report;
                    }
                    Err(WireError::Timeout) => {
                        report
                            .errors
                            .push(format!("no answer within {:?}", opts.timeout));
                        finish(&mut report);
                        return report;
                    }
                    Err(WireError::Garbage(g)) => {
                        report.reachable = true;
                        push_once(&mut report.errors, format!("not an SMB2 answer: {g}"));
                    }
                    Err(WireError::Client(e)) => {
                        report.reachable = true;
                        // An error status is a refusal; anything else is worth reporting.
                        if !e.to_string().contains("NEGOTIATE failed") {
                            push_once(&mut report.errors, format!("NEGOTIATE {}: {e}", d.dotted()));
                        }
                    }
                    // Refused (an error status, a close, another dialect): not accepted.
                    _ => report.reachable = true,
                }
                report.dialects.insert(
                    d.dotted(),
                    DialectResult {
                        accepted: false,
                        signing_enabled: None,
                        signing_required: None,
                    },
                );
            }
        }
    }
    let accepted: Vec<Dialect> = Dialect::ALL
        .into_iter()
        .filter(|d| report.dialects.get(&d.dotted()).is_some_and(|r| r.accepted))
        .collect();

    // 3.1.1 signing algorithms, each alone, then all three.
    if accepted.contains(&Dialect::SMB311) {
        let mut algs = SigningAlgorithms::default();
        for a in OFFERED {
            let mut config = cx
                .config(Credentials::anonymous())
                .only_dialect(Dialect::SMB311);
            config.signing_algorithms = vec![a];
            if let Ok((_, info)) = cx.negotiate(config).await {
                if info.signing_algorithm_negotiated && info.signing_algorithm == a {
                    algs.accepted.push(a.name().into());
                }
            }
        }
        let mut config = cx
            .config(Credentials::anonymous())
            .only_dialect(Dialect::SMB311);
        config.signing_algorithms = OFFERED.to_vec();
        if let Ok((_, info)) = cx.negotiate(config).await {
            algs.preferred = Some(info.signing_algorithm.name().into());
        }
        report.signing_algorithms = Some(algs);
    }

    // SMB1.
    match cx.smb1().await {
        Ok(v) => report.smb1 = Some(v),
        Err(e) => push_once(&mut report.errors, format!("SMB1 probe: {e}")),
    }

    if !accepted.is_empty() {
        // Anonymous and guest sessions (this client does not require signing, so it takes
        // what the server grants).
        report.anonymous = cx.unsigned_logon(Credentials::anonymous(), true).await;
        let mut tag = [0u8; 6];
        let _ = getrandom::getrandom(&mut tag);
        let nobody = format!("smb-audit-{}", hex::encode(tag));
        report.guest = cx
            .unsigned_logon(Credentials::password(&nobody, "", "not-a-password"), false)
            .await;

        if let Some(creds) = &opts.credentials {
            match cx.enforcement(accepted[0], creds).await {
                Ok(e) => {
                    report.enforced = Some(
                        e.unsigned.starts_with("refused") && e.bad_signature.starts_with("refused"),
                    );
                    report.enforcement = Some(e);
                }
                Err(e) => report.errors.push(format!("enforcement check: {e}")),
            }
        }
    }
    finish(&mut report);
    report
}

fn push_once(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Verdict and reasons, in the words of the seed's registry audit.
fn finish(report: &mut HostReport) {
    let accepted: Vec<(&String, &DialectResult)> =
        report.dialects.iter().filter(|(_, r)| r.accepted).collect();
    report.signing_required = !accepted.is_empty()
        && accepted
            .iter()
            .all(|(_, r)| r.signing_required == Some(true));
    if accepted.is_empty() && report.smb1 != Some(true) {
        report.verdict = Verdict::Error;
        if report.errors.is_empty() {
            report.errors.push("no SMB dialect accepted".into());
        }
        return;
    }
    let mut reasons = Vec::new();
    let lax: Vec<&str> = accepted
        .iter()
        .filter(|(_, r)| r.signing_required != Some(true))
        .map(|(d, _)| d.as_str())
        .collect();
    if !lax.is_empty() {
        reasons.push(format!(
            "SMB Server signing is NOT enforced on {} ({SERVER_POLICY} = Disabled; \
             RequireSecuritySignature = 0)",
            lax.join(", ")
        ));
    }
    if accepted.is_empty() {
        reasons.push(format!(
            "SMB Server signing is NOT enforced: only SMB1 is spoken ({SERVER_POLICY}; \
             RequireSecuritySignature)"
        ));
    }
    if report.smb1 == Some(true) {
        reasons.push(
            "SMBv1 enabled (Windows: SMB1 = 1 under LanmanServer\\Parameters; \
             Set-SmbServerConfiguration -EnableSMB1Protocol $false)"
                .into(),
        );
    }
    if report.enforced == Some(false) {
        let what = match &report.enforcement {
            Some(e) if e.unsigned.starts_with("executed") => "an unsigned request",
            _ => "a wrongly signed request",
        };
        reasons.push(format!(
            "SMB Server signing is NOT enforced: {what} was executed after logon{} \
             ({SERVER_POLICY}; RequireSecuritySignature)",
            if lax.is_empty() {
                " although every dialect advertises signing required"
            } else {
                ""
            }
        ));
    }
    if reasons.is_empty() {
        report.verdict = Verdict::Secure;
        reasons.push("SMB Server signing is enforced (RequireSecuritySignature = 1)".into());
    } else {
        report.verdict = Verdict::Vulnerable;
    }
    report.reasons = reasons;
}

async fn resolve(target: &Target, allow_non_loopback: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = match &target.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, target.port)],
        Host::Name(n) => tokio::net::lookup_host((n.as_str(), target.port))
            .await
            .map_err(|e| format!("cannot resolve {n}: {e}"))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{}: no address", target.host))?;
    if !allow_non_loopback {
        if let Some(a) = addrs.iter().find(|a| !is_loopback(a.ip())) {
            return Err(format!(
                "{} resolves to {}, which is not a loopback address (pass \
                 --allow-non-loopback to scan other networks)",
                target.host,
                a.ip()
            ));
        }
    }
    Ok(first)
}

/// Tracks the next MessageId from what a [`ClientConnection`] sent.
#[derive(Debug, Default)]
struct NextId(u64);

impl NextId {
    fn saw(&mut self, message: &[u8]) {
        if let Ok(h) = Header::parse(message) {
            self.0 = self.0.max(h.message_id + u64::from(h.credit_charge.max(1)));
        }
    }
}

/// One host's probes.
#[derive(Debug)]
struct Probe {
    addr: SocketAddr,
    deadline: Instant,
    server: String,
}

impl Probe {
    /// Signing enabled, not required: the answers show the server's own policy.
    fn config(&self, creds: Credentials) -> ClientConfig {
        let mut c = ClientConfig::new(&self.server, creds);
        c.signing = SigningPolicy::ENABLED;
        c
    }

    /// NEGOTIATE only. A refusal (error status) is `Err(Closed)`.
    async fn negotiate(&self, config: ClientConfig) -> Result<(Session, NegotiateInfo), WireError> {
        let mut wire = Wire::connect(self.addr, self.deadline).await?;
        let mut conn = ClientConnection::new(config);
        let mut next = NextId::default();
        let id = conn.negotiate().map_err(WireError::Client)?;
        let ev = wire.drive(&mut conn, id, &mut |m| next.saw(m)).await?;
        match (ev, conn.negotiated()) {
            (ClientEvent::Response { status, .. }, Some(info)) if status.is_success() => {
                let info = info.clone();
                Ok((Session { wire, conn, next }, info))
            }
            _ => Err(WireError::Closed),
        }
    }

    /// Logs on with `creds` without requiring signing; Some(true) when the server granted a
    /// session of the asked kind (anonymous, or guest), None when the probe failed.
    async fn unsigned_logon(&self, creds: Credentials, anonymous: bool) -> Option<bool> {
        let (mut s, _) = self.negotiate(self.config(creds)).await.ok()?;
        let id = s.conn.session_setup().ok()?;
        let next = &mut s.next;
        match s.wire.drive(&mut s.conn, id, &mut |m| next.saw(m)).await {
            Ok(ClientEvent::Response { status, .. }) if status.is_success() => Some(if anonymous {
                s.conn.session_is_anonymous()
            } else {
                s.conn.session_is_guest()
            }),
            Ok(_) | Err(WireError::Closed) => Some(false),
            Err(WireError::Client(_)) => Some(false),
            Err(_) => None,
        }
    }

    /// Logs on with real credentials, then sends one request unsigned and (on a second
    /// connection, since a server may drop the first) one with a wrong signature.
    async fn enforcement(
        &self,
        dialect: Dialect,
        creds: &Credentials,
    ) -> Result<Enforcement, String> {
        // On 3.1.1 an unsigned TREE_CONNECT is refused by every server (MS-SMB2 3.3.5.7),
        // whatever its policy: ECHO says more there.
        let command = if dialect == Dialect::SMB311 {
            Command::ECHO
        } else {
            Command::TREE_CONNECT
        };
        let unsigned = self.tampered(dialect, creds, command, false).await?;
        let bad = self.tampered(dialect, creds, command, true).await?;
        Ok(Enforcement {
            dialect: dialect.dotted(),
            request: format!("{command}"),
            unsigned,
            bad_signature: bad,
        })
    }

    async fn tampered(
        &self,
        dialect: Dialect,
        creds: &Credentials,
        command: Command,
        bad_signature: bool,
    ) -> Result<String, String> {
        let config = self.config(creds.clone()).only_dialect(dialect);
        let (mut s, _) = self
            .negotiate(config)
            .await
            .map_err(|e| format!("NEGOTIATE {}: {e}", dialect.dotted()))?;
        let id = s.conn.session_setup().map_err(|e| e.to_string())?;
        let next = &mut s.next;
        match s.wire.drive(&mut s.conn, id, &mut |m| next.saw(m)).await {
            Ok(ClientEvent::Response { status, .. }) if status.is_success() => {}
            Ok(ClientEvent::Response { status, .. }) => {
                return Err(format!("logon failed: {status}"))
            }
            Ok(_) => return Err("logon failed".into()),
            Err(e) => return Err(format!("logon failed: {e}")),
        }
        if s.conn.session_is_guest() || s.conn.session_is_anonymous() {
            return Err("the credentials were mapped to a guest or anonymous session".into());
        }
        let sid = s.conn.session_id().unwrap_or(0);
        let mid = s.next.0;
        let mut header = Header::request(command, mid, sid, 0);
        if bad_signature {
            header.flags |= flags::SIGNED;
            let _ = getrandom::getrandom(&mut header.signature);
            header.signature[0] ^= 0x5A; // never all zero
        }
        let msg = if command == Command::TREE_CONNECT {
            let path = format!("\\\\{}\\IPC$", self.server);
            build(&header, &TreeConnectRequest { flags: 0, path })
        } else {
            build(&header, &EchoRequest)
        };
        if let Err(e) = s.wire.send(&msg).await {
            return Ok(format!("refused: {e}"));
        }
        loop {
            match s.wire.recv().await {
                Ok(frame) => {
                    let Ok(h) = Header::parse(&frame) else {
                        return Err("an answer that is not SMB2".into());
                    };
                    if h.message_id != mid || h.status == NtStatus::PENDING {
                        continue;
                    }
                    return Ok(if h.status.is_success() {
                        format!("executed: {}", h.status)
                    } else {
                        format!("refused: {}", h.status)
                    });
                }
                Err(WireError::Closed) => return Ok("refused: connection closed".into()),
                Err(WireError::Timeout) => return Ok("refused: no answer".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// A multi-protocol SMB1 NEGOTIATE; true when answered with an SMB1 dialect.
    async fn smb1(&self) -> Result<bool, WireError> {
        let mut wire = Wire::connect(self.addr, self.deadline).await?;
        let mut msg = Vec::new();
        Smb1Negotiate {
            dialects: SMB1_DIALECTS.iter().map(|s| s.to_string()).collect(),
        }
        .encode(&mut msg);
        wire.send(&msg).await?;
        let frame = match wire.recv().await {
            Ok(f) => f,
            Err(WireError::Closed) | Err(WireError::Garbage(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(smb1_dialect_chosen(&frame))
    }
}

/// True for an SMB1 NEGOTIATE response whose DialectIndex names one of the offered dialects
/// (0xFFFF means none; an SMB2 answer means SMB1 is off).
pub fn smb1_dialect_chosen(frame: &[u8]) -> bool {
    if !frame.starts_with(&SMB1_PROTOCOL_ID) || frame.get(4) != Some(&SMB1_COM_NEGOTIATE) {
        return false;
    }
    let status = frame
        .get(5..9)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let word_count = frame.get(SMB1_HEADER_LEN).copied().unwrap_or(0);
    let index = frame
        .get(SMB1_HEADER_LEN + 1..SMB1_HEADER_LEN + 3)
        .map(|b| u16::from_le_bytes([b[0], b[1]]));
    status == Some(0)
        && word_count >= 1
        && index.is_some_and(|i| usize::from(i) < SMB1_DIALECTS.len())
}

/// A negotiated connection kept for more requests.
#[derive(Debug)]
struct Session {
    wire: Wire,
    conn: ClientConnection,
    next: NextId,
}

/// The order all three are offered in for "which does it pick" (Windows' and ours).
const OFFERED: [Algorithm; 3] = [
    Algorithm::AesGmac,
    Algorithm::AesCmac,
    Algorithm::HmacSha256,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dialects: &[(&str, bool, bool)], smb1: bool, enforced: Option<bool>) -> HostReport {
        let t = crate::targets::expand(&["127.0.0.1".into()], 445, false).unwrap();
        let mut r = HostReport::new(&t[0]);
        r.reachable = true;
        for (d, accepted, required) in dialects {
            r.dialects.insert(
                d.to_string(),
                DialectResult {
                    accepted: *accepted,
                    signing_enabled: accepted.then_some(true),
                    signing_required: accepted.then_some(*required),
                },
            );
        }
        r.smb1 = Some(smb1);
        r.enforced = enforced;
        finish(&mut r);
        r
    }

    #[test]
    fn verdicts_follow_every_accepted_dialect_smb1_and_enforcement() {
        let r = report(
            &[
                ("2.1", true, true),
                ("3.1.1", true, true),
                ("3.0", false, false),
            ],
            false,
            None,
        );
        assert_eq!(r.verdict, Verdict::Secure);
        assert!(r.signing_required);
        assert_eq!(
            r.reasons,
            ["SMB Server signing is enforced (RequireSecuritySignature = 1)"]
        );
        assert!(!r.relay_target());

        let r = report(&[("2.1", true, false), ("3.1.1", true, true)], false, None);
        assert_eq!(r.verdict, Verdict::Vulnerable);
        assert!(!r.signing_required);
        assert!(
            r.reasons[0].starts_with("SMB Server signing is NOT enforced on 2.1"),
            "{:?}",
            r.reasons
        );
        assert!(r.reasons[0].contains("Digitally sign communications (always)"));
        assert!(r.relay_target());

        let r = report(&[("3.1.1", true, true)], true, None);
        assert_eq!(r.verdict, Verdict::Vulnerable);
        assert!(r.reasons[0].starts_with("SMBv1 enabled"));

        let r = report(&[("3.0", true, true)], false, Some(false));
        assert_eq!(r.verdict, Verdict::Vulnerable);
        assert!(r.reasons[0].contains("although every dialect advertises signing required"));
        assert!(r.relay_target());

        let r = report(&[("3.0", false, false)], false, None);
        assert_eq!(r.verdict, Verdict::Error);
    }

    #[test]
    fn smb1_answers() {
        let mut yes = vec![0xFF, b'S', b'M', b'B', 0x72, 0, 0, 0, 0];
        yes.resize(SMB1_HEADER_LEN, 0);
        yes.extend_from_slice(&[17, 5, 0]);
        assert!(smb1_dialect_chosen(&yes));
        let mut none = yes.clone();
        none[SMB1_HEADER_LEN + 1] = 0xFF;
        none[SMB1_HEADER_LEN + 2] = 0xFF;
        assert!(!smb1_dialect_chosen(&none));
        assert!(!smb1_dialect_chosen(&yes[..SMB1_HEADER_LEN]));
        assert!(!smb1_dialect_chosen(b"\xfeSMB"));
    }
}
