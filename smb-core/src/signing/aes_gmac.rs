//! AES-128-GMAC signing (SMB 3.1.1 with SMB2_SIGNING_CAPABILITIES, MS-SMB2 3.1.4.1).
//!
//! GMAC is GCM with an empty plaintext: the whole message is additional authenticated data.
//! Built here on `aes` + `ghash` rather than `aes-gcm`, so the message can be fed in pieces
//! (header, zeroed signature, body) without being copied into one buffer:
//!
//! - H = E(K, 0^128), J0 = nonce (12 bytes) || 0x00000001
//! - S = `GHASH_H(AAD zero-padded to 16 bytes || [len(AAD) in bits]64be || [0]64be)`
//! - tag = E(K, J0) XOR S

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use zeroize::{Zeroize, Zeroizing};

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
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&message_id.to_le_bytes());
    let mut bits = 0u32;
    if from_server {
        bits |= NONCE_ROLE_SERVER;
    }
    if is_cancel {
        bits |= NONCE_CANCEL;
    }
    nonce[8..].copy_from_slice(&bits.to_le_bytes());
    nonce
}

/// The GMAC nonce read from a 64-byte SMB2 header. `None` when `header` is shorter than 64.
pub fn nonce_from_header(header: &[u8]) -> Option<[u8; 12]> {
    if header.len() < crate::header::HEADER_LEN {
        return None;
    }
    let field = |at: usize, n: usize| header.get(at..at + n);
    let message_id = u64::from_le_bytes(field(MESSAGE_ID_OFFSET, 8)?.try_into().ok()?);
    let fl = u32::from_le_bytes(field(FLAGS_OFFSET, 4)?.try_into().ok()?);
    let command = Command(u16::from_le_bytes(
        field(COMMAND_OFFSET, 2)?.try_into().ok()?,
    ));
    Some(nonce_for(
        message_id,
        fl & flags::SERVER_TO_REDIR != 0,
        command == Command::CANCEL,
    ))
}

/// Streaming AES-128-GMAC over additional data only. Feed the data in any number of pieces.
///
/// The tag mask and the buffered bytes are wiped on drop. The GHASH key H lives inside
/// `ghash::GHash`, which `polyval` (built with its `zeroize` feature) wipes when `finalize`
/// consumes it; a MAC dropped without being finalized leaves that to the allocator.
#[derive(Clone)]
pub struct AesGmac {
    ghash: GHash,
    /// E(K, J0): XORed into the GHASH output to make the tag.
    tag_mask: Zeroizing<[u8; 16]>,
    /// A partial block carried between `update` calls.
    pending: Zeroizing<[u8; 16]>,
    pending_len: usize,
    /// Total AAD bytes seen, for the length block.
    aad_len: u64,
}

impl std::fmt::Debug for AesGmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesGmac")
            .field("aad_len", &self.aad_len)
            .finish_non_exhaustive()
    }
}

impl AesGmac {
    /// Starts a GMAC under a 16-byte key and a 12-byte nonce.
    pub fn new(key: &[u8; 16], nonce: &[u8; 12]) -> Self {
        Self::with_cipher(&Aes128::new(key.into()), nonce)
    }

    /// Starts a GMAC with an already expanded AES key (the signing key keeps one).
    pub fn with_cipher(cipher: &Aes128, nonce: &[u8; 12]) -> Self {
        let mut h = aes::Block::default();
        cipher.encrypt_block(&mut h);
        let mut j0 = aes::Block::default();
        j0[..12].copy_from_slice(nonce);
        j0[15] = 1;
        cipher.encrypt_block(&mut j0);
        let mut tag_mask = Zeroizing::new([0u8; 16]);
        tag_mask.copy_from_slice(&j0);
        j0.zeroize();
        let ghash = GHash::new(&h);
        h.zeroize();
        AesGmac {
            ghash,
            tag_mask,
            pending: Zeroizing::new([0; 16]),
            pending_len: 0,
            aad_len: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.aad_len = self.aad_len.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (16 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 16 {
                return;
            }
            self.ghash.update(&[(*self.pending).into()]);
            self.pending_len = 0;
        }
        // Whole blocks go straight to GHASH, without copying.
        let whole = data.len() - data.len() % 16;
        self.ghash.update_padded(&data[..whole]);
        let tail = &data[whole..];
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
    }

    pub fn finalize(mut self) -> [u8; 16] {
        if self.pending_len > 0 {
            // GCM zero-pads the last partial AAD block.
            self.ghash.update_padded(&self.pending[..self.pending_len]);
        }
        // Length block: [len(AAD) bits]64be || [len(C) bits]64be, and C is empty.
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&self.aad_len.wrapping_mul(8).to_be_bytes());
        self.ghash.update(&[lengths.into()]);
        let s = self.ghash.finalize();
        let mut tag = [0u8; 16];
        for (t, (a, b)) in tag.iter_mut().zip(s.iter().zip(self.tag_mask.iter())) {
            *t = a ^ b;
        }
        tag
    }
}
