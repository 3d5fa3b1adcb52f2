//! Shared by the hostile-client tests: the real `smb-server` binary on loopback, a raw
//! SMB2 client over a socket (NTLM and signing done here, so requests can be bent in any
//! way), the server's memory from /proc, and a well-behaved client that must keep being
//! served while an attack runs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smb_core::auth::{ClientAuth, ClientStep, Credentials};
use smb_core::framing::{encode_frame, frame_len};
use smb_core::header::{Command as Cmd, Dialect, Header, NtStatus};
use smb_core::messages::create::{
    access, share_access, CreateDisposition, CreateRequest, CreateResponse,
};
use smb_core::messages::negotiate::NegotiateRequest;
use smb_core::messages::session_setup::{SessionSetupRequest, SessionSetupResponse};
use smb_core::messages::tree_connect::TreeConnectRequest;
use smb_core::messages::{build, EncodeBody, FileId};
use smb_core::signing::{derive_session_keys, Algorithm, SigningKey};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "Passw0rd!";

/// The documented server-wide ceiling for these tests' settings is far above what they may
/// cost; the assertions use the per-attack budgets below (README, "Memory model").
pub const MIB: u64 = 1024 * 1024;

/// The server process with its own share directory (`dir/data`) and an `outside`
/// directory next to it; killed by PID when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("smb-hostile-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_smb-server"))
            .args(["--listen", "127.0.0.1:0", "--share"])
            .arg(format!("data={}", dir.join("data").display()))
            .args(["--user", &format!("{USER}:{PASSWORD}"), "--audit-log"])
            .arg(dir.join("audit.jsonl"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("HOSTILE_SERVER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
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

    pub fn share(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn outside(&self) -> PathBuf {
        self.dir.join("outside")
    }

    /// (VmRSS, VmHWM) of the server in bytes.
    pub fn memory(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/PID/status"))
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The server process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Nothing was created in the directory beside the share.
    pub fn assert_outside_untouched(&self) {
        let n = std::fs::read_dir(self.outside()).unwrap().count();
        assert_eq!(n, 0, "something was written outside the share");
    }

    /// A full, signed, well-behaved session: login, tree connect, echo. Panics with the
    /// reason when the server does not serve it within 10 s.
    pub fn assert_serves_others(&self) {
        let mut c = Raw::connect(self.addr, None);
        c.login(USER, PASSWORD)
            .expect("well-behaved client logs on");
        c.tree_connect("data");
        let r = c.call(Cmd::ECHO, &smb_core::messages::echo::EchoRequest);
        assert_eq!(r.0.status, NtStatus::SUCCESS, "well-behaved client served");
    }
}

/// A raw client: frames, MessageIds, NTLM (dialect 3.0, AES-CMAC) and signing by hand.
pub struct Raw {
    pub s: TcpStream,
    pub next_id: u64,
    pub session_id: u64,
    pub tree_id: u32,
    pub key: Option<SigningKey>,
    pub credits_asked: u16,
}

impl Raw {
    pub fn connect(addr: SocketAddr, from: Option<IpAddr>) -> Raw {
        let s = match from {
            None => TcpStream::connect(addr).unwrap(),
            Some(ip) => connect_from(addr, ip),
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        Raw {
            s,
            next_id: 0,
            session_id: 0,
            tree_id: 0,
            key: None,
            credits_asked: 64,
        }
    }

    /// Sends one framed message; errors (a closed connection) are reported by `recv`.
    pub fn send_raw(&mut self, msg: &[u8]) {
        let mut framed = Vec::new();
        encode_frame(msg, &mut framed);
        let _ = self.s.write_all(&framed);
    }

    /// One framed message, or `None` on EOF, reset or timeout.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            if let Ok(Some(len)) = frame_len(&buf, 1 << 24) {
                return Some(buf[4..4 + len].to_vec());
            }
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True when the server closed the connection (EOF or reset) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        }
    }

    pub fn header(&mut self, cmd: Cmd) -> Header {
        let mut h = Header::request(cmd, self.next_id, self.session_id, self.tree_id);
        h.credits = self.credits_asked;
        self.next_id += 1;
        h
    }

    /// Builds and signs (when a key exists) a request.
    pub fn build<B: EncodeBody>(&mut self, cmd: Cmd, body: &B) -> Vec<u8> {
        let h = self.header(cmd);
        self.sign(build(&h, body))
    }

    pub fn sign(&self, mut msg: Vec<u8>) -> Vec<u8> {
        if let Some(k) = &self.key {
            k.sign(&mut msg).unwrap();
        }
        msg
    }

    /// Sends a request and returns the response's header and bytes; panics on a hang-up.
    pub fn call<B: EncodeBody>(&mut self, cmd: Cmd, body: &B) -> (Header, Vec<u8>) {
        self.try_call(cmd, body)
            .unwrap_or_else(|| panic!("{cmd} got no response"))
    }

    pub fn try_call<B: EncodeBody>(&mut self, cmd: Cmd, body: &B) -> Option<(Header, Vec<u8>)> {
        let msg = self.build(cmd, body);
        self.send_raw(&msg);
        let r = self.recv()?;
        Some((Header::parse(&r).unwrap(), r))
    }

    pub fn negotiate(&mut self) {
        let req = NegotiateRequest {
            security_mode: 1,
            dialects: vec![Dialect::SMB30],
            ..Default::default()
        };
        let (h, _) = self.call(Cmd::NEGOTIATE, &req);
        assert_eq!(h.status, NtStatus::SUCCESS);
    }

    /// NEGOTIATE 3.0 and NTLM. `Err(status)` on failure, `Err(UNSUCCESSFUL)` on a hang-up.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), NtStatus> {
        self.negotiate();
        self.session_setup(user, password)
    }

    pub fn session_setup(&mut self, user: &str, password: &str) -> Result<(), NtStatus> {
        let mut auth = ClientAuth::new(Credentials::password(user, "", password));
        let mut token = auth.first_token().unwrap();
        loop {
            let body = SessionSetupRequest {
                security_mode: 1,
                security_buffer: token,
                ..Default::default()
            };
            let Some((h, resp)) = self.try_call(Cmd::SESSION_SETUP, &body) else {
                return Err(NtStatus::UNSUCCESSFUL);
            };
            match h.status {
                NtStatus::MORE_PROCESSING_REQUIRED => {
                    self.session_id = h.session_id;
                    let b = SessionSetupResponse::read(&resp).unwrap();
                    match auth.step(&b.security_buffer).unwrap() {
                        ClientStep::Continue(t) => token = t,
                        ClientStep::Done => panic!("NTLM done too early"),
                    }
                }
                NtStatus::SUCCESS => {
                    let b = SessionSetupResponse::read(&resp).unwrap();
                    if !b.security_buffer.is_empty() {
                        let _ = auth.step(&b.security_buffer);
                    }
                    let sk = auth.session_key().expect("session key");
                    let keys =
                        derive_session_keys(Dialect::SMB30, sk.as_bytes(), None, None).unwrap();
                    self.key = Some(SigningKey::new(Algorithm::AesCmac, &keys.signing).unwrap());
                    return Ok(());
                }
                other => return Err(other),
            }
        }
    }

    pub fn tree_connect(&mut self, share: &str) {
        let req = TreeConnectRequest {
            flags: 0,
            path: format!("\\\\127.0.0.1\\{share}"),
        };
        let (h, _) = self.call(Cmd::TREE_CONNECT, &req);
        assert_eq!(h.status, NtStatus::SUCCESS, "tree connect");
        self.tree_id = h.tree_id;
    }

    /// CREATE (open or create a file) of `name`; the status and the FileId on success.
    pub fn create(&mut self, name: &str, disposition: CreateDisposition) -> (NtStatus, FileId) {
        let req = CreateRequest {
            desired_access: access::GENERIC_READ | access::GENERIC_WRITE,
            share_access: share_access::READ | share_access::WRITE,
            create_disposition: disposition,
            name: name.to_string(),
            ..Default::default()
        };
        let (h, r) = self.call(Cmd::CREATE, &req);
        let id = if h.status == NtStatus::SUCCESS {
            CreateResponse::read(&r).unwrap().file_id
        } else {
            FileId::default()
        };
        (h.status, id)
    }
}

/// A TCP connection from a chosen loopback source address.
fn connect_from(addr: SocketAddr, ip: IpAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(ip, 0)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(sock.connect(addr)).unwrap().into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

/// Waits (up to `limit`) for `f` to hold.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

impl Raw {
    /// Like `login`, but `None` when the server hangs up instead of answering.
    pub fn login_or_hangup(&mut self, user: &str, password: &str) -> Option<NtStatus> {
        let req = NegotiateRequest {
            security_mode: 1,
            dialects: vec![Dialect::SMB30],
            ..Default::default()
        };
        self.try_call(Cmd::NEGOTIATE, &req)?;
        match self.session_setup(user, password) {
            Ok(()) => Some(NtStatus::SUCCESS),
            Err(NtStatus::UNSUCCESSFUL) => None,
            Err(s) => Some(s),
        }
    }
}

impl Server {
    /// Like `assert_outside_untouched`, allowing the files the test put there itself.
    pub fn assert_outside_untouched_but(&self, own: &[&str]) {
        for e in std::fs::read_dir(self.outside()).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(
                own.contains(&name.as_str()),
                "{name} written outside the share"
            );
        }
    }
}
