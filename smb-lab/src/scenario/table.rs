//! The signing table: one real session per cell, observed on the wire by a proxy.

use smb_core::header::Dialect;

use crate::report::TableCell;
use crate::tamper::TamperMode;

use super::targets::{RunningTarget, TargetKind};
use super::victim::{through_proxy, VictimWork};
use super::Lab;

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
