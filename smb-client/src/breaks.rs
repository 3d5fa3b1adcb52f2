//! Oplock breaks in the driver: which oplock the opens of `get`/`put` ask for, and the
//! automatic acknowledgement of every break that needs one.
//!
//! A break notification can arrive while the driver waits for any response (or in
//! [`Client::wait_for_break`] when it is idle). The driver caches no file data: WRITEs are
//! sent as soon as they are made and READ data goes straight to the caller, so by the time a
//! break is seen everything this client wrote is already on the wire ahead of the
//! acknowledgement, and there is nothing to write back. It acknowledges at the level the
//! server offered (signed when the session is), and checks the acknowledgement's response
//! when it arrives, in whatever call is running then.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use smb_core::conn::client::{Caching, ClientEvent, ResponseBody};
use smb_core::header::NtStatus;
use smb_core::messages::create::OplockLevel;
use smb_core::messages::FileId;

use crate::client::{Client, Error, Result};

/// One break this client received, and what became of its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakRecord {
    /// The open.
    pub file_id: FileId,
    /// The level held before the break.
    pub from: OplockLevel,
    /// The level the server offered.
    pub to: OplockLevel,
    /// Whether the server waited for an acknowledgement.
    pub ack_required: bool,
    /// What the acknowledgement's (verified) response said: its status and the level
    /// granted. `None` while it is outstanding, or when no acknowledgement was needed.
    pub ack: Option<(NtStatus, OplockLevel)>,
    /// Time from the notification's arrival to the acknowledgement's response.
    pub ack_round_trip: Option<Duration>,
}

impl std::fmt::Display for BreakRecord {
    /// `oplock break: batch -> ii, acknowledged: SUCCESS ii in 0.4 ms`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "oplock break: {} -> {}",
            level_name(self.from),
            level_name(self.to)
        )?;
        match (self.ack_required, self.ack, self.ack_round_trip) {
            (false, _, _) => f.write_str(", no acknowledgement needed"),
            (true, Some((status, level)), Some(rtt)) => write!(
                f,
                ", acknowledged: {status:?} {} in {:.1} ms",
                level_name(level),
                rtt.as_secs_f64() * 1000.0
            ),
            (true, _, _) => f.write_str(", acknowledgement unanswered"),
        }
    }
}

/// `none`, `ii`, `exclusive`, `batch`, `lease` (the `--oplock` spelling).
pub fn level_name(level: OplockLevel) -> String {
    match level {
        OplockLevel::NONE => "none".into(),
        OplockLevel::II => "ii".into(),
        OplockLevel::EXCLUSIVE => "exclusive".into(),
        OplockLevel::BATCH => "batch".into(),
        OplockLevel::LEASE => "lease".into(),
        other => format!("0x{:02x}", other.0),
    }
}

/// The driver's oplock settings and the breaks it handled.
#[derive(Debug, Default)]
pub(crate) struct Breaks {
    /// What CREATEs of `get`/`put`/`read_to`/`write_from` ask for.
    pub caching: Caching,
    pub records: Vec<BreakRecord>,
    /// Acknowledgements in flight: request id -> (index in `records`, when it was sent).
    acks: HashMap<u64, (usize, Instant)>,
    /// A failed acknowledgement, reported by the next call that checks.
    failure: Option<String>,
    /// Hold acknowledgements until [`Client::acknowledge_breaks`] (tests, and callers that
    /// write back cached data of their own first).
    pub hold_acks: bool,
    /// Breaks waiting for [`Client::acknowledge_breaks`]: indexes in `records`.
    held: Vec<usize>,
}

impl Client {
    /// Asks for `caching` (an oplock) on the files `get`, `put`, `read_to` and `write_from`
    /// open. Breaks are acknowledged automatically.
    pub fn set_caching(&mut self, caching: Caching) {
        self.breaks.caching = caching;
    }

    /// What the transfer opens ask for.
    pub fn caching(&self) -> Caching {
        self.breaks.caching
    }

    /// Every break received so far, in order.
    pub fn breaks(&self) -> &[BreakRecord] {
        &self.breaks.records
    }

    /// Reads from the connection until `count` breaks in all were received and every
    /// acknowledgement was answered, or `timeout` passes. For a client that holds an open
    /// with an oplock and has nothing else to do while another client opens the file.
    pub async fn wait_for_break(&mut self, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain_events();
            if let Some(why) = self.breaks.failure.take() {
                return Err(Error::Local(why));
            }
            if self.breaks.records.len() >= count && self.breaks.acks.is_empty() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout("an oplock break"));
            }
            let len = tokio::time::timeout(left, self.next_frame("an oplock break"))
                .await
                .map_err(|_| Error::Timeout("an oplock break"))??;
            self.handle_frame(len)?;
            self.flush().await?;
        }
    }

    /// With `hold`, breaks are not acknowledged until [`acknowledge_breaks`]
    /// (`Client::acknowledge_breaks`) is called: the server keeps the conflicting open
    /// waiting (and tells its client so with an interim STATUS_PENDING response).
    pub fn hold_acknowledgements(&mut self, hold: bool) {
        self.breaks.hold_acks = hold;
    }

    /// Acknowledges every break held back by [`hold_acknowledgements`]
    /// (`Client::hold_acknowledgements`) and waits for the responses.
    pub async fn acknowledge_breaks(&mut self, timeout: Duration) -> Result<()> {
        for index in std::mem::take(&mut self.breaks.held) {
            self.acknowledge(index);
        }
        self.flush().await?;
        let count = self.breaks.records.len();
        self.wait_for_break(count, timeout).await
    }

    /// A break notification: acknowledge it at the offered level (queued here, sent by the
    /// running call's next flush).
    pub(crate) fn on_oplock_break(&mut self, ev: &ClientEvent) {
        let ClientEvent::OplockBreak {
            file_id,
            from,
            to,
            ack_required,
            ..
        } = *ev
        else {
            return;
        };
        tracing::info!(?file_id, ?from, ?to, ack_required, "oplock break");
        let index = self.breaks.records.len();
        self.breaks.records.push(BreakRecord {
            file_id,
            from,
            to,
            ack_required,
            ack: None,
            ack_round_trip: None,
        });
        if !ack_required {
            return;
        }
        if self.breaks.hold_acks {
            self.breaks.held.push(index);
            return;
        }
        self.acknowledge(index);
    }

    /// Queues the acknowledgement of break `index` at the level the server offered.
    fn acknowledge(&mut self, index: usize) {
        let Some(&BreakRecord { file_id, to, .. }) = self.breaks.records.get(index) else {
            return;
        };
        match self.conn.acknowledge_oplock_break(file_id, to) {
            Ok(id) => {
                self.breaks.acks.insert(id, (index, Instant::now()));
            }
            Err(e) => {
                self.breaks.failure = Some(format!("cannot acknowledge an oplock break: {e}"))
            }
        }
    }

    /// The answer to one of our acknowledgements (already signature-checked by the state
    /// machine); false when `id` is not one.
    pub(crate) fn on_ack_answer(&mut self, id: u64, status: NtStatus, body: &ResponseBody) -> bool {
        let Some((index, sent)) = self.breaks.acks.remove(&id) else {
            return false;
        };
        let level = match body {
            ResponseBody::OplockBreak { oplock_level, .. } => *oplock_level,
            _ => OplockLevel::NONE,
        };
        if status.is_error() {
            self.breaks.failure = Some(format!(
                "the server refused an oplock break acknowledgement: NT_STATUS_{status:?}"
            ));
        }
        if let Some(r) = self.breaks.records.get_mut(index) {
            r.ack = Some((status, level));
            r.ack_round_trip = Some(sent.elapsed());
        }
        true
    }
}
