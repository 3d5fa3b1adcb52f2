//! Issue 12, attack 2, against the real `smb-server` binary: one signed frame of 32 READs of
//! 8 MiB each (credits granted inside the chain pay for the next READ). Every READ is
//! charged its worst-case response before it runs; the per-connection budget (16 MiB) lets
//! the first through and refuses the other 31 with STATUS_INSUFFICIENT_RESOURCES, and the
//! server's peak RSS stays within the documented per-connection ceiling (README, "Memory
//! model") instead of growing by the 519 MiB the issue measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use smb_core::auth::{ClientAuth, ClientStep, Credentials};
use smb_core::compound::{build_chain, split_chain};
use smb_core::framing::{encode_frame, frame_len};
use smb_core::header::{Command as Cmd, Dialect, Header, NtStatus};
use smb_core::messages::create::{access, CreateDisposition, CreateRequest, CreateResponse};
use smb_core::messages::echo::EchoRequest;
use smb_core::messages::negotiate::NegotiateRequest;
use smb_core::messages::read::{ReadRequest, ReadResponse};
use smb_core::messages::session_setup::{SessionSetupRequest, SessionSetupResponse};
use smb_core::messages::tree_connect::TreeConnectRequest;
use smb_core::messages::{build, EncodeBody};
use smb_core::signing::{derive_session_keys, Algorithm, SigningKey};

const MIB: u64 = 1024 * 1024;
/// The documented ceiling for what one connection may add to the server's memory: its
/// response budget (16 MiB), one frame of input (8 MiB + 64 KiB) and allocator slack.
const CONNECTION_CEILING: u64 = 48 * MIB;
const READ_LEN: u32 = 8 * 1024 * 1024;

/// The server process and its share directory; killed by PID and removed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("smb-budget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_smb-server"))
            .args(["--listen", "127.0.0.1:0", "--share"])
            .arg(format!("data={}", dir.join("data").display()))
            .args(["--user", "alice:Passw0rd!"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smb-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr, dir }
    }

    /// VmHWM (peak resident set) of the server, in bytes.
    fn peak_rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM in /proc/PID/status")
            * 1024
    }
}

/// A raw signed client (3.0, AES-CMAC), so the chain can be built by hand.
struct Raw {
    s: TcpStream,
    next_id: u64,
    session_id: u64,
    tree_id: u32,
    key: Option<SigningKey>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Raw {
            s,
            next_id: 0,
            session_id: 0,
            tree_id: 0,
            key: None,
        }
    }

    fn header(&mut self, cmd: Cmd, charge: u16) -> Header {
        let mut h = Header::request(cmd, self.next_id, self.session_id, self.tree_id);
        h.credit_charge = charge;
        h.credits = 256;
        self.next_id += u64::from(charge.max(1));
        h
    }

    fn signed<B: EncodeBody>(&mut self, cmd: Cmd, charge: u16, body: &B) -> Vec<u8> {
        let h = self.header(cmd, charge);
        let mut m = build(&h, body);
        if let Some(k) = &self.key {
            k.sign(&mut m).unwrap();
        }
        m
    }

    fn send(&mut self, msg: &[u8]) {
        let mut framed = Vec::new();
        encode_frame(msg, &mut framed);
        self.s.write_all(&framed).unwrap();
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            if let Ok(Some(len)) = frame_len(&buf, 1 << 24) {
                return buf[4..4 + len].to_vec();
            }
            let n = self.s.read(&mut chunk).expect("a response");
            assert!(n > 0, "the server hung up");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn call<B: EncodeBody>(&mut self, cmd: Cmd, body: &B) -> (Header, Vec<u8>) {
        let m = self.signed(cmd, 1, body);
        self.send(&m);
        let r = self.recv();
        (Header::parse(&r).unwrap(), r)
    }

    fn login(&mut self) {
        let neg = NegotiateRequest {
            security_mode: 1,
            dialects: vec![Dialect::SMB30],
            ..Default::default()
        };
        assert_eq!(self.call(Cmd::NEGOTIATE, &neg).0.status, NtStatus::SUCCESS);
        let mut auth = ClientAuth::new(Credentials::password("alice", "", "Passw0rd!"));
        let mut token = auth.first_token().unwrap();
        loop {
            let body = SessionSetupRequest {
                security_mode: 1,
                security_buffer: token,
                ..Default::default()
            };
            let (h, resp) = self.call(Cmd::SESSION_SETUP, &body);
            self.session_id = h.session_id;
            let b = SessionSetupResponse::read(&resp).unwrap();
            match h.status {
                NtStatus::MORE_PROCESSING_REQUIRED => match auth.step(&b.security_buffer) {
                    Ok(ClientStep::Continue(t)) => token = t,
                    other => panic!("NTLM: {other:?}"),
                },
                NtStatus::SUCCESS => {
                    let sk = auth.session_key().expect("session key");
                    let keys =
                        derive_session_keys(Dialect::SMB30, sk.as_bytes(), None, None).unwrap();
                    self.key = Some(SigningKey::new(Algorithm::AesCmac, &keys.signing).unwrap());
                    return;
                }
                other => panic!("logon failed: {other:?}"),
            }
        }
    }
}

#[test]
fn a_chain_of_32_reads_of_8_mib_is_refused_within_the_budget() {
    let srv = Server::start();
    std::fs::write(
        srv.dir.join("data").join("big"),
        vec![0xA5u8; READ_LEN as usize],
    )
    .unwrap();
    let mut c = Raw::connect(srv.addr);
    c.login();
    let tc = TreeConnectRequest {
        flags: 0,
        path: "\\\\127.0.0.1\\data".into(),
    };
    let (h, _) = c.call(Cmd::TREE_CONNECT, &tc);
    assert_eq!(h.status, NtStatus::SUCCESS);
    c.tree_id = h.tree_id;
    let open = CreateRequest {
        desired_access: access::GENERIC_READ,
        create_disposition: CreateDisposition::OPEN,
        name: "big".into(),
        ..Default::default()
    };
    let (h, r) = c.call(Cmd::CREATE, &open);
    assert_eq!(h.status, NtStatus::SUCCESS);
    let fid = CreateResponse::read(&r).unwrap().file_id;
    // Collect credits for the first 128-credit READ.
    for _ in 0..2 {
        assert_eq!(c.call(Cmd::ECHO, &EchoRequest).0.status, NtStatus::SUCCESS);
    }
    let before = srv.peak_rss();

    let charge = ((READ_LEN - 1) / 65_536 + 1) as u16; // MS-SMB2 3.1.5.2
    let reads: Vec<Vec<u8>> = (0..32)
        .map(|_| {
            let mut h = c.header(Cmd::READ, charge);
            h.credits = charge;
            build(
                &h,
                &ReadRequest {
                    file_id: fid,
                    length: READ_LEN,
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut chain = build_chain(&reads);
    for r in split_chain(&chain).unwrap() {
        c.key.as_ref().unwrap().sign(&mut chain[r]).unwrap();
    }
    assert!(chain.len() < 4096, "a few KB sent");
    c.send(&chain);
    let answer = c.recv();
    let ranges = split_chain(&answer).unwrap();
    let statuses: Vec<NtStatus> = ranges
        .iter()
        .map(|r| Header::parse(&answer[r.clone()]).unwrap().status)
        .collect();
    let mut want = vec![NtStatus::INSUFFICIENT_RESOURCES; 32];
    want[0] = NtStatus::SUCCESS;
    assert_eq!(statuses, want);
    for r in &ranges {
        c.key.as_ref().unwrap().verify(&answer[r.clone()]).unwrap();
    }
    let data = ReadResponse::read(&answer[ranges[0].clone()]).unwrap().data;
    assert!(data.len() == READ_LEN as usize && data.iter().all(|&b| b == 0xA5));

    let after = srv.peak_rss();
    eprintln!(
        "32 x 8 MiB READ chain: server peak RSS {:.1} -> {:.1} MiB",
        before as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(
        after.saturating_sub(before) < CONNECTION_CEILING,
        "peak RSS {} -> {} MiB: more than the per-connection ceiling of {} MiB",
        before / MIB,
        after / MIB,
        CONNECTION_CEILING / MIB
    );
    // The connection is still served.
    assert_eq!(c.call(Cmd::ECHO, &EchoRequest).0.status, NtStatus::SUCCESS);
}
