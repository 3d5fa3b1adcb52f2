//! Proves the interop harness against Samba itself, before our own client and server exist:
//! Samba's smbclient, impacket and smbprotocol all talk to a harness-started smbd with signing
//! required, and the capture shows every post-authentication message signed.

use std::fs;
use std::process::Command;
use std::time::Duration;

use tests::{
    pids_with_cmdline, require_tool, run_python, run_with_timeout, scratch_dir, show, test_bytes,
    Capture, SambaOptions, SambaServer, ServerSigning,
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs Samba's smbclient against `samba` with `-c COMMANDS` and extra options.
fn smbclient(samba: &SambaServer, dialect: &str, options: &[&str], commands: &str) {
    let mut cmd = Command::new(require_tool("smbclient"));
    cmd.arg(samba.unc())
        .args(["-p", &samba.port().to_string()])
        .args(["-U", &format!("{}%{}", samba.user(), samba.password())])
        .args(["-m", dialect]);
    for option in options {
        cmd.arg(format!("--option={option}"));
    }
    cmd.args(["-c", commands]);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert!(
        out.status.success(),
        "smbclient failed:\n{}\n--- smbd ---\n{}",
        show(&out),
        samba.log()
    );
}

#[test]
fn smbclient_put_get_with_mandatory_signing_is_signed_on_the_wire() {
    let samba = SambaServer::start(SambaOptions::default());
    let dir = scratch_dir("smbclient-roundtrip");
    let original = test_bytes(3 << 20, 1);
    let local = dir.join("upload.bin");
    let back = dir.join("download.bin");
    fs::write(&local, &original).unwrap();

    let capture = Capture::start(samba.port());
    smbclient(
        &samba,
        "SMB3_11",
        &["client signing=required"],
        &format!("put {} x; get x {}", local.display(), back.display()),
    );
    let capture = capture.stop();

    assert!(tests::read(&back) == original, "downloaded bytes differ");
    assert!(
        tests::read(&samba.share_path().join("x")) == original,
        "bytes on the share differ"
    );

    let smb2 = capture.smb2_frames();
    assert!(smb2 >= 10, "only {smb2} SMB2 frames in {capture}");
    let signed = capture.count("smb2.flags.signature == 1");
    assert!(signed >= 5, "only {signed} signed frames in {capture}");
    assert_eq!(
        capture.unsigned_after_auth(),
        0,
        "unsigned messages after authentication in {capture}:\n{}",
        capture.summary(tests::UNSIGNED_AFTER_AUTH)
    );
    assert_eq!(
        capture.malformed(),
        0,
        "malformed frames in {capture}:\n{}",
        capture.malformed_summary()
    );
}

/// The control for the test above: the same capture check does see unsigned traffic when
/// neither side requires signing, so a zero there means something.
#[test]
fn capture_counts_unsigned_messages_when_nobody_requires_signing() {
    let samba = SambaServer::start(SambaOptions {
        signing: ServerSigning::Auto,
        ..SambaOptions::default()
    });
    let dir = scratch_dir("smbclient-unsigned");
    let local = dir.join("small.txt");
    fs::write(&local, b"unsigned on purpose\n").unwrap();

    let capture = Capture::start(samba.port());
    smbclient(
        &samba,
        "SMB3_11",
        &["client signing=disabled"],
        &format!("put {} small.txt; ls", local.display()),
    );
    let capture = capture.stop();

    let unsigned = capture.unsigned_after_auth();
    assert!(
        unsigned >= 3,
        "expected unsigned TREE_CONNECT/CREATE/WRITE in {capture}, found {unsigned}:\n{}",
        capture.summary("smb2")
    );
    assert_eq!(
        capture.malformed(),
        0,
        "malformed frames in {capture}:\n{}",
        capture.malformed_summary()
    );
}

const IMPACKET_SCRIPT: &str = r#"
import io, sys
from impacket.smbconnection import SMBConnection
host, port, user, password, share = sys.argv[1:6]
data = bytes(range(256)) * 1024
conn = SMBConnection(host, host, sess_port=int(port))
conn.login(user, password)
conn.putFile(share, 'from-impacket.bin', io.BytesIO(data).read)
names = [f.get_longname() for f in conn.listPath(share, '*')]
assert 'from-impacket.bin' in names, names
back = io.BytesIO()
conn.getFile(share, 'from-impacket.bin', back.write)
assert back.getvalue() == data, 'read back differs'
print('dialect=%#x signing_required=%s' % (conn.getDialect(), conn.isSigningRequired()))
conn.logoff()
"#;

#[test]
fn impacket_logs_in_puts_and_lists_with_signing() {
    let samba = SambaServer::start(SambaOptions::default());
    let capture = Capture::start(samba.port());
    let out = run_python(
        IMPACKET_SCRIPT,
        &[
            "127.0.0.1",
            &samba.port().to_string(),
            samba.user(),
            samba.password(),
            samba.share_name(),
        ],
        TIMEOUT,
    );
    let capture = capture.stop();
    assert!(out.status.success(), "impacket failed:\n{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("dialect=0x311 signing_required=True"),
        "unexpected impacket session: {stdout}"
    );
    let expected: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
    assert!(tests::read(&samba.share_path().join("from-impacket.bin")) == expected);
    assert_eq!(
        capture.unsigned_after_auth(),
        0,
        "unsigned messages after authentication in {capture}:\n{}",
        capture.summary(tests::UNSIGNED_AFTER_AUTH)
    );
    assert_eq!(
        capture.malformed(),
        0,
        "malformed frames in {capture}:\n{}",
        capture.malformed_summary()
    );
}

const SMBPROTOCOL_SCRIPT: &str = r#"
import sys, uuid
from smbprotocol.connection import Connection
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect
from smbprotocol.open import (Open, CreateDisposition, CreateOptions, DirectoryAccessMask,
    FileAttributes, FilePipePrinterAccessMask, ImpersonationLevel, ShareAccess)
from smbprotocol.file_info import FileInformationClass
host, port, user, password, share = sys.argv[1:6]
data = b'smbprotocol ' * 5000
conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
conn.connect()
# require_encryption defaults to True, which would turn signing off in favour of sealing.
session = Session(conn, user, password, require_encryption=False, auth_protocol='ntlm')
session.connect()
tree = TreeConnect(session, '\\\\%s\\%s' % (host, share))
tree.connect()
f = Open(tree, 'from-smbprotocol.bin')
f.create(ImpersonationLevel.Impersonation,
         FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
         FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
         CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
f.write(data, 0)
assert f.read(0, len(data)) == data, 'read back differs'
f.close()
d = Open(tree, '')
d.create(ImpersonationLevel.Impersonation, DirectoryAccessMask.FILE_LIST_DIRECTORY,
         FileAttributes.FILE_ATTRIBUTE_DIRECTORY,
         ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
         CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)
names = [e['file_name'].get_value().decode('utf-16-le')
         for e in d.query_directory('*', FileInformationClass.FILE_NAMES_INFORMATION)]
d.close()
assert 'from-smbprotocol.bin' in names, names
print('dialect=%#x signing_required=%s' % (conn.dialect, session.signing_required))
tree.disconnect()
session.disconnect()
conn.disconnect()
"#;

#[test]
fn smbprotocol_writes_reads_and_lists_with_signing() {
    let samba = SambaServer::start(SambaOptions::default());
    let capture = Capture::start(samba.port());
    let out = run_python(
        SMBPROTOCOL_SCRIPT,
        &[
            "127.0.0.1",
            &samba.port().to_string(),
            samba.user(),
            samba.password(),
            samba.share_name(),
        ],
        TIMEOUT,
    );
    let capture = capture.stop();
    assert!(out.status.success(), "smbprotocol failed:\n{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("dialect=0x311 signing_required=True"),
        "unexpected smbprotocol session: {stdout}"
    );
    assert!(
        tests::read(&samba.share_path().join("from-smbprotocol.bin"))
            == b"smbprotocol ".repeat(5000)
    );
    assert_eq!(
        capture.unsigned_after_auth(),
        0,
        "unsigned messages after authentication in {capture}:\n{}",
        capture.summary(tests::UNSIGNED_AFTER_AUTH)
    );
    assert_eq!(
        capture.malformed(),
        0,
        "malformed frames in {capture}:\n{}",
        capture.malformed_summary()
    );
}

/// Dropping the server stops smbd and the samba-dcerpcd/rpcd_* helpers it spawned
/// (share listing goes through srvsvc, which smbd hands to samba-dcerpcd).
#[test]
fn dropping_samba_stops_every_process_it_started() {
    let samba = SambaServer::start(SambaOptions::default());
    let conf = samba.conf_path().to_string_lossy().into_owned();
    let mut cmd = Command::new(require_tool("smbclient"));
    cmd.args(["-L", "//127.0.0.1", "-p", &samba.port().to_string()])
        .args(["-U", &format!("{}%{}", samba.user(), samba.password())])
        .args(["-m", "SMB3_11", "--option=client signing=required"]);
    let out = run_with_timeout(&mut cmd, TIMEOUT);
    assert!(out.status.success(), "smbclient -L failed:\n{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("data"));

    let running = pids_with_cmdline(&conf);
    assert!(
        running.len() >= 2,
        "expected smbd and samba-dcerpcd, found pids {running:?}"
    );
    let port = samba.port();
    drop(samba);
    assert_eq!(pids_with_cmdline(&conf), Vec::<u32>::new(), "left running");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections"
    );
}

/// `server smb3 signing algorithms` forces the 3.1.1 algorithm: the NEGOTIATE response's
/// SMB2_SIGNING_CAPABILITIES names it (0 HMAC-SHA256, 1 AES-CMAC, 2 AES-GMAC) even though the
/// client offers all three, and the session stays signed.
#[test]
fn samba_signing_algorithm_option_picks_the_algorithm_on_the_wire() {
    for (algorithm, id) in [
        ("AES-128-GMAC", "0x0002"),
        ("AES-128-CMAC", "0x0001"),
        ("HMAC-SHA256", "0x0000"),
    ] {
        let samba = SambaServer::start(SambaOptions {
            signing_algorithms: Some(algorithm),
            ..SambaOptions::default().only_dialect("3.1.1")
        });
        let capture = Capture::start(samba.port());
        smbclient(
            &samba,
            "SMB3_11",
            &[
                "client signing=required",
                "client smb3 signing algorithms=AES-128-GMAC,AES-128-CMAC,HMAC-SHA256",
            ],
            "ls",
        );
        let capture = capture.stop();
        let chosen = capture.fields(
            "smb2.cmd == 0 && smb2.flags.response == 1",
            &["smb2.negotiate_context.signing_id"],
        );
        assert_eq!(chosen, vec![id.to_string()], "{algorithm}: {capture}");
        assert!(
            capture.count("smb2.flags.signature == 1") >= 3,
            "{algorithm}: {capture}"
        );
        assert_eq!(capture.unsigned_after_auth(), 0, "{algorithm}: {capture}");
    }
}
