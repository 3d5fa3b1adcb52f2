//! Audit records: every [`ServerEvent`] goes to `tracing`, and with `--audit-log FILE` also
//! to a JSON-lines file (one object per line, flushed at once).
//!
//! The events and their line format are the shared vocabulary of `smb_core::audit` (the same
//! as the client's log; schema in the README, "Audit log"); this file only opens the file,
//! adds the addresses and reads the clock.

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use smb_core::audit::{AuditEvent, AuditWriter};
use smb_core::conn::server::ServerEvent;

/// Where audit records go.
#[derive(Debug)]
pub struct Audit {
    file: Option<AuditWriter<File>>,
    /// The listening address, the `server_address` of every record.
    server: OnceLock<SocketAddr>,
}

impl Audit {
    /// Opens (appends to) the JSON-lines file, if any.
    pub fn open(path: Option<&Path>) -> Result<Audit> {
        let file = match path {
            None => None,
            Some(p) => Some(AuditWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open audit log {}", p.display()))?,
            )),
        };
        Ok(Audit {
            file,
            server: OnceLock::new(),
        })
    }

    /// Names the server's own address in every later record.
    pub fn set_server_address(&self, addr: SocketAddr) {
        let _ = self.server.set(addr);
    }

    /// Logs one event (peer = the connection's remote address).
    pub fn record(&self, event: &ServerEvent, peer: Option<SocketAddr>) {
        let record = to_record(event, peer, self.server.get().copied());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = record.to_json_line(now);
        let line = line.trim_end();
        match event {
            ServerEvent::SessionEstablished { .. }
            | ServerEvent::LoggedOff { .. }
            | ServerEvent::Disconnect { .. } => tracing::info!(target: "smb_audit", "{line}"),
            _ => tracing::warn!(target: "smb_audit", "{line}"),
        }
        if let Some(file) = &self.file {
            if let Err(e) = file.write(&record, now) {
                tracing::error!("cannot write the audit log: {e}");
            }
        }
    }
}

/// The shared record of `event`, with the connection's addresses.
pub fn to_record(
    event: &ServerEvent,
    peer: Option<SocketAddr>,
    server: Option<SocketAddr>,
) -> AuditEvent {
    let mut record = AuditEvent::from_server(event);
    if let Some(peer) = peer {
        record.client_address = Some(peer.to_string());
    }
    record.server_address = server.map(|s| s.to_string());
    record
}
