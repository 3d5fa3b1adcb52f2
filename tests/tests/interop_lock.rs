//! Byte-range LOCK with a real peer (issue 9): smbprotocol from two connections
//! (`tests/peers/byte_range_lock.py`: exclusive and shared, fail-immediately, READ/WRITE under
//! another open's lock, a waiting lock granted on unlock, a bad unlock, a cancelled waiting
//! lock) against our server and against Samba with the same settings; every step must read
//! the same. On the wire: nothing unsigned after authentication but the interim STATUS_PENDING
//! responses MS-SMB2 exempts (counted); the final LOCK responses and the CANCEL are signed.

use tests::interop::{
    run_cell, run_step_script, CellKey, Matrix, OurServer, OUR_PASSWORD, OUR_SHARE, OUR_USER,
    WIRESHARK_SIZED,
};
use tests::{Capture, CaptureFile, SambaOptions, SambaServer};

/// Interim responses: async, STATUS_PENDING, unsigned by design.
const INTERIM: &str = "smb2.flags.async == 1 && smb2.nt_status == 0x00000103";
/// Final LOCK responses of waiting locks.
const FINAL_LOCK: &str = "smb2.cmd == 10 && smb2.flags.response == 1 \
    && smb2.flags.async == 1 && smb2.nt_status != 0x00000103";

fn run_script(
    port: u16,
    user: &str,
    password: &str,
    share: &str,
    dialect: &str,
) -> Result<Vec<String>, String> {
    run_step_script(
        "byte_range_lock.py",
        "lock",
        port,
        user,
        password,
        share,
        dialect,
    )
}

fn wire(cap: &CaptureFile) -> Result<String, String> {
    let unsigned = cap.unsigned_after_auth();
    if unsigned > 0 {
        return Err(format!(
            "{unsigned} unsigned messages after auth:\n{}",
            cap.summary(tests::UNSIGNED_AFTER_AUTH)
        ));
    }
    let interim = cap.count(INTERIM);
    let finals = cap.count(FINAL_LOCK);
    let signed = cap.count(&format!("{FINAL_LOCK} && smb2.flags.signature == 1"));
    let cancel = cap.count("smb2.cmd == 12 && smb2.flags.signature == 1");
    if interim < 2 || finals < 2 || finals != signed || cancel == 0 {
        return Err(format!(
            "interim {interim}, final LOCK {finals} ({signed} signed), signed CANCEL {cancel}"
        ));
    }
    Ok(format!(
        "0 unsigned after auth; {interim} interim STATUS_PENDING (exempt, unsigned); \
         {finals} final LOCK, all signed; {cancel} signed CANCEL"
    ))
}

#[test]
fn smbprotocol_byte_range_locks_read_as_on_samba() {
    let test = "smbprotocol_byte_range_locks_read_as_on_samba";
    let mut matrix = Matrix::new(
        "smbprotocol LOCK → our server (compared with Samba 4.17)",
        test,
    );
    let ours = OurServer::start("interop-lock", &WIRESHARK_SIZED);
    let samba = SambaServer::start(SambaOptions::default());
    let mut kept = Vec::new();
    for dialect in ["2.1", "3.0.2", "3.1.1"] {
        let algorithm = match dialect {
            "3.1.1" => "aes-gmac",
            other => tests::interop::default_algorithm(other),
        };
        let key = CellKey::new(dialect, algorithm, "server required, client required");
        let run = run_cell(key, || {
            let cap = Capture::start(ours.port());
            let from_ours = run_script(ours.port(), OUR_USER, OUR_PASSWORD, OUR_SHARE, dialect);
            let cap = cap.stop();
            let on_wire = wire(&cap);
            kept.push(cap);
            let from_ours = from_ours.map_err(|e| format!("our server: {e}"))?;
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
            Ok(format!("as Samba: {}; {}", from_ours.join(", "), on_wire?))
        });
        matrix.add(run);
    }
    matrix.finish();
    drop(kept);
}
