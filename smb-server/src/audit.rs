//! Audit records: every [`ServerEvent`] goes to `tracing`, and with `--audit-log FILE` also
//! to a JSON-lines file (one object per line, flushed at once).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use smb_core::conn::server::ServerEvent;

/// Where audit records go.
#[derive(Debug)]
pub struct Audit {
    file: Option<Mutex<File>>,
}

impl Audit {
    /// Opens (appends to) the JSON-lines file, if any.
    pub fn open(path: Option<&Path>) -> Result<Audit> {
        let file = match path {
            None => None,
            Some(p) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open audit log {}", p.display()))?,
            )),
        };
        Ok(Audit { file })
    }

    /// Logs one event (peer = the connection's remote address).
    pub fn record(&self, event: &ServerEvent, peer: Option<SocketAddr>) {
        let v = to_json(event, peer);
        match event {
            ServerEvent::SessionEstablished { .. } | ServerEvent::LoggedOff { .. } => {
                tracing::info!(target: "smb_audit", "{v}")
            }
            ServerEvent::Disconnect { .. } => tracing::info!(target: "smb_audit", "{v}"),
            _ => tracing::warn!(target: "smb_audit", "{v}"),
        }
        if let Some(f) = &self.file {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(f, "{v}");
            let _ = f.flush();
        }
    }
}

/// The JSON form: `{"time": unix seconds, "event": kind, "peer": addr, ...fields}`.
pub fn to_json(event: &ServerEvent, peer: Option<SocketAddr>) -> Value {
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut v = match event {
        ServerEvent::Smb1Attempt {
            dialects, answered, ..
        } => json!({
            "dialects": dialects,
            "answered": answered.map(|d| format!("0x{:04x}", d.0)),
        }),
        ServerEvent::SessionEstablished {
            session_id,
            user,
            dialect,
            algorithm,
            signed,
            guest,
            anonymous,
        } => json!({
            "session_id": format!("0x{session_id:016x}"),
            "user": user,
            "dialect": dialect.dotted(),
            "signing": algorithm.map(|a| a.name()),
            "signed": signed,
            "guest": guest,
            "anonymous": anonymous,
        }),
        ServerEvent::SessionUnsigned {
            session_id,
            user,
            reason,
            ..
        } => json!({
            "session_id": format!("0x{session_id:016x}"),
            "user": user,
            "reason": reason,
        }),
        ServerEvent::LogonFailed { user, reason, .. } => json!({ "user": user, "reason": reason }),
        ServerEvent::RequestRejected {
            command,
            message_id,
            session_id,
            reason,
        } => json!({
            "command": command.to_string(),
            "message_id": message_id,
            "session_id": format!("0x{session_id:016x}"),
            "reason": reason.as_str(),
        }),
        ServerEvent::LoggedOff { session_id, user } => json!({
            "session_id": format!("0x{session_id:016x}"),
            "user": user,
        }),
        ServerEvent::Disconnect { reason } => json!({ "reason": reason }),
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("time".into(), json!(time));
        obj.insert("event".into(), json!(event.kind()));
        obj.insert("peer".into(), json!(peer.map(|p| p.to_string())));
    }
    v
}
