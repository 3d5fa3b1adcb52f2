//! The victim: our client, from its own loopback address, logging in and doing its work,
//! directly or through a tamper proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use smb_client::audit::AuditLog;
use smb_client::client::{Client, Error as ClientError, SessionInfo};
use smb_core::auth::Credentials;
use smb_core::conn::client::ClientConfig;
use smb_core::header::Dialect;
use smb_core::policy::SigningPolicy;

use crate::tamper::{TamperMode, TamperProxy, TamperTrace};
use crate::target;

use super::{join_within, Lab};

/// How long one victim operation may take.
pub(super) const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

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
pub(super) enum VictimWork {
    /// Only log in.
    Login,
    /// Log in, connect the share, read the secret file.
    Read,
    /// Log in, connect, write a file, read it back, log off.
    WriteRead,
}

pub(super) fn client_config(server: SocketAddr, v: &VictimSetup) -> ClientConfig {
    let creds = Credentials::password(&v.user, "", &v.password);
    let mut cfg = ClientConfig::new(&server.to_string(), creds);
    cfg.signing = SigningPolicy::new(v.require_signing);
    if let Some(d) = v.dialect {
        cfg.dialects = vec![d];
    }
    cfg
}

pub(super) fn describe(e: &ClientError) -> (String, bool) {
    let rejected = matches!(e, ClientError::Connection(_));
    (e.to_string(), rejected)
}

/// Runs the victim's client from `lab.victim` against `server`.
pub(super) async fn run_victim(
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

pub(super) async fn victim_steps(
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
pub(super) fn bit_difference(a: &[u8], b: &[u8]) -> u32 {
    let common: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
    common + 8 * (a.len().abs_diff(b.len()) as u32)
}

/// Runs one victim session through a tamper proxy on the attacker's address.
pub(super) async fn through_proxy(
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
