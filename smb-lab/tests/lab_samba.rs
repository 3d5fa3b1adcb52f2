//! The relay scenarios against a real Samba (a private smbd per test, as `demo --target
//! samba` runs them): `server signing = mandatory` stops the relay at the first request,
//! `auto` lets it in, except on 3.1.1 where the TREE_CONNECT must be signed anyway.
//! Needs smbd and smbpasswd (`cargo xtask peers`); a missing Samba fails the test.

mod common;

use common::check;
use smb_core::header::Dialect;
use smb_lab::scenario::{self, Lab, TargetKind};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_flip_read_unsigned_undetected_311() {
    check(scenario::flip_read_on(&Lab::default(), TargetKind::Samba, Dialect::SMB311, false).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_flip_read_signed_rejected_311() {
    check(scenario::flip_read_on(&Lab::default(), TargetKind::Samba, Dialect::SMB311, true).await);
}

/// The signing table with Samba as the server: signed exactly when either side requires it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_signing_table_311() {
    for client in [true, false] {
        for server in [true, false] {
            let c = scenario::table_cell_on(
                &Lab::default(),
                TargetKind::Samba,
                Dialect::SMB311,
                client,
                server,
            )
            .await;
            assert!(c.passed, "{}", serde_json::to_string_pretty(&c).unwrap());
            assert_eq!(
                c.observed,
                if client || server {
                    "signed"
                } else {
                    "unsigned"
                }
            );
        }
    }
}
