//! HMAC-SHA256 signing (SMB 2.0.2 and 2.1, and 3.1.1 when negotiated): the first 16 bytes
//! of the HMAC (MS-SMB2 3.1.4.1).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Streaming HMAC-SHA256 truncated to 16 bytes. Feed the message in any number of pieces.
#[derive(Clone)]
pub struct HmacSha256 {
    inner: Hmac<Sha256>,
}

impl std::fmt::Debug for HmacSha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSha256 { .. }")
    }
}

impl HmacSha256 {
    /// Starts a MAC under `key` (HMAC takes keys of any length).
    pub fn new(key: &[u8]) -> Self {
        // Hmac::new_from_slice never fails: HMAC hashes or pads any key length.
        let inner = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        HmacSha256 { inner }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The first 16 bytes of HMAC-SHA256 (MS-SMB2 3.1.4.1: "the first 16 bytes of the hash").
    pub fn finalize(self) -> [u8; 16] {
        let full = self.inner.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_truncated() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut m = HmacSha256::new(b"Jefe");
        m.update(b"what do ya want ");
        m.update(b"for nothing?");
        let expected = [
            0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
            0x75, 0xc7,
        ];
        assert_eq!(m.finalize(), expected);
    }
}
