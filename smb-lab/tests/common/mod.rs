//! Shared by the scenario tests.

use smb_lab::report::ScenarioResult;

/// Fails with the scenario's expected and observed outcome and its evidence.
pub fn check(r: ScenarioResult) {
    assert!(
        r.passed,
        "{}\n  expected: {}\n  observed: {}\n  evidence: {:#}",
        r.id, r.expected, r.observed, r.evidence
    );
}
