//! HMAC-SHA256 signing (SMB 2.0.2 and 2.1, and 3.1.1 when negotiated): the first 16 bytes
//! of the HMAC (MS-SMB2 3.1.4.1).
//!
//! The keyed inner and outer SHA-256 states (after the `K ^ ipad` and `K ^ opad` blocks) are
//! computed once per key and kept (wiped on drop), so a message costs only its own blocks and
//! one outer block: three compressions for a 64-byte message. The compression is `sha2`'s,
//! which picks SHA-NI at run time.

use digest::block_buffer::{BlockBuffer, Eager};
use digest::generic_array::GenericArray;
use digest::typenum::U64;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// SHA-256's initial hash value (FIPS 180-4 5.3.3).
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// The keyed HMAC states of one key. Wiped on drop.
#[derive(Clone)]
pub(crate) struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl HmacKey {
    /// RFC 2104: a key longer than the 64-byte block is hashed first, then zero-padded.
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = Zeroizing::new([0u8; 64]);
        if key.len() > 64 {
            let mut digest = Zeroizing::new([0u8; 32]);
            digest.copy_from_slice(&Sha256::digest(key));
            block[..32].copy_from_slice(&digest[..]);
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut pad = Zeroizing::new([0u8; 64]);
        let mut inner = IV;
        let mut outer = IV;
        for (p, k) in pad.iter_mut().zip(block.iter()) {
            *p = k ^ 0x36;
        }
        compress(&mut inner, &pad);
        for (p, k) in pad.iter_mut().zip(block.iter()) {
            *p = k ^ 0x5c;
        }
        compress(&mut outer, &pad);
        HmacKey { inner, outer }
    }
}

/// The running inner hash of one HMAC. The chaining value is wiped on drop.
#[derive(Clone)]
pub(crate) struct HmacState {
    h: [u32; 8],
    buffer: BlockBuffer<U64, Eager>,
    /// Message bytes so far (the key block is added at the end).
    len: u64,
}

impl Drop for HmacState {
    fn drop(&mut self) {
        self.h.zeroize();
    }
}

impl HmacState {
    pub(crate) fn new(key: &HmacKey) -> Self {
        HmacState {
            h: key.inner,
            buffer: BlockBuffer::default(),
            len: 0,
        }
    }

    /// Whole blocks go to the compression straight from `data`; the rest is buffered.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        let h = &mut self.h;
        self.buffer
            .digest_blocks(data, |blocks| sha2::compress256(h, blocks));
    }

    /// The first 16 bytes of the HMAC.
    pub(crate) fn finalize(mut self, key: &HmacKey) -> [u8; 16] {
        // The inner hash covers the 64-byte key block too.
        let bits = self.len.wrapping_add(64).wrapping_mul(8);
        let h = &mut self.h;
        self.buffer.len64_padding_be(bits, |block| {
            sha2::compress256(h, std::slice::from_ref(block))
        });
        // Outer: H((K ^ opad) || inner hash), one block: 32 bytes, 0x80, zeros, length 768.
        let mut block = Zeroizing::new([0u8; 64]);
        for (out, word) in block.chunks_exact_mut(4).zip(self.h.iter()) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        block[32] = 0x80;
        block[56..].copy_from_slice(&(96u64 * 8).to_be_bytes());
        let mut outer = Zeroizing::new(key.outer);
        compress(&mut outer, &block);
        let mut tag = [0u8; 16];
        for (out, word) in tag.chunks_exact_mut(4).zip(outer.iter()) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        tag
    }
}

/// Messages up to this length take [`message_tag`]; longer ones stream through
/// [`HmacState`] (whose multi-block compression calls win on long runs).
pub(crate) const ONE_SHOT_MAX: usize = 512;

/// The first 16 bytes of the HMAC of a whole SMB2 message (at least 64 bytes) with its
/// Signature field (bytes 48..64) taken as zero, in one pass: the blocks are compressed
/// straight from the message and only the first (header with the zeroed field) and the
/// padded last one are assembled, with no streaming buffer. Small messages (a 64-byte
/// header alone: three compressions) are dominated by such overhead. The temporaries are
/// cleared with plain stores kept by `black_box` (the key states themselves live in
/// [`HmacKey`], wiped on drop).
pub(crate) fn message_tag(key: &HmacKey, message: &[u8]) -> [u8; 16] {
    let mut h = key.inner;
    let mut block = [0u8; 64];
    let head = message.len().min(48);
    block[..head].copy_from_slice(&message[..head]);
    compress(&mut h, &block);
    let rest = message.get(64..).unwrap_or_default();
    let whole = rest.len() / 64 * 64;
    for b in rest[..whole].chunks_exact(64) {
        if let Ok(b) = <&[u8; 64]>::try_from(b) {
            compress(&mut h, b);
        }
    }
    let tail = &rest[whole..];
    // The inner hash covers the 64-byte key block, then the message.
    let bits = (message.len() as u64 + 64).wrapping_mul(8);
    block = [0u8; 64];
    block[..tail.len()].copy_from_slice(tail);
    block[tail.len()] = 0x80;
    if tail.len() >= 56 {
        compress(&mut h, &block);
        block = [0u8; 64];
    }
    block[56..].copy_from_slice(&bits.to_be_bytes());
    compress(&mut h, &block);
    // Outer: H((K ^ opad) || inner hash), one block: 32 bytes, 0x80, zeros, length 768.
    block = [0u8; 64];
    for (out, word) in block.chunks_exact_mut(4).zip(h.iter()) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    block[32] = 0x80;
    block[56..].copy_from_slice(&(96u64 * 8).to_be_bytes());
    let mut outer = key.outer;
    compress(&mut outer, &block);
    let mut tag = [0u8; 16];
    for (out, word) in tag.chunks_exact_mut(4).zip(outer.iter()) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    block = [0u8; 64];
    h = [0; 8];
    outer = [0; 8];
    std::hint::black_box((&block, &h, &outer));
    tag
}

/// Streaming HMAC-SHA256 truncated to 16 bytes, under its own key. Feed the message in any
/// number of pieces. A [`super::SigningKey`] keeps the keyed states and reuses them.
#[derive(Clone)]
pub struct HmacSha256 {
    key: HmacKey,
    state: HmacState,
}

impl std::fmt::Debug for HmacSha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSha256 { .. }")
    }
}

impl HmacSha256 {
    /// Starts a MAC under `key` (HMAC takes keys of any length).
    pub fn new(key: &[u8]) -> Self {
        let key = HmacKey::new(key);
        let state = HmacState::new(&key);
        HmacSha256 { key, state }
    }

    /// Feeds the next piece of the message.
    pub fn update(&mut self, data: &[u8]) {
        self.state.update(data);
    }

    /// The first 16 bytes of HMAC-SHA256 (MS-SMB2 3.1.4.1: "the first 16 bytes of the hash").
    pub fn finalize(self) -> [u8; 16] {
        let HmacSha256 { key, state } = self;
        state.finalize(&key)
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

    #[test]
    fn rfc4231_case_6_long_key() {
        // RFC 4231 test case 6: 131-byte key 0xaa, "Test Using Larger Than Block-Size Key -
        // Hash Key First".
        let mut m = HmacSha256::new(&[0xaa; 131]);
        m.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        let expected = [
            0x60, 0xe4, 0x31, 0x59, 0x1e, 0xe0, 0xb6, 0x7f, 0x0d, 0x8a, 0x26, 0xaa, 0xcb, 0xf5,
            0xb7, 0x7f,
        ];
        assert_eq!(m.finalize(), expected);
    }
}
