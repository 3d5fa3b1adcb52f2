//! The SMB 3.1.1 preauth integrity hash (MS-SMB2 3.2.5.2 / 3.3.5.4): SHA-512 chained over the
//! NEGOTIATE request and response and every SESSION_SETUP request and non-final response.

use sha2::{Digest, Sha512};

/// H(0) = 64 zero bytes; H(n) = SHA-512(H(n-1) || message n).
#[derive(Clone, PartialEq, Eq)]
pub struct PreauthHash {
    value: [u8; 64],
}

impl std::fmt::Debug for PreauthHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreauthHash(")?;
        for b in &self.value[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl Default for PreauthHash {
    fn default() -> Self {
        Self::new()
    }
}

impl PreauthHash {
    /// The initial value: 64 zero bytes.
    pub fn new() -> Self {
        PreauthHash { value: [0; 64] }
    }

    /// Chains one whole SMB2 message (header included, no transport prefix) into the hash.
    pub fn update(&mut self, message: &[u8]) {
        let mut h = Sha512::new();
        h.update(self.value);
        h.update(message);
        self.value.copy_from_slice(&h.finalize());
    }

    /// The current hash value (Session.PreauthIntegrityHashValue once the session is set up).
    pub fn value(&self) -> [u8; 64] {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_sha512() {
        let mut p = PreauthHash::new();
        p.update(b"abc");
        let mut first = [0u8; 64];
        first.copy_from_slice(
            &Sha512::new()
                .chain_update([0u8; 64])
                .chain_update(b"abc")
                .finalize(),
        );
        assert_eq!(p.value(), first);
        p.update(b"de");
        let second = Sha512::new()
            .chain_update(first)
            .chain_update(b"de")
            .finalize();
        assert_eq!(p.value()[..], second[..]);
    }
}
