//! The CommandSequenceWindow (MS-SMB2 3.3.1.1, 3.3.5.2.3) and credit granting.
//!
//! Every request consumes the MessageIds `[MessageId, MessageId + CreditCharge)`; each id
//! may be used once and only if the server granted it. The window is `[low, high)`: every
//! id below `low` has been used, every id below `high` has been granted.
//!
//! Memory is bounded by the credits granted, not by what the client sends: the span
//! `high - low` never exceeds `max_credits` (a grant is cut so that it cannot), and the used
//! ids inside it are one bit each in a fixed ring of `max_credits` bits. A client that
//! leaves a hole (never uses some granted id) pins `low`; the ids it uses above the hole
//! fill the span, and once the span is full nothing more is granted until the hole is used.
//! Such a client ends up holding only the hole's credits: it can go on only by using them,
//! and anything else is outside the window and ends the connection. This is the shape of
//! Samba's sequence bitmap (`smb2 max credits` bounds the range, not only the credits).

#[derive(Debug, Clone)]
pub(crate) struct MessageWindow {
    /// Every id below `low` has been used.
    low: u64,
    /// Ids `< high` have been granted.
    high: u64,
    /// Used ids in `[low, high)`: bit `id % ring_bits`. Since `high - low <= ring_bits`, no
    /// two ids of the window share a bit.
    used: Box<[u64]>,
    /// How many bits of `used` are set.
    used_count: u64,
    max_credits: u16,
}

impl MessageWindow {
    /// A new connection may send MessageId 0 only (MS-SMB2 3.3.3).
    pub(crate) fn new(max_credits: u16) -> Self {
        let max_credits = max_credits.max(1);
        MessageWindow {
            low: 0,
            high: 1,
            used: vec![0u64; usize::from(max_credits).div_ceil(64)].into_boxed_slice(),
            used_count: 0,
            max_credits,
        }
    }

    fn ring_bits(&self) -> u64 {
        self.used.len() as u64 * 64
    }

    fn slot(&self, id: u64) -> (usize, u64) {
        let bit = id % self.ring_bits();
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    fn is_used(&self, id: u64) -> bool {
        let (w, m) = self.slot(id);
        self.used[w] & m != 0
    }

    fn set(&mut self, id: u64, on: bool) {
        let (w, m) = self.slot(id);
        if on {
            self.used[w] |= m;
        } else {
            self.used[w] &= !m;
        }
    }

    /// MS-SMB2 3.3.5.2.3: every id the request consumes must be in the window and unused.
    /// On success the ids are consumed; on failure nothing changes.
    pub(crate) fn consume(&mut self, message_id: u64, charge: u16) -> bool {
        let n = u64::from(charge.max(1));
        let Some(end) = message_id.checked_add(n) else {
            return false;
        };
        if message_id < self.low || end > self.high {
            return false;
        }
        if (message_id..end).any(|id| self.is_used(id)) {
            return false;
        }
        for id in message_id..end {
            self.set(id, true);
        }
        self.used_count += n;
        // Slide past the used prefix, freeing its bits for ids granted later.
        while self.low < self.high && self.is_used(self.low) {
            self.set(self.low, false);
            self.used_count -= 1;
            self.low += 1;
        }
        true
    }

    /// Credits the client holds now (granted, not yet used).
    pub(crate) fn outstanding(&self) -> u64 {
        self.high - self.low - self.used_count
    }

    /// Ids the window spans (granted ids at or above the oldest unused one).
    #[cfg(test)]
    pub(crate) fn span(&self) -> u64 {
        self.high - self.low
    }

    /// Grants up to `requested` new credits without letting the window span more than
    /// `max_credits` ids (which also bounds the credits outstanding). At least one is
    /// granted when the client would otherwise hold none, so it can never be stuck; that
    /// case has an empty window, so the bound holds. Returns the number granted, for
    /// CreditResponse.
    pub(crate) fn grant(&mut self, requested: u16) -> u16 {
        let room = u64::from(self.max_credits).saturating_sub(self.high - self.low);
        let mut n = u64::from(requested).min(room);
        if n == 0 && self.outstanding() == 0 {
            n = 1;
        }
        self.high = self.high.saturating_add(n);
        debug_assert!(self.high - self.low <= self.ring_bits());
        n as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_used_once_and_only_when_granted() {
        let mut w = MessageWindow::new(10);
        assert!(!w.consume(1, 1), "not granted yet");
        assert!(w.consume(0, 1));
        assert!(!w.consume(0, 1), "replay");
        assert_eq!(w.grant(5), 5);
        assert!(w.consume(3, 2), "out of order is fine inside the window");
        assert!(!w.consume(4, 1), "4 was consumed by the charge of 2");
        assert!(!w.consume(5, 2), "past the window");
        assert!(w.consume(1, 2));
        assert!(w.consume(5, 1));
        assert_eq!(w.outstanding(), 0);
        assert!(!w.consume(u64::MAX, 1));
    }

    #[test]
    fn grants_are_bounded() {
        let mut w = MessageWindow::new(4);
        assert_eq!(w.grant(100), 3);
        assert_eq!(w.grant(100), 0);
        for id in 0..4 {
            assert!(w.consume(id, 1));
        }
        assert_eq!(w.grant(0), 1, "never leave the client without a credit");
    }

    /// Issue 12, attack 1: a hole at id 1, then requests of charge 511 far above it. The
    /// window stops granting once the span is full; nothing above it is ever accepted.
    #[test]
    fn a_hole_stops_the_grants() {
        let mut w = MessageWindow::new(512);
        assert!(w.consume(0, 1));
        assert_eq!(w.grant(512), 512); // ids 1..=512
        assert!(w.consume(2, 511)); // leaves id 1 unused
        assert_eq!(w.outstanding(), 1);
        assert_eq!(w.grant(511), 0, "the span is full: the hole pins it");
        assert!(!w.consume(513, 1), "not granted");
        assert_eq!(w.span(), 512);
        // Using the hole frees the whole span at once, and grants resume.
        assert!(w.consume(1, 1));
        assert_eq!(w.outstanding(), 0);
        assert_eq!(w.span(), 0);
        assert_eq!(w.grant(511), 511);
        assert!(w.consume(513, 511));
    }

    /// The ring never confuses two ids of the window, over many laps and out of order.
    #[test]
    fn the_ring_wraps_without_aliasing() {
        let mut w = MessageWindow::new(100); // ring of 128 bits
        assert!(w.consume(0, 1));
        let mut next = 1u64;
        for lap in 0..1000u64 {
            let g = u64::from(w.grant(100));
            assert!(w.span() <= 100);
            // Use the newly granted ids in reverse, replaying each once.
            let ids: Vec<u64> = (next..next + g).collect();
            for &id in ids.iter().rev() {
                assert!(w.consume(id, 1), "lap {lap} id {id}");
                assert!(!w.consume(id, 1), "replay of {id}");
            }
            assert!(!w.consume(next + g, 1), "beyond the grant");
            next += g;
        }
        assert_eq!(w.outstanding(), 0);
    }
}
