//! Oplocks and leases on the client side (MS-SMB2 3.2.4.3.8, 3.2.5.19, 3.2.4.24, 3.2.4.25):
//! what a CREATE asks for, what the server granted, the unsolicited break notifications
//! (MessageId 0xFFFFFFFFFFFFFFFF, unsigned by design) and the acknowledgements, which are
//! ordinary signed requests whose responses are verified like any other.
//!
//! ```text
//! CREATE (oplock asked) --granted--> Held(level) --break notification--> Breaking(to)
//!    Breaking --acknowledge (signed)--> acknowledged --response (verified)--> Held(granted)
//!    Held(II) --break to none--> released (level II breaks need no acknowledgement)
//!    CLOSE answered --> forgotten
//! CREATE (lease key K, state S asked) --granted--> Lease K (state, epoch, opens)
//!    --lease break (ACK_REQUIRED)--> Breaking(new state) --acknowledge--> response --> state
//!    --lease break (no ack)--> state lowered at once; last open of K closed --> forgotten
//! ```
//! A lease is version 1 on SMB 2.1 and version 2 (with an epoch) on 3.x (3.2.4.3.8); 2.0.2 has
//! no leases.

use std::collections::HashMap;

use super::error::{ClientError, ProtocolError, StateError};
use super::events::{ClientEvent, ResponseBody};
use super::responses::response_event;
use super::state::Kind;
use super::ClientConnection;
use crate::header::Dialect;
use crate::header::{Command, Header};
use crate::messages::create::{CreateContext, OplockLevel};
use crate::messages::lease::{lease_state, LeaseContext, LeaseKey, LeaseV2};
use crate::messages::oplock_break::{
    break_structure_size, lease_break_flags, LeaseBreakAck, LeaseBreakNotification, OplockBreak,
};
use crate::messages::FileId;

/// What a CREATE asks the server to let this client cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caching {
    /// Nothing (RequestedOplockLevel NONE).
    #[default]
    None,
    /// An oplock: [`OplockLevel::II`], [`OplockLevel::EXCLUSIVE`] or [`OplockLevel::BATCH`].
    Oplock(OplockLevel),
    /// A lease with this key, asking for `state` (`messages::lease::lease_state` bits, e.g.
    /// R|W|H). Opens of one file by one client share a key; a key is never reused for
    /// another file.
    Lease {
        /// LeaseKey.
        key: LeaseKey,
        /// The LeaseState asked for.
        state: u32,
    },
}

impl Caching {
    /// RequestedOplockLevel of the CREATE.
    pub(super) fn requested_level(self) -> OplockLevel {
        match self {
            Caching::None => OplockLevel::NONE,
            Caching::Oplock(level) => level,
            Caching::Lease { .. } => OplockLevel::LEASE,
        }
    }

    /// The lease key asked for, if this is a lease.
    pub(super) fn lease_key(self) -> Option<LeaseKey> {
        match self {
            Caching::Lease { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The RqLs create context (MS-SMB2 3.2.4.3.8: version 2 on 3.x, version 1 on 2.1), or
    /// why a lease cannot be asked for on `dialect`.
    pub(super) fn contexts(self, dialect: Dialect) -> Result<Vec<CreateContext>, StateError> {
        let Caching::Lease { key, state } = self else {
            return Ok(Vec::new());
        };
        let v2 = match dialect {
            Dialect::SMB202 => return Err(StateError::NoLeasing),
            Dialect::SMB21 => None,
            _ => Some(LeaseV2::default()),
        };
        let lease = LeaseContext {
            key,
            state,
            flags: 0,
            duration: 0,
            v2,
        };
        Ok(vec![lease.to_context()])
    }
}

/// An oplock this client holds on one of its opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeldOplock {
    pub session_id: u64,
    pub tree_id: u32,
    pub level: OplockLevel,
    /// A break to this level was announced and not acknowledged yet.
    pub breaking_to: Option<OplockLevel>,
}

/// A lease this client holds (Connection.ClientGuid's LeaseTable entry, 3.2.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeldLease {
    pub session_id: u64,
    /// The tree of the latest open (acknowledgements go there).
    pub tree_id: u32,
    pub state: u32,
    pub epoch: u16,
    /// A break to this state was announced and not acknowledged yet.
    pub breaking_to: Option<u32>,
    /// The opens under this lease.
    pub opens: Vec<FileId>,
}

/// The opens that hold an oplock, by FileId (Session.OpenTable's oplock part), and the leases.
#[derive(Debug, Default)]
pub(super) struct CachingTable {
    pub oplocks: HashMap<FileId, HeldOplock>,
    pub leases: HashMap<LeaseKey, HeldLease>,
}

/// Rank of an oplock level, for "no higher than" checks.
fn rank(level: OplockLevel) -> u8 {
    match level {
        OplockLevel::NONE => 0,
        OplockLevel::II => 1,
        OplockLevel::EXCLUSIVE => 2,
        OplockLevel::BATCH => 3,
        _ => u8::MAX,
    }
}

impl ClientConnection {
    /// The oplock level this client holds on `file_id` (NONE when it holds none).
    pub fn oplock_level(&self, file_id: FileId) -> OplockLevel {
        self.caching
            .oplocks
            .get(&file_id)
            .map_or(OplockLevel::NONE, |h| h.level)
    }

    /// The lease state this client holds under `key` (NONE when it holds none).
    pub fn lease_state(&self, key: &LeaseKey) -> u32 {
        self.caching
            .leases
            .get(key)
            .map_or(lease_state::NONE, |l| l.state)
    }

    /// The epoch of the lease this client holds under `key` (version 2 leases; 0 for
    /// version 1), as the grant or the latest break notification gave it.
    pub fn lease_epoch(&self, key: &LeaseKey) -> Option<u16> {
        self.caching.leases.get(key).map(|l| l.epoch)
    }

    /// Queues a lease break acknowledgement (MS-SMB2 3.2.4.25) after a
    /// [`ClientEvent::LeaseBreak`] with `ack_required`: `state` is what this client keeps, at
    /// most the new state the notification gave. Signed when the session is; its response is
    /// checked like every response and reported as [`ResponseBody::LeaseBreak`].
    pub fn acknowledge_lease_break(
        &mut self,
        key: LeaseKey,
        state: u32,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let held = match self.caching.leases.get(&key) {
            Some(l) if l.session_id == sid => l,
            _ => return Err(StateError::NoBreakPending.into()),
        };
        let Some(offered) = held.breaking_to else {
            return Err(StateError::NoBreakPending.into());
        };
        if state & !offered != 0 {
            return Err(StateError::AckAboveBreak.into());
        }
        let tree_id = held.tree_id;
        let body = LeaseBreakAck {
            flags: 0,
            key,
            state,
            duration: 0,
        };
        let id = self.send(
            Command::OPLOCK_BREAK,
            sid,
            tree_id,
            1,
            Kind::LeaseAck { key, state },
            None,
            &body,
        )?;
        if let Some(l) = self.caching.leases.get_mut(&key) {
            l.breaking_to = None;
            l.state = state;
        }
        Ok(id)
    }

    /// Queues an oplock break acknowledgement (MS-SMB2 3.2.4.24) for an open whose break was
    /// announced by a [`ClientEvent::OplockBreak`] with `ack_required`. `level` is the level
    /// this client keeps: at most the one the notification offered. The request is signed
    /// when the session is; its response (checked like every response) comes back as a
    /// [`ClientEvent::Response`] with [`ResponseBody::OplockBreak`].
    pub fn acknowledge_oplock_break(
        &mut self,
        file_id: FileId,
        level: OplockLevel,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let held = match self.caching.oplocks.get(&file_id) {
            Some(h) if h.session_id == sid => *h,
            _ => return Err(StateError::NoBreakPending.into()),
        };
        let Some(offered) = held.breaking_to else {
            return Err(StateError::NoBreakPending.into());
        };
        if rank(level) > rank(offered) {
            return Err(StateError::AckAboveBreak.into());
        }
        let body = OplockBreak {
            oplock_level: level,
            file_id,
        };
        let id = self.send(
            Command::OPLOCK_BREAK,
            sid,
            held.tree_id,
            1,
            Kind::OplockAck { file_id, level },
            None,
            &body,
        )?;
        if let Some(h) = self.caching.oplocks.get_mut(&file_id) {
            h.breaking_to = None;
            h.level = level;
        }
        Ok(id)
    }

    /// A CREATE answered: remember an oplock the server granted.
    pub(super) fn on_create_granted(
        &mut self,
        session_id: u64,
        tree_id: u32,
        file_id: FileId,
        granted: OplockLevel,
    ) {
        if granted != OplockLevel::NONE && granted != OplockLevel::LEASE {
            self.caching.oplocks.insert(
                file_id,
                HeldOplock {
                    session_id,
                    tree_id,
                    level: granted,
                    breaking_to: None,
                },
            );
        }
    }

    /// A CREATE answered with a lease (OplockLevel LEASE and an RqLs context): it must be
    /// the key asked for (3.2.5.5). The open joins the lease.
    pub(super) fn on_lease_granted(
        &mut self,
        session_id: u64,
        tree_id: u32,
        file_id: FileId,
        asked: Option<LeaseKey>,
        granted: &LeaseContext,
    ) -> Result<(), ClientError> {
        if asked != Some(granted.key) {
            return Err(ProtocolError::LeaseKeyMismatch.into());
        }
        let epoch = granted.v2.map_or(0, |v| v.epoch);
        let l = self
            .caching
            .leases
            .entry(granted.key)
            .or_insert_with(|| HeldLease {
                session_id,
                tree_id,
                state: granted.state,
                epoch,
                breaking_to: None,
                opens: Vec::new(),
            });
        l.tree_id = tree_id;
        l.state = granted.state;
        l.epoch = epoch;
        l.opens.push(file_id);
        Ok(())
    }

    /// A CLOSE answered: the open and its oplock are gone, and a lease with no open left.
    pub(super) fn on_closed(&mut self, file_id: FileId) {
        self.caching.oplocks.remove(&file_id);
        self.caching.leases.retain(|_, l| {
            l.opens.retain(|f| *f != file_id);
            !l.opens.is_empty()
        });
    }

    /// A message with MessageId 0xFFFFFFFFFFFFFFFF. MS-SMB2 3.2.5.1.3: its signature is not
    /// checked (break notifications are never signed, 3.3.4.6), on a signed session too;
    /// it must be an OPLOCK_BREAK (3.2.5.19), the only unsolicited message a server sends.
    pub(super) fn on_break_notification(
        &mut self,
        message: &[u8],
        header: &Header,
    ) -> Result<(), ClientError> {
        if header.command != Command::OPLOCK_BREAK {
            return Err(ProtocolError::UnsolicitedNotBreak(header.command).into());
        }
        if break_structure_size(message)? == LeaseBreakNotification::STRUCTURE_SIZE {
            return self.on_lease_break(message);
        }
        let n = OplockBreak::read(message)?;
        // MS-SMB2 3.2.5.19.1: the open is looked up by FileId; a break for an open this client
        // does not hold (closed meanwhile, or never oplocked) has nothing to act on.
        let Some(held) = self.caching.oplocks.get_mut(&n.file_id) else {
            return Ok(());
        };
        let from = held.level;
        if rank(n.oplock_level) >= rank(from) {
            // Not a break (the level would not go down): nothing to do.
            return Ok(());
        }
        // 2.2.24.1: a break from level II goes to none and is not acknowledged.
        let ack_required = from == OplockLevel::EXCLUSIVE || from == OplockLevel::BATCH;
        if ack_required {
            held.breaking_to = Some(n.oplock_level);
        } else {
            held.level = n.oplock_level;
        }
        let tree_id = held.tree_id;
        if !ack_required && n.oplock_level == OplockLevel::NONE {
            self.caching.oplocks.remove(&n.file_id);
        }
        self.events.push_back(ClientEvent::OplockBreak {
            file_id: n.file_id,
            tree_id,
            from,
            to: n.oplock_level,
            ack_required,
        });
        Ok(())
    }

    /// MS-SMB2 3.2.5.19.2: a lease break names the lease by its key; one this client does
    /// not hold is ignored. Without ACK_REQUIRED the new state applies at once.
    fn on_lease_break(&mut self, message: &[u8]) -> Result<(), ClientError> {
        let n = LeaseBreakNotification::read(message)?;
        let Some(l) = self.caching.leases.get_mut(&n.key) else {
            return Ok(());
        };
        let from = l.state;
        let ack_required = n.flags & lease_break_flags::ACK_REQUIRED != 0;
        if ack_required {
            l.breaking_to = Some(n.new_state);
        } else {
            l.state = n.new_state;
        }
        l.epoch = n.new_epoch;
        self.events.push_back(ClientEvent::LeaseBreak {
            key: n.key,
            from,
            to: n.new_state,
            epoch: n.new_epoch,
            ack_required,
        });
        Ok(())
    }

    /// The response to a lease break acknowledgement (already signature-checked): the same
    /// key, and no more than was acknowledged.
    pub(super) fn on_lease_ack_response(
        &mut self,
        message: &[u8],
        header: &Header,
        id: u64,
        key: LeaseKey,
        acked: u32,
    ) -> Result<(), ClientError> {
        if header.status.is_error() {
            if let Some(l) = self.caching.leases.get_mut(&key) {
                l.state = lease_state::NONE;
            }
            self.events
                .push_back(response_event(id, header, ResponseBody::None));
            return Ok(());
        }
        let r = LeaseBreakAck::read(message)?;
        if r.key != key || r.state & !acked != 0 {
            return Err(ProtocolError::BreakResponseMismatch.into());
        }
        if let Some(l) = self.caching.leases.get_mut(&key) {
            l.state = r.state;
        }
        self.events.push_back(response_event(
            id,
            header,
            ResponseBody::LeaseBreak {
                key,
                state: r.state,
            },
        ));
        Ok(())
    }

    /// MS-SMB2 3.2.5.19.2 (the response to an acknowledgement, already signature-checked):
    /// it must name the acknowledged open; the level it grants is what this client now holds.
    pub(super) fn on_oplock_ack_response(
        &mut self,
        message: &[u8],
        header: &Header,
        id: u64,
        file_id: FileId,
        acked: OplockLevel,
    ) -> Result<(), ClientError> {
        if header.status.is_error() {
            // The server did not take the acknowledgement: keep nothing cached.
            self.caching.oplocks.remove(&file_id);
            self.events
                .push_back(response_event(id, header, ResponseBody::None));
            return Ok(());
        }
        let r = OplockBreak::read(message)?;
        if r.file_id != file_id || rank(r.oplock_level) > rank(acked) {
            return Err(ProtocolError::BreakResponseMismatch.into());
        }
        if r.oplock_level == OplockLevel::NONE {
            self.caching.oplocks.remove(&file_id);
        } else if let Some(h) = self.caching.oplocks.get_mut(&file_id) {
            h.level = r.oplock_level;
        }
        self.events.push_back(response_event(
            id,
            header,
            ResponseBody::OplockBreak {
                file_id,
                oplock_level: r.oplock_level,
            },
        ));
        Ok(())
    }
}
