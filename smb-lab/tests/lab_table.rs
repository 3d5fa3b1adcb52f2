//! The client/server signing table, each cell from a real session observed on the wire:
//! signed exactly when either side requires signing.

use smb_core::header::Dialect;
use smb_lab::scenario::{self, Lab};

async fn cell(dialect: Dialect, client_requires: bool, server_requires: bool) {
    let c = scenario::table_cell(&Lab::default(), dialect, client_requires, server_requires).await;
    assert!(c.passed, "{}", serde_json::to_string_pretty(&c).unwrap());
    // The cell is judged from traffic, never from an empty session.
    assert!(c.post_auth_messages >= 10, "{c:?}");
    let expect_signed = client_requires || server_requires;
    assert_eq!(
        c.signed_messages == c.post_auth_messages,
        expect_signed,
        "{c:?}"
    );
    assert_eq!(c.signed_messages == 0, !expect_signed, "{c:?}");
}

macro_rules! table_tests {
    ($($name:ident: $dialect:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for client in [true, false] {
                for server in [true, false] {
                    cell($dialect, client, server).await;
                }
            }
        }
    )*};
}

table_tests! {
    table_202: Dialect::SMB202;
    table_21: Dialect::SMB21;
    table_30: Dialect::SMB30;
    table_302: Dialect::SMB302;
    table_311: Dialect::SMB311;
}
