//! Oplock and lease breaks received by our client (issue 9, client side), and async
//! operations, against Samba 4.17 and our server with signing required,
//! on 2.1 (HMAC-SHA256), 3.0.2 (AES-CMAC) and 3.1.1 (AES-GMAC), each on a dumpcap capture
//! that `smb-audit pcap` then reads (issue 11):
//! - our client holds a batch oplock, then an RWH lease (version 1 on 2.1, 2 on 3.x), and
//!   sits idle; smbclient opens the same file: our client receives the (unsigned) break
//!   notification, acknowledges it (signed), verifies the response, and smbclient's `get`
//!   completes in well under Samba's 35 s break timeout;
//! - our client holds the acknowledgement back for a while: the second opener (our own second
//!   client) gets interim STATUS_PENDING responses, then its CREATE completes once the
//!   acknowledgement is sent;
//! - our client reads a file under a batch oplock while a second client opens it: the driver
//!   acknowledges the break in the middle of the transfer, which goes on;
//! - CHANGE_NOTIFY answered by a change another client makes, then one CANCELled (a signed
//!   CANCEL naming the AsyncId; on GMAC its nonce has the CANCEL bit), on Samba and ours.
//!
//! On each capture: `smb-audit pcap` counts exactly the break notifications our clients
//! received and the interim responses each of our clients received as exempt (not unsigned),
//! its signed counts agree with tshark's, tshark's display filter for unsigned messages matches
//! exactly the exempt messages, and with the password every signature verifies.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use smb_client::breaks::{Broken, Level};
use smb_client::client::Client;
use smb_core::conn::client::{Caching, ClientConfig, Credentials, OpenRequest};
use smb_core::header::{Dialect, NtStatus};
use smb_core::messages::create::OplockLevel;
use smb_core::messages::lease::lease_state;
use smb_core::policy::SigningPolicy;
use smb_core::signing::Algorithm;
use tests::interop::{
    run_cell, start_capture, CellKey, Matrix, OurServer, OUR_PASSWORD, OUR_SHARE, OUR_USER,
    PEER_TIMEOUT, WIRESHARK_SIZED,
};
use tests::{
    require_tool, run_with_timeout, show, workspace_bin, CaptureFile, SambaOptions, SambaServer,
};

/// Samba's own limit for an unanswered break (`oplock break wait`... 35 s for SMB2): a second
/// open that takes anywhere near it was not released by an acknowledgement.
const QUICK: Duration = Duration::from_secs(10);
/// How long the holder keeps its acknowledgement back in the interim-response scenario.
const HOLD: Duration = Duration::from_millis(1500);
const FILE_LEN: usize = 1 << 20;

const CASES: [(&str, Dialect, Algorithm); 3] = [
    ("2.1", Dialect::SMB21, Algorithm::HmacSha256),
    ("3.0.2", Dialect::SMB302, Algorithm::AesCmac),
    ("3.1.1", Dialect::SMB311, Algorithm::AesGmac),
];

/// Messages our clients saw, to compare with what `smb-audit pcap` reads off the capture.
#[derive(Debug, Default)]
struct Seen {
    /// Oplock break notifications received by the holders.
    breaks: u64,
    /// Lease break notifications received by the holders.
    lease_breaks: u64,
    /// SessionId -> interim responses that session's client received.
    interim: Vec<(u64, u64)>,
    /// Evidence for the matrix cell.
    notes: Vec<String>,
}

/// Where our clients log in: Samba or our server.
struct Target {
    addr: SocketAddr,
    user: String,
    password: String,
    share: String,
}

impl Target {
    fn samba(s: &SambaServer) -> Target {
        Target {
            addr: s.addr(),
            user: s.user().into(),
            password: s.password().into(),
            share: s.share_name().into(),
        }
    }

    fn ours(s: &OurServer) -> Target {
        Target {
            addr: s.addr(),
            user: OUR_USER.into(),
            password: OUR_PASSWORD.into(),
            share: OUR_SHARE.into(),
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

fn config(t: &Target, dialect: Dialect, alg: Algorithm) -> ClientConfig {
    let mut c = ClientConfig::new(
        &t.addr.to_string(),
        Credentials::password(&t.user, "", &t.password),
    )
    .only_dialect(dialect);
    c.signing = SigningPolicy::new(true);
    c.signing_algorithms = vec![alg];
    c
}

async fn connect(t: &Target, dialect: Dialect, alg: Algorithm) -> (Client, u32) {
    let mut c = Client::connect(t.addr, config(t, dialect, alg))
        .await
        .expect("connect");
    let s = c.login().await.expect("login");
    assert!(s.signed, "session not signed: {s}");
    let unc = format!(r"\\{}\{}", t.addr.ip(), t.share);
    let tree = c.tree_connect(&unc).await.expect("tree connect");
    (c, tree)
}

fn batch(path: &str) -> OpenRequest {
    OpenRequest::read_file(path).with_caching(Caching::Oplock(OplockLevel::BATCH))
}

/// smbclient gets `held.bin` while `holder` holds it open under an oplock or lease: the
/// holder must receive the break, acknowledge it (signed) and see the response verified, and
/// smbclient's open must complete well under Samba's break timeout. Closes the open.
async fn smbclient_opens(
    t: &Target,
    holder: &mut Client,
    tree: u32,
    file_id: smb_core::messages::FileId,
    data: &[u8],
) -> String {
    let before = holder.breaks().len();
    let local = tests::scratch_dir("breaks-get");
    let mut get = tokio::process::Command::new(require_tool("smbclient"));
    get.args([
        &format!("//{}/{}", t.addr.ip(), t.share),
        "-p",
        &t.port().to_string(),
        "-U",
        &format!("{}%{}", t.user, t.password),
        "--option=client signing=required",
        "-c",
        &format!("get held.bin {}", local.join("back.bin").display()),
    ]);
    let started = Instant::now();
    let smbclient = async {
        let out = tokio::time::timeout(PEER_TIMEOUT, get.output())
            .await
            .expect("smbclient finished")
            .expect("smbclient runs");
        (out, started.elapsed())
    };
    let (waited, (out, took)) =
        tokio::join!(holder.wait_for_break(before + 1, PEER_TIMEOUT), smbclient);
    waited.expect("the break arrives and its acknowledgement is answered");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        took < QUICK,
        "smbclient's open took {took:?}: the break was not acknowledged"
    );
    assert_eq!(holder.breaks().len(), before + 1);
    let b = holder.breaks()[before].clone();
    assert!(b.ack_required, "{b}");
    assert_eq!(b.ack.map(|a| a.0), Some(NtStatus::SUCCESS), "{b}");
    assert_eq!(b.ack.map(|a| a.1), Some(b.to), "{b}");
    assert_eq!(std::fs::read(local.join("back.bin")).unwrap(), data);
    // The open still reads after the break.
    let head = holder.read_at(tree, file_id, 0, 4096).await.unwrap();
    assert_eq!(head, data[..4096]);
    holder.close(tree, file_id).await.unwrap();
    format!("smbclient's open {} ms ({b})", took.as_millis())
}

/// The three scenarios of the module documentation, on one dialect.
async fn scenarios(t: &Target, dialect: Dialect, alg: Algorithm, seen: &mut Seen) {
    let data = tests::test_bytes(FILE_LEN, 9);
    let (mut holder, tree) = connect(t, dialect, alg).await;
    holder.write_file(tree, "held.bin", &data).await.unwrap();

    // 1. Idle holder, smbclient opens the file: with a batch oplock, then with an RWH lease.
    let f = holder.open(tree, &batch("held.bin"), "held").await.unwrap();
    assert_eq!(
        f.oplock_level,
        OplockLevel::BATCH,
        "the server granted no batch oplock"
    );
    let note = smbclient_opens(t, &mut holder, tree, f.file_id, &data).await;
    assert_eq!(holder.breaks()[0].what, Broken::Oplock(f.file_id));
    assert_eq!(holder.breaks()[0].from, Level::Oplock(OplockLevel::BATCH));
    seen.breaks += 1;
    seen.notes.push(note);

    let key = *b"breaks-lease-key";
    let leased = OpenRequest::read_file("held.bin").with_caching(Caching::Lease {
        key,
        state: lease_state::ALL,
    });
    let f = holder.open(tree, &leased, "leased").await.unwrap();
    assert_eq!(
        f.oplock_level,
        OplockLevel::LEASE,
        "the server granted no lease"
    );
    let granted = holder.connection().lease_state(&key);
    assert_eq!(granted, lease_state::ALL, "granted {granted:#x}, not RWH");
    let granted_epoch = holder.connection().lease_epoch(&key).unwrap();
    let note = smbclient_opens(t, &mut holder, tree, f.file_id, &data).await;
    let b = holder.breaks()[1].clone();
    // Version 1 leases have no epoch; a version 2 break moves it on by one.
    let epoch = if dialect == Dialect::SMB21 {
        0
    } else {
        granted_epoch + 1
    };
    assert_eq!(b.what, Broken::Lease(key, epoch), "{b}");
    assert_eq!(b.from, Level::Lease(lease_state::ALL), "{b}");
    seen.lease_breaks += 1;
    seen.notes.push(note);

    // 2. The holder keeps its acknowledgement back; the second opener (ours) waits, told so
    // with interim responses.
    let f = holder.open(tree, &batch("held.bin"), "held").await.unwrap();
    assert_eq!(f.oplock_level, OplockLevel::BATCH);
    holder.hold_acknowledgements(true);
    let (mut second, tree2) = connect(t, dialect, alg).await;
    let started = Instant::now();
    let opener = async {
        let r = second
            .open(tree2, &OpenRequest::read_file("held.bin"), "second")
            .await;
        (r, started.elapsed())
    };
    let holding = async {
        holder.wait_for_break(3, PEER_TIMEOUT).await?;
        tokio::time::sleep(HOLD).await;
        holder.acknowledge_breaks(PEER_TIMEOUT).await
    };
    let (held, (opened, took)) = tokio::join!(holding, opener);
    held.expect("held acknowledgement");
    let g = opened.expect("second open");
    assert!(
        took >= HOLD && took < HOLD + QUICK,
        "second open took {took:?}"
    );
    let interim = second.connection().interim_responses();
    assert!(interim >= 1, "no interim response in {took:?}");
    seen.breaks += 1;
    holder.hold_acknowledgements(false);
    second.close(tree2, g.file_id).await.unwrap();
    holder.close(tree, f.file_id).await.unwrap();
    seen.notes.push(format!(
        "acknowledgement held {} ms: {interim} interim response(s), second open {} ms",
        HOLD.as_millis(),
        took.as_millis()
    ));

    // 3. A transfer under a batch oplock goes on through a break.
    let f = holder.open(tree, &batch("held.bin"), "held").await.unwrap();
    assert_eq!(f.oplock_level, OplockLevel::BATCH);
    let done = std::cell::Cell::new(false);
    let reader = async {
        let mut reads = 0u64;
        let mut offset = 0u64;
        loop {
            let chunk = holder.read_at(tree, f.file_id, offset, 65536).await?;
            assert_eq!(chunk, data[offset as usize..offset as usize + chunk.len()]);
            offset = (offset + chunk.len() as u64) % FILE_LEN as u64;
            reads += 1;
            // The whole file, with the break somewhere in it (the other open starts at once).
            if reads >= (FILE_LEN / 65536) as u64 && done.get() && holder.breaks().len() >= 4 {
                return Ok::<u64, smb_client::client::Error>(reads);
            }
            assert!(reads < 100_000, "no break during the transfer");
        }
    };
    let opener = async {
        let started = Instant::now();
        let r = second
            .open(tree2, &OpenRequest::read_file("held.bin"), "third")
            .await;
        done.set(true);
        (r, started.elapsed())
    };
    let (reads, (opened, took)) = tokio::join!(reader, opener);
    let reads = reads.expect("transfer through the break");
    let g = opened.expect("third open");
    assert!(took < QUICK, "open during the transfer took {took:?}");
    let b = holder.breaks()[3].clone();
    assert_eq!(b.ack.map(|a| a.0), Some(NtStatus::SUCCESS), "{b}");
    second.close(tree2, g.file_id).await.unwrap();
    holder.close(tree, f.file_id).await.unwrap();
    seen.breaks += 1;
    // Every interim response either client received (the third open may get one too).
    for c in [&holder, &second] {
        let sid = c.connection().session_id().unwrap();
        seen.interim.push((sid, c.connection().interim_responses()));
    }
    seen.notes.push(format!(
        "break acknowledged during a transfer ({reads} READs), other open {} ms",
        took.as_millis()
    ));
    holder.logoff().await.unwrap();
    second.logoff().await.unwrap();
}

/// tshark's per-message counts: (signed after authentication, matching the seed's
/// unsigned filter, break notifications, interim responses).
fn tshark_counts(capture: &CaptureFile) -> (u64, u64, u64, u64) {
    let (mut signed, mut unsigned, mut breaks, mut interim) = (0, 0, 0, 0);
    let fields = [
        "smb2.cmd",
        "smb2.flags.signature",
        "smb2.sesid",
        "smb2.msg_id",
        "smb2.nt_status",
        "smb2.flags.async",
    ];
    for line in capture.fields("smb2", &fields) {
        let cols: Vec<Vec<&str>> = line.split('\t').map(|c| c.split(',').collect()).collect();
        let at = |c: usize, i: usize| cols.get(c).and_then(|v| v.get(i)).copied().unwrap_or("");
        for i in 0..cols[0].len() {
            let (cmd, sig, sid) = (at(0, i), at(1, i), at(2, i));
            if cmd == "0" || cmd == "1" {
                continue;
            }
            if sig == "1" && sid != "0x0000000000000000" {
                signed += 1;
            }
            if sig == "0" {
                unsigned += 1;
            }
            if cmd == "18" && at(3, i) == u64::MAX.to_string() {
                breaks += 1;
            }
            if at(4, i) == "0x00000103" && at(5, i) == "1" {
                interim += 1;
            }
        }
    }
    (signed, unsigned, breaks, interim)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `smb-audit pcap` on the capture, checked against what the clients saw and tshark.
fn check_capture(capture: &CaptureFile, t: &Target, seen: &Seen) -> String {
    let out = run_with_timeout(
        Command::new(workspace_bin("smb-audit"))
            .arg("pcap")
            .arg(&capture.path)
            .args(["--port", &t.port().to_string(), "--json", "-"])
            .args(["--password", &format!("{}%{}", t.user, t.password)]),
        PEER_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let sessions: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sum = |f: &dyn Fn(&Value) -> u64| sessions.iter().map(f).sum::<u64>();
    let breaks = sum(&|s| n(&s["exempt"]["oplock_break"]));
    let leases = sum(&|s| n(&s["exempt"]["lease_break"]));
    let interim = sum(&|s| n(&s["exempt"]["interim_pending"]));
    assert_eq!(
        breaks, seen.breaks,
        "smb-audit's break count is not our client's"
    );
    assert_eq!(leases, seen.lease_breaks, "smb-audit's lease break count");
    for (sid, count) in &seen.interim {
        let id = format!("0x{sid:016x}");
        let s = sessions
            .iter()
            .find(|s| s["session_id"] == id.as_str())
            .unwrap_or_else(|| panic!("session {id} not reported: {}", show(&out)));
        assert_eq!(
            n(&s["exempt"]["interim_pending"]),
            *count,
            "interim responses of {id}: {s}"
        );
    }
    for s in &sessions {
        assert_eq!(s["unsigned"], 0, "{s}");
        assert_eq!(s["bad_signature"], 0, "{s}");
        assert_eq!(s["verified"], s["signed"], "{s}");
        assert_eq!(s["verdict"], "SECURE", "{s}");
    }
    let (t_signed, t_unsigned, t_breaks, t_interim) = tshark_counts(capture);
    assert_eq!(
        sum(&|s| n(&s["signed"])),
        t_signed,
        "tshark's signed count differs"
    );
    assert_eq!(t_breaks, breaks + leases, "tshark's break notifications");
    assert_eq!(t_interim, interim, "tshark's interim responses");
    // The seed's filter lists exactly the exempt messages as "unsigned".
    assert_eq!(
        t_unsigned,
        breaks + leases + interim,
        "tshark's unsigned = the exempt ones"
    );
    format!(
        "capture: {} sessions, {} signed verified, exempt {breaks} oplock_break + {leases} \
         lease_break + {interim} interim_pending (= tshark's unsigned)",
        sessions.len(),
        sum(&|s| n(&s["verified"]))
    )
}

#[test]
fn our_client_acknowledges_our_server_oplock_breaks_signed() {
    let mut matrix = Matrix::new(
        "our client oplock and lease breaks → our server",
        "our_client_acknowledges_our_server_oplock_breaks_signed",
    );
    for (name, dialect, alg) in CASES {
        let key = CellKey::new(
            name,
            alg.name(),
            "server required, client required; batch oplock and RWH lease, second open by \
             smbclient and ours",
        );
        matrix.add(run_cell(key, || {
            let ours = OurServer::start("breaks-ours", &WIRESHARK_SIZED);
            let target = Target::ours(&ours);
            let capture = start_capture(ours.port());
            let mut seen = Seen::default();
            runtime().block_on(scenarios(&target, dialect, alg, &mut seen));
            let capture = capture.stop();
            let wire = check_capture(&capture, &target, &seen);
            Ok(format!("{}; {wire}", seen.notes.join("; ")))
        }));
    }
    matrix.finish();
}

#[test]
fn our_client_acknowledges_samba_oplock_breaks_signed() {
    let mut matrix = Matrix::new(
        "our client oplock and lease breaks → Samba 4.17",
        "our_client_acknowledges_samba_oplock_breaks_signed",
    );
    for (name, dialect, alg) in CASES {
        let key = CellKey::new(
            name,
            alg.name(),
            "Samba mandatory, client required; batch oplock and RWH lease, second open by smbclient and ours",
        );
        matrix.add(run_cell(key, || {
            let samba = SambaServer::start(SambaOptions::default());
            let target = Target::samba(&samba);
            let capture = start_capture(samba.port());
            let mut seen = Seen::default();
            runtime().block_on(scenarios(&target, dialect, alg, &mut seen));
            let capture = capture.stop();
            let wire = check_capture(&capture, &target, &seen);
            Ok(format!("{}; {wire}", seen.notes.join("; ")))
        }));
    }
    matrix.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// CHANGE_NOTIFY on the share root twice: one completed by a change another client makes,
/// one cancelled (a signed CANCEL naming the AsyncId).
async fn notify_and_cancel(t: &Target, dialect: Dialect, alg: Algorithm, seen: &mut Seen) {
    use smb_core::messages::change_notify::completion_filter;
    let (mut watcher, tree) = connect(t, dialect, alg).await;
    let (mut writer, tree2) = connect(t, dialect, alg).await;
    let root = watcher
        .open(tree, &OpenRequest::directory(""), "root")
        .await
        .unwrap();
    let filter = completion_filter::FILE_NAME | completion_filter::DIR_NAME;
    let id = watcher
        .start_notify(tree, root.file_id, filter, true)
        .await
        .unwrap();
    assert!(
        watcher.connection().async_id(id).is_some(),
        "CHANGE_NOTIFY did not go async"
    );
    // Samba answers the interim response before its notify daemon has the watch (smbd
    // registers it with notifyd by message): a change made at once was missed once in a
    // loaded CI run, and the watcher then waited in vain. Give the registration time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    writer
        .write_file(tree2, "notify-me.txt", b"hello")
        .await
        .unwrap();
    let (status, buffer) = watcher.wait_notify(id, PEER_TIMEOUT).await.unwrap();
    assert_eq!(status, NtStatus::SUCCESS);
    let name: Vec<u8> = "notify-me.txt"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    assert!(
        buffer.windows(name.len()).any(|w| w == name),
        "the change names the file: {buffer:02x?}"
    );
    let id = watcher
        .start_notify(tree, root.file_id, filter, true)
        .await
        .unwrap();
    let status = watcher.cancel(id).await.unwrap();
    assert_eq!(status, NtStatus::CANCELLED);
    watcher.close(tree, root.file_id).await.unwrap();
    for c in [&watcher, &writer] {
        let sid = c.connection().session_id().unwrap();
        seen.interim.push((sid, c.connection().interim_responses()));
    }
    let interim = watcher.connection().interim_responses();
    assert!(interim >= 2, "{interim} interim responses for two watches");
    seen.notes.push(format!(
        "CHANGE_NOTIFY answered by a change, then CANCELLED; {interim} interim responses"
    ));
    watcher.logoff().await.unwrap();
    writer.logoff().await.unwrap();
}

#[test]
fn our_client_change_notify_and_cancel_captured() {
    let test = "our_client_change_notify_and_cancel_captured";
    let mut samba_m = Matrix::new("our client change notify + CANCEL → Samba 4.17", test);
    let mut ours_m = Matrix::new("our client change notify + CANCEL → our server", test);
    for (name, dialect, alg) in CASES {
        let policy = "server required, client required; captured, smb-audit exempt counts";
        for (matrix, samba) in [(&mut samba_m, true), (&mut ours_m, false)] {
            let key = CellKey::new(name, alg.name(), policy);
            matrix.add(run_cell(key, || {
                let (_samba, _ours, target) = if samba {
                    let s = SambaServer::start(SambaOptions::default());
                    let t = Target::samba(&s);
                    (Some(s), None, t)
                } else {
                    let o = OurServer::start("breaks-notify", &WIRESHARK_SIZED);
                    let t = Target::ours(&o);
                    (None, Some(o), t)
                };
                let capture = start_capture(target.port());
                let mut seen = Seen::default();
                runtime().block_on(notify_and_cancel(&target, dialect, alg, &mut seen));
                let capture = capture.stop();
                let wire = check_capture(&capture, &target, &seen);
                Ok(format!("{}; {wire}", seen.notes.join("; ")))
            }));
        }
    }
    samba_m.finish();
    ours_m.finish();
}
