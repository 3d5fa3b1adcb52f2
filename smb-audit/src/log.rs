//! `smb-audit log FILE... [--json]`: the rollout question from our server's and client's
//! JSON-lines audit logs. Which clients connect unsigned, with which dialect and user, how
//! often, when last; which would be refused once RequireSecuritySignature is on (guest and
//! anonymous sessions, SMB1); and, from a client's log, which servers do not require signing.
//!
//! Reads the schema of `AUDIT-LOG-SCHEMA` (`client_address`, `server_address`, RFC 3339
//! `time`, `signing_algorithm`, `smb1_dialects`) and the earlier server form (`peer`, unix
//! `time`, `signing`, `dialects`); unknown keys are ignored, unreadable lines counted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// JSON-lines audit logs (smb-server --audit-log, smb-client --audit-log).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// One JSON object per host instead of one line per host.
    #[arg(long)]
    pub json: bool,
}

/// One host's record.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct HostRecord {
    /// The client's address (from a server's log) or the server's (from a client's log).
    pub host: String,
    /// `client` (it connected to our server) or `server` (our client connected to it).
    pub role: String,
    pub sessions: u64,
    pub signed_sessions: u64,
    pub unsigned_sessions: u64,
    pub guest_sessions: u64,
    pub anonymous_sessions: u64,
    pub smb1_attempts: u64,
    pub logon_failures: u64,
    /// Requests refused for a missing or bad signature, or a replay.
    pub rejected_requests: u64,
    /// Client's log: NEGOTIATE answers without SIGNING_REQUIRED (like event 31998).
    pub not_requiring_signing: u64,
    pub dialects: BTreeSet<String>,
    pub users: BTreeSet<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub last_unsigned: Option<String>,
    /// Would be refused once the server requires signing (guest/anonymous, SMB1).
    pub would_be_refused: bool,
    pub reasons: Vec<String>,
}

/// `time` as RFC 3339: a string is kept, unix seconds are converted.
fn time_of(v: &Value) -> Option<String> {
    match v.get("time")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_f64().map(rfc3339),
        _ => None,
    }
}

/// Unix seconds to `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, proleptic Gregorian).
pub fn rfc3339(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

fn str_of<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str))
}

fn host_of(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_owned())
}

/// The hosts of every readable line, and how many lines were not understood.
#[derive(Debug, Default)]
pub struct LogSummary {
    pub hosts: BTreeMap<(String, String), HostRecord>,
    pub lines: u64,
    pub bad_lines: u64,
}

impl LogSummary {
    /// Adds one line.
    pub fn line(&mut self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            self.bad_lines += 1;
            return;
        };
        let Some(event) = str_of(&v, &["event"]) else {
            self.bad_lines += 1;
            return;
        };
        self.lines += 1;
        let client_side = matches!(
            event,
            "server_does_not_require_signing" | "signature_rejected"
        ) || str_of(&v, &["role"]) == Some("client");
        let (role, addr) = if client_side {
            ("server", str_of(&v, &["server_address", "server", "peer"]))
        } else {
            ("client", str_of(&v, &["client_address", "peer"]))
        };
        let host = host_of(addr.unwrap_or("unknown"));
        let time = time_of(&v);
        let r = self
            .hosts
            .entry((role.to_owned(), host.clone()))
            .or_insert_with(|| HostRecord {
                host,
                role: role.into(),
                ..HostRecord::default()
            });
        if let Some(t) = &time {
            if !matches!(&r.first_seen, Some(f) if f <= t) {
                r.first_seen = Some(t.clone());
            }
            if !matches!(&r.last_seen, Some(l) if l >= t) {
                r.last_seen = Some(t.clone());
            }
        }
        if let Some(d) = str_of(&v, &["dialect"]) {
            r.dialects.insert(d.to_owned());
        }
        if let Some(u) = str_of(&v, &["user"]).filter(|u| !u.is_empty()) {
            r.users.insert(u.to_owned());
        }
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        match event {
            "session_established" => {
                r.sessions += 1;
                if flag("guest") {
                    r.guest_sessions += 1;
                }
                if flag("anonymous") {
                    r.anonymous_sessions += 1;
                }
                if flag("signed") {
                    r.signed_sessions += 1;
                } else {
                    r.unsigned_sessions += 1;
                    if let Some(t) = &time {
                        if !matches!(&r.last_unsigned, Some(l) if l >= t) {
                            r.last_unsigned = Some(t.clone());
                        }
                    }
                }
            }
            "smb1_attempt" => r.smb1_attempts += 1,
            "logon_failed" => r.logon_failures += 1,
            "request_rejected" | "signature_rejected" => r.rejected_requests += 1,
            "server_does_not_require_signing" => r.not_requiring_signing += 1,
            _ => {}
        }
    }

    /// Fills verdict fields and returns the records, worst first.
    pub fn records(&self) -> Vec<HostRecord> {
        let mut out: Vec<HostRecord> = self
            .hosts
            .values()
            .cloned()
            .map(|mut r| {
                let mut why = Vec::new();
                if r.role == "client" {
                    if r.unsigned_sessions > 0 {
                        why.push(format!(
                            "{} of {} sessions unsigned: the client does not sign (like event \
                             3021); it must sign once RequireSecuritySignature = 1",
                            r.unsigned_sessions, r.sessions
                        ));
                    }
                    if r.guest_sessions + r.anonymous_sessions > 0 {
                        why.push(format!(
                            "{} guest/anonymous sessions: refused once signing is required",
                            r.guest_sessions + r.anonymous_sessions
                        ));
                        r.would_be_refused = true;
                    }
                    if r.smb1_attempts > 0 {
                        why.push(format!("{} SMB1 attempts", r.smb1_attempts));
                        r.would_be_refused = true;
                    }
                    if r.rejected_requests > 0 {
                        why.push(format!(
                            "{} requests refused for their signature",
                            r.rejected_requests
                        ));
                    }
                } else if r.not_requiring_signing > 0 {
                    why.push(format!(
                        "SMB Server signing is NOT enforced: {} NEGOTIATE answers without \
                         SIGNING_REQUIRED (like event 31998)",
                        r.not_requiring_signing
                    ));
                }
                r.reasons = why;
                r
            })
            .collect();
        out.sort_by_key(|r| {
            (
                !r.would_be_refused,
                r.reasons.is_empty(),
                r.role.clone(),
                r.host.clone(),
            )
        });
        out
    }
}

pub fn run(args: LogArgs) -> Result<ExitCode> {
    let mut s = LogSummary::default();
    let mut read_any = false;
    for path in &args.files {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("smb-audit: cannot open {}: {e}", path.display());
                continue;
            }
        };
        read_any = true;
        for line in BufReader::new(f).lines() {
            match line {
                Ok(l) => s.line(&l),
                Err(_) => s.bad_lines += 1,
            }
        }
    }
    if !read_any || s.lines == 0 {
        eprintln!("smb-audit: no audit event could be read");
        return Ok(ExitCode::from(2));
    }
    if s.bad_lines > 0 {
        eprintln!("note: {} lines are not audit events; skipped", s.bad_lines);
    }
    let records = s.records();
    let mut out = std::io::stdout().lock();
    for r in &records {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(r)?).context("stdout")?;
            continue;
        }
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        writeln!(
            out,
            "{} {}: {} sessions ({} unsigned, {} guest/anonymous), {} SMB1 attempts, dialects \
             [{}], users [{}], last seen {}, last unsigned {}{}",
            r.role,
            r.host,
            r.sessions,
            r.unsigned_sessions,
            r.guest_sessions + r.anonymous_sessions,
            r.smb1_attempts,
            list(&r.dialects),
            list(&r.users),
            r.last_seen.as_deref().unwrap_or("-"),
            r.last_unsigned.as_deref().unwrap_or("-"),
            if r.would_be_refused {
                "; WOULD BE REFUSED with RequireSecuritySignature = 1"
            } else {
                ""
            }
        )?;
        for why in &r.reasons {
            writeln!(out, "    {why}")?;
        }
    }
    let attention = records.iter().any(|r| !r.reasons.is_empty());
    Ok(if attention {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_to_rfc3339() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_993_723.665), "2026-11-29T23:08:43.665Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn both_schemas_roll_up_per_client() {
        let mut s = LogSummary::default();
        // The unified schema.
        s.line(r#"{"time":"2026-11-29T22:45:01.123Z","role":"server","event":"session_established","client_address":"127.0.0.1:50412","server_address":"127.0.0.1:4455","user":"alice","session_id":"0x1","dialect":"3.1.1","signing_algorithm":"aes-gmac","signed":true,"guest":false,"anonymous":false,"command":null,"message_id":null,"reason":null,"smb1_dialects":null}"#);
        // The earlier server form.
        s.line(r#"{"time":1795993731.36,"event":"session_established","peer":"127.0.0.1:58368","session_id":"0x2","user":"WORKGROUP\\alice","dialect":"3.0.2","signing":"aes-cmac","signed":false,"guest":false,"anonymous":false}"#);
        s.line(r#"{"time":1795993732.0,"event":"session_established","peer":"127.0.0.2:1","user":"nobody","dialect":"3.1.1","signed":false,"guest":true,"anonymous":false}"#);
        s.line(r#"{"time":"2026-11-29T22:46:00.000Z","role":"server","event":"smb1_attempt","client_address":"127.0.0.3:9","smb1_dialects":["NT LM 0.12"]}"#);
        s.line(r#"{"time":"2026-11-29T22:47:00.000Z","role":"client","event":"server_does_not_require_signing","client_address":"127.0.0.1:5","server_address":"127.0.0.9:445","dialect":"2.1"}"#);
        s.line("not json");
        let r = s.records();
        assert_eq!(s.bad_lines, 1);
        let by = |role: &str, h: &str| {
            r.iter()
                .find(|x| x.role == role && x.host == h)
                .unwrap()
                .clone()
        };
        let a = by("client", "127.0.0.1");
        assert_eq!(
            (a.sessions, a.signed_sessions, a.unsigned_sessions),
            (2, 1, 1)
        );
        assert_eq!(
            a.dialects.iter().cloned().collect::<Vec<_>>(),
            ["3.0.2", "3.1.1"]
        );
        assert_eq!(a.last_unsigned.as_deref(), Some("2026-11-29T23:08:51.360Z"));
        assert!(!a.would_be_refused);
        assert!(a.reasons[0].contains("like event 3021"));
        let g = by("client", "127.0.0.2");
        assert!(g.would_be_refused);
        assert!(by("client", "127.0.0.3").would_be_refused);
        let srv = by("server", "127.0.0.9");
        assert!(srv.reasons[0].contains("31998"));
        // Worst first.
        assert!(r[0].would_be_refused);
    }
}
