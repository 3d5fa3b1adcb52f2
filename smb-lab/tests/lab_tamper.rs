//! The tamper scenarios of the lab, one test each: our client and server with the tamper
//! proxy between them, in process on loopback.

mod common;

use common::check;
use smb_core::header::Dialect;
use smb_lab::scenario::{self, Lab};

macro_rules! flip_test {
    ($name:ident, $dialect:expr, signed: $signed:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check(scenario::flip_read(&Lab::default(), $dialect, $signed).await);
        }
    };
}

macro_rules! strip_test {
    ($name:ident, $dialect:expr, client_requires: $c:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check(scenario::strip(&Lab::default(), $dialect, $c).await);
        }
    };
}

// A flipped bit in READ data: undetected without signing, rejected with it.
flip_test!(flip_read_unsigned_undetected_21, Dialect::SMB21, signed: false);
flip_test!(flip_read_signed_rejected_21, Dialect::SMB21, signed: true);
flip_test!(flip_read_unsigned_undetected_30, Dialect::SMB30, signed: false);
flip_test!(flip_read_signed_rejected_30, Dialect::SMB30, signed: true);
flip_test!(flip_read_unsigned_undetected_311, Dialect::SMB311, signed: false);
flip_test!(flip_read_signed_rejected_311, Dialect::SMB311, signed: true);

// SIGNING_REQUIRED stripped from the server's NEGOTIATE response.
strip_test!(strip_21_client_requires_session_stays_signed, Dialect::SMB21, client_requires: true);
strip_test!(strip_21_server_still_refuses_unsigned, Dialect::SMB21, client_requires: false);
strip_test!(strip_30_detected_by_validate_negotiate, Dialect::SMB30, client_requires: true);
strip_test!(strip_302_detected_by_validate_negotiate, Dialect::SMB302, client_requires: true);
strip_test!(strip_30_server_still_refuses_unsigned, Dialect::SMB30, client_requires: false);
strip_test!(strip_311_detected_by_preauth_integrity, Dialect::SMB311, client_requires: true);
strip_test!(strip_311_detected_by_preauth_integrity_client_enabled, Dialect::SMB311, client_requires: false);
