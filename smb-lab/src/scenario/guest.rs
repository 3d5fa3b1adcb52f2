//! The guest family: guest sessions offered by the server, and by a rogue relay.

use serde_json::json;
use smb_core::header::Dialect;

use crate::relay::VictimReply;
use crate::report::ScenarioResult;
use crate::tamper::TamperMode;
use crate::target::{TargetServer, TargetSetup};

use super::relay::relay_run;
use super::targets::TargetKind;
use super::victim::{through_proxy, VictimSetup, VictimWork};
use super::{error_result, Lab};

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
