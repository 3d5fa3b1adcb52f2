//! The relay scenarios against a real Samba (a private smbd per test, as `demo --target
//! samba` runs them): `server signing = mandatory` stops the relay at the first request,
//! `auto` lets it in, except on 3.1.1 where the TREE_CONNECT must be signed anyway.
//! Needs smbd and smbpasswd (`cargo xtask peers`); a missing Samba fails the test.

use smb_core::header::Dialect;
use smb_lab::report::ScenarioResult;
use smb_lab::scenario::{self, Lab, TargetKind};

fn check(r: ScenarioResult) {
    assert!(
        r.passed,
        "{}\n  expected: {}\n  observed: {}\n  evidence: {:#}",
        r.id, r.expected, r.observed, r.evidence
    );
}

macro_rules! samba_test {
    ($name:ident, $dialect:expr, mandatory: $m:expr, victim_requires: $v:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check(scenario::relay_on(&Lab::default(), TargetKind::Samba, $dialect, $m, $v).await);
        }
    };
}

samba_test!(samba_auto_relay_gets_in_21, Dialect::SMB21, mandatory: false, victim_requires: false);
samba_test!(samba_mandatory_relay_blocked_21, Dialect::SMB21, mandatory: true, victim_requires: false);
samba_test!(samba_auto_relay_gets_in_302_victim_requires, Dialect::SMB302, mandatory: false, victim_requires: true);
samba_test!(samba_mandatory_relay_blocked_302, Dialect::SMB302, mandatory: true, victim_requires: false);
samba_test!(samba_auto_311_stopped_by_signed_tree_connect, Dialect::SMB311, mandatory: false, victim_requires: false);
samba_test!(samba_mandatory_relay_blocked_311, Dialect::SMB311, mandatory: true, victim_requires: true);
