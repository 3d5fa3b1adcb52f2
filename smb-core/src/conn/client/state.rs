//! The connection's phase: one enum variant per stage, each holding only what is valid in it.
//!
//! ```text
//! Idle --negotiate()--> Negotiating --response--> Negotiated --session_setup()--> Authenticating
//!                                                     ^  ^                             |
//!                                                     |  +------ error status ---------+
//!                                                     +-- LOGOFF -- Established <-- success
//! any phase --protocol violation, bad signature, failed validation--> Failed (for good)
//! ```
//! Keys live only in `Established`; `Failed` keeps the error and what NEGOTIATE settled (for
//! reports), and drops everything else, keys included.

use super::auth_glue::Authenticator;
use super::error::ClientError;
use super::events::{ClientEvent, NegotiateInfo};
use crate::header::Command;
use crate::messages::create::OplockLevel;
use crate::messages::info::FileInfoClass;
use crate::messages::lease::LeaseKey;
use crate::messages::FileId;
use crate::signing::{PreauthHash, SigningKey};

/// What this client put in its NEGOTIATE, repeated in FSCTL_VALIDATE_NEGOTIATE_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Offer {
    pub capabilities: u32,
    pub guid: [u8; 16],
}

/// What a negotiated connection knows, whatever its session is doing.
#[derive(Debug)]
pub(super) struct Negotiated {
    pub info: NegotiateInfo,
    pub offer: Offer,
    /// The server's NEGOTIATE security buffer (the SPNEGO hint).
    pub gss_hint: Vec<u8>,
    /// Connection.PreauthIntegrityHashValue after NEGOTIATE (3.1.1 only).
    pub preauth: Option<PreauthHash>,
}

/// The SESSION_SETUP exchange in progress.
#[derive(Debug)]
pub(super) struct Auth {
    pub mechanism: Box<dyn Authenticator>,
    /// The id returned to the caller (later legs have other MessageIds).
    pub id: u64,
    /// Session.PreauthIntegrityHashValue (3.1.1 only).
    pub preauth: Option<PreauthHash>,
    /// 0 until the first response assigns one.
    pub session_id: u64,
}

/// The established session.
#[derive(Debug)]
pub(super) struct Session {
    pub id: u64,
    /// Session.SigningRequired (MS-SMB2 3.2.5.3.1).
    pub signing_required: bool,
    /// None for guest and anonymous sessions.
    pub key: Option<SigningKey>,
    pub guest: bool,
    pub anonymous: bool,
    /// FSCTL_VALIDATE_NEGOTIATE_INFO succeeded (3.0/3.0.2: after the first TREE_CONNECT).
    pub negotiate_validated: bool,
}

impl Session {
    /// Whether requests and responses of this session are signed.
    pub fn signed(&self) -> bool {
        self.signing_required && self.key.is_some()
    }
}

/// The connection's progress.
#[derive(Debug)]
pub(super) enum Phase {
    /// Nothing sent yet.
    Idle,
    /// NEGOTIATE sent; `preauth` already covers it (3.1.1).
    Negotiating {
        offer: Offer,
        preauth: Option<PreauthHash>,
    },
    /// NEGOTIATE done, no session.
    Negotiated(Box<Negotiated>),
    /// A SESSION_SETUP exchange is under way.
    Authenticating(Box<Negotiated>, Box<Auth>),
    /// A session is up.
    Established(Box<Negotiated>, Box<Session>),
    /// Failed for good.
    Failed {
        error: ClientError,
        negotiated: Option<NegotiateInfo>,
    },
}

impl Phase {
    /// What NEGOTIATE settled, in every phase after it.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        match self {
            Phase::Negotiated(n) | Phase::Authenticating(n, _) | Phase::Established(n, _) => {
                Some(n)
            }
            _ => None,
        }
    }

    /// The established session.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Phase::Established(_, s) => Some(s),
            _ => None,
        }
    }
}

/// Everything a response needs from its request.
#[derive(Debug)]
pub(super) struct Outstanding {
    /// The id the caller was given (differs from the MessageId for later SESSION_SETUP legs).
    pub id: u64,
    pub command: Command,
    pub session_id: u64,
    pub tree_id: u32,
    /// The AsyncId an interim response gave (MS-SMB2 3.2.5.1.5), for CANCEL.
    pub async_id: Option<u64>,
    pub kind: Kind,
}

/// Per-request handling beyond "decode and report".
#[derive(Debug)]
pub(super) enum Kind {
    Plain,
    /// CREATE on this tree (a granted oplock or lease is remembered).
    Create {
        tree_id: u32,
        /// The lease key asked for, if a lease was.
        lease_key: Option<LeaseKey>,
    },
    /// CLOSE of this open (its oplock is forgotten).
    Close {
        file_id: FileId,
    },
    /// An oplock break acknowledgement.
    OplockAck {
        file_id: FileId,
        level: OplockLevel,
    },
    /// A lease break acknowledgement.
    LeaseAck {
        key: LeaseKey,
        state: u32,
    },
    QueryDirectory(FileInfoClass),
    Negotiate,
    SessionSetup,
    TreeConnect,
    /// The validation IOCTL, holding the TREE_CONNECT answer until it checks out.
    ValidateNegotiate {
        tree_event: Box<ClientEvent>,
    },
}
