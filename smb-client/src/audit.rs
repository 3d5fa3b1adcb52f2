//! `--audit-log FILE`: the client's audit events as JSON lines, beside `tracing`.
//!
//! One object per line: `{"time":UNIX_SECONDS,"role":"client","event":NAME,...fields}`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// An append-only JSON-lines file; `None` inside means auditing goes to `tracing` only.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<Mutex<File>>,
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
            file: Some(Mutex::new(file)),
        })
    }

    /// Records `event` with `fields` (a JSON object's members): to `tracing` always, and to
    /// the file when one is open. A write failure is reported to `tracing`, not raised:
    /// auditing must not turn a working transfer into a failed one.
    pub fn record(&self, event: &str, fields: Value) {
        tracing::warn!(target: "smb_client::audit", event, %fields);
        let Some(file) = &self.file else { return };
        let mut obj = Map::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        obj.insert("time".into(), now.into());
        obj.insert("role".into(), "client".into());
        obj.insert("event".into(), event.into());
        if let Value::Object(m) = fields {
            obj.extend(m);
        }
        let mut line = Value::Object(obj).to_string();
        line.push('\n');
        let result = match file.lock() {
            Ok(mut f) => f.write_all(line.as_bytes()).and_then(|_| f.flush()),
            Err(_) => Err(io::Error::other("audit log lock poisoned")),
        };
        if let Err(e) = result {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_json_object_per_line() {
        let dir = std::env::temp_dir().join(format!("smb-client-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = AuditLog::open(&path).unwrap();
        log.record(
            "server_does_not_require_signing",
            serde_json::json!({"server": "127.0.0.1:1"}),
        );
        log.record("session_established", serde_json::json!({"signed": true}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "server_does_not_require_signing");
        assert_eq!(lines[0]["server"], "127.0.0.1:1");
        assert_eq!(lines[1]["signed"], true);
        assert_eq!(lines[1]["role"], "client");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
