//! The lab's scenarios, each a function that starts what it needs on loopback (our server
//! as the target, our client as the victim, the relay or the tamper proxy as the attacker),
//! runs one session, and says whether it ended as expected.
//!
//! Expectations are stated from the protocol, not from a lookup of results: a relay gets in
//! exactly when the target does not require signing; a session is signed exactly when either
//! side requires it; a flipped bit is caught exactly when the session is signed; a stripped
//! SIGNING_REQUIRED is caught by the server's own policy (2.x), validate-negotiate (3.0,
//! 3.0.2) or the preauth integrity hash (3.1.1).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use smb_client::audit::AuditLog;
use smb_client::client::{Client, Error as ClientError, SessionInfo};
use smb_core::auth::Credentials;
use smb_core::conn::client::ClientConfig;
use smb_core::header::Dialect;
use smb_core::policy::SigningPolicy;

use crate::relay::{Relay, RelayAction, RelayAttempt, RelayOptions, VictimReply};
use crate::report::{ScenarioResult, TableCell};
use crate::samba::{self, SambaTarget};
use crate::tamper::{TamperMode, TamperProxy, TamperTrace};
use crate::target::{self, TargetServer, TargetSetup};

/// How long one victim operation may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Who sits where (distinct loopback addresses).
#[derive(Debug, Clone, Copy)]
pub struct Lab {
    pub victim: IpAddr,
    pub attacker: IpAddr,
    pub target: IpAddr,
}

impl Default for Lab {
    fn default() -> Self {
        Lab {
            victim: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            attacker: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
            target: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)),
        }
    }
}

/// The victim's settings.
#[derive(Debug, Clone)]
pub struct VictimSetup {
    pub require_signing: bool,
    /// None: offer every dialect.
    pub dialect: Option<Dialect>,
    pub user: String,
    pub password: String,
}

impl VictimSetup {
    pub fn new(require_signing: bool) -> Self {
        VictimSetup {
            require_signing,
            dialect: None,
            user: target::USER.into(),
            password: target::PASSWORD.into(),
        }
    }
}

/// What the victim's client saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VictimOutcome {
    /// The `session:` line, once a session was up.
    pub session: Option<String>,
    pub signed: Option<bool>,
    /// Operations that succeeded, in order.
    pub done: Vec<String>,
    /// The error that ended the run, if any.
    pub error: Option<String>,
    /// Whether the error is the client rejecting a response (bad signature, validate
    /// negotiate, unsignable session) rather than a status from the server.
    pub client_rejected: bool,
    /// For reads: the bytes differing from the file on the target, in bits.
    pub bits_changed: Option<u32>,
}

/// What the victim does once logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VictimWork {
    /// Only log in.
    Login,
    /// Log in, connect the share, read the secret file.
    Read,
    /// Log in, connect, write a file, read it back, log off.
    WriteRead,
}

fn client_config(server: SocketAddr, v: &VictimSetup) -> ClientConfig {
    let creds = Credentials::password(&v.user, "", &v.password);
    let mut cfg = ClientConfig::new(&server.to_string(), creds);
    cfg.signing = SigningPolicy::new(v.require_signing);
    if let Some(d) = v.dialect {
        cfg.dialects = vec![d];
    }
    cfg
}

fn describe(e: &ClientError) -> (String, bool) {
    let rejected = matches!(e, ClientError::Connection(_));
    (e.to_string(), rejected)
}

/// Runs the victim's client from `lab.victim` against `server`.
async fn run_victim(
    lab: &Lab,
    server: SocketAddr,
    v: &VictimSetup,
    work: VictimWork,
) -> VictimOutcome {
    let mut out = VictimOutcome::default();
    let steps = victim_steps(lab.victim, server, v, work, &mut out);
    let result = tokio::time::timeout(CLIENT_TIMEOUT * 2, steps).await;
    let err = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(describe(&e)),
        Err(_) => Some(("the victim's client timed out".to_string(), false)),
    };
    if let Some((msg, rejected)) = err {
        out.error = Some(msg);
        out.client_rejected = rejected;
    }
    out
}

async fn victim_steps(
    from: IpAddr,
    server: SocketAddr,
    v: &VictimSetup,
    work: VictimWork,
    out: &mut VictimOutcome,
) -> Result<(), ClientError> {
    let cfg = client_config(server, v);
    // The victim has its own loopback address, so the relay sees who it is relaying.
    let mut c = Client::connect_from(
        server,
        Some(from),
        cfg,
        CLIENT_TIMEOUT,
        Arc::new(AuditLog::disabled()),
    )
    .await?;
    let session: SessionInfo = c.login().await?;
    out.session = Some(session.to_string());
    out.signed = Some(session.signed);
    out.done.push("login".into());
    if work == VictimWork::Login {
        return Ok(());
    }
    let unc = format!("\\\\{}\\{}", server.ip(), target::SHARE);
    let tree = c.tree_connect(&unc).await?;
    out.done.push("tree connect".into());
    if work == VictimWork::WriteRead {
        let data = b"signed or not, this must come back intact\n".repeat(20);
        c.write_file(tree, "table-check.txt", &data).await?;
        out.done.push("write".into());
        let back = c.read_file(tree, "table-check.txt").await?;
        out.done.push("read".into());
        out.bits_changed = Some(bit_difference(&back, &data));
        c.logoff().await?;
        out.done.push("logoff".into());
        return Ok(());
    }
    let data = c.read_file(tree, target::SECRET_FILE).await?;
    out.done.push(format!(
        "read {} ({} bytes)",
        target::SECRET_FILE,
        data.len()
    ));
    out.bits_changed = Some(bit_difference(&data, &target::secret_content()));
    let _ = c.logoff().await;
    Ok(())
}

/// Differing bits (a length difference counts 8 per missing byte).
fn bit_difference(a: &[u8], b: &[u8]) -> u32 {
    let common: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
    common + 8 * (a.len().abs_diff(b.len()) as u32)
}

/// Waits for a task; one that does not finish in time is aborted (nothing outlives its
/// scenario).
async fn join_within<T>(
    mut task: tokio::task::JoinHandle<T>,
    limit: Duration,
    what: &str,
) -> anyhow::Result<Result<T, tokio::task::JoinError>> {
    match tokio::time::timeout(limit, &mut task).await {
        Ok(r) => Ok(r),
        Err(_) => {
            task.abort();
            anyhow::bail!("{what} did not finish within {limit:?}")
        }
    }
}

/// Runs one victim session through a tamper proxy on the attacker's address.
async fn through_proxy(
    lab: &Lab,
    server: SocketAddr,
    mode: TamperMode,
    v: &VictimSetup,
    work: VictimWork,
) -> anyhow::Result<(VictimOutcome, TamperTrace)> {
    // TamperProxy::bind keeps the attacker's address on loopback, as for the CLI.
    let proxy = TamperProxy::bind(SocketAddr::new(lab.attacker, 0), server, mode).await?;
    let proxy_addr = proxy.local_addr()?;
    let proxy = tokio::spawn(async move { proxy.accept_one().await });
    let outcome = run_victim(lab, proxy_addr, v, work).await;
    let trace = join_within(proxy, Duration::from_secs(10), "the proxy").await???;
    Ok((outcome, trace))
}

fn on_off(b: bool) -> &'static str {
    if b {
        "requires"
    } else {
        "does not require"
    }
}

fn error_result(
    id: String,
    group: &str,
    title: String,
    expected: String,
    e: anyhow::Error,
) -> ScenarioResult {
    ScenarioResult {
        id,
        group: group.into(),
        title,
        expected,
        observed: format!("the scenario could not run: {e:#}"),
        passed: false,
        evidence: json!({ "error": format!("{e:#}") }),
    }
}

/// What a relay against this target must end with.
fn relay_expectation(dialect: Dialect, server_requires: bool) -> (&'static str, &'static str) {
    match (server_requires, dialect == Dialect::SMB311) {
        (true, _) => (
            "blocked",
            "authentication accepted, first request refused (ACCESS_DENIED), no marker",
        ),
        (false, true) => (
            "blocked-311",
            "authentication accepted, unsigned TREE_CONNECT refused: 3.1.1 requires it signed \
             (MS-SMB2 3.3.5.7), no marker",
        ),
        (false, false) => ("got-in", "attacker gets in: share listed, marker written"),
    }
}

/// Relay of a victim's authentication to our server, requiring signing or not.
pub async fn relay(
    lab: &Lab,
    dialect: Dialect,
    server_requires: bool,
    victim_requires: bool,
) -> ScenarioResult {
    relay_on(
        lab,
        TargetKind::Ours,
        dialect,
        server_requires,
        victim_requires,
    )
    .await
}

/// Relay of a victim's authentication to a target of `kind`, requiring signing or not.
pub async fn relay_on(
    lab: &Lab,
    kind: TargetKind,
    dialect: Dialect,
    server_requires: bool,
    victim_requires: bool,
) -> ScenarioResult {
    let group = if victim_requires {
        "victim-signing"
    } else {
        "relay"
    };
    let (prefix, name) = match (kind, server_requires) {
        (TargetKind::Ours, _) => ("", String::new()),
        (TargetKind::Samba, true) => ("samba/", " (Samba, server signing = mandatory)".to_string()),
        (TargetKind::Samba, false) => ("samba/", " (Samba, server signing = auto)".to_string()),
    };
    let id = format!(
        "{prefix}relay/{}/server-{}/victim-{}",
        dialect.dotted(),
        if server_requires {
            "requires"
        } else {
            "enabled"
        },
        if victim_requires {
            "requires"
        } else {
            "enabled"
        }
    );
    let title = format!(
        "Relay, SMB {}: target{name} {} signing, victim {} signing",
        dialect.dotted(),
        on_off(server_requires),
        on_off(victim_requires)
    );
    let (outcome, expected) = relay_expectation(dialect, server_requires);
    let expected = expected.to_string();
    match relay_run(
        lab,
        kind,
        dialect,
        server_requires,
        victim_requires,
        VictimReply::LogonFailure,
    )
    .await
    {
        Ok((attempt, victim, marker_on_share, listed_secret)) => {
            let stopped_at_tree = |ok: &dyn Fn(&str) -> bool| {
                attempt
                    .stopped_at
                    .as_ref()
                    .is_some_and(|s| s.request == "TREE_CONNECT" && ok(&s.status))
            };
            let nothing_done = attempt.auth_accepted
                && attempt.first_post_auth_accepted == Some(false)
                && !attempt.marker_written
                && !marker_on_share;
            let passed = victim.error.is_some()
                && match outcome {
                    "blocked" => nothing_done && stopped_at_tree(&|s| s == "ACCESS_DENIED"),
                    // Refused or disconnected: either way nothing runs.
                    "blocked-311" => nothing_done && stopped_at_tree(&|s| s != "SUCCESS"),
                    _ => {
                        attempt.auth_accepted
                            && attempt.first_post_auth_accepted == Some(true)
                            && attempt.marker_written
                            && marker_on_share
                            && listed_secret
                    }
                };
            let observed = relay_observed(&attempt, marker_on_share);
            ScenarioResult {
                id,
                group: group.into(),
                title,
                expected,
                observed,
                passed,
                evidence: json!({
                    "attempt": attempt,
                    "victim": victim,
                    "marker_on_target_share": marker_on_share,
                }),
            }
        }
        Err(e) => error_result(id, group, title, expected, e),
    }
}

fn relay_observed(a: &RelayAttempt, marker_on_share: bool) -> String {
    let auth = match (&a.auth_status, a.auth_accepted) {
        (_, true) => "authentication accepted".to_string(),
        (Some(s), false) => format!("authentication refused ({s})"),
        (None, false) => format!("no authentication ({})", a.error.as_deref().unwrap_or("?")),
    };
    let rest = match (&a.stopped_at, a.first_post_auth_accepted) {
        (Some(s), _) => format!("stopped at {} ({})", s.request, s.status),
        (None, Some(true)) => {
            let listed = match a.listing.as_ref().map(Vec::len) {
                Some(1) => "share listed (1 entry)".to_string(),
                Some(n) => format!("share listed ({n} entries)"),
                None => "share not listed".to_string(),
            };
            let marker = if a.marker_written {
                "marker written"
            } else {
                "marker not written"
            };
            format!("{listed}, {marker}")
        }
        _ => String::new(),
    };
    let share = if marker_on_share {
        "marker on the share"
    } else {
        "no marker on the share"
    };
    [auth, rest, share.to_string()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which server plays the target of the relay scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Our server, in process.
    Ours,
    /// A private smbd (`server signing = mandatory` when the target requires signing,
    /// `auto` when not).
    Samba,
}

/// A started target of either kind.
#[derive(Debug)]
enum RunningTarget {
    Ours(TargetServer),
    Samba(SambaTarget),
}

impl RunningTarget {
    async fn start(
        lab: &Lab,
        kind: TargetKind,
        dialect: Dialect,
        requires: bool,
    ) -> anyhow::Result<Self> {
        match kind {
            TargetKind::Ours => Ok(RunningTarget::Ours(
                TargetServer::start(&TargetSetup::new(lab.target, requires).dialect(dialect))
                    .await?,
            )),
            TargetKind::Samba => {
                // smbd binds only addresses of a configured interface, and `lo` carries
                // 127.0.0.1 only (127.0.0.4 is routed to it, not assigned to it).
                let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
                let samba = tokio::task::spawn_blocking(move || {
                    let content = target::secret_content();
                    SambaTarget::start(ip, requires, dialect, (target::SECRET_FILE, &content))
                })
                .await??;
                Ok(RunningTarget::Samba(samba))
            }
        }
    }

    /// Stops the target; smbd is stopped off the async workers (it waits for its processes).
    async fn stop(self) {
        if let RunningTarget::Samba(samba) = self {
            let _ = tokio::task::spawn_blocking(move || drop(samba)).await;
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            RunningTarget::Ours(s) => s.addr,
            RunningTarget::Samba(s) => s.addr,
        }
    }

    fn has_file(&self, name: &str) -> bool {
        match self {
            RunningTarget::Ours(s) => s.has_file(name),
            RunningTarget::Samba(s) => s.has_file(name),
        }
    }

    /// The victim's account on this target.
    fn victim(&self, require_signing: bool) -> VictimSetup {
        let mut v = VictimSetup::new(require_signing);
        if let RunningTarget::Samba(_) = self {
            v.user = samba::USER.into();
            v.password = samba::PASSWORD.into();
        }
        v
    }

    fn share(&self) -> &'static str {
        match self {
            RunningTarget::Ours(_) => target::SHARE,
            RunningTarget::Samba(_) => samba::SHARE,
        }
    }
}

async fn relay_run(
    lab: &Lab,
    kind: TargetKind,
    dialect: Dialect,
    server_requires: bool,
    victim_requires: bool,
    reply: VictimReply,
) -> anyhow::Result<(RelayAttempt, VictimOutcome, bool, bool)> {
    let server = RunningTarget::start(lab, kind, dialect, server_requires).await?;
    let mut options = RelayOptions::new(server.addr(), server.share());
    options.source = Some(lab.attacker);
    options.action = RelayAction::default();
    // The target accepts one dialect; offer them all so the scenario runs at that one.
    options.dialects = Dialect::ALL.to_vec();
    options.victim_reply = reply;
    let relay = Relay::bind(SocketAddr::new(lab.attacker, 0), options).await?;
    let relay_addr = relay.local_addr()?;
    let attacker = tokio::spawn(async move { relay.accept_one().await });
    let victim = run_victim(
        lab,
        relay_addr,
        &server.victim(victim_requires),
        VictimWork::Login,
    )
    .await;
    let attempt = join_within(attacker, Duration::from_secs(20), "the relay").await??;
    let marker_on_share = server.has_file(RelayAction::DEFAULT_MARKER);
    let listed_secret = attempt
        .listing
        .as_ref()
        .is_some_and(|l| l.iter().any(|n| n == target::SECRET_FILE));
    server.stop().await;
    Ok((attempt, victim, marker_on_share, listed_secret))
}

/// One cell of the signing table: a real session through an observing proxy.
pub async fn table_cell(
    lab: &Lab,
    dialect: Dialect,
    client_requires: bool,
    server_requires: bool,
) -> TableCell {
    table_cell_on(
        lab,
        TargetKind::Ours,
        dialect,
        client_requires,
        server_requires,
    )
    .await
}

/// One cell of the signing table against a target of `kind`.
pub async fn table_cell_on(
    lab: &Lab,
    kind: TargetKind,
    dialect: Dialect,
    client_requires: bool,
    server_requires: bool,
) -> TableCell {
    let expected = if client_requires || server_requires {
        "signed"
    } else {
        "unsigned"
    };
    let run = async {
        let server = RunningTarget::start(lab, kind, dialect, server_requires).await?;
        let v = server.victim(client_requires);
        let r = through_proxy(
            lab,
            server.addr(),
            TamperMode::Observe,
            &v,
            VictimWork::WriteRead,
        )
        .await;
        server.stop().await;
        r
    };
    let mut by_rule = 0;
    let (observed, signed, total, passed) = match run.await {
        Ok((victim, trace)) => {
            // Messages the protocol signs whatever the policy are left out of the verdict
            // (see `WireRecord::signed_by_rule`).
            let c = trace.post_auth_signing();
            by_rule = trace.signed_by_rule_count();
            let total = c.requests + c.responses;
            let signed = c.signed_requests + c.signed_responses;
            let observed = match &victim.error {
                Some(e) => format!("failed: {e}"),
                None => c.verdict().to_string(),
            };
            // The client's own view must agree with the wire, and the data must be intact.
            let consistent =
                victim.signed == Some(expected == "signed") && victim.bits_changed == Some(0);
            (
                observed.clone(),
                signed,
                total,
                victim.error.is_none() && observed == expected && consistent,
            )
        }
        Err(e) => (format!("failed: {e:#}"), 0, 0, false),
    };
    TableCell {
        dialect: dialect.dotted(),
        client_requires,
        server_requires,
        observed,
        signed_messages: signed,
        post_auth_messages: total,
        signed_by_rule_messages: by_rule,
        expected: expected.into(),
        passed,
    }
}

/// Flip one bit of READ data on a signed or unsigned session.
pub async fn flip_read(lab: &Lab, dialect: Dialect, signed: bool) -> ScenarioResult {
    flip_read_on(lab, TargetKind::Ours, dialect, signed).await
}

/// Flip one bit of READ data from a target of `kind` (Samba: `server signing = mandatory`
/// for the signed session, `auto` with a client not requiring signing for the unsigned one).
pub async fn flip_read_on(
    lab: &Lab,
    kind: TargetKind,
    dialect: Dialect,
    signed: bool,
) -> ScenarioResult {
    let prefix = if kind == TargetKind::Samba {
        "samba/"
    } else {
        ""
    };
    let id = format!(
        "{prefix}flip-read/{}/{}",
        dialect.dotted(),
        if signed { "signed" } else { "unsigned" }
    );
    let title = format!(
        "Tamper flip-read, SMB {}, {} session{}",
        dialect.dotted(),
        if signed { "signed" } else { "unsigned" },
        if kind == TargetKind::Samba {
            " (Samba)"
        } else {
            ""
        }
    );
    let expected = if signed {
        "client rejects the altered READ response (bad signature)".to_string()
    } else {
        "corruption undetected: client accepts data with 1 bit changed".to_string()
    };
    let run = async {
        let server = RunningTarget::start(lab, kind, dialect, signed).await?;
        let v = server.victim(signed);
        let r = through_proxy(
            lab,
            server.addr(),
            TamperMode::FlipRead,
            &v,
            VictimWork::Read,
        )
        .await;
        server.stop().await;
        r
    };
    match run.await {
        Ok((victim, trace)) => {
            let changed = trace.changes.len() == 1;
            let passed = changed
                && if signed {
                    victim.error.is_some()
                        && victim.client_rejected
                        && victim.bits_changed.is_none()
                } else {
                    victim.error.is_none() && victim.bits_changed == Some(1)
                };
            let observed = match (&victim.error, victim.bits_changed) {
                (Some(e), _) => format!("client: {e}; {}", trace.client_reaction()),
                (None, Some(bits)) => format!(
                    "client accepted the data, {bits} bit(s) differ from the file; {}",
                    trace.client_reaction()
                ),
                (None, None) => "client finished without reading".to_string(),
            };
            ScenarioResult {
                id,
                group: "flip-read".into(),
                title,
                expected,
                observed: if changed {
                    observed
                } else {
                    format!("nothing was altered; {observed}")
                },
                passed,
                evidence: json!({ "victim": victim, "changes": trace.changes, "client_reaction": trace.client_reaction(), "post_auth_signing": trace.post_auth_signing() }),
            }
        }
        Err(e) => error_result(id, "flip-read", title, expected, e),
    }
}

/// What stops a stripped SIGNING_REQUIRED, per dialect and client policy.
fn strip_expectation(dialect: Dialect, client_requires: bool) -> (&'static str, String) {
    if dialect == Dialect::SMB311 {
        ("preauth", "detected: the preauth integrity hash differs, the client rejects the signed SESSION_SETUP response".into())
    } else if dialect.is_smb3() && client_requires {
        ("validate-negotiate", "detected: FSCTL_VALIDATE_NEGOTIATE_INFO shows the altered SecurityMode, the client disconnects".into())
    } else if client_requires {
        (
            "client-policy",
            "no effect: the client requires signing itself, the session is signed".into(),
        )
    } else {
        ("server-policy", "no effect: the server still requires signing and refuses the client's unsigned request".into())
    }
}

/// Clear SIGNING_REQUIRED in the server's NEGOTIATE response.
pub async fn strip(lab: &Lab, dialect: Dialect, client_requires: bool) -> ScenarioResult {
    let id = format!(
        "strip-signing-required/{}/client-{}",
        dialect.dotted(),
        if client_requires {
            "requires"
        } else {
            "enabled"
        }
    );
    let title = format!(
        "Tamper strip-signing-required, SMB {}, client {} signing",
        dialect.dotted(),
        on_off(client_requires)
    );
    let (mechanism, expected) = strip_expectation(dialect, client_requires);
    let run = async {
        let server =
            TargetServer::start(&TargetSetup::new(lab.target, true).dialect(dialect)).await?;
        let v = VictimSetup::new(client_requires);
        let r = through_proxy(
            lab,
            server.addr,
            TamperMode::StripSigningRequired,
            &v,
            VictimWork::WriteRead,
        )
        .await?;
        Ok::<_, anyhow::Error>((r, server.events()))
    };
    match run.await {
        Ok(((victim, trace), events)) => {
            let stripped = trace.changes.len() == 1;
            let err = victim
                .error
                .clone()
                .unwrap_or_default()
                .to_ascii_lowercase();
            // The downgrade worked only if an unsigned request after authentication was
            // answered with success.
            let unsigned_ok = unsigned_request_succeeded(&trace);
            let detected = match mechanism {
                "preauth" => {
                    victim.client_rejected
                        && err.contains("session_setup")
                        && victim.session.is_none()
                }
                "validate-negotiate" => victim.client_rejected && err.contains("validat"),
                "client-policy" => {
                    victim.error.is_none()
                        && victim.signed == Some(true)
                        && trace.post_auth_signing().all_signed()
                }
                _ => victim
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("ACCESS_DENIED")),
            };
            let passed = stripped && detected && !unsigned_ok;
            let observed = format!(
                "{}; {}",
                victim.error.as_deref().map_or_else(
                    || format!(
                        "client finished ({}), session {}",
                        victim.done.join(", "),
                        victim.session.as_deref().unwrap_or("?")
                    ),
                    |e| format!("client: {e}")
                ),
                trace.client_reaction()
            );
            let rejected: Vec<&serde_json::Value> = events
                .iter()
                .filter(|e| e["event"] == "request_rejected")
                .collect();
            ScenarioResult {
                id,
                group: "strip-signing-required".into(),
                title,
                expected: expected.clone(),
                observed: if stripped {
                    observed
                } else {
                    format!("nothing was stripped; {observed}")
                },
                passed,
                evidence: json!({
                    "mechanism": mechanism,
                    "victim": victim,
                    "changes": trace.changes,
                    "server_security_mode": trace.server_security_mode,
                    "forwarded_security_mode": trace.forwarded_security_mode,
                    "unsigned_request_succeeded": unsigned_ok,
                    "server_rejected_requests": rejected,
                }),
            }
        }
        Err(e) => error_result(id, "strip-signing-required", title, expected, e),
    }
}

/// True when a post-authentication request without the SIGNED flag got a success status.
fn unsigned_request_succeeded(trace: &TamperTrace) -> bool {
    use crate::tamper::Direction;
    let Some(start) = trace.auth_done_at() else {
        return false;
    };
    let recs = &trace.records[start + 1..];
    recs.iter()
        .filter(|r| r.direction == Direction::ClientToServer && !r.signed && !r.never_signed)
        .any(|req| {
            recs.iter().any(|resp| {
                resp.direction == Direction::ServerToClient
                    && resp.message_id == req.message_id
                    && resp.status.as_deref() == Some("SUCCESS")
            })
        })
}

/// Our server allows guest logons, and a client that requires signing logs on with an
/// unknown user: the session would be a guest one, which cannot be signed.
pub async fn guest(lab: &Lab, dialect: Dialect) -> ScenarioResult {
    let id = format!("guest/our-server/{}", dialect.dotted());
    let title = format!(
        "Guest logon (server maps unknown users to guest), client requires signing, SMB {}",
        dialect.dotted()
    );
    let expected =
        "no guest session: refused because the client requires signing (server or client side)"
            .to_string();
    let run = async {
        let mut setup = TargetSetup::new(lab.target, false).dialect(dialect);
        setup.allow_guest = true;
        let server = TargetServer::start(&setup).await?;
        let mut v = VictimSetup::new(true);
        v.user = "visitor".into();
        v.password = "not-a-user-here".into();
        let r = through_proxy(lab, server.addr, TamperMode::Observe, &v, VictimWork::Read).await?;
        Ok::<_, anyhow::Error>((r, server.events()))
    };
    match run.await {
        Ok(((victim, trace), events)) => {
            let err = victim.error.clone().unwrap_or_default();
            let server_refused = events.iter().any(|e| {
                e["event"] == "logon_failed"
                    && e["reason"].as_str().is_some_and(|r| r.contains("guest"))
            });
            let client_refused =
                victim.client_rejected && err.to_ascii_lowercase().contains("guest");
            let passed = victim.session.is_none() && (server_refused || client_refused);
            let by = if client_refused {
                "the client refused it"
            } else if server_refused {
                "the server refused it (the client's SESSION_SETUP said signing required)"
            } else {
                "?"
            };
            ScenarioResult {
                id,
                group: "guest".into(),
                title,
                expected,
                observed: if err.is_empty() {
                    format!(
                        "client accepted: {}",
                        victim.session.as_deref().unwrap_or("?")
                    )
                } else {
                    format!("no session, {by}: {err}")
                },
                passed,
                evidence: json!({
                    "victim": victim,
                    "client_reaction": trace.client_reaction(),
                    "server_events": events,
                }),
            }
        }
        Err(e) => error_result(id, "guest", title, expected, e),
    }
}

/// A rogue server (the relay) answers the victim's logon with a guest session.
pub async fn rogue_guest(lab: &Lab, dialect: Dialect) -> ScenarioResult {
    let id = format!("guest/rogue-server/{}", dialect.dotted());
    let title = format!(
        "Rogue server offers a guest session to a client that requires signing, SMB {}",
        dialect.dotted()
    );
    let expected = "client refuses the guest session (it cannot be signed)".to_string();
    match relay_run(
        lab,
        TargetKind::Ours,
        dialect,
        false,
        true,
        VictimReply::Guest,
    )
    .await
    {
        Ok((attempt, victim, _, _)) => {
            let err = victim.error.clone().unwrap_or_default();
            let passed = attempt.victim_told.as_deref() == Some("SUCCESS (guest session)")
                && victim.client_rejected
                && err.to_ascii_lowercase().contains("guest")
                && victim.session.is_none();
            ScenarioResult {
                id,
                group: "guest".into(),
                title,
                expected,
                observed: if err.is_empty() {
                    format!(
                        "client accepted: {}",
                        victim.session.as_deref().unwrap_or("?")
                    )
                } else {
                    format!("client: {err}")
                },
                passed,
                evidence: json!({ "victim": victim, "attempt": attempt }),
            }
        }
        Err(e) => error_result(id, "guest", title, expected, e),
    }
}
