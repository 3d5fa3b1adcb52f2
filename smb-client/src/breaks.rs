//! Oplock and lease breaks in the driver: which oplock or lease the opens of `get`/`put` ask
//! for (a fresh lease key per open), and the automatic acknowledgement of every break that
//! needs one.
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
use smb_core::messages::lease::{lease_state_letters, LeaseKey};
use smb_core::messages::FileId;

use crate::client::{Client, Error, Result};

/// What a break was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// An oplock on an open.
    Oplock(FileId),
    /// A lease (its key), with the epoch the notification gave.
    Lease(LeaseKey, u16),
}

/// A caching level: an oplock level or a lease state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// An oplock level.
    Oplock(OplockLevel),
    /// LeaseState bits.
    Lease(u32),
}

impl std::fmt::Display for Level {
    /// `batch`, `ii`, ... for oplocks; `RWH`, `RH`, `none` for leases.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Level::Oplock(l) => f.write_str(&level_name(*l)),
            Level::Lease(0) => f.write_str("none"),
            Level::Lease(s) => f.write_str(&lease_state_letters(*s)),
        }
    }
}

/// One break this client received, and what became of its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakRecord {
    /// The open or lease.
    pub what: Broken,
    /// The level held before the break.
    pub from: Level,
    /// The level the server offered.
    pub to: Level,
    /// Whether the server waited for an acknowledgement.
    pub ack_required: bool,
    /// What the acknowledgement's (verified) response said: its status and the level
    /// granted. `None` while it is outstanding, or when no acknowledgement was needed.
    pub ack: Option<(NtStatus, Level)>,
    /// Time from the acknowledgement's sending to its response.
    pub ack_round_trip: Option<Duration>,
}

impl std::fmt::Display for BreakRecord {
    /// `oplock break: batch -> ii, acknowledged: SUCCESS ii in 0.4 ms`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.what {
            Broken::Oplock(_) => "oplock",
            Broken::Lease(..) => "lease",
        };
        write!(f, "{kind} break: {} -> {}", self.from, self.to)?;
        match (self.ack_required, self.ack, self.ack_round_trip) {
            (false, _, _) => f.write_str(", no acknowledgement needed"),
            (true, Some((status, level)), Some(rtt)) => write!(
                f,
                ", acknowledged: {status:?} {level} in {:.1} ms",
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
    /// Asks for `caching` (an oplock or a lease) on the files `get`, `put`, `read_to` and
    /// `write_from` open; for a lease, each open gets a fresh random key (the key in
    /// `caching` is not used). Breaks are acknowledged automatically.
    pub fn set_caching(&mut self, caching: Caching) {
        self.breaks.caching = caching;
    }

    /// What the next transfer open asks for: [`caching`](Client::caching), with a fresh
    /// lease key.
    pub(crate) fn open_caching(&self) -> Caching {
        match self.breaks.caching {
            Caching::Lease { state, .. } => {
                let mut key = [0u8; 16];
                // A key needs no secrecy, only uniqueness among this client's leases.
                if self.conn.config().random.fill(&mut key).is_err() {
                    return Caching::None;
                }
                Caching::Lease { key, state }
            }
            other => other,
        }
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
    /// running call's next flush), unless acknowledgements are held back.
    pub(crate) fn on_break(&mut self, ev: &ClientEvent) {
        let record = match *ev {
            ClientEvent::OplockBreak {
                file_id,
                from,
                to,
                ack_required,
                ..
            } => BreakRecord {
                what: Broken::Oplock(file_id),
                from: Level::Oplock(from),
                to: Level::Oplock(to),
                ack_required,
                ack: None,
                ack_round_trip: None,
            },
            ClientEvent::LeaseBreak {
                key,
                from,
                to,
                epoch,
                ack_required,
            } => BreakRecord {
                what: Broken::Lease(key, epoch),
                from: Level::Lease(from),
                to: Level::Lease(to),
                ack_required,
                ack: None,
                ack_round_trip: None,
            },
            _ => return,
        };
        tracing::info!(%record, "break");
        let index = self.breaks.records.len();
        let ack_required = record.ack_required;
        self.breaks.records.push(record);
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
        let Some(r) = self.breaks.records.get(index) else {
            return;
        };
        let queued = match (r.what, r.to) {
            (Broken::Oplock(file_id), Level::Oplock(to)) => {
                self.conn.acknowledge_oplock_break(file_id, to)
            }
            (Broken::Lease(key, _), Level::Lease(to)) => self.conn.acknowledge_lease_break(key, to),
            _ => return,
        };
        match queued {
            Ok(id) => {
                self.breaks.acks.insert(id, (index, Instant::now()));
            }
            Err(e) => self.breaks.failure = Some(format!("cannot acknowledge a break: {e}")),
        }
    }

    /// The answer to one of our acknowledgements (already signature-checked by the state
    /// machine); false when `id` is not one.
    pub(crate) fn on_ack_answer(&mut self, id: u64, status: NtStatus, body: &ResponseBody) -> bool {
        let Some((index, sent)) = self.breaks.acks.remove(&id) else {
            return false;
        };
        let level = match body {
            ResponseBody::OplockBreak { oplock_level, .. } => Level::Oplock(*oplock_level),
            ResponseBody::LeaseBreak { state, .. } => Level::Lease(*state),
            _ => Level::Oplock(OplockLevel::NONE),
        };
        if status.is_error() {
            self.breaks.failure = Some(format!(
                "the server refused a break acknowledgement: NT_STATUS_{status:?}"
            ));
        }
        if let Some(r) = self.breaks.records.get_mut(index) {
            r.ack = Some((status, level));
            r.ack_round_trip = Some(sent.elapsed());
        }
        true
    }
}
