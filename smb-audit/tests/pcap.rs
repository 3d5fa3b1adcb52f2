//! `smb-audit pcap` on captures the suite makes itself with dumpcap on loopback: our client and
//! smbclient against Samba and our server, signed with every algorithm and unsigned; counts
//! agree with tshark's reading of the same files, every signature verifies with the password,
//! one flipped byte is exactly one bad signature, and damaged captures are reported, not fatal.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use serde_json::Value;
use smb_audit::pcap::packet::tcp_segment;
use tests::{
    require_tool, run_with_timeout, scratch_dir, show, spawn_listening, workspace_bin, CaptureFile,
    ChildGuard, SambaOptions, SambaServer, ScratchDir, ServerSigning, UNSIGNED_AFTER_AUTH,
    UNSIGNED_AFTER_AUTH_RAW,
};

const USER: &str = "alice";
const PASSWORD: &str = "Passw0rd!";
const TIMEOUT: Duration = Duration::from_secs(120);

struct Server {
    _guard: ChildGuard,
    addr: std::net::SocketAddr,
    _root: ScratchDir,
}

fn start_server(name: &str, extra: &[&str]) -> Server {
    let root = scratch_dir(name);
    let share = root.join("share");
    fs::create_dir_all(&share).unwrap();
    let mut cmd = Command::new(workspace_bin("smb-server"));
    cmd.arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--share")
        .arg(format!("data={}", share.display()))
        .arg("--user")
        .arg(format!("{USER}:{PASSWORD}"))
        .args(extra);
    let (guard, addr) = spawn_listening(&mut cmd, Duration::from_secs(20));
    Server {
        _guard: guard,
        addr,
        _root: root,
    }
}

fn our_client(service: &str, user: &str, args: &[&str], script: &str) -> Output {
    let out = run_with_timeout(
        Command::new(workspace_bin("smb-client"))
            .arg(service)
            .args(["-U", user])
            .args(args)
            .args(["-c", script]),
        TIMEOUT,
    );
    assert!(out.status.success(), "{}", show(&out));
    out
}

fn smbclient(port: u16, user: &str, options: &[&str], script: &str) -> Output {
    let mut cmd = Command::new(require_tool("smbclient"));
    cmd.args([
        "//127.0.0.1/data",
        "-p",
        &port.to_string(),
        "-U",
        user,
        "-c",
        script,
    ]);
    for o in options {
        cmd.arg(format!("--option={o}"));
    }
    run_with_timeout(&mut cmd, TIMEOUT)
}

/// `smb-audit pcap FILE --port PORT --json - EXTRA...`: exit code and one object per session.
fn analyse(file: &Path, port: u16, extra: &[&str]) -> (Option<i32>, Vec<Value>, Output) {
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smb-audit"))
            .arg("pcap")
            .arg(file)
            .args(["--port", &port.to_string(), "--json", "-"])
            .args(extra),
        TIMEOUT,
    );
    let sessions = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.code(), sessions, out)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn sum(sessions: &[Value], f: impl Fn(&Value) -> u64) -> u64 {
    sessions.iter().map(f).sum()
}

/// tshark's count of SMB2 messages after authentication (SessionId set, not NEGOTIATE or
/// SESSION_SETUP) that are signed, per message (a frame may carry a compound chain).
fn tshark_signed_messages(capture: &CaptureFile) -> u64 {
    let mut signed = 0;
    for line in capture.fields("smb2", &["smb2.cmd", "smb2.flags.signature", "smb2.sesid"]) {
        let cols: Vec<Vec<&str>> = line.split('\t').map(|c| c.split(',').collect()).collect();
        for i in 0..cols[0].len() {
            let cmd = cols[0][i];
            let sig = cols.get(1).and_then(|c| c.get(i)).copied().unwrap_or("0");
            let sid = cols.get(2).and_then(|c| c.get(i)).copied().unwrap_or("0");
            if cmd != "0" && cmd != "1" && sig == "1" && sid != "0x0000000000000000" {
                signed += 1;
            }
        }
    }
    signed
}

/// Every session verified, none bad, none unsigned; tshark agrees on the counts.
fn assert_all_signed_and_verified(capture: &CaptureFile, sessions: &[Value]) {
    assert!(!sessions.is_empty());
    for s in sessions {
        assert_eq!(s["unsigned"], 0, "{s}");
        assert_eq!(s["bad_signature"], 0, "{s}");
        assert_eq!(s["verified"], s["signed"], "{s}");
        assert!(n(&s["signed"]) > 0, "{s}");
        assert_eq!(s["verdict"], "SECURE", "{s}");
    }
    assert_eq!(
        sum(sessions, |s| n(&s["signed"])),
        tshark_signed_messages(capture),
        "tshark counts other signed messages"
    );
    assert_eq!(capture.count(UNSIGNED_AFTER_AUTH), 0);
    let exempt = sum(sessions, |s| {
        n(&s["exempt"]["interim_pending"])
            + n(&s["exempt"]["oplock_break"])
            + n(&s["exempt"]["lease_break"])
    });
    // The seed's filter counts the exempt messages as unsigned: exactly those.
    assert_eq!(capture.count(UNSIGNED_AFTER_AUTH_RAW) as u64, exempt);
}

#[test]
fn our_client_to_samba_every_algorithm_and_dialect_verifies() {
    let samba = SambaServer::start(SambaOptions {
        signing: ServerSigning::Mandatory,
        ..SambaOptions::default()
    });
    let dir = scratch_dir("pcap-samba-files");
    let big = dir.join("big.bin");
    fs::write(&big, tests::test_bytes(3 << 20, 7)).unwrap();
    let capture = tests::interop::start_capture(samba.port());
    let service = format!("//{}/{}", samba.addr(), samba.share_name());
    let user = format!("{}%{}", samba.user(), samba.password());
    let script = format!(
        "put {} big.bin; ls; get big.bin {}.back; rm big.bin",
        big.display(),
        big.display()
    );
    for alg in ["aes-gmac", "aes-cmac", "hmac-sha256"] {
        our_client(
            &service,
            &user,
            &["--dialect", "3.1.1", "--signing-algorithm", alg],
            &script,
        );
    }
    our_client(&service, &user, &["--dialect", "3.0.2"], "ls");
    our_client(&service, &user, &["--dialect", "2.1"], "ls");
    let capture = capture.stop();
    let (code, sessions, out) = analyse(
        &capture.path,
        samba.port(),
        &[
            "--password",
            &format!("{}%{}", samba.user(), samba.password()),
        ],
    );
    assert_eq!(code, Some(0), "{}", show(&out));
    assert_eq!(sessions.len(), 5, "{}", show(&out));
    let algs: Vec<(String, String)> = sessions
        .iter()
        .map(|s| {
            (
                s["dialect"].as_str().unwrap().to_string(),
                s["signing_algorithm"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("3.1.1", "aes-gmac"),
        ("3.1.1", "aes-cmac"),
        ("3.1.1", "hmac-sha256"),
        ("3.0.2", "aes-cmac"),
        ("2.1", "hmac-sha256"),
    ] {
        assert!(
            algs.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} missing from {algs:?}"
        );
    }
    for s in &sessions {
        assert_eq!(s["user"], samba.user());
        assert_eq!(s["setup_seen"], true);
        assert_eq!(s["server_requires_signing"], true);
    }
    assert_all_signed_and_verified(&capture, &sessions);
}

#[test]
fn smbclient_signed_and_unsigned_against_our_server() {
    let strict = start_server("pcap-strict", &[]);
    let port = strict.addr.port();
    let capture = tests::interop::start_capture(port);
    let out = smbclient(
        port,
        &format!("{USER}%{PASSWORD}"),
        &["client signing=required"],
        "ls",
    );
    assert!(out.status.success(), "{}", show(&out));
    let capture = capture.stop();
    let (code, sessions, out) = analyse(
        &capture.path,
        port,
        &["--password", &format!("{USER}%{PASSWORD}")],
    );
    assert_eq!(code, Some(0), "{}", show(&out));
    assert_eq!(sessions.len(), 1, "{}", show(&out));
    assert_eq!(sessions[0]["client_requires_signing"], true);
    assert_all_signed_and_verified(&capture, &sessions);

    let lax = start_server(
        "pcap-lax",
        &["--require-signing", "false", "--dialects", "2.1,3.0.2"],
    );
    let port = lax.addr.port();
    let capture = tests::interop::start_capture(port);
    let out = smbclient(
        port,
        &format!("{USER}%{PASSWORD}"),
        &["client signing=disabled"],
        "ls",
    );
    assert!(out.status.success(), "{}", show(&out));
    let capture = capture.stop();
    let (code, sessions, out) = analyse(&capture.path, port, &[]);
    assert_eq!(code, Some(1), "{}", show(&out));
    assert_eq!(sessions.len(), 1, "{}", show(&out));
    let s = &sessions[0];
    assert_eq!(s["verdict"], "VULNERABLE");
    assert_eq!(s["verified"], Value::Null, "no password: nothing verified");
    assert!(
        n(&s["unsigned_from_client"]) > 0 && n(&s["unsigned_from_server"]) > 0,
        "{s}"
    );
    assert_eq!(
        n(&s["unsigned"]),
        capture.count(UNSIGNED_AFTER_AUTH) as u64,
        "tshark disagrees"
    );
    // The table's rollup names the client and the server, like events 3021 and 31998.
    let table = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_smb-audit"))
            .arg("pcap")
            .arg(&capture.path)
            .args(["--port", &port.to_string()]),
        TIMEOUT,
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("client 127.0.0.1 does not sign"), "{text}");
    assert!(text.contains("server 127.0.0.1 does not sign"), "{text}");
}

/// The packets of a pcapng capture, as (link type, bytes).
fn packets(file: &Path) -> (DataLink, Vec<Vec<u8>>) {
    let mut r = PcapNgReader::new(fs::File::open(file).unwrap()).unwrap();
    let mut link = DataLink::ETHERNET;
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        match b.unwrap() {
            Block::InterfaceDescription(i) => link = i.linktype,
            Block::EnhancedPacket(p) => out.push(p.data.into_owned()),
            _ => {}
        }
    }
    (link, out)
}

fn write_pcap(path: &Path, link: DataLink, packets: &[Vec<u8>]) {
    let header = PcapHeader {
        datalink: link,
        snaplen: 1 << 20,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(fs::File::create(path).unwrap(), header).unwrap();
    for (i, p) in packets.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            p.len() as u32,
            p,
        ))
        .unwrap();
    }
}

/// A capture of one signed GMAC session with our client and server (three files moved).
fn signed_session_capture(name: &str) -> (Server, CaptureFile) {
    let s = start_server(name, &[]);
    let dir = scratch_dir(&format!("{name}-files"));
    let f = dir.join("f.bin");
    fs::write(&f, tests::test_bytes(200_000, 3)).unwrap();
    let capture = tests::interop::start_capture(s.addr.port());
    our_client(
        &format!("//{}/data", s.addr),
        &format!("{USER}%{PASSWORD}"),
        &["--signing-algorithm", "aes-gmac"],
        &format!(
            "put {} a; put {} b; ls; get a {}.back; rm a; rm b",
            f.display(),
            f.display(),
            f.display()
        ),
    );
    (s, capture.stop())
}

/// Key fields of a session for comparisons.
fn counts(s: &Value) -> BTreeMap<&'static str, Value> {
    [
        "after_auth",
        "signed",
        "unsigned",
        "verified",
        "bad_signature",
        "dialect",
        "signing_algorithm",
        "user",
    ]
    .into_iter()
    .map(|k| (k, s[k].clone()))
    .collect()
}

#[test]
fn one_flipped_byte_is_exactly_one_bad_signature_and_reordering_changes_nothing() {
    let (server, capture) = signed_session_capture("pcap-flip");
    let port = server.addr.port();
    let pw = format!("{USER}%{PASSWORD}");
    let (code, base, out) = analyse(&capture.path, port, &["--password", &pw]);
    assert_eq!(code, Some(0), "{}", show(&out));
    assert_eq!(base.len(), 1);
    assert_eq!(base[0]["verified"], base[0]["signed"], "{}", base[0]);
    let (link, pkts) = packets(&capture.path);
    let dir = scratch_dir("pcap-flip-out");

    // The same packets as classic pcap: same result.
    let same = dir.join("same.pcap");
    write_pcap(&same, link, &pkts);
    let (_, again, _) = analyse(&same, port, &["--password", &pw]);
    assert_eq!(counts(&again[0]), counts(&base[0]));

    // Adjacent data segments of one direction swapped, and every third packet sent twice:
    // TCP reassembly undoes both.
    let mut shuffled = pkts.clone();
    let dir_of = |p: &Vec<u8>| {
        tcp_segment(link, p)
            .filter(|s| !s.payload.is_empty())
            .map(|s| s.src)
    };
    let mut swaps = 0;
    let mut i = 0;
    while i + 1 < shuffled.len() {
        if dir_of(&shuffled[i]).is_some() && dir_of(&shuffled[i]) == dir_of(&shuffled[i + 1]) {
            shuffled.swap(i, i + 1);
            swaps += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    assert!(swaps > 0, "no adjacent segments to swap");
    let mut dup = Vec::new();
    for (i, p) in shuffled.into_iter().enumerate() {
        if i % 3 == 0 {
            dup.push(p.clone());
        }
        dup.push(p);
    }
    let reordered = dir.join("reordered.pcap");
    write_pcap(&reordered, link, &dup);
    let (_, again, out) = analyse(&reordered, port, &["--password", &pw]);
    assert_eq!(again.len(), 1, "{}", show(&out));
    assert_eq!(counts(&again[0]), counts(&base[0]), "{}", show(&out));

    // Flip the last byte of the first server packet that carries exactly one signed message
    // after the logon (a READ or WRITE or QUERY_DIRECTORY response, say).
    let mut flipped = pkts.clone();
    let mut frame_no = 0;
    for (i, p) in pkts.iter().enumerate() {
        let Some(seg) = tcp_segment(link, p) else {
            continue;
        };
        let pl = seg.payload;
        if seg.src.port() != port || pl.len() < 68 || &pl[4..8] != b"\xfeSMB" {
            continue;
        }
        let frame_len = u32::from_be_bytes([0, pl[1], pl[2], pl[3]]) as usize;
        let command = u16::from_le_bytes([pl[4 + 12], pl[4 + 13]]);
        let flags = u32::from_le_bytes(pl[4 + 16..4 + 20].try_into().unwrap());
        let next = u32::from_le_bytes(pl[4 + 20..4 + 24].try_into().unwrap());
        if frame_len + 4 == pl.len() && command > 2 && flags & 8 != 0 && next == 0 {
            let last = flipped[i].len() - 1;
            flipped[i][last] ^= 0x01;
            frame_no = i as u64 + 1;
            break;
        }
    }
    assert!(frame_no > 0, "no single signed message to flip");
    let bad = dir.join("flipped.pcap");
    write_pcap(&bad, link, &flipped);
    let (code, got, out) = analyse(&bad, port, &["--password", &pw]);
    assert_eq!(code, Some(1), "{}", show(&out));
    let s = &got[0];
    assert_eq!(s["bad_signature"], 1, "{s}");
    assert_eq!(
        s["bad_signature_frames"],
        serde_json::json!([frame_no]),
        "{s}"
    );
    assert_eq!(n(&s["verified"]), n(&base[0]["verified"]) - 1, "{s}");

    // Without the logon packets: a session seen only after authentication.
    let first_tree = pkts
        .iter()
        .position(|p| {
            tcp_segment(link, p).is_some_and(|s| {
                s.payload.len() > 20 && &s.payload[4..8] == b"\xfeSMB" && s.payload[4 + 12] == 3
            })
        })
        .unwrap();
    let mid = dir.join("mid.pcap");
    write_pcap(&mid, link, &pkts[first_tree..]);
    let (_, got, out) = analyse(&mid, port, &["--password", &pw]);
    assert_eq!(got.len(), 1, "{}", show(&out));
    assert_eq!(got[0]["setup_seen"], false);
    assert_eq!(got[0]["signed"], base[0]["signed"]);
    assert_eq!(got[0]["verified"], Value::Null);

    // A wrong password: said clearly, nothing verified, the counts still there.
    let (_, got, out) = analyse(
        &capture.path,
        port,
        &["--password", &format!("{USER}%nope")],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong password"),
        "{}",
        show(&out)
    );
    assert_eq!(got[0]["verified"], Value::Null);
    assert_eq!(got[0]["signed"], base[0]["signed"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("nope"));
}

#[test]
fn damaged_captures_are_reported_and_the_rest_is_analysed() {
    let (server, capture) = signed_session_capture("pcap-damaged");
    let port = server.addr.port();
    let dir = scratch_dir("pcap-damaged-out");
    let bytes = fs::read(&capture.path).unwrap();

    // Truncated in the middle of a block.
    let cut = dir.join("cut.pcapng");
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let (code, sessions, out) = analyse(&cut, port, &[]);
    assert_ne!(code, Some(2), "{}", show(&out));
    assert_eq!(sessions.len(), 1, "{}", show(&out));

    // Not a capture at all: exit 2 with a message.
    let junk = dir.join("junk.pcap");
    fs::write(&junk, b"this is not a capture file at all").unwrap();
    let (code, _, out) = analyse(&junk, port, &[]);
    assert_eq!(code, Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("junk.pcap"),
        "{}",
        show(&out)
    );

    // An unknown link type.
    let wifi = dir.join("wifi.pcap");
    write_pcap(&wifi, DataLink::IEEE802_11, &[vec![0u8; 40]]);
    let (code, _, out) = analyse(&wifi, port, &[]);
    assert_eq!(code, Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not supported"),
        "{}",
        show(&out)
    );

    // A frame that claims a 16 MiB SMB message, then the good capture after it.
    let (link, pkts) = packets(&capture.path);
    let template = pkts
        .iter()
        .find(|p| {
            tcp_segment(link, p).is_some_and(|s| s.dst.port() == port && !s.payload.is_empty())
        })
        .unwrap();
    let seg = tcp_segment(link, template).unwrap();
    let header_len = template.len() - seg.payload.len();
    assert_eq!(
        link,
        DataLink::ETHERNET,
        "dumpcap on lo records Ethernet frames"
    );
    let mut huge = template[..header_len].to_vec();
    huge.extend_from_slice(&[0x00, 0xFF, 0xFF, 0xFF]);
    huge.extend_from_slice(b"\xfeSMB");
    huge.extend_from_slice(&[0u8; 60]);
    // Another connection (source port changed) so the real session is untouched.
    let sport_at = 14 + usize::from(huge[14] & 0x0F) * 4;
    huge[sport_at] ^= 0x40;
    let mut with_huge = vec![huge];
    with_huge.extend(pkts.iter().cloned());
    let claim = dir.join("claim.pcap");
    write_pcap(&claim, link, &with_huge);
    let (code, sessions, out) = analyse(&claim, port, &[]);
    assert_ne!(code, Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("claims a 16777215-byte SMB message"),
        "{}",
        show(&out)
    );
    assert_eq!(sessions.len(), 1);
}

#[test]
fn guest_and_smb1_sessions_are_named() {
    // Samba speaking SMB1 to smbclient, signing off; and our server granting a guest session.
    let samba = SambaServer::start(SambaOptions {
        signing: ServerSigning::Auto,
        min_protocol: "NT1",
        ..SambaOptions::default()
    });
    let capture = tests::interop::start_capture(samba.port());
    let out = smbclient(
        samba.port(),
        &format!("{}%{}", samba.user(), samba.password()),
        &[
            "client min protocol=NT1",
            "client max protocol=NT1",
            "client signing=disabled",
        ],
        "ls",
    );
    assert!(out.status.success(), "{}", show(&out));
    let capture = capture.stop();
    let (code, sessions, out) = analyse(&capture.path, samba.port(), &[]);
    assert_eq!(code, Some(1), "{}", show(&out));
    let s1: Vec<&Value> = sessions.iter().filter(|s| s["smb1"] == true).collect();
    assert_eq!(s1.len(), 1, "{}", show(&out));
    assert!(n(&s1[0]["after_auth"]) > 0);
    assert!(s1[0]["reasons"].to_string().contains("SMBv1 session"));
    let unsigned_smb1 =
        capture.count("smb.flags2.sec_sig == 0 && !(smb.cmd == 0x72) && !(smb.cmd == 0x73)");
    assert_eq!(
        n(&s1[0]["unsigned"]),
        unsigned_smb1 as u64,
        "tshark disagrees"
    );

    let guest = start_server(
        "pcap-guest",
        &["--require-signing", "false", "--guest", "true"],
    );
    let port = guest.addr.port();
    let capture = tests::interop::start_capture(port);
    let out = smbclient(port, "nobody%whatever", &["client signing=disabled"], "ls");
    assert!(out.status.success(), "{}", show(&out));
    let capture = capture.stop();
    let (_, sessions, out) = analyse(&capture.path, port, &[]);
    assert_eq!(sessions.len(), 1, "{}", show(&out));
    assert_eq!(sessions[0]["guest"], true, "{}", sessions[0]);
    assert_eq!(sessions[0]["user"], "nobody");
    assert!(sessions[0]["reasons"].to_string().contains("guest session"));
}
