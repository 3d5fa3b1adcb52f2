//! `smb-lab demo`: every scenario of the lab in one process, then the report.

use std::path::Path;

use smb_core::header::Dialect;

use crate::report::{Addresses, LabReport, ScenarioResult, TableCell};
use crate::scenario::{self, Lab, TargetKind};

/// Runs every scenario against our own server and collects the report.
pub async fn run_ours(lab: &Lab) -> LabReport {
    let mut scenarios = relay_scenarios(lab, TargetKind::Ours).await;
    // Tamper: a flipped READ bit on signed and unsigned sessions.
    for dialect in Dialect::ALL {
        for signed in [false, true] {
            scenarios.push(scenario::flip_read(lab, dialect, signed).await);
        }
    }
    // Tamper: SIGNING_REQUIRED stripped from the server's NEGOTIATE response.
    for dialect in Dialect::ALL {
        for client_requires in [true, false] {
            scenarios.push(scenario::strip(lab, dialect, client_requires).await);
        }
    }
    // Guest sessions offered to a client that requires signing.
    for dialect in [Dialect::SMB21, Dialect::SMB311] {
        scenarios.push(scenario::guest(lab, dialect).await);
        scenarios.push(scenario::rogue_guest(lab, dialect).await);
    }
    let table = signing_table(lab, TargetKind::Ours).await;
    let addresses = addresses(lab, &scenarios);
    LabReport::new("ours", addresses, scenarios, table)
}

/// The relay scenarios against a private smbd (`server signing = mandatory` and `auto`),
/// plus flip-read and the signing table with our client against it.
pub async fn run_samba(lab: &Lab) -> LabReport {
    let mut scenarios = relay_scenarios(lab, TargetKind::Samba).await;
    // Our client against Samba: a flipped READ bit, and the signing table.
    for dialect in [Dialect::SMB21, Dialect::SMB311] {
        for signed in [false, true] {
            scenarios.push(scenario::flip_read_on(lab, TargetKind::Samba, dialect, signed).await);
        }
    }
    let table = signing_table(lab, TargetKind::Samba).await;
    let addresses = addresses(lab, &scenarios);
    LabReport::new("samba", addresses, scenarios, table)
}

/// Relay: each dialect, target requiring signing or not, victim requiring it or not.
async fn relay_scenarios(lab: &Lab, kind: TargetKind) -> Vec<ScenarioResult> {
    let mut scenarios = Vec::new();
    for victim_requires in [false, true] {
        for dialect in Dialect::ALL {
            for server_requires in [false, true] {
                scenarios.push(
                    scenario::relay_on(lab, kind, dialect, server_requires, victim_requires).await,
                );
            }
        }
    }
    scenarios
}

/// The client/server signing table, every dialect, each cell a real session.
async fn signing_table(lab: &Lab, kind: TargetKind) -> Vec<TableCell> {
    let mut table = Vec::new();
    for dialect in Dialect::ALL {
        for client_requires in [true, false] {
            for server_requires in [true, false] {
                table.push(
                    scenario::table_cell_on(lab, kind, dialect, client_requires, server_requires)
                        .await,
                );
            }
        }
    }
    table
}

/// The addresses as used, as the relay saw them: the victim's client binds `lab.victim`, and
/// a private smbd listens on 127.0.0.1 rather than `lab.target` (see `RunningTarget::start`).
fn addresses(lab: &Lab, scenarios: &[ScenarioResult]) -> Addresses {
    let seen = |field: &str| {
        scenarios
            .iter()
            .find_map(|s| s.evidence["attempt"][field].as_str())
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.ip())
    };
    Addresses {
        victim: seen("victim").unwrap_or(lab.victim).to_string(),
        attacker: lab.attacker.to_string(),
        target: seen("target").unwrap_or(lab.target).to_string(),
    }
}

/// Runs the demo, prints the table, writes the report files; true when every scenario
/// ended as expected.
pub async fn run(out: &Path, target: &str) -> anyhow::Result<bool> {
    let lab = Lab::default();
    let report = match target {
        "ours" => run_ours(&lab).await,
        "samba" => run_samba(&lab).await,
        other => anyhow::bail!("unknown --target {other:?} (ours, samba)"),
    };
    print!("{}", report.render_terminal());
    let (md, json) = report.write(out)?;
    println!("\nreport: {} and {}", md.display(), json.display());
    Ok(report.all_passed)
}
