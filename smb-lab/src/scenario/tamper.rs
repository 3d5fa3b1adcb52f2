//! The tamper family: a flipped READ bit, and SIGNING_REQUIRED stripped from NEGOTIATE.

use serde_json::json;
use smb_core::header::Dialect;

use crate::report::ScenarioResult;
use crate::tamper::{TamperMode, TamperTrace};
use crate::target::{TargetServer, TargetSetup};

use super::targets::{RunningTarget, TargetKind};
use super::victim::{through_proxy, VictimSetup, VictimWork};
use super::{error_result, on_off, Lab};

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
pub(super) fn strip_expectation(dialect: Dialect, client_requires: bool) -> (&'static str, String) {
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
pub(super) fn unsigned_request_succeeded(trace: &TamperTrace) -> bool {
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
