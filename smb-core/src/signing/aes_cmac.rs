//! AES-128-CMAC signing (SMB 3.0, 3.0.2, and 3.1.1 when no signing algorithm was
//! negotiated), RFC 4493 via the RustCrypto `cmac` crate.

use aes::Aes128;
use cmac::{Cmac, Mac};

/// Streaming AES-128-CMAC. Feed the message in any number of pieces.
#[derive(Clone)]
pub struct AesCmac {
    inner: Cmac<Aes128>,
}

impl std::fmt::Debug for AesCmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesCmac { .. }")
    }
}

impl AesCmac {
    /// Starts a MAC under a 16-byte AES key.
    pub fn new(key: &[u8; 16]) -> Self {
        AesCmac {
            inner: <Cmac<Aes128> as cmac::digest::KeyInit>::new(key.into()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    pub fn finalize(self) -> [u8; 16] {
        self.inner.finalize().into_bytes().into()
    }
}
