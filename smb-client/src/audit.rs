//! `--audit-log FILE`: the client's audit events as JSON lines, beside `tracing`.
//!
//! The events and their line format are the shared vocabulary of `smb_core::audit` (the same
//! as the server's log; schema in the README, "Audit log"); this file only opens the file and
//! reads the clock.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use smb_core::audit::{AuditEvent, AuditWriter};

/// An append-only JSON-lines file; `None` inside means auditing goes to `tracing` only.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<AuditWriter<File>>,
}

impl AuditLog {
    /// Events only go to `tracing`.
    pub fn disabled() -> Self {
        AuditLog { file: None }
    }

    /// Appends to `path`, creating it when missing.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            file: Some(AuditWriter::new(file)),
        })
    }

    /// Records `event`: to `tracing` always, and to the file when one is open. A write
    /// failure is reported to `tracing`, not raised: auditing must not turn a working
    /// transfer into a failed one.
    pub fn record(&self, event: &AuditEvent) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = event.to_json_line(now);
        match event.event {
            "session_established" => {
                tracing::info!(target: "smb_client::audit", event = event.event, "{}", line.trim_end())
            }
            _ => {
                tracing::warn!(target: "smb_client::audit", event = event.event, "{}", line.trim_end())
            }
        }
        let Some(file) = &self.file else { return };
        if let Err(e) = file.write(event, now) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use smb_core::audit::Role;

    #[test]
    fn writes_one_json_object_per_line() {
        let dir = std::env::temp_dir().join(format!("smb-client-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = AuditLog::open(&path).unwrap();
        log.record(
            &AuditEvent::new(Role::Client, "server_does_not_require_signing")
                .server_address("127.0.0.1:1"),
        );
        let mut established = AuditEvent::new(Role::Client, "session_established");
        established.signed = Some(true);
        log.record(&established);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "server_does_not_require_signing");
        assert_eq!(lines[0]["server_address"], "127.0.0.1:1");
        assert_eq!(lines[1]["signed"], true);
        assert_eq!(lines[1]["role"], "client");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
