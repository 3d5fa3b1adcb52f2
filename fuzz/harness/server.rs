//! Drives one `ServerConnection` through an arbitrary sequence of messages, behind a real
//! NTLM logon and with signed requests, so a fuzzer reaches the commands that only an
//! authenticated, signing client can reach. Shared by the `server_session` fuzz target and
//! the stable-toolchain corpus replay (`smb-core/tests/fuzz_server_replay.rs`).
//!
//! Input: byte 0 picks the dialect (3.1.1, 3.0 or 2.1); the rest is a list of operations
//! `[op][len lo][len hi][len bytes]`:
//! - op % 4 == 0: one request. Payload byte 0 picks the command, byte 1 flags (bit 0: sign,
//!   bit 1: put the FileId of an earlier CREATE into the body, bit 2: bad MessageId), the rest
//!   is the body. The harness writes a valid header (next MessageId, session, tree).
//! - op % 4 == 1: a compound of up to 4 such requests (byte 0: count, then each as
//!   `[len lo][len hi][payload]`), related after the first, signed as a chain.
//! - op % 4 == 2: raw bytes handed to `handle_input` as they are.
//! - op % 4 == 3: a whole message from the fuzzer whose MessageId, SessionId and TreeId are
//!   set to valid values, then signed.
//!
//! Checked: nothing panics; every output parses as an SMB2 response; every response that
//! says it is signed verifies with the session key; nothing is sent after a disconnect.
//!
//! Cost per run: the server's clock and randomness come from its configuration (a fixed
//! clock, a seeded generator, a fresh configuration and memory share per run), so it sends
//! the same NTLM challenge every time and the client half of the logon (NEGOTIATE, both
//! SESSION_SETUPs, TREE_CONNECT and the signing key) is computed once per dialect and
//! replayed. The server still does its whole half of every run (challenge, NTLMv2 and MIC
//! checks, key derivation, signature checks); a run whose replayed logon is not accepted
//! exactly as recorded panics, so the shortcut cannot silently lose the authenticated
//! state. Each run starts from an empty share: inputs do not depend on each other.

use std::sync::{Arc, OnceLock};

use smb_core::auth::{ClientAuth, ClientStep, Credentials, UserTable};
use smb_core::compound::build_chain;
use smb_core::conn::server::{ServerConfig, ServerConnection, ServerEvent, ShareConfig};
use smb_core::conn::share::MemoryShare;
use smb_core::env::{FixedClock, SeededRandom};
use smb_core::header::{flags, Command, Dialect, Header, NtStatus, HEADER_LEN};
use smb_core::messages::create::CreateResponse;
use smb_core::messages::negotiate::{
    Guid, HashAlgorithm, NegotiateContext, NegotiateRequest, NegotiateResponse,
};
use smb_core::messages::session_setup::{SessionSetupRequest, SessionSetupResponse};
use smb_core::messages::tree_connect::TreeConnectRequest;
use smb_core::messages::{build, EncodeBody, FileId};
use smb_core::policy::SigningPolicy;
use smb_core::signing::{derive_session_keys, Algorithm, PreauthHash, SigningKey};

const USER: &str = "alice";
const PASSWORD: &str = "Passw0rd!";

/// A fresh server configuration as every run uses it: alice, an empty memory share "data"
/// (bounded to 1 MiB so the fuzzer cannot make the process grow), signing required, a fixed
/// clock and a seeded random source (the same NTLM challenge every run).
pub fn config() -> Arc<ServerConfig> {
    static USERS: OnceLock<Arc<UserTable>> = OnceLock::new();
    let users = USERS.get_or_init(|| {
        let mut users = UserTable::new();
        users.add_password(USER, PASSWORD);
        Arc::new(users)
    });
    let mut cfg = ServerConfig {
        users: users.clone(),
        shares: vec![ShareConfig {
            name: "data".into(),
            backend: Arc::new(MemoryShare::with_capacity(1 << 20)),
        }],
        signing: SigningPolicy::new(true),
        clock: Arc::new(FixedClock(134_083_000_000_000_000)),
        random: Arc::new(SeededRandom::new(0x5eed)),
        ..ServerConfig::default()
    };
    cfg.limits.max_io_size = 1 << 20;
    Arc::new(cfg)
}

/// The client half of a logon, recorded once per dialect: the four requests (NEGOTIATE,
/// SESSION_SETUP x2, TREE_CONNECT) and what the client knows afterwards.
struct Prelude {
    requests: Vec<Vec<u8>>,
    next_id: u64,
    session_id: u64,
    tree_id: u32,
    key: SigningKey,
}

/// Replays a recorded logon into a fresh connection (see the module documentation).
fn replay(p: &Prelude) -> Client {
    let mut c = Client {
        conn: ServerConnection::new(config(), Some("127.0.0.1:1".into())),
        next_id: p.next_id,
        session_id: p.session_id,
        tree_id: p.tree_id,
        key: Some(p.key.clone()),
        file_ids: Vec::new(),
        disconnected: false,
        requests: None,
    };
    let mut last = Vec::new();
    for r in &p.requests {
        c.conn.handle_input(r);
        c.conn.run_share_requests_inline();
        while let Some(t) = c.conn.poll_transmit() {
            last = t.into_vec();
        }
    }
    let h = Header::parse(&last).expect("replayed logon answered");
    assert!(
        h.command == Command::TREE_CONNECT
            && h.status == NtStatus::SUCCESS
            && h.session_id == p.session_id
            && h.tree_id == p.tree_id,
        "the replayed logon was not accepted as recorded: {h:?}"
    );
    c
}

struct Client {
    conn: ServerConnection,
    next_id: u64,
    session_id: u64,
    tree_id: u32,
    key: Option<SigningKey>,
    file_ids: Vec<FileId>,
    disconnected: bool,
    /// While recording a prelude: every request sent.
    requests: Option<Vec<Vec<u8>>>,
}

impl Client {
    /// Feeds one input and checks every output.
    fn exchange(&mut self, input: &[u8]) -> Vec<Vec<u8>> {
        if let Some(r) = &mut self.requests {
            r.push(input.to_vec());
        }
        self.conn.handle_input(input);
        // File-system work runs inline, in order: the fuzzer stays deterministic.
        self.conn.run_share_requests_inline();
        let mut out = Vec::new();
        while let Some(t) = self.conn.poll_transmit() {
            assert!(!self.disconnected, "output after a disconnect");
            out.push(t.into_vec());
        }
        while let Some(e) = self.conn.poll_event() {
            if matches!(e, ServerEvent::Disconnect { .. }) {
                self.disconnected = true;
            }
        }
        for msg in &out {
            let mut off = 0;
            // Walk the response chain.
            loop {
                let h = Header::parse(&msg[off..]).expect("the server sent a valid header");
                assert!(h.is_response(), "the server sent a request");
                let end = if h.next_command == 0 {
                    msg.len()
                } else {
                    off + h.next_command as usize
                };
                let one = &msg[off..end];
                if std::env::var_os("HARNESS_TRACE").is_some() {
                    eprintln!("{} {:?}", h.command, h.status);
                }
                if h.is_signed() && h.session_id == self.session_id {
                    if let Some(k) = &self.key {
                        k.verify(one).expect("a signed response verifies");
                    }
                }
                if h.command == Command::CREATE && h.status == NtStatus::SUCCESS {
                    if let Ok(c) = CreateResponse::read(one) {
                        if self.file_ids.len() < 16 {
                            self.file_ids.push(c.file_id);
                        }
                    }
                }
                if h.next_command == 0 {
                    break;
                }
                off = end;
            }
        }
        out
    }

    fn header(&mut self, command: Command) -> Header {
        let mut h = Header::request(command, self.next_id, self.session_id, self.tree_id);
        h.credits = 16;
        self.next_id += 1;
        h
    }

    fn sign(&self, msg: &mut [u8]) {
        if let Some(k) = &self.key {
            let _ = k.sign(msg);
        }
    }
}

/// A body given as bytes.
struct Raw<'a>(&'a [u8]);

impl EncodeBody for Raw<'_> {
    const COMMAND: Option<Command> = None;
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0);
    }
}

/// Where the FileId sits in a request body, per command (MS-SMB2 2.2).
fn file_id_offset(c: Command) -> Option<usize> {
    Some(match c {
        Command::CLOSE | Command::FLUSH | Command::LOCK | Command::IOCTL => 8,
        Command::QUERY_DIRECTORY | Command::CHANGE_NOTIFY => 8,
        Command::READ | Command::WRITE | Command::SET_INFO => 16,
        Command::QUERY_INFO => 24,
        Command::OPLOCK_BREAK => 8,
        _ => return None,
    })
}

/// Logs on and connects the tree, recording the requests; panics if the server refused (a
/// harness bug, since the logon itself is not fuzzed).
fn logon(dialect: Dialect) -> Prelude {
    let mut c = Client {
        conn: ServerConnection::new(config(), Some("127.0.0.1:1".into())),
        next_id: 0,
        session_id: 0,
        tree_id: 0,
        key: None,
        file_ids: Vec::new(),
        disconnected: false,
        requests: Some(Vec::new()),
    };
    let mut contexts = Vec::new();
    if dialect == Dialect::SMB311 {
        contexts.push(NegotiateContext::PreauthIntegrity {
            hash_algorithms: vec![HashAlgorithm::SHA512],
            salt: vec![7; 32],
        });
        contexts.push(NegotiateContext::Signing {
            algorithms: vec![Algorithm::AesGmac.id(), Algorithm::AesCmac.id()],
        });
    }
    let req = NegotiateRequest {
        security_mode: 2,
        capabilities: 0x44,
        client_guid: Guid([0x42; 16]),
        client_start_time: 0,
        dialects: vec![dialect],
        contexts,
    };
    let h = c.header(Command::NEGOTIATE);
    let msg = build(&h, &req);
    let out = c.exchange(&msg);
    let resp = NegotiateResponse::read(&out[0]).expect("negotiate response");
    let mut preauth = PreauthHash::new();
    let mut algorithm = None;
    if dialect == Dialect::SMB311 {
        preauth.update(&msg);
        preauth.update(&out[0]);
        algorithm = resp.contexts.iter().find_map(|x| match x {
            NegotiateContext::Signing { algorithms } => Algorithm::from_id(*algorithms.first()?),
            _ => None,
        });
    }
    let mut auth = ClientAuth::new(Credentials::password(USER, "", PASSWORD));
    let mut token = auth.first_token().expect("NTLM negotiate");
    loop {
        let body = SessionSetupRequest {
            security_mode: 2,
            security_buffer: token,
            ..Default::default()
        };
        let h = c.header(Command::SESSION_SETUP);
        let msg = build(&h, &body);
        preauth.update(&msg);
        let out = c.exchange(&msg);
        let resp = &out[0];
        let hdr = Header::parse(resp).unwrap();
        c.session_id = hdr.session_id;
        let b = SessionSetupResponse::read(resp).unwrap();
        if hdr.status == NtStatus::MORE_PROCESSING_REQUIRED {
            preauth.update(resp);
            match auth.step(&b.security_buffer).unwrap() {
                ClientStep::Continue(t) => token = t,
                ClientStep::Done => panic!("NTLM done early"),
            }
            continue;
        }
        assert_eq!(hdr.status, NtStatus::SUCCESS, "harness logon");
        if !b.security_buffer.is_empty() {
            let _ = auth.step(&b.security_buffer);
        }
        let sk = auth.session_key().expect("session key");
        let alg = Algorithm::for_dialect(dialect, algorithm);
        let hash = (dialect == Dialect::SMB311).then(|| preauth.value());
        let keys = derive_session_keys(dialect, sk.as_bytes(), hash.as_ref(), None).unwrap();
        c.key = Some(SigningKey::new(alg, &keys.signing).unwrap());
        break;
    }
    let h = c.header(Command::TREE_CONNECT);
    let mut msg = build(
        &h,
        &TreeConnectRequest {
            flags: 0,
            path: "\\\\fuzz\\data".into(),
        },
    );
    c.sign(&mut msg);
    let out = c.exchange(&msg);
    let hdr = Header::parse(&out[0]).unwrap();
    assert_eq!(hdr.status, NtStatus::SUCCESS, "harness tree connect");
    Prelude {
        requests: c.requests.take().unwrap_or_default(),
        next_id: c.next_id,
        session_id: c.session_id,
        tree_id: hdr.tree_id,
        key: c.key.take().expect("signing key"),
    }
}

/// One request from a fuzzer payload (see the module documentation).
fn request(c: &mut Client, p: &[u8], related: bool) -> Vec<u8> {
    let (cmd, fl, body) = match p {
        [a, b, rest @ ..] => (Command(u16::from(*a % 0x13)), *b, rest),
        _ => (Command::ECHO, 0, &[][..]),
    };
    let mut h = c.header(cmd);
    // Charge what the body needs (one credit per 64 KiB), so large WRITEs are reachable.
    let charge = 1 + (body.len() / 65_536) as u16;
    h.credit_charge = charge;
    c.next_id += u64::from(charge) - 1;
    if fl & 4 != 0 {
        h.message_id = h.message_id.wrapping_sub(1);
    }
    if related {
        h.flags |= flags::RELATED_OPERATIONS;
    }
    let mut msg = build(&h, &Raw(body));
    if fl & 2 != 0 && !c.file_ids.is_empty() {
        if let Some(off) = file_id_offset(cmd) {
            let id = c.file_ids[usize::from(fl >> 4) % c.file_ids.len()];
            let at = HEADER_LEN + off;
            if msg.len() >= at + 16 {
                msg[at..at + 8].copy_from_slice(&id.persistent.to_le_bytes());
                msg[at + 8..at + 16].copy_from_slice(&id.volatile.to_le_bytes());
            }
        }
    }
    if fl & 1 != 0 {
        c.sign(&mut msg);
    }
    msg
}

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    static PRELUDES: OnceLock<Vec<Prelude>> = OnceLock::new();
    let Some((&d, mut rest)) = data.split_first() else {
        return;
    };
    let preludes = PRELUDES.get_or_init(|| {
        [Dialect::SMB311, Dialect::SMB30, Dialect::SMB21]
            .into_iter()
            .map(logon)
            .collect()
    });
    let mut c = replay(&preludes[usize::from(d % 3)]);
    let mut steps = 0;
    while rest.len() >= 3 && steps < 64 && !c.disconnected {
        steps += 1;
        let op = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let p = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let msg = match op % 4 {
            0 => request(&mut c, p, false),
            1 => {
                // [count] then each member as [len lo][len hi][payload].
                let (n, mut parts) = p
                    .split_first()
                    .map_or((1, p), |(n, r)| (usize::from(n % 4) + 1, r));
                let mut msgs = Vec::new();
                for i in 0..n {
                    let len = match parts {
                        [a, b, ..] => {
                            usize::from(u16::from_le_bytes([*a, *b])).min(parts.len() - 2)
                        }
                        _ => break,
                    };
                    let part = &parts[2..2 + len];
                    parts = &parts[2 + len..];
                    let mut m = request(&mut c, part, i > 0);
                    // Chain signing below covers every member.
                    let f = u32::from_le_bytes([m[16], m[17], m[18], m[19]]) & !flags::SIGNED;
                    m[16..20].copy_from_slice(&f.to_le_bytes());
                    msgs.push(m);
                }
                if msgs.is_empty() {
                    continue;
                }
                let mut chain = build_chain(&msgs);
                if let Some(k) = &c.key {
                    let _ = k.sign_chain(&mut chain);
                }
                chain
            }
            2 => p.to_vec(),
            _ => {
                if p.len() < HEADER_LEN {
                    continue;
                }
                let mut m = p.to_vec();
                m[0..4].copy_from_slice(b"\xfeSMB");
                m[24..32].copy_from_slice(&c.next_id.to_le_bytes());
                c.next_id += 1;
                m[36..40].copy_from_slice(&c.tree_id.to_le_bytes());
                m[40..48].copy_from_slice(&c.session_id.to_le_bytes());
                c.sign(&mut m);
                m
            }
        };
        c.exchange(&msg);
    }
}
