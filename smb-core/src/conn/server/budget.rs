//! Memory budgets: every request pays for the response it may produce *before* it runs.
//!
//! Two counters are charged together: one per connection and one shared by the whole
//! server ([`MemoryBudget`], held in [`ServerConfig`](super::ServerConfig)). A request
//! whose worst-case response (READ Length, QUERY_DIRECTORY / QUERY_INFO
//! OutputBufferLength, IOCTL MaxOutputResponse, a small constant otherwise) does not fit
//! in either is failed with STATUS_INSUFFICIENT_RESOURCES and never executed, as Windows
//! does when its non-paged pool runs short. The charge stays with the response until the
//! driver drops the [`Transmit`] that carries it, so bytes waiting for a slow reader count
//! too.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A byte budget shared by whoever holds it (one connection, or the whole server).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none in use.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The ceiling in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently charged.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Bytes charged against a connection's and the server's budgets; released on drop.
#[derive(Debug)]
pub(crate) struct Charge {
    connection: Arc<MemoryBudget>,
    server: Arc<MemoryBudget>,
    bytes: usize,
}

impl Charge {
    /// An empty charge against the two budgets.
    pub(crate) fn new(connection: &Arc<MemoryBudget>, server: &Arc<MemoryBudget>) -> Self {
        Charge {
            connection: connection.clone(),
            server: server.clone(),
            bytes: 0,
        }
    }

    /// Adds `n` bytes if both budgets have room; false (and nothing charged) otherwise.
    pub(crate) fn try_grow(&mut self, n: usize) -> bool {
        if !self.connection.try_take(n) {
            return false;
        }
        if !self.server.try_take(n) {
            self.connection.give_back(n);
            return false;
        }
        self.bytes += n;
        true
    }

    /// Adds `n` bytes whether or not they fit (memory already held that must be counted).
    pub(crate) fn force_grow(&mut self, n: usize) {
        self.connection.used.fetch_add(n, Ordering::AcqRel);
        self.server.used.fetch_add(n, Ordering::AcqRel);
        self.bytes += n;
    }

    /// Sets the charge to what is really held (`n` bytes), once the size is known.
    pub(crate) fn settle(&mut self, n: usize) {
        if n < self.bytes {
            let extra = self.bytes - n;
            self.connection.give_back(extra);
            self.server.give_back(extra);
            self.bytes = n;
        } else if n > self.bytes {
            self.force_grow(n - self.bytes);
        }
    }

    /// Bytes charged.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.connection.give_back(self.bytes);
        self.server.give_back(self.bytes);
    }
}

/// One message or compound chain to send (without the 4-byte transport prefix). It holds
/// its share of the memory budgets until it is dropped: drop it once it is written.
#[derive(Debug)]
pub struct Transmit {
    buf: Vec<u8>,
    charge: Option<Charge>,
}

impl Transmit {
    pub(crate) fn new(buf: Vec<u8>, charge: Option<Charge>) -> Self {
        Transmit { buf, charge }
    }

    /// The bytes, giving their budget back now.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.charge = None;
        std::mem::take(&mut self.buf)
    }

    /// Bytes still charged to the budgets for this message.
    pub fn charged(&self) -> usize {
        self.charge.as_ref().map_or(0, Charge::bytes)
    }
}

impl Deref for Transmit {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for Transmit {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl AsRef<[u8]> for Transmit {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_both_budgets_and_releases_on_drop() {
        let conn = MemoryBudget::new(100);
        let server = MemoryBudget::new(150);
        let other = MemoryBudget::new(100);
        let mut a = Charge::new(&conn, &server);
        assert!(a.try_grow(80));
        assert!(!a.try_grow(30), "connection budget exceeded");
        let mut b = Charge::new(&other, &server);
        assert!(b.try_grow(70));
        assert!(!b.try_grow(1), "server budget exceeded");
        assert_eq!((conn.in_use(), server.in_use()), (80, 150));
        a.settle(10);
        assert_eq!((conn.in_use(), server.in_use()), (10, 80));
        drop(a);
        drop(b);
        assert_eq!((conn.in_use(), server.in_use(), other.in_use()), (0, 0, 0));
    }
}
