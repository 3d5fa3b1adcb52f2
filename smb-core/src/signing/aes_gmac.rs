//! AES-128-GMAC signing (SMB 3.1.1 with SMB2_SIGNING_CAPABILITIES, MS-SMB2 3.1.4.1).
//!
//! GMAC is GCM with an empty plaintext: the whole message is additional authenticated data.
//! Built here on AES (AES-NI or the `aes` crate) and this crate's streaming GHASH
//! (VPCLMULQDQ, PCLMULQDQ or portable, see [`super::Backend`]), so the message can be fed in
//! pieces (header, zeroed signature, body) without being copied into one buffer, and the
//! key's H powers are computed once per key:
//!
//! - H = E(K, 0^128), J0 = nonce (12 bytes) || 0x00000001
//! - S = `GHASH_H(AAD zero-padded to 16 bytes || [len(AAD) in bits]64be || [0]64be)`
//! - tag = E(K, J0) XOR S

use zeroize::Zeroizing;

use super::aes_cmac::BlockCipher;
use super::ghash::{Backend, GhashKey, GhashState};

use crate::header::{flags, Command, COMMAND_OFFSET, FLAGS_OFFSET, MESSAGE_ID_OFFSET};

/// Bit 0 of the nonce's last 4 bytes: the message was sent by the server.
pub const NONCE_ROLE_SERVER: u32 = 0x1;
/// Bit 1 of the nonce's last 4 bytes: the message is a CANCEL request.
pub const NONCE_CANCEL: u32 = 0x2;

/// The 12-byte GMAC nonce of a message, from its header (which must be at least 64 bytes;
/// the caller checks). MS-SMB2 2.2.1.x / 3.1.4.1: MessageId (8 bytes, little-endian), then a
/// 32-bit little-endian word whose bit 0 is set when the sender is the server
/// (SMB2_FLAGS_SERVER_TO_REDIR) and bit 1 when the command is SMB2 CANCEL.
pub fn nonce_for(message_id: u64, from_server: bool, is_cancel: bool) -> [u8; 12] {
    nonce_bytes(message_id, nonce_bits(from_server, is_cancel))
}

/// MessageId (8 bytes) then the flag word (4 bytes), little-endian.
fn nonce_bytes(message_id: u64, bits: u32) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&message_id.to_le_bytes());
    nonce[8..].copy_from_slice(&bits.to_le_bytes());
    nonce
}

/// The nonce's last 4 bytes, as a little-endian word.
fn nonce_bits(from_server: bool, is_cancel: bool) -> u32 {
    let mut bits = 0u32;
    if from_server {
        bits |= NONCE_ROLE_SERVER;
    }
    if is_cancel {
        bits |= NONCE_CANCEL;
    }
    bits
}

/// MessageId and the nonce's flag word of a header; `None` when `header` is shorter than 64.
fn nonce_parts(header: &[u8]) -> Option<(u64, u32)> {
    if header.len() < crate::header::HEADER_LEN {
        return None;
    }
    let field = |at: usize, n: usize| header.get(at..at + n);
    let message_id = u64::from_le_bytes(field(MESSAGE_ID_OFFSET, 8)?.try_into().ok()?);
    let fl = u32::from_le_bytes(field(FLAGS_OFFSET, 4)?.try_into().ok()?);
    let command = Command(u16::from_le_bytes(
        field(COMMAND_OFFSET, 2)?.try_into().ok()?,
    ));
    let bits = nonce_bits(fl & flags::SERVER_TO_REDIR != 0, command == Command::CANCEL);
    Some((message_id, bits))
}

/// The GMAC nonce read from a 64-byte SMB2 header. `None` when `header` is shorter than 64.
pub fn nonce_from_header(header: &[u8]) -> Option<[u8; 12]> {
    let (message_id, bits) = nonce_parts(header)?;
    Some(nonce_bytes(message_id, bits))
}

/// GCM's J0 for the message whose header is `header`: the 96-bit nonce, then the 32-bit
/// block counter 1. Built as one 16-byte value: a 12-byte nonce written in two stores and
/// read back as a block stalled store forwarding, a fifth of the time to sign 64 bytes.
pub(crate) fn j0_from_header(header: &[u8]) -> Option<[u8; 16]> {
    let (message_id, bits) = nonce_parts(header)?;
    Some((u128::from(message_id) | u128::from(bits) << 64 | 1 << 120).to_le_bytes())
}

/// A prepared GMAC key: the AES key schedule and the GHASH key's powers. Wiped on drop.
#[derive(Clone)]
pub(crate) struct GmacKey {
    cipher: BlockCipher,
    ghash: GhashKey,
}

impl GmacKey {
    pub(crate) fn new(key: &[u8; 16], backend: Backend) -> Self {
        let cipher = BlockCipher::new(key, backend);
        let h = Zeroizing::new(cipher.encrypt(&[0; 16]));
        GmacKey {
            ghash: GhashKey::new(&h, backend),
            cipher,
        }
    }
}

/// The per-message part of a GMAC: E(K, J0) and the GHASH state.
#[derive(Clone)]
pub(crate) struct GmacState {
    /// E(K, J0): XORed into the GHASH output to make the tag.
    tag_mask: Zeroizing<[u8; 16]>,
    ghash: GhashState,
}

impl GmacState {
    pub(crate) fn new(key: &GmacKey, nonce: &[u8; 12]) -> Self {
        let mut j0 = [0u8; 16];
        j0[..12].copy_from_slice(nonce);
        j0[15] = 1;
        GmacState {
            tag_mask: Zeroizing::new(key.cipher.encrypt(&j0)),
            ghash: GhashState::default(),
        }
    }

    pub(crate) fn update(&mut self, key: &GmacKey, data: &[u8]) {
        self.ghash.update(&key.ghash, data);
    }

    pub(crate) fn finalize(&self, key: &GmacKey) -> [u8; 16] {
        let mut s = self.ghash.finalize_aad(&key.ghash);
        for (t, m) in s.iter_mut().zip(self.tag_mask.iter()) {
            *t ^= m;
        }
        s
    }
}

/// The GMAC of one SMB2 message (at least 64 bytes) with its Signature field taken as zero,
/// read in place. The whole message is one GHASH sequence: header bytes 0..48, a zero block,
/// the body's whole blocks, the zero-padded last block and the length block. A message of
/// up to `POWERS` blocks (about 480 bytes) takes a single reduction; a longer one goes
/// through the widest path's runs, its leftover blocks sharing the last reduction with the
/// tail. E(K, J0) does not depend on the GHASH, so the CPU overlaps the two.
pub(crate) fn smb_gmac(key: &GmacKey, message: &[u8], j0: &[u8; 16]) -> [u8; 16] {
    const ZERO: [u8; 16] = [0; 16];
    let (header, rest) = message.split_at(48.min(message.len()));
    let rest = rest.get(16..).unwrap_or_default();
    let whole = rest.len() - rest.len() % 16;
    let (body, part) = rest.split_at(whole);
    // The padded partial block (if any), then [len(A) in bits]64be || [0]64be.
    let mut tail = [0u8; 32];
    let mut t = 0;
    if !part.is_empty() {
        tail[..part.len()].copy_from_slice(part);
        t = 16;
    }
    tail[t..t + 8].copy_from_slice(&((message.len() as u64).wrapping_mul(8)).to_be_bytes());
    let tail = &tail[..t + 16];

    let g = &key.ghash;
    let blocks = 4 + whole / 16 + tail.len() / 16;
    #[cfg(target_arch = "x86_64")]
    if let BlockCipher::Ni(rk) = &key.cipher {
        if let Some(tag) = g.small_tag(&[header, &ZERO, body, tail], rk, j0) {
            return tag;
        }
    }
    let s = if blocks <= super::ghash::POWERS {
        g.small(0, &[header, &ZERO, body, tail])
    } else {
        let acc = g.small(0, &[header, &ZERO]);
        let (acc, left) = g.runs(acc, body);
        g.small(acc, &[left, tail])
    };
    masked_tag(key, s, j0)
}

/// The tag from the final GHASH state `s`: `s` XOR E(K, J0).
fn masked_tag(key: &GmacKey, s: u128, j0: &[u8; 16]) -> [u8; 16] {
    let mask = Zeroizing::new(key.cipher.encrypt(j0));
    let mut tag = s.to_be_bytes();
    for (t, m) in tag.iter_mut().zip(mask.iter()) {
        *t ^= m;
    }
    tag
}

/// The GHASH of a message's tail from `at` (a multiple of 16, at least 64) to its end, taken
/// ahead of the head: the tail zero-padded to whole blocks, absorbed from zero. Returns the
/// state and the number of blocks.
pub(crate) fn tail_ghash(key: &GmacKey, tail: &[u8]) -> (u128, u64) {
    let whole = tail.len() - tail.len() % 16;
    let acc = key.ghash.absorb(0, &tail[..whole]);
    let part = &tail[whole..];
    if part.is_empty() {
        return (acc, (whole / 16) as u64);
    }
    let mut last = Zeroizing::new([0u8; 16]);
    last[..part.len()].copy_from_slice(part);
    (key.ghash.small(acc, &[&last[..]]), (whole / 16 + 1) as u64)
}

/// [`smb_gmac`] of `message` whose bytes from `at` (a multiple of 16, at least 64) on were
/// hashed ahead by [`tail_ghash`] into (`tail`, `blocks`): the head's GHASH is multiplied by
/// H^blocks and the tail's added (GHASH is linear), then the length block.
pub(crate) fn smb_gmac_with_tail(
    key: &GmacKey,
    message: &[u8],
    at: usize,
    tail: u128,
    blocks: u64,
    j0: &[u8; 16],
) -> [u8; 16] {
    const ZERO: [u8; 16] = [0; 16];
    let g = &key.ghash;
    let head = g.small(0, &[&message[..48], &ZERO, &message[64..at]]);
    let acc = g.mul(head, g.power(blocks)) ^ tail;
    let mut length = [0u8; 16];
    length[..8].copy_from_slice(&((message.len() as u64).wrapping_mul(8)).to_be_bytes());
    masked_tag(key, g.small(acc, &[&length[..]]), j0)
}

/// Streaming AES-128-GMAC over additional data only, under its own key and nonce. Feed the
/// data in any number of pieces. Key, powers of H and state are wiped on drop. A
/// [`super::SigningKey`] keeps the prepared key and only starts a new state per message.
#[derive(Clone)]
pub struct AesGmac {
    key: GmacKey,
    state: GmacState,
}

impl std::fmt::Debug for AesGmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesGmac { .. }")
    }
}

impl AesGmac {
    /// Starts a GMAC under a 16-byte key and a 12-byte nonce.
    pub fn new(key: &[u8; 16], nonce: &[u8; 12]) -> Self {
        Self::with_backend(key, nonce, Backend::detect())
    }

    /// Like [`AesGmac::new`] on a chosen backend; a backend this CPU lacks falls back to the
    /// portable one.
    #[doc(hidden)]
    pub fn with_backend(key: &[u8; 16], nonce: &[u8; 12], backend: Backend) -> Self {
        let key = GmacKey::new(key, backend);
        let state = GmacState::new(&key, nonce);
        AesGmac { key, state }
    }

    /// Feeds the next piece of the data.
    pub fn update(&mut self, data: &[u8]) {
        self.state.update(&self.key, data);
    }

    /// The 16-byte tag.
    pub fn finalize(self) -> [u8; 16] {
        self.state.finalize(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn j0_is_the_nonce_then_counter_one() {
        for (flags, command, bits) in [(0u32, 8u16, 0u8), (1, 8, 1), (0, 0x0C, 2), (1, 0x0C, 3)] {
            let mut header = [0u8; 64];
            header[MESSAGE_ID_OFFSET..MESSAGE_ID_OFFSET + 8]
                .copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
            header[FLAGS_OFFSET..FLAGS_OFFSET + 4].copy_from_slice(&flags.to_le_bytes());
            header[COMMAND_OFFSET..COMMAND_OFFSET + 2].copy_from_slice(&command.to_le_bytes());
            let nonce = nonce_from_header(&header).unwrap();
            assert_eq!(nonce[8], bits);
            let j0 = j0_from_header(&header).unwrap();
            assert_eq!(j0[..12], nonce);
            assert_eq!(j0[12..], [0, 0, 0, 1]);
        }
        assert!(j0_from_header(&[0; 63]).is_none());
    }
}
