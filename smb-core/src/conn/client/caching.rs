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
//! ```

use std::collections::HashMap;

use super::error::{ClientError, ProtocolError, StateError};
use super::events::{ClientEvent, ResponseBody};
use super::responses::response_event;
use super::state::Kind;
use super::ClientConnection;
use crate::header::{Command, Header};
use crate::messages::create::OplockLevel;
use crate::messages::oplock_break::OplockBreak;
use crate::messages::FileId;

/// What a CREATE asks the server to let this client cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caching {
    /// Nothing (RequestedOplockLevel NONE).
    #[default]
    None,
    /// An oplock: [`OplockLevel::II`], [`OplockLevel::EXCLUSIVE`] or [`OplockLevel::BATCH`].
    Oplock(OplockLevel),
}

impl Caching {
    /// RequestedOplockLevel of the CREATE.
    pub(super) fn requested_level(self) -> OplockLevel {
        match self {
            Caching::None => OplockLevel::NONE,
            Caching::Oplock(level) => level,
        }
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

/// The opens that hold an oplock, by FileId (Session.OpenTable's oplock part).
#[derive(Debug, Default)]
pub(super) struct CachingTable {
    pub oplocks: HashMap<FileId, HeldOplock>,
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

    /// A CLOSE answered: the open and its oplock are gone.
    pub(super) fn on_closed(&mut self, file_id: FileId) {
        self.caching.oplocks.remove(&file_id);
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
