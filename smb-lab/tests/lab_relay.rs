//! The relay scenarios of the lab, one test each: our server as the target, our client as
//! the victim, the relay in between, all in process on loopback.

mod common;

use common::check;
use smb_core::header::Dialect;
use smb_lab::scenario::{self, Lab};

macro_rules! relay_test {
    ($(#[$m:meta])* $name:ident, $dialect:expr, server_requires: $s:expr, victim_requires: $v:expr) => {
        $(#[$m])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check(scenario::relay(&Lab::default(), $dialect, $s, $v).await);
        }
    };
}

// Target does not require signing: the relayed session lists the share and writes a marker.
relay_test!(relay_gets_in_202, Dialect::SMB202, server_requires: false, victim_requires: false);
relay_test!(relay_gets_in_21, Dialect::SMB21, server_requires: false, victim_requires: false);
relay_test!(relay_gets_in_30, Dialect::SMB30, server_requires: false, victim_requires: false);
relay_test!(relay_gets_in_302, Dialect::SMB302, server_requires: false, victim_requires: false);
// 3.1.1: the TREE_CONNECT of an authenticated user must be signed (MS-SMB2 3.3.5.7), so the
// relay is stopped even when the target does not require signing.
relay_test!(relay_311_stopped_by_signed_tree_connect, Dialect::SMB311, server_requires: false, victim_requires: false);

// Target requires signing: authentication accepted, first (unsigned) request refused.
relay_test!(relay_blocked_202, Dialect::SMB202, server_requires: true, victim_requires: false);
relay_test!(relay_blocked_21, Dialect::SMB21, server_requires: true, victim_requires: false);
relay_test!(relay_blocked_30, Dialect::SMB30, server_requires: true, victim_requires: false);
relay_test!(relay_blocked_302, Dialect::SMB302, server_requires: true, victim_requires: false);
relay_test!(relay_blocked_311, Dialect::SMB311, server_requires: true, victim_requires: false);

// The victim requiring signing does not save a target that does not require it...
relay_test!(victim_signing_does_not_save_target_21, Dialect::SMB21, server_requires: false, victim_requires: true);
relay_test!(victim_signing_does_not_save_target_302, Dialect::SMB302, server_requires: false, victim_requires: true);
// ... and the target's own requirement stops the relay whatever the victim does.
relay_test!(victim_signing_target_requires_21, Dialect::SMB21, server_requires: true, victim_requires: true);
relay_test!(victim_signing_target_requires_311, Dialect::SMB311, server_requires: true, victim_requires: true);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_guest_refused_by_client_requiring_signing_311() {
    check(scenario::rogue_guest(&Lab::default(), Dialect::SMB311).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_guest_refused_by_client_requiring_signing_21() {
    check(scenario::rogue_guest(&Lab::default(), Dialect::SMB21).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_logon_not_established_when_client_requires_signing() {
    check(scenario::guest(&Lab::default(), Dialect::SMB311).await);
}
