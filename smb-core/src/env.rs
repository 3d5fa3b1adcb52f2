//! The clock and the random source: the two inputs a sans-IO state machine cannot make
//! itself.
//!
//! The state machines never read the system clock or the OS random generator: they ask the
//! [`Clock`] and the [`Random`] of their configuration
//! ([`ClientConfig`](crate::ClientConfig), [`ServerConfig`](crate::ServerConfig)).
//! The configurations default to [`SystemClock`] and [`OsRandom`], the only code in this
//! crate that touches the operating system; tests plug in [`FixedClock`] and
//! [`SeededRandom`] and get byte-for-byte reproducible exchanges.
//!
//! ```
//! use smb_core::env::{Clock, FixedClock, Random, SeededRandom};
//!
//! let (a, b) = (SeededRandom::new(7), SeededRandom::new(7));
//! let (mut x, mut y) = ([0u8; 40], [0u8; 40]);
//! a.fill(&mut x).unwrap();
//! b.fill(&mut y).unwrap();
//! assert_eq!(x, y, "same seed, same bytes");
//! assert_eq!(FixedClock(134_083_000_000_000_000).now(), 134_083_000_000_000_000);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// Now, as a FILETIME (MS-DTYP 2.3.3: 100 ns intervals since 1601-01-01 UTC).
    fn now(&self) -> u64;
}

/// A source of random bytes (NTLM challenges, preauth salts, ClientGuid, SessionIds).
///
/// Shared between connections, hence `&self`: an implementation with state keeps it behind
/// an atomic or a lock.
pub trait Random: fmt::Debug + Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The random source could not deliver (the OS generator failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the random number generator failed")
    }
}

impl std::error::Error for RandomError {}

/// The system's wall clock (the default of every configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        crate::codec::filetime(std::time::SystemTime::now())
    }
}

/// The operating system's random generator, through `getrandom` (the default of every
/// configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::getrandom(buf).map_err(|_| RandomError)
    }
}

/// A clock that always says the same time (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

/// A deterministic random source for tests: SHA-256 of the seed and a counter.
///
/// Every call to [`fill`](Random::fill) takes the next counter value, so two sources made
/// from the same seed and called in the same order give the same bytes. Predictable by
/// design: never use it outside tests.
pub struct SeededRandom {
    seed: u64,
    calls: AtomicU64,
}

impl SeededRandom {
    /// A source whose output depends only on `seed` and the order of calls.
    pub fn new(seed: u64) -> Self {
        SeededRandom {
            seed,
            calls: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededRandom")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        for (block, chunk) in (0u64..).zip(buf.chunks_mut(32)) {
            let digest = Sha256::new()
                .chain_update(b"smb-core SeededRandom")
                .chain_update(self.seed.to_le_bytes())
                .chain_update(call.to_le_bytes())
                .chain_update(block.to_le_bytes())
                .finalize();
            chunk.copy_from_slice(&digest[..chunk.len()]);
        }
        Ok(())
    }
}

/// The system clock, shared (what configurations hold by default).
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The OS random generator, shared (what configurations hold by default).
pub fn os_random() -> Arc<dyn Random> {
    Arc::new(OsRandom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_depends_on_seed_and_call_order() {
        let a = SeededRandom::new(1);
        let mut first = [0u8; 70];
        let mut second = [0u8; 70];
        a.fill(&mut first).unwrap();
        a.fill(&mut second).unwrap();
        assert_ne!(first, second, "each call gives new bytes");
        assert_ne!(first[..32], first[32..64], "each block differs");
        let b = SeededRandom::new(1);
        let mut again = [0u8; 70];
        b.fill(&mut again).unwrap();
        assert_eq!(first, again);
        let c = SeededRandom::new(2);
        c.fill(&mut again).unwrap();
        assert_ne!(first, again);
    }

    #[test]
    fn system_clock_is_past_2020() {
        // 2020-01-01 as a FILETIME.
        assert!(SystemClock.now() > 132_223_104_000_000_000);
    }
}
