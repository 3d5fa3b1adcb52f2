//! CHANGE_NOTIFY (MS-SMB2 3.3.5.19) and the asynchronous machinery it needs: the interim
//! STATUS_PENDING response with an AsyncId (3.3.4.2), CANCEL (3.3.5.16), completion when the
//! share changes (through this connection or any other one), and teardown on CLOSE,
//! TREE_DISCONNECT and LOGOFF with STATUS_NOTIFY_CLEANUP.
//!
//! Signing (3.3.4.1.1): the interim response is never signed; the final response (changes,
//! STATUS_CANCELLED or STATUS_NOTIFY_CLEANUP) is signed with the key the request was verified
//! with. A CANCEL is verified like any request (its GMAC nonce carries the CANCEL bit) and is
//! ignored when it does not verify.
//!
//! Changes made by one connection reach the others through a [`ChangeHub`] shared in the
//! [`super::ServerConfig`]: it queues them (bounded) for every connection that watches, and
//! calls that connection's waker; the driver then calls
//! [`super::ServerConnection::handle_wakeup`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::codec::{utf16le, Writer};
use crate::header::{Command, Header, NtStatus};
use crate::messages::change_notify::{
    change_notify_flags, completion_filter, ChangeNotifyRequest, ChangeNotifyResponse,
};
use crate::messages::error::ErrorResponse;
use crate::messages::{build, EncodeBody};
use crate::signing::SigningKey;

/// STATUS_NOTIFY_CLEANUP: the handle a CHANGE_NOTIFY waited on was closed.
pub const NOTIFY_CLEANUP: NtStatus = NtStatus(0x0000_010B);

/// FILE_NOTIFY_INFORMATION actions (MS-FSCC 2.7.1).
pub mod action {
    pub const ADDED: u32 = 1;
    pub const REMOVED: u32 = 2;
    pub const MODIFIED: u32 = 3;
    pub const RENAMED_OLD_NAME: u32 = 4;
    pub const RENAMED_NEW_NAME: u32 = 5;
}

/// Changes kept per watch (or per connection in the hub) before they collapse into
/// STATUS_NOTIFY_ENUM_DIR ("too many changes, enumerate the directory"), as Windows does
/// when its notify buffer overflows.
const MAX_QUEUED: usize = 256;
/// Requests one connection may leave pending.
const MAX_PENDING: usize = 64;

/// Called when changes from another connection are waiting: the driver then calls
/// `handle_wakeup` on that connection.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// One change in a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The share's backend, by address: every connection holds the same `Arc`.
    pub(crate) share: usize,
    /// Share-relative path of what changed.
    pub(crate) path: Vec<String>,
    pub(crate) action: u32,
    /// The CompletionFilter bits this change matches.
    pub(crate) filter: u32,
}

impl Change {
    pub(crate) fn new(share: usize, path: &[String], action: u32, is_dir: bool) -> Change {
        let filter = match action {
            action::MODIFIED => {
                completion_filter::SIZE
                    | completion_filter::LAST_WRITE
                    | completion_filter::ATTRIBUTES
            }
            _ if is_dir => completion_filter::DIR_NAME,
            _ => completion_filter::FILE_NAME,
        };
        Change {
            share,
            path: path.to_vec(),
            action,
            filter,
        }
    }
}

/// Changes crossing connections: one queue per watching connection.
#[derive(Default)]
pub struct ChangeHub {
    inner: Mutex<HubInner>,
}

#[derive(Default)]
struct HubInner {
    next: u64,
    subs: HashMap<u64, Sub>,
}

struct Sub {
    queue: VecDeque<Change>,
    overflow: bool,
    waker: Option<Waker>,
}

impl fmt::Debug for ChangeHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeHub")
            .field("watching_connections", &self.lock().subs.len())
            .finish()
    }
}

impl ChangeHub {
    fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscribe(&self, waker: Option<Waker>) -> u64 {
        let mut h = self.lock();
        h.next += 1;
        let id = h.next;
        h.subs.insert(
            id,
            Sub {
                queue: VecDeque::new(),
                overflow: false,
                waker,
            },
        );
        id
    }

    fn set_waker(&self, id: u64, waker: Waker) {
        if let Some(s) = self.lock().subs.get_mut(&id) {
            s.waker = Some(waker);
        }
    }

    fn unsubscribe(&self, id: u64) {
        self.lock().subs.remove(&id);
    }

    /// Queues `changes` for every watching connection but `origin`, then wakes them (outside
    /// the lock, so a waker may take it again).
    fn publish(&self, origin: Option<u64>, changes: &[Change]) {
        let mut wake = Vec::new();
        {
            let mut h = self.lock();
            for (id, sub) in h.subs.iter_mut() {
                if Some(*id) == origin {
                    continue;
                }
                for c in changes {
                    if sub.queue.len() >= MAX_QUEUED {
                        sub.overflow = true;
                        break;
                    }
                    sub.queue.push_back(c.clone());
                }
                if let Some(w) = &sub.waker {
                    wake.push(w.clone());
                }
            }
        }
        for w in wake {
            w();
        }
    }

    /// Takes what is queued for `id`: the changes, and whether some were dropped.
    fn take(&self, id: u64) -> (Vec<Change>, bool) {
        let mut h = self.lock();
        match h.subs.get_mut(&id) {
            Some(s) => (s.queue.drain(..).collect(), std::mem::take(&mut s.overflow)),
            None => (Vec::new(), false),
        }
    }
}

/// A CHANGE_NOTIFY waiting for a change.
#[derive(Debug)]
struct Pending {
    async_id: u64,
    message_id: u64,
    session_id: u64,
    max_len: u32,
    credit_charge: u16,
    /// The key the request was verified with; the final response is signed with it.
    key: Option<SigningKey>,
}

/// A directory open that has seen a CHANGE_NOTIFY: from then on its changes are kept until
/// a request takes them (MS-SMB2 3.3.5.19 leaves buffering to the object store; Windows
/// and Samba buffer).
#[derive(Debug)]
struct Watch {
    share: usize,
    dir: Vec<String>,
    recursive: bool,
    filter: u32,
    queued: Vec<(u32, String)>,
    overflow: bool,
    pending: VecDeque<Pending>,
}

impl Watch {
    fn matches(&self, c: &Change) -> Option<String> {
        if c.share != self.share || c.filter & self.filter == 0 {
            return None;
        }
        let (_, parent) = c.path.split_last()?;
        let inside = if self.recursive {
            parent.starts_with(&self.dir)
        } else {
            parent == self.dir.as_slice()
        };
        inside.then(|| c.path[self.dir.len()..].join("\\"))
    }

    fn push(&mut self, action: u32, name: String) {
        if self.queued.len() >= MAX_QUEUED {
            self.overflow = true;
        } else {
            self.queued.push((action, name));
        }
    }
}

/// What a CHANGE_NOTIFY request turned into.
pub(crate) enum Registered {
    /// Changes were already buffered: answer now.
    Now(NtStatus, ChangeNotifyResponse),
    /// Pending: answer with an interim response carrying this AsyncId.
    Pending(u64),
}

/// One connection's watches and pending CHANGE_NOTIFY requests.
pub(crate) struct Notifier {
    hub: Option<Arc<ChangeHub>>,
    sub: Option<u64>,
    waker: Option<Waker>,
    next_async: u64,
    /// By the open's volatile id.
    watches: HashMap<u64, Watch>,
    /// Changes this connection made, dispatched after the request that made them.
    local: Vec<Change>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("sub", &self.sub)
            .field("watches", &self.watches)
            .field("local", &self.local)
            .finish()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let (Some(hub), Some(id)) = (&self.hub, self.sub) {
            hub.unsubscribe(id);
        }
    }
}

impl Notifier {
    pub(crate) fn new(hub: Arc<ChangeHub>) -> Notifier {
        Notifier {
            hub: Some(hub),
            sub: None,
            waker: None,
            next_async: 1,
            watches: HashMap::new(),
            local: Vec::new(),
        }
    }

    pub(crate) fn set_waker(&mut self, waker: Waker) {
        if let (Some(hub), Some(id)) = (&self.hub, self.sub) {
            hub.set_waker(id, waker.clone());
        }
        self.waker = Some(waker);
    }

    fn pending_count(&self) -> usize {
        self.watches.values().map(|w| w.pending.len()).sum()
    }

    /// Registers a CHANGE_NOTIFY on the directory open `open` (share `share`, path `dir`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        &mut self,
        open: u64,
        share: usize,
        dir: &[String],
        req: &ChangeNotifyRequest,
        hdr: &Header,
        session_id: u64,
    ) -> Result<Registered, NtStatus> {
        if self.sub.is_none() {
            if let Some(hub) = &self.hub {
                self.sub = Some(hub.subscribe(self.waker.clone()));
            }
        }
        let watch = self.watches.entry(open).or_insert_with(|| Watch {
            share,
            dir: dir.to_vec(),
            recursive: false,
            filter: 0,
            queued: Vec::new(),
            overflow: false,
            pending: VecDeque::new(),
        });
        watch.recursive = req.flags & change_notify_flags::WATCH_TREE != 0;
        watch.filter = req.completion_filter;
        if watch.overflow || !watch.queued.is_empty() {
            let queued = std::mem::take(&mut watch.queued);
            let overflow = std::mem::take(&mut watch.overflow);
            let (status, body) = encode_changes(&queued, overflow, req.output_buffer_length);
            return Ok(Registered::Now(status, body));
        }
        if self.pending_count() >= MAX_PENDING {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        let async_id = self.alloc_async_id();
        if let Some(w) = self.watches.get_mut(&open) {
            w.pending.push_back(Pending {
                async_id,
                message_id: hdr.message_id,
                session_id,
                max_len: req.output_buffer_length,
                credit_charge: hdr.credit_charge,
                key: None,
            });
        }
        Ok(Registered::Pending(async_id))
    }

    /// A fresh AsyncId for any asynchronous request of this connection.
    pub(crate) fn alloc_async_id(&mut self) -> u64 {
        let id = self.next_async;
        self.next_async += 1;
        id
    }

    /// Records the key the pending request `async_id` was verified with.
    pub(crate) fn set_key(&mut self, async_id: u64, key: Option<SigningKey>) {
        for w in self.watches.values_mut() {
            for p in w.pending.iter_mut() {
                if p.async_id == async_id {
                    p.key = key;
                    return;
                }
            }
        }
    }

    /// Drops the pending request `async_id` without answering it.
    pub(crate) fn forget(&mut self, async_id: u64) {
        for w in self.watches.values_mut() {
            w.pending.retain(|p| p.async_id != async_id);
        }
    }

    /// A change this connection made.
    pub(crate) fn changed(&mut self, change: Change) {
        self.local.push(change);
    }

    /// MS-SMB2 3.3.5.16: the pending request named by AsyncId (async CANCEL) or MessageId
    /// (sync CANCEL) on `session_id` completes with STATUS_CANCELLED.
    pub(crate) fn cancel(&mut self, hdr: &Header, session_id: u64) -> Option<Vec<u8>> {
        for w in self.watches.values_mut() {
            let found = w.pending.iter().position(|p| {
                p.session_id == session_id
                    && match hdr.async_id {
                        Some(id) => p.async_id == id,
                        None => p.message_id == hdr.message_id,
                    }
            });
            if let Some(i) = found {
                let p = w.pending.remove(i)?;
                return Some(final_response(
                    &p,
                    NtStatus::CANCELLED,
                    &ErrorResponse::default(),
                ));
            }
        }
        None
    }

    /// The open was closed (CLOSE, TREE_DISCONNECT, LOGOFF): its requests complete with
    /// STATUS_NOTIFY_CLEANUP.
    pub(crate) fn closed(&mut self, open: u64) -> Vec<Vec<u8>> {
        let Some(w) = self.watches.remove(&open) else {
            return Vec::new();
        };
        w.pending
            .iter()
            .map(|p| final_response(p, NOTIFY_CLEANUP, &ChangeNotifyResponse::default()))
            .collect()
    }

    /// Sends this connection's changes to the other connections, applies them and what the
    /// others sent to this connection's watches, and returns the completed responses.
    pub(crate) fn dispatch(&mut self) -> Vec<Vec<u8>> {
        let local = std::mem::take(&mut self.local);
        if !local.is_empty() {
            if let Some(hub) = &self.hub {
                hub.publish(self.sub, &local);
            }
        }
        let (remote, overflow) = match (&self.hub, self.sub) {
            (Some(hub), Some(id)) => hub.take(id),
            _ => (Vec::new(), false),
        };
        if self.watches.is_empty() {
            return Vec::new();
        }
        for w in self.watches.values_mut() {
            if overflow {
                w.overflow = true;
            }
            for c in local.iter().chain(remote.iter()) {
                if let Some(name) = w.matches(c) {
                    w.push(c.action, name);
                }
            }
        }
        let mut out = Vec::new();
        for w in self.watches.values_mut() {
            if w.queued.is_empty() && !w.overflow {
                continue;
            }
            let Some(p) = w.pending.pop_front() else {
                continue;
            };
            let queued = std::mem::take(&mut w.queued);
            let overflow = std::mem::take(&mut w.overflow);
            let (status, body) = encode_changes(&queued, overflow, p.max_len);
            out.push(final_response(&p, status, &body));
        }
        out
    }
}

/// FILE_NOTIFY_INFORMATION entries (MS-FSCC 2.7.1), each 4-byte aligned. When they do not
/// fit OutputBufferLength, or changes were dropped, STATUS_NOTIFY_ENUM_DIR with no entries:
/// the client re-reads the directory (MS-SMB2 3.3.5.19, as Windows does).
fn encode_changes(
    changes: &[(u32, String)],
    overflow: bool,
    max_len: u32,
) -> (NtStatus, ChangeNotifyResponse) {
    let mut buf: Vec<u8> = Vec::new();
    let mut last = None;
    for (action, name) in changes {
        buf.pad_to(4);
        let at = buf.len();
        if let Some(prev) = last {
            let next = (at - prev) as u32;
            buf[prev..prev + 4].copy_from_slice(&next.to_le_bytes());
        }
        let name = utf16le(name);
        buf.put_u32(0);
        buf.put_u32(*action);
        buf.put_u32(name.len() as u32);
        buf.put_bytes(&name);
        last = Some(at);
    }
    if overflow || buf.len() > max_len as usize {
        return (NtStatus::NOTIFY_ENUM_DIR, ChangeNotifyResponse::default());
    }
    (NtStatus::SUCCESS, ChangeNotifyResponse { buffer: buf })
}

/// The final response of a pending request: async header, no credits (they went with the
/// interim response), signed when the request was.
fn final_response<B: EncodeBody>(p: &Pending, status: NtStatus, body: &B) -> Vec<u8> {
    let mut hdr =
        Header::request(Command::CHANGE_NOTIFY, p.message_id, p.session_id, 0).response(status);
    hdr.credit_charge = p.credit_charge;
    hdr.credits = 0;
    hdr.async_id = Some(p.async_id);
    let mut msg = if status.is_error() && status != NtStatus::NOTIFY_ENUM_DIR {
        build(&hdr, &ErrorResponse::default())
    } else {
        build(&hdr, body)
    };
    if let Some(key) = &p.key {
        // Signing a message we just built cannot fail; an unsigned answer is the fallback.
        let _ = key.sign(&mut msg);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_chained_and_aligned() {
        let (status, body) = encode_changes(
            &[(action::ADDED, "a".into()), (action::REMOVED, "bcd".into())],
            false,
            1024,
        );
        assert_eq!(status, NtStatus::SUCCESS);
        let b = &body.buffer;
        assert_eq!(u32::from_le_bytes(b[0..4].try_into().unwrap()), 16);
        assert_eq!(
            u32::from_le_bytes(b[4..8].try_into().unwrap()),
            action::ADDED
        );
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 0);
        assert_eq!(b.len(), 16 + 12 + 6);
        let (status, body) = encode_changes(&[(action::ADDED, "a".into())], false, 8);
        assert_eq!(status, NtStatus::NOTIFY_ENUM_DIR);
        assert!(body.buffer.is_empty());
    }

    #[test]
    fn watches_match_their_directory_or_tree() {
        let p = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        let mut w = Watch {
            share: 1,
            dir: p("d"),
            recursive: false,
            filter: completion_filter::FILE_NAME,
            queued: vec![],
            overflow: false,
            pending: VecDeque::new(),
        };
        let c = |path: &str, is_dir| Change::new(1, &p(path), action::ADDED, is_dir);
        assert_eq!(w.matches(&c("d/x", false)), Some("x".into()));
        assert_eq!(w.matches(&c("d/s/x", false)), None);
        assert_eq!(
            w.matches(&c("d/s", true)),
            None,
            "DIR_NAME not in the filter"
        );
        assert_eq!(
            w.matches(&Change::new(2, &p("d/x"), action::ADDED, false)),
            None
        );
        w.recursive = true;
        assert_eq!(w.matches(&c("d/s/x", false)), Some("s\\x".into()));
        assert_eq!(w.matches(&c("e/x", false)), None);
    }
}
