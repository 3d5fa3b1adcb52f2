//! Requests that a server may complete asynchronously, and CANCEL (MS-SMB2 3.2.4.14,
//! 3.2.4.24): CHANGE_NOTIFY waits for a change; the server answers it first with an interim
//! STATUS_PENDING response (unsigned by design) carrying the AsyncId, then with the final
//! response (signed). CANCEL names the request by its MessageId and, once known, its AsyncId;
//! it is signed like any request of the session (its GMAC nonce carries the CANCEL bit), takes
//! no credit and no MessageId of its own, and has no response: the cancelled request
//! completes, usually with STATUS_CANCELLED.

use super::error::{ClientError, ProtocolError};
use super::state::Kind;
use super::ClientConnection;
use crate::header::{Command, Header};
use crate::messages::cancel::CancelRequest;
use crate::messages::change_notify::ChangeNotifyRequest;
use crate::messages::{build, FileId};

impl ClientConnection {
    /// Queues CHANGE_NOTIFY on an open directory: `filter` is a set of
    /// `messages::change_notify::completion_filter` bits, `watch_tree` watches the subtree.
    /// Its answer comes when something changes, or STATUS_CANCELLED after [`cancel`](Self::cancel).
    pub fn change_notify(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        filter: u32,
        watch_tree: bool,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let body = ChangeNotifyRequest {
            flags: if watch_tree {
                crate::messages::change_notify::change_notify_flags::WATCH_TREE
            } else {
                0
            },
            output_buffer_length: self.transact_size(),
            file_id,
            completion_filter: filter,
        };
        self.send(
            Command::CHANGE_NOTIFY,
            sid,
            tree_id,
            1,
            Kind::Plain,
            None,
            &body,
        )
    }

    /// The AsyncId of outstanding request `id`, once an interim response gave one.
    pub fn async_id(&self, id: u64) -> Option<u64> {
        self.outstanding.get(&id).and_then(|o| o.async_id)
    }

    /// Queues CANCEL of outstanding request `id` (a MessageId this connection returned).
    /// Returns false when nothing is outstanding under that id (it completed already).
    pub fn cancel(&mut self, id: u64) -> Result<bool, ClientError> {
        self.check_alive()?;
        let Some(out) = self.outstanding.get(&id) else {
            return Ok(false);
        };
        // MS-SMB2 3.2.4.24: the MessageId of the request; the AsyncId (async form) once an
        // interim response gave one; CreditCharge and CreditRequest 0.
        let mut header = Header::request(Command::CANCEL, id, out.session_id, out.tree_id);
        header.credit_charge = 0;
        header.credits = 0;
        header.async_id = out.async_id;
        let mut message = build(&header, &CancelRequest);
        if let Some(s) = self.phase.session() {
            if s.id == out.session_id && s.signing_required {
                if let Some(key) = &s.key {
                    key.sign(&mut message).map_err(ProtocolError::Sign)?;
                }
            }
        }
        self.transmit.push_back(message);
        Ok(true)
    }
}
