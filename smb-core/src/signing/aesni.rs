//! AES-128 on AES-NI: the key schedule (once per key), single blocks (GMAC's tag mask, CMAC's
//! subkeys), the serial CMAC chain, and interleaved CMAC chains for batches.
//!
//! The CMAC chain `C_i = E(K, C_(i-1) ^ M_i)` is one dependent AESENC after another, so its
//! speed is the AESENC latency (4 cycles on Zen 4) times 10 rounds per 16 bytes. The XOR of
//! the next message block and the first round key is folded into the last round key of the
//! previous block (AESENCLAST ends with an XOR with its key), so nothing but the 10 rounds sits
//! on that path. Independent messages do not depend on each other: a batch runs up to 8 chains
//! side by side and fills the two AES units instead of waiting on one chain's latency.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use zeroize::Zeroize;

/// The 11 round keys of AES-128. Wiped on drop.
#[derive(Clone)]
pub(crate) struct RoundKeys([[u8; 16]; 11]);

impl RoundKeys {
    /// The round keys, for code that runs AES rounds itself (GMAC's fused tag).
    pub(crate) fn blocks(&self) -> &[[u8; 16]; 11] {
        &self.0
    }
}

impl Drop for RoundKeys {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[inline]
#[target_feature(enable = "sse2")]
fn load(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: `bytes` is 16 readable bytes and `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// 16 bytes of `data` at `at` (the caller stays in bounds; zeros otherwise).
#[inline]
#[target_feature(enable = "sse2")]
fn load_at(data: &[u8], at: usize) -> __m128i {
    match data
        .get(at..at + 16)
        .and_then(|b| <&[u8; 16]>::try_from(b).ok())
    {
        Some(b) => load(b),
        None => _mm_setzero_si128(),
    }
}

#[inline]
#[target_feature(enable = "sse2")]
fn store(v: __m128i) -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: `out` is 16 writable bytes and `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) };
    out
}

/// One step of the AES-128 key expansion (FIPS 197 5.2) from AESKEYGENASSIST's output.
#[inline]
#[target_feature(enable = "sse2")]
fn expand_step(key: __m128i, assist: __m128i) -> __m128i {
    let assist = _mm_shuffle_epi32(assist, 0xff);
    let mut key = key;
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    _mm_xor_si128(key, assist)
}

/// The AES-128 key schedule, or `None` when the CPU has no AES-NI. A `RoundKeys` therefore
/// proves AES-NI is present, which is what makes the safe wrappers below sound.
pub(crate) fn expand(key: &[u8; 16]) -> Option<RoundKeys> {
    if !std::is_x86_feature_detected!("aes") {
        return None;
    }
    // SAFETY: AES-NI (and SSE2, part of x86_64) was detected just above.
    Some(unsafe { expand_ni(key) })
}

/// E(K, block).
pub(crate) fn encrypt_block(rk: &RoundKeys, block: &[u8; 16]) -> [u8; 16] {
    // SAFETY: a `RoundKeys` exists only after `expand` detected AES-NI.
    unsafe { encrypt_block_ni(rk, block) }
}

/// The CMAC chain over whole blocks: returns `E(...E(E(state ^ M_1) ^ M_2)... ^ M_n)`.
pub(crate) fn cmac_chain(rk: &RoundKeys, state: &[u8; 16], blocks: &[u8]) -> [u8; 16] {
    // SAFETY: a `RoundKeys` exists only after `expand` detected AES-NI.
    unsafe { cmac_chain_ni(rk, state, blocks) }
}

/// Up to 8 CMAC chains side by side: `states[l]` absorbs `n` whole blocks read from
/// `inputs[l]` (each at least `16 * n` bytes long; missing bytes read as zero).
pub(crate) fn cmac_lanes<const L: usize>(
    rk: &RoundKeys,
    states: &mut [[u8; 16]; L],
    inputs: &[&[u8]; L],
    n: usize,
) {
    // SAFETY: a `RoundKeys` exists only after `expand` detected AES-NI.
    unsafe { cmac_lanes_ni(rk, states, inputs, n) }
}

#[target_feature(enable = "sse2,aes")]
fn expand_ni(key: &[u8; 16]) -> RoundKeys {
    let mut k = [_mm_setzero_si128(); 11];
    k[0] = load(key);
    macro_rules! step {
        ($i:expr, $rcon:expr) => {
            k[$i] = expand_step(k[$i - 1], _mm_aeskeygenassist_si128(k[$i - 1], $rcon));
        };
    }
    step!(1, 0x01);
    step!(2, 0x02);
    step!(3, 0x04);
    step!(4, 0x08);
    step!(5, 0x10);
    step!(6, 0x20);
    step!(7, 0x40);
    step!(8, 0x80);
    step!(9, 0x1b);
    step!(10, 0x36);
    let mut out = RoundKeys([[0; 16]; 11]);
    for (o, k) in out.0.iter_mut().zip(k) {
        *o = store(k);
    }
    out
}

/// The round keys in registers.
#[inline]
#[target_feature(enable = "sse2")]
fn keys(rk: &RoundKeys) -> [__m128i; 11] {
    let mut k = [_mm_setzero_si128(); 11];
    for (k, r) in k.iter_mut().zip(&rk.0) {
        *k = load(r);
    }
    k
}

/// Rounds 1..=9 and the last round with an explicit last key.
#[inline]
#[target_feature(enable = "sse2,aes")]
fn rounds(k: &[__m128i; 11], mut b: __m128i, last: __m128i) -> __m128i {
    for key in &k[1..10] {
        b = _mm_aesenc_si128(b, *key);
    }
    _mm_aesenclast_si128(b, last)
}

#[target_feature(enable = "sse2,aes")]
fn encrypt_block_ni(rk: &RoundKeys, block: &[u8; 16]) -> [u8; 16] {
    let k = keys(rk);
    store(rounds(&k, _mm_xor_si128(load(block), k[0]), k[10]))
}

#[target_feature(enable = "sse2,aes")]
fn cmac_chain_ni(rk: &RoundKeys, state: &[u8; 16], blocks: &[u8]) -> [u8; 16] {
    let k = keys(rk);
    let n = blocks.len() / 16;
    if n == 0 {
        return *state;
    }
    // b = state ^ M_1 ^ K_0, the input of round 1.
    let mut b = _mm_xor_si128(_mm_xor_si128(load(state), load_at(blocks, 0)), k[0]);
    for i in 1..n {
        // The last round's key also carries the next block and round key 0.
        let last = _mm_xor_si128(k[10], _mm_xor_si128(load_at(blocks, 16 * i), k[0]));
        b = rounds(&k, b, last);
    }
    store(rounds(&k, b, k[10]))
}

#[target_feature(enable = "sse2,aes")]
fn cmac_lanes_ni<const L: usize>(
    rk: &RoundKeys,
    states: &mut [[u8; 16]; L],
    inputs: &[&[u8]; L],
    n: usize,
) {
    if n == 0 {
        return;
    }
    let k = keys(rk);
    let mut b = [_mm_setzero_si128(); L];
    for l in 0..L {
        b[l] = _mm_xor_si128(_mm_xor_si128(load(&states[l]), load_at(inputs[l], 0)), k[0]);
    }
    for i in 0..n {
        let mut last = [k[10]; L];
        if i + 1 < n {
            for l in 0..L {
                last[l] =
                    _mm_xor_si128(k[10], _mm_xor_si128(load_at(inputs[l], 16 * (i + 1)), k[0]));
            }
        }
        // Round by round across the lanes, so the lanes' AESENCs overlap.
        for key in &k[1..10] {
            for lane in b.iter_mut() {
                *lane = _mm_aesenc_si128(*lane, *key);
            }
        }
        for (lane, last) in b.iter_mut().zip(last) {
            *lane = _mm_aesenclast_si128(*lane, last);
        }
    }
    for l in 0..L {
        states[l] = store(b[l]);
    }
}
