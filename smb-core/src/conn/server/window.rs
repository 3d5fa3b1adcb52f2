//! The CommandSequenceWindow (MS-SMB2 3.3.1.1, 3.3.5.2.3) and credit granting.
//!
//! Every request consumes the MessageIds `[MessageId, MessageId + CreditCharge)`; each id
//! may be used once and only if the server granted it. The set of used ids is bounded by
//! the window, which is bounded by `max_credits`.

use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub(crate) struct MessageWindow {
    /// Every id below `low` has been used.
    low: u64,
    /// Ids `< high` have been granted.
    high: u64,
    /// Used ids `>= low` (at most `high - low` of them).
    used: BTreeSet<u64>,
    max_credits: u16,
}

impl MessageWindow {
    /// A new connection may send MessageId 0 only (MS-SMB2 3.3.3).
    pub(crate) fn new(max_credits: u16) -> Self {
        MessageWindow {
            low: 0,
            high: 1,
            used: BTreeSet::new(),
            max_credits: max_credits.max(1),
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
        if self.used.range(message_id..end).next().is_some() {
            return false;
        }
        self.used.extend(message_id..end);
        while self.used.remove(&self.low) {
            self.low += 1;
        }
        true
    }

    /// Credits the client holds now (granted, not yet used).
    pub(crate) fn outstanding(&self) -> u64 {
        self.high - self.low - self.used.len() as u64
    }

    /// Grants up to `requested` new credits (at least one when the client would otherwise
    /// hold none, so it can never be stuck) without exceeding `max_credits` outstanding.
    /// Returns the number granted, for CreditResponse.
    pub(crate) fn grant(&mut self, requested: u16) -> u16 {
        let room = u64::from(self.max_credits).saturating_sub(self.outstanding());
        let mut n = u64::from(requested).min(room);
        if n == 0 && self.outstanding() == 0 {
            n = 1;
        }
        self.high = self.high.saturating_add(n);
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
}
