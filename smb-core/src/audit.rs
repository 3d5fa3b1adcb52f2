//! One audit vocabulary for the client and the server: [`AuditEvent`], one line of JSON per
//! event, with field names modelled on Windows' SMB audit events (client and server address,
//! user, session, dialect, signing algorithm, whether signed, reason), so one tool reads both
//! logs (`smb-audit log`). The schema is documented in the README ("Audit log").
//!
//! Sans-IO like the rest of the crate: an event is built from a state machine's event
//! ([`AuditEvent::from_server`], [`AuditEvent::from_client`]), the driver adds the addresses
//! it knows and the time it reads from its clock, and [`AuditWriter`] formats the line into
//! whatever `std::io::Write` the driver opened (an append-only file).
//!
//! ```
//! use std::time::Duration;
//! use smb_core::audit::{AuditEvent, Role};
//!
//! let event = AuditEvent::new(Role::Server, "logon_failed")
//!     .client_address("127.0.0.1:50412")
//!     .user("alice");
//! let line = event.to_json_line(Duration::from_millis(1_796_000_000_123));
//! assert!(line.starts_with(r#"{"time":"2026-11-30T"#));
//! assert!(line.contains(r#""event":"logon_failed","client_address":"127.0.0.1:50412""#));
//! assert!(line.ends_with("\"smb1_dialects\":null}\n"));
//! ```

use std::fmt::Write as _;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use crate::conn::client::ClientEvent;
use crate::conn::server::ServerEvent;
use crate::header::{Command, Dialect};
use crate::signing::Algorithm;

/// Which side wrote an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `smb-client` (or any driver of [`ClientConnection`](crate::conn::client::ClientConnection)).
    Client,
    /// `smb-server` (or any driver of [`ServerConnection`](crate::conn::server::ServerConnection)).
    Server,
}

impl Role {
    /// `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// One audit record. Every field but `role` and `event` is optional; a line always carries
/// every key (`null` when unknown), in the order of the fields here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Which side wrote it.
    pub role: Role,
    /// The event name (`"session_established"`, `"request_rejected"`, ...).
    pub event: &'static str,
    /// The client's `ip:port` (Windows: ClientAddress).
    pub client_address: Option<String>,
    /// The server's `ip:port` (Windows: ServerName / server address).
    pub server_address: Option<String>,
    /// The account (Windows: UserName); `""` for anonymous.
    pub user: Option<String>,
    /// The SMB2 SessionId (Windows: SessionId).
    pub session_id: Option<u64>,
    /// The dialect (for `smb1_attempt`, the SMB2 dialect answered).
    pub dialect: Option<Dialect>,
    /// The session's signing algorithm; None when it has no key.
    pub signing_algorithm: Option<Algorithm>,
    /// Whether every message of the session is signed.
    pub signed: Option<bool>,
    /// A guest session.
    pub guest: Option<bool>,
    /// An anonymous session.
    pub anonymous: Option<bool>,
    /// The request's command (`request_rejected`, `signature_rejected`).
    pub command: Option<Command>,
    /// The request's MessageId.
    pub message_id: Option<u64>,
    /// Why (Windows: Reason).
    pub reason: Option<String>,
    /// The SMB1 dialect strings a client offered (`smb1_attempt`).
    pub smb1_dialects: Option<Vec<String>>,
}

impl AuditEvent {
    /// An event with only its role and name.
    pub fn new(role: Role, event: &'static str) -> Self {
        AuditEvent {
            role,
            event,
            client_address: None,
            server_address: None,
            user: None,
            session_id: None,
            dialect: None,
            signing_algorithm: None,
            signed: None,
            guest: None,
            anonymous: None,
            command: None,
            message_id: None,
            reason: None,
            smb1_dialects: None,
        }
    }

    /// Sets the client's address.
    pub fn client_address(mut self, addr: impl ToString) -> Self {
        self.client_address = Some(addr.to_string());
        self
    }

    /// Sets the server's address.
    pub fn server_address(mut self, addr: impl ToString) -> Self {
        self.server_address = Some(addr.to_string());
        self
    }

    /// Sets the user.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }

    /// The audit record of a server event (`server_address` and, where the event does not
    /// carry it, `client_address` are the driver's to add).
    pub fn from_server(event: &ServerEvent) -> Self {
        let mut e = AuditEvent::new(Role::Server, event.kind());
        match event {
            ServerEvent::Smb1Attempt {
                client_addr,
                dialects,
                answered,
            } => {
                e.client_address = client_addr.clone();
                e.smb1_dialects = Some(dialects.clone());
                e.dialect = *answered;
            }
            ServerEvent::SessionEstablished {
                session_id,
                user,
                dialect,
                algorithm,
                signed,
                guest,
                anonymous,
            } => {
                e.session_id = Some(*session_id);
                e.user = Some(user.clone());
                e.dialect = Some(*dialect);
                e.signing_algorithm = *algorithm;
                e.signed = Some(*signed);
                e.guest = Some(*guest);
                e.anonymous = Some(*anonymous);
            }
            ServerEvent::SessionUnsigned {
                session_id,
                user,
                client_addr,
                reason,
            } => {
                e.session_id = Some(*session_id);
                e.user = Some(user.clone());
                e.client_address = client_addr.clone();
                e.reason = Some((*reason).to_string());
            }
            ServerEvent::LogonFailed {
                user,
                client_addr,
                reason,
            } => {
                e.user = Some(user.clone());
                e.client_address = client_addr.clone();
                e.reason = Some(reason.to_string());
            }
            ServerEvent::RequestRejected {
                command,
                message_id,
                session_id,
                reason,
            } => {
                e.command = Some(*command);
                e.message_id = Some(*message_id);
                e.session_id = Some(*session_id);
                e.reason = Some(reason.as_str().to_string());
            }
            ServerEvent::LoggedOff { session_id, user } => {
                e.session_id = Some(*session_id);
                e.user = Some(user.clone());
            }
            ServerEvent::Disconnect { reason } => e.reason = Some(reason.clone()),
        }
        e
    }

    /// The audit record of a client event; None for events that are not audit records
    /// (responses). `server_address` and `client_address` are the driver's to add.
    pub fn from_client(event: &ClientEvent) -> Option<Self> {
        let e = match event {
            // Breaks are part of normal operation, not a signing event.
            ClientEvent::Response { .. }
            | ClientEvent::OplockBreak { .. }
            | ClientEvent::LeaseBreak { .. } => return None,
            ClientEvent::ServerDoesNotRequireSigning { dialect, .. } => {
                let mut e = AuditEvent::new(Role::Client, "server_does_not_require_signing");
                e.dialect = Some(*dialect);
                e
            }
            ClientEvent::SessionEstablished {
                dialect,
                algorithm,
                signed,
                guest,
                anonymous,
            } => {
                let mut e = AuditEvent::new(Role::Client, "session_established");
                e.dialect = Some(*dialect);
                e.signing_algorithm = *algorithm;
                e.signed = Some(*signed);
                e.guest = Some(*guest);
                e.anonymous = Some(*anonymous);
                e
            }
            ClientEvent::SignatureRejected {
                message_id,
                command,
                reason,
            } => {
                let mut e = AuditEvent::new(Role::Client, "signature_rejected");
                e.message_id = Some(*message_id);
                e.command = Some(*command);
                e.reason = Some(reason.to_string());
                e
            }
        };
        Some(e)
    }

    /// The JSON line (ending in `\n`) for this event at `unix_time` (time since the Unix
    /// epoch, from the driver's clock).
    pub fn to_json_line(&self, unix_time: Duration) -> String {
        let mut line = String::with_capacity(400);
        line.push('{');
        let mut first = true;
        let mut key = |line: &mut String, name: &str| {
            if !first {
                line.push(',');
            }
            first = false;
            json_string(line, name);
            line.push(':');
        };
        key(&mut line, "time");
        json_string(&mut line, &rfc3339_utc(unix_time));
        key(&mut line, "role");
        json_string(&mut line, self.role.as_str());
        key(&mut line, "event");
        json_string(&mut line, self.event);
        key(&mut line, "client_address");
        json_opt_string(&mut line, self.client_address.as_deref());
        key(&mut line, "server_address");
        json_opt_string(&mut line, self.server_address.as_deref());
        key(&mut line, "user");
        json_opt_string(&mut line, self.user.as_deref());
        key(&mut line, "session_id");
        json_opt_string(
            &mut line,
            self.session_id.map(|s| format!("0x{s:016x}")).as_deref(),
        );
        key(&mut line, "dialect");
        json_opt_string(&mut line, self.dialect.map(Dialect::dotted).as_deref());
        key(&mut line, "signing_algorithm");
        json_opt_string(&mut line, self.signing_algorithm.map(Algorithm::name));
        key(&mut line, "signed");
        json_opt_bool(&mut line, self.signed);
        key(&mut line, "guest");
        json_opt_bool(&mut line, self.guest);
        key(&mut line, "anonymous");
        json_opt_bool(&mut line, self.anonymous);
        key(&mut line, "command");
        json_opt_string(&mut line, self.command.map(|c| c.to_string()).as_deref());
        key(&mut line, "message_id");
        match self.message_id {
            Some(id) => {
                let _ = write!(line, "{id}");
            }
            None => line.push_str("null"),
        }
        key(&mut line, "reason");
        json_opt_string(&mut line, self.reason.as_deref());
        key(&mut line, "smb1_dialects");
        match &self.smb1_dialects {
            Some(list) => {
                line.push('[');
                for (i, d) in list.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    json_string(&mut line, d);
                }
                line.push(']');
            }
            None => line.push_str("null"),
        }
        line.push_str("}\n");
        line
    }
}

/// Appends audit lines to a writer (the driver opens the file), one `write_all` and one flush
/// per event, safe to share between connections.
#[derive(Debug)]
pub struct AuditWriter<W: io::Write> {
    out: Mutex<W>,
}

impl<W: io::Write> AuditWriter<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        AuditWriter {
            out: Mutex::new(out),
        }
    }

    /// Writes `event` at `unix_time` and flushes, so the record is on disk before the peer
    /// sees the answer it is about.
    pub fn write(&self, event: &AuditEvent, unix_time: Duration) -> io::Result<()> {
        let line = event.to_json_line(unix_time);
        // A writer poisoned by a panic elsewhere is still a file handle: keep logging.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(line.as_bytes())?;
        out.flush()
    }
}

/// RFC 3339 UTC with milliseconds (`2026-11-30T01:02:03.456Z`) for a time since the Unix
/// epoch.
pub fn rfc3339_utc(unix_time: Duration) -> String {
    let secs = unix_time.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        unix_time.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A JSON string literal (RFC 8259 section 7).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opt_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_string(out, s),
        None => out.push_str("null"),
    }
}

fn json_opt_bool(out: &mut String, b: Option<bool>) {
    out.push_str(match b {
        Some(true) => "true",
        Some(false) => "false",
        None => "null",
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::server::RejectReason;

    fn parse(line: &str) -> serde_json::Value {
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        serde_json::from_str(line).expect("valid JSON")
    }

    const KEYS: [&str; 16] = [
        "time",
        "role",
        "event",
        "client_address",
        "server_address",
        "user",
        "session_id",
        "dialect",
        "signing_algorithm",
        "signed",
        "guest",
        "anonymous",
        "command",
        "message_id",
        "reason",
        "smb1_dialects",
    ];

    #[test]
    fn every_line_has_every_key_in_order() {
        let line = AuditEvent::new(Role::Client, "x").to_json_line(Duration::ZERO);
        let mut at = 0;
        for key in KEYS {
            let found = line[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing or out of order in {line}"));
            at += found;
        }
        assert_eq!(parse(&line).as_object().unwrap().len(), KEYS.len());
    }

    #[test]
    fn server_events_map_to_the_schema() {
        let established = ServerEvent::SessionEstablished {
            session_id: 0x1234,
            user: "DOM\\alice".into(),
            dialect: Dialect::SMB311,
            algorithm: Some(Algorithm::AesGmac),
            signed: true,
            guest: false,
            anonymous: false,
        };
        let v = parse(
            &AuditEvent::from_server(&established)
                .client_address("127.0.0.1:5")
                .server_address("127.0.0.4:4455")
                .to_json_line(Duration::from_millis(1_500)),
        );
        assert_eq!(v["time"], "1970-01-01T00:00:01.500Z");
        assert_eq!(v["role"], "server");
        assert_eq!(v["event"], "session_established");
        assert_eq!(v["client_address"], "127.0.0.1:5");
        assert_eq!(v["server_address"], "127.0.0.4:4455");
        assert_eq!(v["user"], "DOM\\alice");
        assert_eq!(v["session_id"], "0x0000000000001234");
        assert_eq!(v["dialect"], "3.1.1");
        assert_eq!(v["signing_algorithm"], "aes-gmac");
        assert_eq!(v["signed"], true);
        assert_eq!(v["guest"], false);
        assert_eq!(v["reason"], serde_json::Value::Null);

        let rejected = ServerEvent::RequestRejected {
            command: Command::CREATE,
            message_id: 7,
            session_id: 1,
            reason: RejectReason::BadSignature,
        };
        let v = parse(&AuditEvent::from_server(&rejected).to_json_line(Duration::ZERO));
        assert_eq!(v["command"], "CREATE");
        assert_eq!(v["message_id"], 7);
        assert_eq!(v["reason"], "bad signature");

        let smb1 = ServerEvent::Smb1Attempt {
            client_addr: Some("127.0.0.1:9".into()),
            dialects: vec!["NT LM 0.12".into(), "SMB 2.???".into()],
            answered: Some(Dialect::WILDCARD),
        };
        let v = parse(&AuditEvent::from_server(&smb1).to_json_line(Duration::ZERO));
        assert_eq!(v["event"], "smb1_attempt");
        assert_eq!(v["dialect"], "0x02ff");
        assert_eq!(v["smb1_dialects"][1], "SMB 2.???");
        assert_eq!(v["client_address"], "127.0.0.1:9");
    }

    #[test]
    fn client_events_map_to_the_schema_and_responses_are_not_audited() {
        let ev = ClientEvent::ServerDoesNotRequireSigning {
            server: "srv".into(),
            dialect: Dialect::SMB302,
        };
        let v = parse(
            &AuditEvent::from_client(&ev)
                .unwrap()
                .to_json_line(Duration::ZERO),
        );
        assert_eq!(v["role"], "client");
        assert_eq!(v["event"], "server_does_not_require_signing");
        assert_eq!(v["dialect"], "3.0.2");
    }

    #[test]
    fn strings_are_escaped() {
        let line = AuditEvent::new(Role::Server, "disconnect")
            .user("a\"b\\c\n\u{1}é")
            .to_json_line(Duration::ZERO);
        assert_eq!(parse(&line)["user"], "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789
        assert_eq!(
            rfc3339_utc(Duration::from_millis(951_827_696_789)),
            "2000-02-29T12:34:56.789Z"
        );
        assert_eq!(
            rfc3339_utc(Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59.000Z"
        );
    }

    #[test]
    fn writer_appends_one_flushed_line_per_event() {
        let w = AuditWriter::new(Vec::new());
        w.write(&AuditEvent::new(Role::Client, "a"), Duration::ZERO)
            .unwrap();
        w.write(&AuditEvent::new(Role::Client, "b"), Duration::ZERO)
            .unwrap();
        let out = String::from_utf8(w.out.into_inner().unwrap()).unwrap();
        assert_eq!(out.lines().count(), 2);
        assert!(out
            .lines()
            .all(|l| parse(&format!("{l}\n"))["role"] == "client"));
    }
}
