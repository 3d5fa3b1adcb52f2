//! AES-128-CMAC signing (SMB 3.0, 3.0.2, and 3.1.1 when no signing algorithm was
//! negotiated), RFC 4493.
//!
//! The key schedule and the subkeys K1, K2 are computed once per key. On AES-NI the chain runs
//! in [`super::aesni`] (round keys in registers, the serial limit of 10 AESENC latencies per
//! block) and [`cmac_batch`] interleaves up to 8 messages' chains; elsewhere AES comes from
//! the portable `aes` crate.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use zeroize::{Zeroize, Zeroizing};

#[cfg(target_arch = "x86_64")]
use super::aesni;
use super::ghash::Backend;
use super::Tag;

/// AES-128 with its key schedule: AES-NI round keys, or the `aes` crate (built with its
/// `zeroize` feature). Wiped on drop either way.
#[derive(Clone)]
pub(crate) enum BlockCipher {
    #[cfg(target_arch = "x86_64")]
    Ni(aesni::RoundKeys),
    /// Boxed: the portable key schedule is four times the AES-NI one.
    Soft(Box<Aes128>),
}

impl BlockCipher {
    /// The caller has checked that `backend` is available on this CPU.
    pub(crate) fn new(key: &[u8; 16], backend: Backend) -> Self {
        #[cfg(target_arch = "x86_64")]
        if backend.aes_ni() {
            if let Some(rk) = aesni::expand(key) {
                return BlockCipher::Ni(rk);
            }
        }
        let _ = backend;
        BlockCipher::Soft(Box::new(Aes128::new(key.into())))
    }

    /// E(K, block).
    pub(crate) fn encrypt(&self, block: &[u8; 16]) -> [u8; 16] {
        match self {
            #[cfg(target_arch = "x86_64")]
            BlockCipher::Ni(rk) => aesni::encrypt_block(rk, block),
            BlockCipher::Soft(aes) => {
                let mut b = aes::Block::from(*block);
                aes.encrypt_block(&mut b);
                let out = b.into();
                b.zeroize();
                out
            }
        }
    }

    /// The CMAC chain over whole blocks.
    fn chain(&self, state: &[u8; 16], blocks: &[u8]) -> [u8; 16] {
        match self {
            #[cfg(target_arch = "x86_64")]
            BlockCipher::Ni(rk) => aesni::cmac_chain(rk, state, blocks),
            BlockCipher::Soft(aes) => {
                let mut x = aes::Block::from(*state);
                for block in blocks.chunks_exact(16) {
                    for (a, b) in x.iter_mut().zip(block) {
                        *a ^= b;
                    }
                    aes.encrypt_block(&mut x);
                }
                let out = x.into();
                x.zeroize();
                out
            }
        }
    }
}

/// Doubling in GF(2^128) for the CMAC subkeys (RFC 4493 2.3), branch-free.
fn dbl(v: [u8; 16]) -> [u8; 16] {
    let v = u128::from_be_bytes(v);
    let carry = 0u128.wrapping_sub(v >> 127);
    ((v << 1) ^ (carry & 0x87)).to_be_bytes()
}

/// A prepared CMAC key: the cipher and the subkeys K1, K2. Wiped on drop.
#[derive(Clone)]
pub(crate) struct CmacKey {
    cipher: BlockCipher,
    k1: Zeroizing<[u8; 16]>,
    k2: Zeroizing<[u8; 16]>,
}

impl CmacKey {
    pub(crate) fn new(key: &[u8; 16], backend: Backend) -> Self {
        let cipher = BlockCipher::new(key, backend);
        let l = Zeroizing::new(cipher.encrypt(&[0; 16]));
        let k1 = Zeroizing::new(dbl(*l));
        let k2 = Zeroizing::new(dbl(*k1));
        CmacKey { cipher, k1, k2 }
    }

    /// The last block, complete (XOR K1) or padded with 10* (XOR K2).
    fn last_block(&self, tail: &[u8]) -> Zeroizing<[u8; 16]> {
        let mut last = Zeroizing::new([0u8; 16]);
        last[..tail.len()].copy_from_slice(tail);
        let subkey = if tail.len() == 16 {
            &self.k1
        } else {
            last[tail.len()] = 0x80;
            &self.k2
        };
        for (a, b) in last.iter_mut().zip(subkey.iter()) {
            *a ^= b;
        }
        last
    }
}

/// The running state of one CMAC: the chain value and the last block, held back until the
/// next byte shows it is not the last.
#[derive(Clone, Default)]
pub(crate) struct CmacState {
    x: Zeroizing<[u8; 16]>,
    pending: Zeroizing<[u8; 16]>,
    pending_len: usize,
}

impl CmacState {
    pub(crate) fn update(&mut self, key: &CmacKey, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.pending_len > 0 {
            let take = (16 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if data.is_empty() {
                return; // the pending block may be the last one
            }
            *self.x = key.cipher.chain(&self.x, &self.pending[..]);
            self.pending_len = 0;
        }
        // Keep the last 1..=16 bytes back; chain every block before them straight from `data`.
        let keep = (data.len() - 1) % 16 + 1;
        let whole = data.len() - keep;
        *self.x = key.cipher.chain(&self.x, &data[..whole]);
        self.pending[..keep].copy_from_slice(&data[whole..]);
        self.pending_len = keep;
    }

    pub(crate) fn finalize(self, key: &CmacKey) -> [u8; 16] {
        let last = key.last_block(&self.pending[..self.pending_len]);
        key.cipher.chain(&self.x, &last[..])
    }
}

/// The CMACs of several SMB2 messages (each at least 64 bytes, bytes 48..64 taken as zero),
/// their AES chains interleaved 8 at a time on AES-NI, one after another elsewhere.
pub(crate) fn cmac_batch(key: &CmacKey, messages: &[&[u8]], out: &mut [Tag]) {
    #[cfg(target_arch = "x86_64")]
    if let BlockCipher::Ni(rk) = &key.cipher {
        for (group, tags) in messages.chunks(8).zip(out.chunks_mut(8)) {
            batch_group(key, rk, group, tags);
        }
        return;
    }
    for (message, tag) in messages.iter().zip(out.iter_mut()) {
        *tag = Tag(smb_cmac(key, message));
    }
}

/// One message's CMAC with bytes 48..64 as zero (the SMB2 Signature field).
pub(crate) fn smb_cmac(key: &CmacKey, message: &[u8]) -> [u8; 16] {
    let mut st = CmacState::default();
    super::feed_zeroed_signature(message, |piece| st.update(key, piece));
    st.finalize(key)
}

/// The virtual message (Signature field zeroed) of one lane: blocks before the last one,
/// then the last 1..=16 bytes.
#[cfg(target_arch = "x86_64")]
fn split_last(message: &[u8]) -> (usize, [u8; 16], usize) {
    // Whole blocks before the last (at least 3: messages are at least 64 bytes).
    let before = (message.len() - 1) / 16;
    let tail = &message[16 * before..];
    let mut last = [0u8; 16];
    // Only a 64-byte message's last block is the Signature field (zero).
    if before >= 4 {
        last[..tail.len()].copy_from_slice(tail);
    }
    (before, last, tail.len())
}

/// Runs `n` blocks on each of `states.len()` (1..=8) lanes.
#[cfg(target_arch = "x86_64")]
fn run_lanes(rk: &aesni::RoundKeys, states: &mut [[u8; 16]], inputs: &[&[u8]], n: usize) {
    macro_rules! lanes {
        ($l:literal) => {{
            let mut st = [[0u8; 16]; $l];
            st.copy_from_slice(states);
            let mut ins: [&[u8]; $l] = [&[]; $l];
            ins.copy_from_slice(inputs);
            aesni::cmac_lanes::<$l>(rk, &mut st, &ins, n);
            states.copy_from_slice(&st);
            st.zeroize();
        }};
    }
    match states.len() {
        1 => lanes!(1),
        2 => lanes!(2),
        3 => lanes!(3),
        4 => lanes!(4),
        5 => lanes!(5),
        6 => lanes!(6),
        7 => lanes!(7),
        8 => lanes!(8),
        _ => {}
    }
}

/// Up to 8 messages in lockstep: the 48 header bytes, the zero Signature block, the body
/// (lanes drop out as their bodies end), then every lane's last block at once.
#[cfg(target_arch = "x86_64")]
fn batch_group(key: &CmacKey, rk: &aesni::RoundKeys, group: &[&[u8]], tags: &mut [Tag]) {
    const ZERO: [u8; 16] = [0; 16];
    let l = group.len();
    let mut states = Zeroizing::new([[0u8; 16]; 8]);
    let mut inputs: [&[u8]; 8] = [&[]; 8];
    inputs[..l].copy_from_slice(group);
    run_lanes(rk, &mut states[..l], &inputs[..l], 3);

    let mut lasts = Zeroizing::new([[0u8; 16]; 8]);
    let mut before = [0usize; 8];
    for (i, m) in group.iter().enumerate() {
        let (b, last, tail) = split_last(m);
        let last = key.last_block(&last[..tail]);
        lasts[i] = *last;
        before[i] = b;
    }

    // The zero block, for every lane whose Signature field is not its last block.
    let mut active: Vec<usize> = (0..l).filter(|&i| before[i] >= 4).collect();
    step_active(rk, &mut states, &active, |_| &ZERO[..], 1);
    // Bodies: blocks 4..before[i], read from the message itself.
    let mut done = [4usize; 8];
    loop {
        active.retain(|&i| done[i] < before[i]);
        let Some(n) = active.iter().map(|&i| before[i] - done[i]).min() else {
            break;
        };
        step_active(rk, &mut states, &active, |i| &group[i][16 * done[i]..], n);
        for &i in &active {
            done[i] += n;
        }
    }
    let all: Vec<usize> = (0..l).collect();
    let lasts_ref = &lasts;
    step_active(rk, &mut states, &all, |i| &lasts_ref[i][..], 1);
    for (tag, st) in tags.iter_mut().zip(states.iter()) {
        *tag = Tag(*st);
    }
}

/// Runs `n` blocks on the lanes listed in `active`, reading lane i's blocks from `input(i)`.
#[cfg(target_arch = "x86_64")]
fn step_active<'a>(
    rk: &aesni::RoundKeys,
    states: &mut [[u8; 16]; 8],
    active: &[usize],
    input: impl Fn(usize) -> &'a [u8],
    n: usize,
) {
    if active.is_empty() {
        return;
    }
    let mut st = Zeroizing::new([[0u8; 16]; 8]);
    let mut ins: [&[u8]; 8] = [&[]; 8];
    for (j, &i) in active.iter().enumerate() {
        st[j] = states[i];
        ins[j] = input(i);
    }
    let a = active.len();
    run_lanes(rk, &mut st[..a], &ins[..a], n);
    for (j, &i) in active.iter().enumerate() {
        states[i] = st[j];
    }
}

/// Streaming AES-128-CMAC under its own key. Feed the message in any number of pieces.
#[derive(Clone)]
pub struct AesCmac {
    key: CmacKey,
    state: CmacState,
}

impl std::fmt::Debug for AesCmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesCmac { .. }")
    }
}

impl AesCmac {
    /// Starts a MAC under a 16-byte AES key (key schedule and subkeys computed here; a
    /// [`super::SigningKey`] computes them once and reuses them for every message).
    pub fn new(key: &[u8; 16]) -> Self {
        AesCmac {
            key: CmacKey::new(key, Backend::detect()),
            state: CmacState::default(),
        }
    }

    /// Feeds the next piece of the message.
    pub fn update(&mut self, data: &[u8]) {
        self.state.update(&self.key, data);
    }

    /// The 16-byte CMAC.
    pub fn finalize(self) -> [u8; 16] {
        self.state.finalize(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4493_subkeys() {
        // RFC 4493 4: K = 2b7e1516 28aed2a6 abf71588 09cf4f3c.
        let key = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let k1 = 0xfbeed618_35713366_7c85e08f_7236a8deu128.to_be_bytes();
        let k2 = 0xf7ddac30_6ae266cc_f90bc11e_e46d513bu128.to_be_bytes();
        for backend in Backend::ALL.into_iter().filter(|b| b.available()) {
            let k = CmacKey::new(&key, backend);
            assert_eq!((*k.k1, *k.k2), (k1, k2), "{}", backend.name());
        }
    }
}
