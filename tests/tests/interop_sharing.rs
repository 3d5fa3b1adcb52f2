//! Sharing modes and delete-pending with a real peer (issue 9): smbprotocol from three
//! connections (`tests/peers/sharing.py`) against our server and against Samba with the same
//! settings; every step (STATUS_SHARING_VIOLATION both ways, an overwrite refused, a
//! delete-pending file refusing opens with STATUS_DELETE_PENDING until its last close) must
//! read the same.

use tests::interop::{
    run_cell, run_step_script, CellKey, Matrix, OurServer, OUR_PASSWORD, OUR_SHARE, OUR_USER,
};
use tests::{SambaOptions, SambaServer};

fn run_script(
    port: u16,
    user: &str,
    password: &str,
    share: &str,
    dialect: &str,
) -> Result<Vec<String>, String> {
    run_step_script("sharing.py", "shared", port, user, password, share, dialect)
}

#[test]
fn smbprotocol_sharing_and_delete_pending_read_as_on_samba() {
    let test = "smbprotocol_sharing_and_delete_pending_read_as_on_samba";
    let mut matrix = Matrix::new(
        "smbprotocol sharing modes → our server (compared with Samba 4.17)",
        test,
    );
    let ours = OurServer::start("interop-sharing", &[]);
    let samba = SambaServer::start(SambaOptions::default());
    for dialect in ["2.1", "3.0", "3.1.1"] {
        let algorithm = match dialect {
            "3.1.1" => "aes-gmac",
            other => tests::interop::default_algorithm(other),
        };
        let key = CellKey::new(dialect, algorithm, "server required, client required");
        let run = run_cell(key, || {
            let from_ours = run_script(ours.port(), OUR_USER, OUR_PASSWORD, OUR_SHARE, dialect)
                .map_err(|e| format!("our server: {e}"))?;
            let from_samba = run_script(
                samba.port(),
                samba.user(),
                samba.password(),
                samba.share_name(),
                dialect,
            )
            .map_err(|e| format!("Samba: {e}"))?;
            if from_ours != from_samba {
                return Err(format!("ours {from_ours:?}, Samba {from_samba:?}"));
            }
            Ok(format!("as Samba: {}", from_ours.join(", ")))
        });
        matrix.add(run);
    }
    matrix.finish();
}
