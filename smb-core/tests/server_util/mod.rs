//! A minimal hand-driven SMB2 client for the server state-machine tests: it builds requests
//! with the message codecs and the auth client API, and checks response signatures itself.
#![allow(dead_code)]

use std::sync::Arc;

use smb_core::auth::{ClientAuth, ClientStep, Credentials, UserTable};
use smb_core::conn::server::{ServerConfig, ServerConnection, ServerEvent, ShareConfig};
use smb_core::conn::share::MemoryShare;
use smb_core::env::{FixedClock, SeededRandom};
use smb_core::header::{flags, Command, Dialect, Header, NtStatus};
use smb_core::messages::negotiate::{
    Guid, HashAlgorithm, NegotiateContext, NegotiateRequest, NegotiateResponse,
};
use smb_core::messages::session_setup::{SessionSetupRequest, SessionSetupResponse};
use smb_core::messages::tree_connect::{TreeConnectRequest, TreeConnectResponse};
use smb_core::messages::{build, EncodeBody};
use smb_core::policy::SigningPolicy;
use smb_core::signing::{derive_session_keys, Algorithm, PreauthHash, SigningKey};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "Passw0rd!";
/// The time every test server and client reads (2026-11-24 as a FILETIME): with seeded
/// randomness, every exchange is reproducible.
pub const NOW: u64 = 134_083_000_000_000_000;

/// Every dialect with the algorithm it signs with, and 3.1.1 with each of the three.
pub fn combos() -> Vec<(Dialect, Algorithm)> {
    let mut out = vec![
        (Dialect::SMB202, Algorithm::HmacSha256),
        (Dialect::SMB21, Algorithm::HmacSha256),
        (Dialect::SMB30, Algorithm::AesCmac),
        (Dialect::SMB302, Algorithm::AesCmac),
    ];
    for a in [
        Algorithm::AesGmac,
        Algorithm::AesCmac,
        Algorithm::HmacSha256,
    ] {
        out.push((Dialect::SMB311, a));
    }
    out
}

/// A server config with alice and one memory share "data".
pub fn config(require_signing: bool) -> (Arc<ServerConfig>, Arc<MemoryShare>) {
    let share = Arc::new(MemoryShare::new());
    let mut users = UserTable::new();
    users.add_password(USER, PASSWORD);
    let cfg = ServerConfig {
        users: Arc::new(users),
        shares: vec![ShareConfig {
            name: "data".into(),
            backend: share.clone(),
        }],
        signing: SigningPolicy::new(require_signing),
        clock: Arc::new(FixedClock(NOW)),
        random: Arc::new(SeededRandom::new(1)),
        ..ServerConfig::default()
    };
    (Arc::new(cfg), share)
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub hdr: Header,
    pub msg: Vec<u8>,
}

#[derive(Debug)]
pub struct Client {
    pub conn: ServerConnection,
    pub next_id: u64,
    pub session_id: u64,
    pub tree_id: u32,
    pub dialect: Dialect,
    pub key: Option<SigningKey>,
    pub algorithm: Option<Algorithm>,
    pub preauth: PreauthHash,
    /// Sign requests when a key exists.
    pub sign: bool,
    pub security_mode: u16,
    pub events: Vec<ServerEvent>,
    /// The signing key's bytes (for tests that compute a MAC by hand).
    pub key_bytes: Vec<u8>,
}

impl Client {
    pub fn new(cfg: Arc<ServerConfig>) -> Self {
        Client {
            conn: ServerConnection::new(cfg, Some("127.0.0.1:5555".into())),
            next_id: 0,
            session_id: 0,
            tree_id: 0,
            dialect: Dialect::SMB202,
            key: None,
            algorithm: None,
            preauth: PreauthHash::new(),
            sign: true,
            security_mode: 1,
            events: Vec::new(),
            key_bytes: Vec::new(),
        }
    }

    /// Feeds raw bytes and collects every transmitted buffer (and the events).
    pub fn raw(&mut self, input: &[u8]) -> Vec<Vec<u8>> {
        self.conn.handle_input(input);
        // The synchronous executor: share requests run here, in order, deterministically.
        self.conn.run_share_requests_inline();
        let mut out = Vec::new();
        while let Some(t) = self.conn.poll_transmit() {
            out.push(t.into_vec());
        }
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
        out
    }

    pub fn disconnected(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Disconnect { .. }))
    }

    /// A request header with the next MessageId, current session and tree.
    pub fn header(&mut self, command: Command) -> Header {
        let mut h = Header::request(command, self.next_id, self.session_id, self.tree_id);
        h.credits = 64;
        self.next_id += 1;
        h
    }

    /// Builds, signs (if `self.sign` and a key exists) and encodes a request.
    pub fn build<B: EncodeBody>(&mut self, command: Command, body: &B) -> Vec<u8> {
        let h = self.header(command);
        let mut msg = build(&h, body);
        if self.sign {
            if let Some(k) = &self.key {
                k.sign(&mut msg).unwrap();
            }
        }
        msg
    }

    /// Sends one message and returns the single response, checking its signature when the
    /// response says it is signed or the session is signed.
    pub fn send(&mut self, msg: &[u8]) -> Option<Resp> {
        let out = self.raw(msg);
        assert!(out.len() <= 1, "one input, at most one output");
        let msg = out.into_iter().next()?;
        let hdr = Header::parse(&msg).expect("response header parses");
        assert!(hdr.is_response());
        if hdr.is_signed() {
            self.key
                .as_ref()
                .expect("signed response but no key")
                .verify(&msg)
                .expect("response signature verifies");
        }
        Some(Resp { hdr, msg })
    }

    pub fn call<B: EncodeBody>(&mut self, command: Command, body: &B) -> Resp {
        let msg = self.build(command, body);
        self.send(&msg).expect("a response")
    }

    pub fn negotiate(
        &mut self,
        dialects: &[Dialect],
        algorithms: &[Algorithm],
    ) -> NegotiateResponse {
        let mut contexts = Vec::new();
        if dialects.contains(&Dialect::SMB311) {
            contexts.push(NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HashAlgorithm::SHA512],
                salt: vec![7; 32],
            });
            if !algorithms.is_empty() {
                contexts.push(NegotiateContext::Signing {
                    algorithms: algorithms.iter().map(|a| a.id()).collect(),
                });
            }
        }
        let req = NegotiateRequest {
            security_mode: self.security_mode,
            capabilities: 0x44,
            client_guid: Guid([0x42; 16]),
            client_start_time: 0,
            dialects: dialects.to_vec(),
            contexts,
        };
        let msg = self.build(Command::NEGOTIATE, &req);
        let r = self.send(&msg).expect("negotiate response");
        assert_eq!(r.hdr.status, NtStatus::SUCCESS, "negotiate status");
        let resp = NegotiateResponse::read(&r.msg).unwrap();
        self.dialect = resp.dialect_revision;
        if self.dialect == Dialect::SMB311 {
            self.preauth.update(&msg);
            self.preauth.update(&r.msg);
            self.algorithm = resp.contexts.iter().find_map(|c| match c {
                NegotiateContext::Signing { algorithms } => {
                    Algorithm::from_id(*algorithms.first()?)
                }
                _ => None,
            });
        }
        resp
    }

    /// Full NTLM session setup. Returns the final status; on success the key is set.
    pub fn session_setup(&mut self, creds: Credentials) -> NtStatus {
        let mut auth = ClientAuth::new(creds)
            .with_sources(Arc::new(FixedClock(NOW)), Arc::new(SeededRandom::new(2)));
        let mut token = auth.first_token().unwrap();
        let mut preauth = self.preauth.clone();
        loop {
            let body = SessionSetupRequest {
                security_mode: self.security_mode as u8,
                security_buffer: token,
                ..Default::default()
            };
            let h = self.header(Command::SESSION_SETUP);
            let msg = build(&h, &body);
            preauth.update(&msg);
            let out = self.raw(&msg);
            let Some(resp) = out.into_iter().next() else {
                return NtStatus::UNSUCCESSFUL;
            };
            let hdr = Header::parse(&resp).unwrap();
            match hdr.status {
                NtStatus::MORE_PROCESSING_REQUIRED => {
                    preauth.update(&resp);
                    self.session_id = hdr.session_id;
                    let body = SessionSetupResponse::read(&resp).unwrap();
                    match auth.step(&body.security_buffer).unwrap() {
                        ClientStep::Continue(t) => token = t,
                        ClientStep::Done => panic!("done too early"),
                    }
                }
                NtStatus::SUCCESS => {
                    self.session_id = hdr.session_id;
                    let body = SessionSetupResponse::read(&resp).unwrap();
                    if !body.security_buffer.is_empty() {
                        auth.step(&body.security_buffer)
                            .expect("server mechListMIC verifies");
                    }
                    if let Some(sk) = auth.session_key() {
                        if !body.is_guest() && !body.is_null() {
                            let alg = Algorithm::for_dialect(self.dialect, self.algorithm);
                            let h = (self.dialect == Dialect::SMB311).then(|| preauth.value());
                            let keys =
                                derive_session_keys(self.dialect, sk.as_bytes(), h.as_ref(), None)
                                    .unwrap();
                            self.key = Some(SigningKey::new(alg, &keys.signing).unwrap());
                            self.key_bytes = keys.signing.to_vec();
                        }
                    }
                    if hdr.is_signed() {
                        self.key
                            .as_ref()
                            .unwrap()
                            .verify(&resp)
                            .expect("final SESSION_SETUP signature");
                    }
                    return NtStatus::SUCCESS;
                }
                other => return other,
            }
        }
    }

    pub fn login(&mut self) -> NtStatus {
        self.session_setup(Credentials::password(USER, "", PASSWORD))
    }

    pub fn tree_connect(&mut self, share: &str) -> (NtStatus, Option<TreeConnectResponse>) {
        let r = self.call(
            Command::TREE_CONNECT,
            &TreeConnectRequest {
                flags: 0,
                path: format!("\\\\127.0.0.1\\{share}"),
            },
        );
        if r.hdr.status == NtStatus::SUCCESS {
            self.tree_id = r.hdr.tree_id;
            (
                r.hdr.status,
                Some(TreeConnectResponse::read(&r.msg).unwrap()),
            )
        } else {
            (r.hdr.status, None)
        }
    }

    /// Negotiate + login + tree connect to "data".
    pub fn connected(cfg: Arc<ServerConfig>, dialect: Dialect) -> Self {
        let mut c = Client::new(cfg);
        c.negotiate(&[dialect], &[Algorithm::AesGmac, Algorithm::AesCmac]);
        assert_eq!(c.login(), NtStatus::SUCCESS);
        assert_eq!(c.tree_connect("data").0, NtStatus::SUCCESS);
        c
    }

    pub fn is_signed(r: &Resp) -> bool {
        r.hdr.flags & flags::SIGNED != 0
    }
}
