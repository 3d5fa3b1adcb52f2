//! The lab's scenarios, each a function that starts what it needs on loopback (our server
//! as the target, our client as the victim, the relay or the tamper proxy as the attacker),
//! runs one session, and says whether it ended as expected.
//!
//! Expectations are stated from the protocol, not from a lookup of results: a relay gets in
//! exactly when the target does not require signing; a session is signed exactly when either
//! side requires it; a flipped bit is caught exactly when the session is signed; a stripped
//! SIGNING_REQUIRED is caught by the server's own policy (2.x), validate-negotiate (3.0,
//! 3.0.2) or the preauth integrity hash (3.1.1).
//!
//! One file per family: `relay.rs`, `table.rs` (the signing table), `tamper.rs` (flipped
//! READ bit, stripped SIGNING_REQUIRED), `guest.rs`; `victim.rs` runs our client as the
//! victim, `targets.rs` is the choice of target (ours or Samba).

mod guest;
mod relay;
mod table;
mod tamper;
mod targets;
mod victim;

pub use guest::{guest, rogue_guest};
pub use relay::{relay, relay_on};
pub use table::{table_cell, table_cell_on};
pub use tamper::{flip_read, flip_read_on, strip};
pub use targets::TargetKind;
pub use victim::{VictimOutcome, VictimSetup};

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::json;

use crate::report::ScenarioResult;

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

pub(super) fn on_off(b: bool) -> &'static str {
    if b {
        "requires"
    } else {
        "does not require"
    }
}

pub(super) fn error_result(
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

/// Waits for a task; one that does not finish in time is aborted (nothing outlives its
/// scenario).
pub(super) async fn join_within<T>(
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
