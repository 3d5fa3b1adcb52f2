//! `smb-lab tamper`: a man in the middle that forwards a real SMB2 session frame by frame
//! and alters one thing in it.
//!
//! - `flip-read` flips one bit in the data of the first READ response. On an unsigned
//!   session the client cannot notice; on a signed one the signature no longer matches and
//!   the client must reject the response (MS-SMB2 3.2.5.1.3).
//! - `strip-signing-required` clears SMB2_NEGOTIATE_SIGNING_REQUIRED in the server's
//!   NEGOTIATE response SecurityMode, a downgrade attempt. What stops it depends on the
//!   dialect: the server still enforces its own policy (2.x), FSCTL_VALIDATE_NEGOTIATE_INFO
//!   reveals it (3.0/3.0.2), and the 3.1.1 preauth integrity hash covers the NEGOTIATE
//!   response, so the client derives a different key and the signed SESSION_SETUP response
//!   fails verification.
//! - `observe` changes nothing; the demo uses it to see on the wire whether a session is signed.
//!
//! Every message that crosses is recorded (command, ids, status, SIGNED flag), so the
//! report can say what the client did after the change.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use smb_core::compound::split_chain;
use smb_core::header::{
    flags, Command, Dialect, Header, NtStatus, HEADER_LEN, OPLOCK_BREAK_MESSAGE_ID,
    SMB1_PROTOCOL_ID, TRANSFORM_PROTOCOL_ID,
};
use smb_core::policy::SIGNING_REQUIRED;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::loopback;
use crate::transport::{write_frame, FrameReader, StreamEnd};

/// Most messages recorded per connection; later ones are only counted, so a long session
/// through the proxy cannot grow its memory without bound.
pub const MAX_RECORDS: usize = 100_000;

/// How long the second direction may linger after the first one ended.
const LINGER: Duration = Duration::from_secs(3);

/// What the proxy alters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TamperMode {
    /// Forward unchanged, only record.
    Observe,
    /// Flip one bit in the data of the first successful READ response.
    FlipRead,
    /// Clear SIGNING_REQUIRED in the server's NEGOTIATE response SecurityMode.
    StripSigningRequired,
}

impl TamperMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "observe" | "none" => Some(TamperMode::Observe),
            "flip-read" => Some(TamperMode::FlipRead),
            "strip-signing-required" => Some(TamperMode::StripSigningRequired),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            TamperMode::Observe => "observe",
            TamperMode::FlipRead => "flip-read",
            TamperMode::StripSigningRequired => "strip-signing-required",
        }
    }
}

impl fmt::Display for TamperMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// One message as it crossed the proxy (after any change).
#[derive(Debug, Clone, Serialize)]
pub struct WireRecord {
    pub direction: Direction,
    /// Command name ("READ"), or "SMB1", "ENCRYPTED", "MALFORMED" for what is not an SMB2 message.
    pub command: String,
    pub message_id: u64,
    pub session_id: u64,
    /// Responses only.
    pub status: Option<String>,
    pub signed: bool,
    pub tampered: bool,
    /// Part of the protocol that is never signed (SessionId 0, interim, oplock break).
    #[serde(skip)]
    pub never_signed: bool,
    /// Signed whatever the session's policy: a 3.1.1 TREE_CONNECT (MS-SMB2 3.2.4.1.1,
    /// 3.3.5.7) or FSCTL_VALIDATE_NEGOTIATE_INFO (3.2.5.5, 3.3.5.15.12). These say nothing
    /// about whether the session is signed, so the signing verdict leaves them out.
    pub signed_by_rule: bool,
    #[serde(skip)]
    status_code: Option<NtStatus>,
    #[serde(skip)]
    command_code: Option<Command>,
}

/// One alteration the proxy made.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Index of the altered message in [`TamperTrace::records`].
    pub record: usize,
    pub description: String,
}

/// Counts of post-authentication messages and how many carried the SIGNED flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SignedCount {
    pub requests: usize,
    pub signed_requests: usize,
    pub responses: usize,
    pub signed_responses: usize,
}

impl SignedCount {
    /// Every post-authentication message carried the SIGNED flag (and there was at least one).
    pub fn all_signed(&self) -> bool {
        let total = self.requests + self.responses;
        total > 0 && self.signed_requests + self.signed_responses == total
    }
    /// No post-authentication message carried the SIGNED flag.
    pub fn none_signed(&self) -> bool {
        self.signed_requests + self.signed_responses == 0
    }
    /// "signed", "unsigned", "mixed" or "no traffic".
    pub fn verdict(&self) -> &'static str {
        if self.requests + self.responses == 0 {
            "no traffic"
        } else if self.all_signed() {
            "signed"
        } else if self.none_signed() {
            "unsigned"
        } else {
            "mixed"
        }
    }
}

/// Everything one proxied connection did.
#[derive(Debug, Clone, Serialize)]
pub struct TamperTrace {
    pub mode: TamperMode,
    pub client: SocketAddr,
    /// Dialect of the (last) NEGOTIATE response.
    pub dialect: Option<String>,
    /// SecurityMode the server sent, and what the client received.
    pub server_security_mode: Option<u16>,
    pub forwarded_security_mode: Option<u16>,
    pub changes: Vec<Change>,
    pub records: Vec<WireRecord>,
    /// How each side's stream ended (None: still open when the proxy gave up).
    pub client_end: Option<StreamEnd>,
    pub server_end: Option<StreamEnd>,
    /// True when the client's side ended before the server's.
    pub client_closed_first: bool,
    /// Messages past [`MAX_RECORDS`], counted but not recorded.
    pub records_dropped: u64,
}

impl TamperTrace {
    /// Index of the first successful SESSION_SETUP response, where authentication ends.
    pub fn auth_done_at(&self) -> Option<usize> {
        self.records.iter().position(|r| {
            r.direction == Direction::ServerToClient
                && r.command_code == Some(Command::SESSION_SETUP)
                && r.status_code == Some(NtStatus::SUCCESS)
        })
    }

    /// True when a SESSION_SETUP ended in success.
    pub fn authenticated(&self) -> bool {
        self.auth_done_at().is_some()
    }

    /// SIGNED flags on the messages after authentication that belong to the session,
    /// leaving out those the protocol signs whatever the policy (`signed_by_rule`).
    pub fn post_auth_signing(&self) -> SignedCount {
        let mut c = SignedCount::default();
        let Some(start) = self.auth_done_at() else {
            return c;
        };
        let counted = |r: &&WireRecord| !r.never_signed && !r.signed_by_rule;
        for r in self.records.iter().skip(start + 1).filter(counted) {
            match r.direction {
                Direction::ClientToServer => {
                    c.requests += 1;
                    c.signed_requests += usize::from(r.signed);
                }
                Direction::ServerToClient => {
                    c.responses += 1;
                    c.signed_responses += usize::from(r.signed);
                }
            }
        }
        c
    }

    /// Post-authentication messages the protocol signs whatever the policy.
    pub fn signed_by_rule_count(&self) -> usize {
        let start = self.auth_done_at().map_or(self.records.len(), |i| i + 1);
        self.records
            .iter()
            .skip(start)
            .filter(|r| r.signed_by_rule)
            .count()
    }

    /// The client's requests after the first change, by command name.
    pub fn requests_after_change(&self) -> Option<Vec<String>> {
        let first = self.changes.first()?.record;
        Some(
            self.records
                .iter()
                .skip(first + 1)
                .filter(|r| r.direction == Direction::ClientToServer)
                .map(|r| r.command.clone())
                .collect(),
        )
    }

    /// Error statuses the server returned after the first change (or at all, without one).
    pub fn server_errors_after_change(&self) -> Vec<(String, String)> {
        let from = self.changes.first().map_or(0, |c| c.record + 1);
        self.records
            .iter()
            .skip(from)
            .filter(|r| r.direction == Direction::ServerToClient)
            .filter(|r| r.status_code.is_some_and(|s| s.is_error()))
            .map(|r| (r.command.clone(), r.status.clone().unwrap_or_default()))
            .collect()
    }

    /// One line on what the client did, in the words of the report.
    pub fn client_reaction(&self) -> String {
        let end = match (self.client_end, self.client_closed_first) {
            (Some(StreamEnd::Reset), _) => "the client reset the connection",
            (Some(_), true) => "the client closed the connection",
            (Some(_), false) => "the server closed the connection",
            (None, _) => "the connection stayed open",
        };
        match self.requests_after_change() {
            None if self.mode == TamperMode::Observe => {
                format!("nothing changed; {}", end)
            }
            None => format!("nothing to change was seen; {end}"),
            Some(reqs) if reqs.is_empty() => {
                format!("no further request after the change; {end}")
            }
            Some(reqs) => {
                let errors = self.server_errors_after_change();
                let errs = if errors.is_empty() {
                    String::new()
                } else {
                    let list: Vec<String> =
                        errors.iter().map(|(c, s)| format!("{c} -> {s}")).collect();
                    format!(" (server errors: {})", list.join(", "))
                };
                format!("the client kept going: {}{errs}; {end}", reqs.join(", "))
            }
        }
    }
}

/// The shared, locked state of one proxied connection.
#[derive(Debug)]
struct State {
    mode: TamperMode,
    flipped: bool,
    dialect: Option<Dialect>,
    server_security_mode: Option<u16>,
    forwarded_security_mode: Option<u16>,
    changes: Vec<Change>,
    records: Vec<WireRecord>,
    /// MessageIds of FSCTL_VALIDATE_NEGOTIATE_INFO requests (bounded).
    validate_negotiate_ids: Vec<u64>,
    /// Messages not recorded because [`MAX_RECORDS`] was reached.
    records_dropped: u64,
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 2.2.31).
const FSCTL_VALIDATE_NEGOTIATE_INFO: u32 = 0x0014_0204;

impl State {
    fn new(mode: TamperMode) -> Self {
        State {
            mode,
            flipped: false,
            dialect: None,
            server_security_mode: None,
            forwarded_security_mode: None,
            changes: Vec::new(),
            records: Vec::new(),
            validate_negotiate_ids: Vec::new(),
            records_dropped: 0,
        }
    }

    fn push(&mut self, r: WireRecord) {
        if self.records.len() < MAX_RECORDS {
            self.records.push(r);
        } else {
            self.records_dropped += 1;
        }
    }

    /// Records every message of a frame and applies the mode's change, in place.
    fn inspect(&mut self, direction: Direction, frame: &mut [u8]) {
        let magic = frame.get(..4);
        if magic == Some(&SMB1_PROTOCOL_ID[..]) || magic == Some(&TRANSFORM_PROTOCOL_ID[..]) {
            let what = if magic == Some(&SMB1_PROTOCOL_ID[..]) {
                "SMB1"
            } else {
                "ENCRYPTED"
            };
            self.push(opaque(direction, what));
            return;
        }
        let ranges = match split_chain(frame) {
            Ok(r) => r,
            Err(_) => {
                self.push(opaque(direction, "MALFORMED"));
                return;
            }
        };
        for range in ranges {
            let Some(message) = frame.get_mut(range) else {
                continue;
            };
            let Ok(header) = Header::parse(message) else {
                self.push(opaque(direction, "MALFORMED"));
                continue;
            };
            let index = self.records.len();
            let change = if direction == Direction::ServerToClient {
                self.alter_response(&header, message)
            } else {
                None
            };
            let tampered = change.is_some();
            if let Some(description) = change {
                self.changes.push(Change {
                    record: index,
                    description,
                });
            }
            let mut rec = record(direction, &header, tampered);
            rec.signed_by_rule = self.signed_by_rule(direction, &header, message);
            self.push(rec);
        }
    }

    /// See [`WireRecord::signed_by_rule`].
    fn signed_by_rule(&mut self, direction: Direction, header: &Header, message: &[u8]) -> bool {
        if header.command == Command::TREE_CONNECT {
            return self.dialect == Some(Dialect::SMB311);
        }
        if header.command != Command::IOCTL {
            return false;
        }
        if direction == Direction::ServerToClient {
            return self.validate_negotiate_ids.contains(&header.message_id);
        }
        // MS-SMB2 2.2.31: CtlCode at body offset 4.
        let ctl = message
            .get(HEADER_LEN + 4..HEADER_LEN + 8)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let is_vn = ctl == Some(FSCTL_VALIDATE_NEGOTIATE_INFO);
        if is_vn && self.validate_negotiate_ids.len() < 64 {
            self.validate_negotiate_ids.push(header.message_id);
        }
        is_vn
    }

    fn alter_response(&mut self, header: &Header, message: &mut [u8]) -> Option<String> {
        if !header.is_response() {
            return None;
        }
        if header.command == Command::NEGOTIATE && header.status == NtStatus::SUCCESS {
            return self.negotiate_response(header, message);
        }
        if self.mode == TamperMode::FlipRead
            && !self.flipped
            && header.command == Command::READ
            && header.status == NtStatus::SUCCESS
        {
            let change = flip_read_data(message)?;
            self.flipped = true;
            return Some(format!("MessageId {}: {change}", header.message_id));
        }
        None
    }

    /// MS-SMB2 2.2.4: SecurityMode (2 bytes) at body offset 2, DialectRevision at 4.
    fn negotiate_response(&mut self, header: &Header, message: &mut [u8]) -> Option<String> {
        let mode_at = HEADER_LEN + 2;
        let dialect_at = HEADER_LEN + 4;
        let mode = u16::from_le_bytes(message.get(mode_at..mode_at + 2)?.try_into().ok()?);
        let dialect = Dialect(u16::from_le_bytes(
            message.get(dialect_at..dialect_at + 2)?.try_into().ok()?,
        ));
        self.dialect = Some(dialect);
        self.server_security_mode = Some(mode);
        let mut forwarded = mode;
        let mut change = None;
        if self.mode == TamperMode::StripSigningRequired && mode & SIGNING_REQUIRED != 0 {
            forwarded = mode & !SIGNING_REQUIRED;
            message
                .get_mut(mode_at..mode_at + 2)?
                .copy_from_slice(&forwarded.to_le_bytes());
            change = Some(format!(
                "MessageId {}: NEGOTIATE response ({}) SecurityMode 0x{mode:04x} -> 0x{forwarded:04x} \
                 (SIGNING_REQUIRED cleared)",
                header.message_id,
                dialect.dotted()
            ));
        }
        self.forwarded_security_mode = Some(forwarded);
        change
    }
}

/// MS-SMB2 2.2.20: DataOffset (1 byte) at body offset 2, DataLength (4 bytes) at 4.
/// Flips the low bit of the middle byte of the data; None when there is no data.
fn flip_read_data(message: &mut [u8]) -> Option<String> {
    let offset = usize::from(*message.get(HEADER_LEN + 2)?);
    let len_bytes: [u8; 4] = message
        .get(HEADER_LEN + 4..HEADER_LEN + 8)?
        .try_into()
        .ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 || offset < HEADER_LEN + 16 {
        return None;
    }
    let data = message.get_mut(offset..offset.checked_add(len)?)?;
    let at = len / 2;
    let byte = data.get_mut(at)?;
    let before = *byte;
    *byte ^= 0x01;
    Some(format!(
        "READ response: flipped bit 0 of data byte {at} of {len} (0x{before:02x} -> 0x{:02x})",
        *byte
    ))
}

fn opaque(direction: Direction, what: &str) -> WireRecord {
    WireRecord {
        direction,
        command: what.to_string(),
        message_id: 0,
        session_id: 0,
        status: None,
        signed: false,
        tampered: false,
        never_signed: true,
        signed_by_rule: false,
        status_code: None,
        command_code: None,
    }
}

fn record(direction: Direction, h: &Header, tampered: bool) -> WireRecord {
    let is_response = direction == Direction::ServerToClient;
    // DESIGN.md: never signed are SessionId 0, STATUS_PENDING interim responses and
    // oplock breaks (MessageId all ones).
    let never_signed = h.session_id == 0
        || (is_response && h.status == NtStatus::PENDING)
        || h.message_id == OPLOCK_BREAK_MESSAGE_ID;
    WireRecord {
        direction,
        command: h.command.to_string(),
        message_id: h.message_id,
        session_id: h.session_id,
        status: is_response.then(|| h.status.to_string()),
        signed: h.flags & flags::SIGNED != 0,
        tampered,
        never_signed,
        signed_by_rule: false,
        status_code: is_response.then_some(h.status),
        command_code: Some(h.command),
    }
}

/// A listening tamper proxy.
#[derive(Debug)]
pub struct TamperProxy {
    listener: TcpListener,
    target: SocketAddr,
    mode: TamperMode,
}

impl TamperProxy {
    /// Binds `listen` (loopback only) and will forward to `target` (loopback only).
    pub async fn bind(
        listen: SocketAddr,
        target: SocketAddr,
        mode: TamperMode,
    ) -> anyhow::Result<Self> {
        let listen = loopback::check_listen("listen", listen)?;
        let target = loopback::check_connect("target", target)?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        Ok(TamperProxy {
            listener,
            target,
            mode,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts one client and proxies its connection to the end.
    pub async fn accept_one(&self) -> anyhow::Result<TamperTrace> {
        let (client, peer) = self.listener.accept().await.context("accepting a client")?;
        proxy_connection(client, peer, self.target, self.mode).await
    }

    /// Proxies every client, handing each finished trace to `on_trace`.
    pub async fn serve<F>(self, on_trace: F) -> anyhow::Result<()>
    where
        F: Fn(anyhow::Result<TamperTrace>) + Send + Sync + 'static,
    {
        let on_trace = Arc::new(on_trace);
        loop {
            let (client, peer) = self.listener.accept().await.context("accepting a client")?;
            let (target, mode, cb) = (self.target, self.mode, on_trace.clone());
            tokio::spawn(async move { cb(proxy_connection(client, peer, target, mode).await) });
        }
    }
}

/// Connects to the target and forwards frames both ways until both sides are done.
pub async fn proxy_connection(
    client: TcpStream,
    peer: SocketAddr,
    target: SocketAddr,
    mode: TamperMode,
) -> anyhow::Result<TamperTrace> {
    let target = loopback::check_connect("target", target)?;
    let server = TcpStream::connect(target)
        .await
        .with_context(|| format!("connecting to {target}"))?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let state = Arc::new(Mutex::new(State::new(mode)));
    let (client_rx, client_tx) = client.into_split();
    let (server_rx, server_tx) = server.into_split();
    let up = pump(
        client_rx,
        server_tx,
        Direction::ClientToServer,
        state.clone(),
    );
    let down = pump(
        server_rx,
        client_tx,
        Direction::ServerToClient,
        state.clone(),
    );
    tokio::pin!(up, down);
    let (client_end, server_end, client_closed_first) = tokio::select! {
        c = &mut up => (Some(c), tokio::time::timeout(LINGER, &mut down).await.ok(), true),
        s = &mut down => {
            let c = tokio::time::timeout(LINGER, &mut up).await.ok();
            (c, Some(s), false)
        }
    };
    let st = state
        .lock()
        .map_err(|_| anyhow::anyhow!("proxy state poisoned"))?;
    Ok(TamperTrace {
        mode,
        client: peer,
        dialect: st.dialect.map(Dialect::dotted),
        server_security_mode: st.server_security_mode,
        forwarded_security_mode: st.forwarded_security_mode,
        changes: st.changes.clone(),
        records: st.records.clone(),
        client_end,
        server_end,
        client_closed_first,
        records_dropped: st.records_dropped,
    })
}

/// Forwards frames one way; returns how the reading side ended.
async fn pump(
    rx: OwnedReadHalf,
    mut tx: OwnedWriteHalf,
    direction: Direction,
    state: Arc<Mutex<State>>,
) -> StreamEnd {
    let mut frames = FrameReader::new(rx);
    loop {
        match frames.next().await {
            Ok(mut frame) => {
                if let Ok(mut st) = state.lock() {
                    st.inspect(direction, &mut frame);
                }
                if write_frame(&mut tx, &frame).await.is_err() {
                    // The other side is gone; keep reading this side to learn how it ends.
                    continue;
                }
            }
            Err(end) => {
                let _ = tx.shutdown().await;
                return end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::codec::Writer;

    fn read_response(data: &[u8], signed: bool) -> Vec<u8> {
        let mut h = Header::request(Command::READ, 5, 0x11, 1).response(NtStatus::SUCCESS);
        if signed {
            h.flags |= flags::SIGNED;
        }
        let mut m = Vec::new();
        h.encode(&mut m);
        m.put_u16(17);
        m.put_u8(0x50); // DataOffset = 80
        m.put_u8(0);
        m.put_u32(data.len() as u32);
        m.put_u32(0);
        m.put_u32(0);
        m.put_bytes(data);
        m
    }

    fn negotiate_response(security_mode: u16) -> Vec<u8> {
        let h = Header::request(Command::NEGOTIATE, 0, 0, 0).response(NtStatus::SUCCESS);
        let mut m = Vec::new();
        h.encode(&mut m);
        m.put_u16(65);
        m.put_u16(security_mode);
        m.put_u16(Dialect::SMB311.0);
        m.put_zeros(58);
        m
    }

    #[test]
    fn flip_read_changes_exactly_one_bit_once() {
        let data: Vec<u8> = (0..100u8).collect();
        let original = read_response(&data, true);
        let mut st = State::new(TamperMode::FlipRead);
        let mut m = original.clone();
        st.inspect(Direction::ServerToClient, &mut m);
        let diff: u32 = m
            .iter()
            .zip(&original)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1);
        assert_eq!(m[80 + 50], original[80 + 50] ^ 1);
        assert_eq!(st.changes.len(), 1);
        assert!(st.records[0].tampered && st.records[0].signed);
        // The second READ response goes through untouched.
        let mut again = original.clone();
        st.inspect(Direction::ServerToClient, &mut again);
        assert_eq!(again, original);
    }

    #[test]
    fn flip_read_ignores_bad_offsets_and_other_modes() {
        let mut m = read_response(b"abc", false);
        m[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&1000u32.to_le_bytes());
        let copy = m.clone();
        let mut st = State::new(TamperMode::FlipRead);
        st.inspect(Direction::ServerToClient, &mut m);
        assert_eq!(m, copy, "a DataLength past the end is left alone, no panic");
        let mut ok = read_response(b"abc", false);
        let copy = ok.clone();
        State::new(TamperMode::Observe).inspect(Direction::ServerToClient, &mut ok);
        assert_eq!(ok, copy);
    }

    #[test]
    fn strip_clears_only_signing_required() {
        let mut st = State::new(TamperMode::StripSigningRequired);
        let mut m = negotiate_response(0x0003);
        st.inspect(Direction::ServerToClient, &mut m);
        assert_eq!(u16::from_le_bytes([m[66], m[67]]), 0x0001);
        assert_eq!(st.server_security_mode, Some(3));
        assert_eq!(st.forwarded_security_mode, Some(1));
        assert_eq!(st.dialect, Some(Dialect::SMB311));
        assert_eq!(st.changes.len(), 1);
        // Nothing to strip when the server does not require signing.
        let mut st = State::new(TamperMode::StripSigningRequired);
        let mut m = negotiate_response(0x0001);
        let copy = m.clone();
        st.inspect(Direction::ServerToClient, &mut m);
        assert_eq!(m, copy);
        assert!(st.changes.is_empty());
    }

    #[test]
    fn garbage_is_recorded_not_fatal() {
        let mut st = State::new(TamperMode::FlipRead);
        for mut junk in [
            vec![],
            vec![0xFE, b'S', b'M', b'B'],
            vec![0u8; 63],
            vec![0xAA; 200],
        ] {
            st.inspect(Direction::ServerToClient, &mut junk);
        }
        assert!(st.records.iter().all(|r| r.command == "MALFORMED"));
    }

    #[test]
    fn post_auth_counts_skip_never_signed_messages() {
        let mut st = State::new(TamperMode::Observe);
        let mut push = |dir, cmd, status, sid, signed: bool| {
            let mut h = Header::request(cmd, 1, sid, 0);
            if dir == Direction::ServerToClient {
                h = h.response(status);
            }
            if signed {
                h.flags |= flags::SIGNED;
            }
            st.records.push(record(dir, &h, false));
        };
        use Direction::*;
        push(
            ClientToServer,
            Command::SESSION_SETUP,
            NtStatus::SUCCESS,
            7,
            false,
        );
        push(
            ServerToClient,
            Command::SESSION_SETUP,
            NtStatus::SUCCESS,
            7,
            true,
        );
        push(
            ClientToServer,
            Command::TREE_CONNECT,
            NtStatus::SUCCESS,
            7,
            true,
        );
        push(
            ServerToClient,
            Command::TREE_CONNECT,
            NtStatus::PENDING,
            7,
            false,
        );
        push(
            ServerToClient,
            Command::TREE_CONNECT,
            NtStatus::SUCCESS,
            7,
            true,
        );
        let trace = TamperTrace {
            mode: TamperMode::Observe,
            client: "127.0.0.1:1".parse().unwrap(),
            dialect: None,
            server_security_mode: None,
            forwarded_security_mode: None,
            changes: vec![],
            records: st.records.clone(),
            client_end: None,
            server_end: None,
            client_closed_first: false,
            records_dropped: 0,
        };
        let c = trace.post_auth_signing();
        assert_eq!(
            c,
            SignedCount {
                requests: 1,
                signed_requests: 1,
                responses: 1,
                signed_responses: 1
            }
        );
        assert_eq!(c.verdict(), "signed");
    }
}
