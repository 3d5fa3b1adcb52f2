//! The SMB side of one TCP connection: Direct-TCP/NetBIOS framing, compound chains, the
//! NEGOTIATE and SESSION_SETUP exchanges (dialect, algorithm, preauth hash, NTLM), and per
//! session the counts after authentication and the signature checks.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Serialize;
use smb_core::auth::ntlm::{nt_hash, nt_proof_str, ntowf_v2, rc4_key, session_base_key};
use smb_core::compound::split_chain;
use smb_core::header::{flags, Command, Dialect, Header, NtStatus, SMB1_PROTOCOL_ID};
use smb_core::messages::negotiate::{NegotiateContext, NegotiateResponse};
use smb_core::messages::session_setup::{SessionSetupRequest, SessionSetupResponse};
use smb_core::policy::SIGNING_REQUIRED;
use smb_core::signing::kdf::derive_session_keys;
use smb_core::signing::{Algorithm, PreauthHash, SigningKey};
use zeroize::Zeroizing;

use crate::ntlmssp::{self, Authenticate, Ntlm};

/// Largest SMB frame buffered; a frame that claims more is skipped, not stored (Windows'
/// largest is 8 MiB of data plus headers).
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024 + 64 * 1024;

/// Credentials and keys from the command line.
#[derive(Debug, Default)]
pub struct Secrets {
    /// (user lower-case, domain lower-case or empty for any, password).
    pub passwords: Vec<(String, String, Zeroizing<String>)>,
    /// SessionId -> session key.
    pub keys: HashMap<u64, Zeroizing<Vec<u8>>>,
}

/// Exempt messages by kind (unsigned by design; the seed's filter counts them).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Exempt {
    pub interim_pending: u64,
    pub oplock_break: u64,
    pub lease_break: u64,
}

impl Exempt {
    pub fn total(&self) -> u64 {
        self.interim_pending + self.oplock_break + self.lease_break
    }
}

/// One session, as `--json` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub file: String,
    pub client: String,
    pub server: String,
    pub session_id: String,
    pub smb1: bool,
    pub dialect: Option<String>,
    pub signing_algorithm: Option<String>,
    pub user: Option<String>,
    pub domain: Option<String>,
    pub guest: bool,
    pub anonymous: bool,
    /// False when the capture started after this session's SESSION_SETUP.
    pub setup_seen: bool,
    pub client_requires_signing: Option<bool>,
    pub server_requires_signing: Option<bool>,
    /// Messages after the final SESSION_SETUP response (exempt ones included).
    pub after_auth: u64,
    pub signed: u64,
    pub unsigned: u64,
    pub unsigned_from_client: u64,
    pub unsigned_from_server: u64,
    pub exempt: Exempt,
    /// Null when the session's key is unknown.
    pub verified: Option<u64>,
    pub bad_signature: Option<u64>,
    pub bad_signature_frames: Vec<u64>,
    /// Why signatures could not be checked (no password, wrong password...).
    pub key_note: Option<String>,
    pub verdict: crate::scan::Verdict,
    pub reasons: Vec<String>,
}

#[derive(Debug)]
struct Session {
    report: SessionReport,
    key: Option<SigningKey>,
}

/// One in-flight SESSION_SETUP leg.
#[derive(Debug, Clone, Default)]
struct Leg {
    preauth: Option<PreauthHash>,
    server_challenge: Option<[u8; 8]>,
    auth: Option<Authenticate>,
    client_mode: u8,
}

/// Frames of one direction.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of an oversized frame still to discard.
    skip: usize,
    /// After a gap or garbage: look for the next frame start.
    resync: bool,
}

impl Framer {
    /// Feeds bytes; each complete frame goes to `out`. Problems go to `notes`.
    pub fn push(&mut self, mut data: &[u8], notes: &mut Vec<String>, out: &mut dyn FnMut(&[u8])) {
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            self.skip -= n;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
        let mut at = 0;
        loop {
            if self.resync {
                match find_frame_start(&self.buf[at..]) {
                    Some(i) => {
                        at += i;
                        self.resync = false;
                    }
                    None => {
                        at = self.buf.len().saturating_sub(7).max(at);
                        break;
                    }
                }
            }
            let rest = &self.buf[at..];
            if rest.len() < 4 {
                break;
            }
            let len = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            match rest[0] {
                0x00 => {}
                // NetBIOS session request/response/keep-alive (port 139): not SMB.
                0x81..=0x85 => {
                    if rest.len() < 4 + len {
                        break;
                    }
                    at += 4 + len;
                    continue;
                }
                t => {
                    push_note(
                        notes,
                        format!("frame type 0x{t:02x} is not SMB; resynchronising"),
                    );
                    self.resync = true;
                    at += 1;
                    continue;
                }
            }
            if len > MAX_MESSAGE {
                push_note(
                    notes,
                    format!(
                        "a frame claims a {len}-byte SMB message (limit {MAX_MESSAGE}); skipped"
                    ),
                );
                let have = rest.len() - 4;
                at = self.buf.len();
                self.skip = len - have.min(len);
                break;
            }
            if rest.len() < 4 + len {
                break;
            }
            out(&rest[4..4 + len]);
            at += 4 + len;
        }
        self.buf.drain(..at.min(self.buf.len()));
    }

    pub fn gap(&mut self) {
        self.buf.clear();
        self.skip = 0;
        self.resync = true;
    }
}

/// The offset of `00 LL LL LL FE|FF 'S' 'M' 'B'` in `b`.
fn find_frame_start(b: &[u8]) -> Option<usize> {
    b.windows(8)
        .position(|w| w[0] == 0 && (w[4] == 0xFE || w[4] == 0xFF) && &w[5..8] == b"SMB")
}

/// At most this many notes are kept per capture.
const MAX_NOTES: usize = 200;

pub fn push_note(notes: &mut Vec<String>, note: String) {
    if notes.len() < MAX_NOTES && !notes.contains(&note) {
        notes.push(note);
    }
}

/// The SMB state of one connection.
#[derive(Debug)]
pub struct Conn {
    file: String,
    client: SocketAddr,
    server: SocketAddr,
    dialect: Option<Dialect>,
    negotiated_algorithm: Option<Algorithm>,
    client_mode: Option<u16>,
    server_mode: Option<u16>,
    /// Connection.PreauthIntegrityHashValue after NEGOTIATE (3.1.1).
    preauth: Option<PreauthHash>,
    negotiate_request_hash: Option<PreauthHash>,
    /// SESSION_SETUP legs by MessageId, and per SessionId between legs.
    legs: HashMap<u64, Leg>,
    setups: HashMap<u64, Leg>,
    sessions: HashMap<u64, Session>,
    /// The last session established: oplock/lease breaks (SessionId 0) count there.
    last_session: Option<u64>,
    /// SMB1: client offered it / server answered it.
    pub smb1_offered: bool,
    pub smb1_spoken: bool,
    smb1_uid_sessions: HashMap<u16, Session>,
}

impl Conn {
    pub fn new(file: &str, client: SocketAddr, server: SocketAddr) -> Conn {
        Conn {
            file: file.to_owned(),
            client,
            server,
            dialect: None,
            negotiated_algorithm: None,
            client_mode: None,
            server_mode: None,
            preauth: None,
            negotiate_request_hash: None,
            legs: HashMap::new(),
            setups: HashMap::new(),
            sessions: HashMap::new(),
            last_session: None,
            smb1_offered: false,
            smb1_spoken: false,
            smb1_uid_sessions: HashMap::new(),
        }
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.client
    }

    pub fn server_addr(&self) -> SocketAddr {
        self.server
    }

    /// One Direct-TCP frame's payload: an SMB1 message, or an SMB2 message or chain.
    pub fn frame(
        &mut self,
        from_client: bool,
        frame: &[u8],
        frame_no: u64,
        secrets: &Secrets,
        notes: &mut Vec<String>,
    ) {
        if frame.starts_with(&SMB1_PROTOCOL_ID) {
            self.smb1(from_client, frame);
            return;
        }
        if frame.starts_with(&smb_core::header::TRANSFORM_PROTOCOL_ID) {
            push_note(
                notes,
                format!("{}: encrypted messages are not analysed", self.server),
            );
            return;
        }
        let ranges = match split_chain(frame) {
            Ok(r) => r,
            Err(e) => {
                push_note(notes, format!("frame {frame_no}: {e}"));
                return;
            }
        };
        for r in ranges {
            if let Some(msg) = frame.get(r) {
                self.message(from_client, msg, frame_no, secrets, notes);
            }
        }
    }

    fn message(
        &mut self,
        from_client: bool,
        msg: &[u8],
        frame_no: u64,
        secrets: &Secrets,
        notes: &mut Vec<String>,
    ) {
        let Ok(h) = Header::parse(msg) else {
            push_note(notes, format!("frame {frame_no}: not an SMB2 header"));
            return;
        };
        match h.command {
            Command::NEGOTIATE => return self.negotiate(from_client, &h, msg),
            Command::SESSION_SETUP => {
                return self.session_setup(from_client, &h, msg, secrets, notes)
            }
            _ => {}
        }
        let oplock = h.message_id == u64::MAX;
        let sid = if oplock && h.session_id == 0 {
            match self.last_session {
                Some(s) => s,
                None => return,
            }
        } else {
            h.session_id
        };
        if sid == 0 {
            return;
        }
        if !self.sessions.contains_key(&sid) {
            // Seen only after authentication: the capture started mid-session.
            let mut report = self.new_report(sid, false);
            report.after_auth = 0;
            let key = secrets.keys.get(&sid).and_then(|k| {
                self.dialect
                    .filter(|d| *d != Dialect::SMB311)
                    .and_then(|d| key_for(d, self.algorithm(), k, None).ok())
            });
            if secrets.keys.contains_key(&sid) && key.is_none() {
                report.key_note = Some(
                    "the key was given but the NEGOTIATE (dialect) or, for 3.1.1, the \
                     SESSION_SETUP (preauth hash) is not in the capture"
                        .into(),
                );
            }
            self.sessions.insert(sid, Session { report, key });
            self.last_session.get_or_insert(sid);
        }
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let r = &mut s.report;
        r.after_auth += 1;
        if oplock {
            // A lease break notification is 44 bytes of body, an oplock break 24.
            if msg.len() >= 64 + 44 && u16::from_le_bytes([msg[64], msg[65]]) == 44 {
                r.exempt.lease_break += 1;
            } else {
                r.exempt.oplock_break += 1;
            }
            return;
        }
        if h.is_response() && h.async_id.is_some() && h.status == NtStatus::PENDING {
            r.exempt.interim_pending += 1;
            return;
        }
        if h.flags & flags::SIGNED != 0 {
            r.signed += 1;
            if let Some(key) = &s.key {
                let ok = key.verify(msg).is_ok();
                if ok {
                    *r.verified.get_or_insert(0) += 1;
                } else {
                    *r.bad_signature.get_or_insert(0) += 1;
                    if r.bad_signature_frames.len() < 1000 {
                        r.bad_signature_frames.push(frame_no);
                    }
                }
            }
        } else {
            r.unsigned += 1;
            if from_client {
                r.unsigned_from_client += 1;
            } else {
                r.unsigned_from_server += 1;
            }
        }
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::for_dialect(
            self.dialect.unwrap_or(Dialect::SMB311),
            self.negotiated_algorithm,
        )
    }

    fn negotiate(&mut self, from_client: bool, h: &Header, msg: &[u8]) {
        if from_client {
            if let Ok(req) = smb_core::messages::negotiate::NegotiateRequest::read(msg) {
                self.client_mode = Some(req.security_mode);
            }
            let mut p = PreauthHash::new();
            p.update(msg);
            self.negotiate_request_hash = Some(p);
            return;
        }
        if !h.status.is_success() {
            return;
        }
        let Ok(resp) = NegotiateResponse::read(msg) else {
            return;
        };
        self.server_mode = Some(resp.security_mode);
        if resp.dialect_revision == Dialect::WILDCARD {
            return;
        }
        self.dialect = Some(resp.dialect_revision);
        self.negotiated_algorithm = None;
        for c in &resp.contexts {
            if let NegotiateContext::Signing { algorithms } = c {
                self.negotiated_algorithm = algorithms.first().and_then(|a| Algorithm::from_id(*a));
            }
        }
        if resp.dialect_revision == Dialect::SMB311 {
            if let Some(mut p) = self.negotiate_request_hash.take() {
                p.update(msg);
                self.preauth = Some(p);
            }
        }
    }

    fn session_setup(
        &mut self,
        from_client: bool,
        h: &Header,
        msg: &[u8],
        secrets: &Secrets,
        notes: &mut Vec<String>,
    ) {
        let is_311 = self.dialect == Some(Dialect::SMB311);
        if from_client {
            let mut leg = if h.session_id == 0 {
                Leg {
                    preauth: self.preauth.clone().filter(|_| is_311),
                    ..Leg::default()
                }
            } else {
                self.setups.remove(&h.session_id).unwrap_or_else(|| Leg {
                    preauth: self.preauth.clone().filter(|_| is_311),
                    ..Leg::default()
                })
            };
            if let Some(p) = leg.preauth.as_mut() {
                p.update(msg);
            }
            if let Ok(req) = SessionSetupRequest::read(msg) {
                leg.client_mode |= req.security_mode;
                if let Some(Ntlm::Authenticate(a)) = ntlmssp::find(&req.security_buffer) {
                    leg.auth = Some(a);
                }
            }
            self.legs.insert(h.message_id, leg);
            return;
        }
        let Some(mut leg) = self.legs.remove(&h.message_id) else {
            return;
        };
        let resp = SessionSetupResponse::read(msg).ok();
        if h.status == NtStatus::MORE_PROCESSING_REQUIRED {
            if let Some(p) = leg.preauth.as_mut() {
                p.update(msg);
            }
            if let Some(Ntlm::Challenge {
                server_challenge, ..
            }) = resp
                .as_ref()
                .and_then(|r| ntlmssp::find(&r.security_buffer))
            {
                leg.server_challenge = Some(server_challenge);
            }
            leg.auth = None;
            self.setups.insert(h.session_id, leg);
            return;
        }
        if !h.status.is_success() {
            return;
        }
        let sid = h.session_id;
        let (guest, anonymous) = resp
            .as_ref()
            .map(|r| (r.is_guest(), r.is_null()))
            .unwrap_or((false, false));
        let mut report = self.new_report(sid, true);
        report.guest = guest;
        report.anonymous = anonymous
            || leg
                .auth
                .as_ref()
                .is_some_and(|a| a.version() == "anonymous");
        let client_required = self
            .client_mode
            .map(|m| (m | u16::from(leg.client_mode)) & SIGNING_REQUIRED != 0);
        report.client_requires_signing = client_required;
        if let Some(a) = &leg.auth {
            report.user = Some(a.user.clone());
            report.domain = Some(a.domain.clone());
        }
        let mut key = None;
        if !(guest || report.anonymous) {
            let preauth = leg.preauth.as_ref().map(PreauthHash::value);
            let session_key = match secrets.keys.get(&sid) {
                Some(k) => Ok(k.clone()),
                None => ntlm_session_key(&leg, secrets),
            };
            match (session_key, self.dialect) {
                (Ok(k), Some(d)) => match key_for(d, self.algorithm(), &k, preauth.as_ref()) {
                    Ok(sk) => key = Some(sk),
                    Err(e) => report.key_note = Some(format!("cannot derive the signing key: {e}")),
                },
                (Ok(_), None) => {
                    report.key_note = Some("the NEGOTIATE is not in the capture".into())
                }
                (Err(e), _) => {
                    if e.starts_with("wrong password") {
                        push_note(notes, format!("{}: {e}", self.server));
                    }
                    report.key_note = Some(e);
                }
            }
        }
        self.sessions.insert(sid, Session { report, key });
        self.last_session = Some(sid);
    }

    fn new_report(&self, sid: u64, setup_seen: bool) -> SessionReport {
        SessionReport {
            file: self.file.clone(),
            client: self.client.to_string(),
            server: self.server.to_string(),
            session_id: format!("0x{sid:016x}"),
            smb1: false,
            dialect: self.dialect.map(|d| d.dotted()),
            signing_algorithm: self.dialect.map(|_| self.algorithm().name().to_string()),
            user: None,
            domain: None,
            guest: false,
            anonymous: false,
            setup_seen,
            client_requires_signing: self.client_mode.map(|m| m & SIGNING_REQUIRED != 0),
            server_requires_signing: self.server_mode.map(|m| m & SIGNING_REQUIRED != 0),
            after_auth: 0,
            signed: 0,
            unsigned: 0,
            unsigned_from_client: 0,
            unsigned_from_server: 0,
            exempt: Exempt::default(),
            verified: None,
            bad_signature: None,
            bad_signature_frames: Vec::new(),
            key_note: Some("no --password or --keys for this session".into()),
            verdict: crate::scan::Verdict::Error,
            reasons: Vec::new(),
        }
    }

    /// SMB1: NEGOTIATE (0x72) and SESSION_SETUP_ANDX (0x73), then per-UID counts.
    fn smb1(&mut self, from_client: bool, msg: &[u8]) {
        const SETUP_ANDX: u8 = 0x73;
        if msg.len() < 32 {
            return;
        }
        let cmd = msg[4];
        let status = u32::from_le_bytes([msg[5], msg[6], msg[7], msg[8]]);
        let flags2 = u16::from_le_bytes([msg[10], msg[11]]);
        let uid = u16::from_le_bytes([msg[28], msg[29]]);
        if cmd == 0x72 {
            if from_client {
                self.smb1_offered = true;
            } else if crate::scan::smb1_dialect_chosen(msg) {
                self.smb1_spoken = true;
            }
            return;
        }
        self.smb1_spoken = true;
        if cmd == SETUP_ANDX {
            if !from_client && status == 0 && uid != 0 {
                let mut report = self.new_report(u64::from(uid), true);
                report.smb1 = true;
                report.dialect = Some("NT LM 0.12".into());
                report.signing_algorithm = Some("md5".into());
                report.key_note = Some("SMB1 signatures are not verified".into());
                self.smb1_uid_sessions
                    .insert(uid, Session { report, key: None });
            }
            return;
        }
        if let Some(s) = self.smb1_uid_sessions.get_mut(&uid) {
            let r = &mut s.report;
            r.after_auth += 1;
            // SMB_FLAGS2_SMB_SECURITY_SIGNATURE.
            if flags2 & 0x0004 != 0 {
                r.signed += 1;
            } else {
                r.unsigned += 1;
                if from_client {
                    r.unsigned_from_client += 1;
                } else {
                    r.unsigned_from_server += 1;
                }
            }
        }
    }

    /// Every session of this connection, finished.
    pub fn into_reports(self) -> Vec<SessionReport> {
        self.sessions
            .into_values()
            .chain(self.smb1_uid_sessions.into_values())
            .map(|s| {
                let mut r = s.report;
                if s.key.is_some() {
                    r.key_note = None;
                    r.verified.get_or_insert(0);
                    r.bad_signature.get_or_insert(0);
                }
                super::verdict(&mut r);
                r
            })
            .collect()
    }
}

/// The signing key of a session from its session key.
fn key_for(
    dialect: Dialect,
    algorithm: Algorithm,
    session_key: &[u8],
    preauth: Option<&[u8; 64]>,
) -> Result<SigningKey, String> {
    if dialect == Dialect::SMB311 && preauth.is_none() {
        return Err("3.1.1 needs the preauth hash of the captured SESSION_SETUP".into());
    }
    let keys =
        derive_session_keys(dialect, session_key, preauth, None).map_err(|e| e.to_string())?;
    SigningKey::new(algorithm, &keys.signing).map_err(|e| e.to_string())
}

/// The ExportedSessionKey of an NTLMv2 logon (MS-NLMP 3.3.2, 3.4.5.1), from a password on
/// the command line; checks the password against the captured NTProofStr first.
fn ntlm_session_key(leg: &Leg, secrets: &Secrets) -> Result<Zeroizing<Vec<u8>>, String> {
    let a = leg
        .auth
        .as_ref()
        .ok_or("no NTLM AUTHENTICATE in the captured SESSION_SETUP")?;
    let challenge = leg
        .server_challenge
        .ok_or("no NTLM CHALLENGE in the captured SESSION_SETUP")?;
    if a.nt_response.len() <= 24 {
        return Err(format!(
            "{} logon: only NTLMv2 keys are derived",
            a.version()
        ));
    }
    let (user, domain) = (a.user.to_lowercase(), a.domain.to_lowercase());
    let mut candidates = secrets
        .passwords
        .iter()
        .filter(|(u, d, _)| *u == user && (d.is_empty() || *d == domain))
        .peekable();
    if candidates.peek().is_none() {
        return Err(format!("no --password for {}\\{}", a.domain, a.user));
    }
    let proof: [u8; 16] = a.nt_response[..16]
        .try_into()
        .map_err(|_| "short NTLMv2 response")?;
    for (_, _, password) in candidates {
        let response_key = Zeroizing::new(ntowf_v2(&nt_hash(password), &a.user, &a.domain));
        if nt_proof_str(&response_key, &challenge, &a.nt_response[16..]) != proof {
            continue;
        }
        let base = Zeroizing::new(session_base_key(&response_key, &proof));
        let exported = if a.flags & ntlmssp::flags::KEY_EXCH != 0 {
            let enc: [u8; 16] = a
                .encrypted_session_key
                .as_slice()
                .try_into()
                .map_err(|_| "KEY_EXCH without a 16-byte EncryptedRandomSessionKey")?;
            rc4_key(&base, &enc)
        } else {
            *base
        };
        return Ok(Zeroizing::new(exported.to_vec()));
    }
    Err(format!(
        "wrong password for {}\\{} (the captured NTProofStr does not match)",
        a.domain, a.user
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::messages::build;
    use smb_core::messages::echo::EchoRequest;

    fn frames(f: &mut Framer, data: &[u8]) -> (Vec<Vec<u8>>, Vec<String>) {
        let mut notes = Vec::new();
        let mut out = Vec::new();
        f.push(data, &mut notes, &mut |m| out.push(m.to_vec()));
        (out, notes)
    }

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        smb_core::framing::encode_frame(msg, &mut v);
        v
    }

    #[test]
    fn framing_skips_netbios_control_resyncs_and_never_buffers_a_huge_claim() {
        let msg = build(&Header::request(Command::ECHO, 5, 1, 0), &EchoRequest);
        let mut f = Framer::default();
        // A NetBIOS keep-alive, then a message split in two.
        let mut bytes = vec![0x85, 0, 0, 0];
        bytes.extend(framed(&msg));
        let (got, _) = frames(&mut f, &bytes[..10]);
        assert!(got.is_empty());
        let (got, _) = frames(&mut f, &bytes[10..]);
        assert_eq!(got, vec![msg.clone()]);
        // After a gap: garbage, then a frame.
        f.gap();
        let mut bytes = b"garbage!".to_vec();
        bytes.extend(framed(&msg));
        let (got, _) = frames(&mut f, &bytes);
        assert_eq!(got, vec![msg.clone()]);
        // A 16 MiB claim is skipped without being buffered.
        let mut claim = vec![0x00, 0xFF, 0xFF, 0xFF];
        claim.extend_from_slice(&[0xAA; 1000]);
        let (got, notes) = frames(&mut f, &claim);
        assert!(got.is_empty());
        assert!(
            notes[0].contains("claims a 16777215-byte SMB message"),
            "{notes:?}"
        );
        assert!(f.buf.len() < 100);
        assert_eq!(f.skip, 0xFF_FFFF - 1000);
    }

    #[test]
    fn exempt_kinds_are_counted_apart() {
        let client: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:445".parse().unwrap();
        let mut conn = Conn::new("t", client, server);
        let secrets = Secrets::default();
        let mut notes = Vec::new();
        let sid = 0x11;
        // A signed request, an interim response, the final unsigned response, an oplock break
        // and a lease break (SessionId 0, MessageId all ones).
        let mut req = Header::request(Command::READ, 7, sid, 1);
        req.flags |= flags::SIGNED;
        let mut interim = Header::request(Command::READ, 7, sid, 1).response(NtStatus::PENDING);
        interim.async_id = Some(9);
        interim.flags |= flags::ASYNC_COMMAND;
        let fin = Header::request(Command::READ, 7, sid, 1).response(NtStatus::SUCCESS);
        let mut brk =
            Header::request(Command::OPLOCK_BREAK, u64::MAX, 0, 0).response(NtStatus::SUCCESS);
        brk.message_id = u64::MAX;
        let mut msgs = Vec::new();
        for (h, body_len, from_client) in [
            (&req, 4, true),
            (&interim, 9, false),
            (&fin, 4, false),
            (&brk, 24, false),
            (&brk, 44, false),
        ] {
            let mut m = Vec::new();
            h.encode(&mut m);
            m.extend_from_slice(&(body_len as u16).to_le_bytes());
            m.resize(64 + body_len, 0);
            msgs.push((m, from_client));
        }
        for (i, (m, c)) in msgs.iter().enumerate() {
            conn.frame(*c, m, i as u64 + 1, &secrets, &mut notes);
        }
        let r = conn.into_reports().remove(0);
        assert_eq!(r.after_auth, 5);
        assert_eq!(r.signed, 1);
        assert_eq!(r.unsigned, 1);
        assert_eq!(r.unsigned_from_server, 1);
        assert_eq!(
            r.exempt,
            Exempt {
                interim_pending: 1,
                oplock_break: 1,
                lease_break: 1
            }
        );
        assert!(!r.setup_seen);
    }
}
