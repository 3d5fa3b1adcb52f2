//! The relay family: a victim's NTLM authentication relayed to a target that requires
//! signing or not.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use smb_core::header::Dialect;

use crate::relay::{Relay, RelayAction, RelayAttempt, RelayOptions, VictimReply};
use crate::report::ScenarioResult;
use crate::target;

use super::targets::{RunningTarget, TargetKind};
use super::victim::{run_victim, VictimOutcome, VictimWork};
use super::{error_result, join_within, on_off, Lab};

/// What a relay against this target must end with.
pub(super) fn relay_expectation(
    dialect: Dialect,
    server_requires: bool,
) -> (&'static str, &'static str) {
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

pub(super) fn relay_observed(a: &RelayAttempt, marker_on_share: bool) -> String {
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

pub(super) async fn relay_run(
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
