//! GHASH on PCLMULQDQ: 8 blocks per reduction (each multiplied by its own power of H, the
//! 256-bit products summed, one Montgomery reduction at the end of the run).

use std::arch::x86_64::*;

use super::POWERS;

/// Byte reversal of a 128-bit lane: a GHASH block becomes its POLYVAL element.
#[inline]
#[target_feature(enable = "sse2,ssse3")]
pub(super) fn bswap_mask() -> __m128i {
    _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Loads 16 bytes (no alignment needed).
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: `bytes` is 16 readable bytes and `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// A power of H (stored as a `u128`) in a register.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn load_u128(v: &u128) -> __m128i {
    load(&v.to_le_bytes())
}

/// Back to a `u128`.
#[inline]
#[target_feature(enable = "sse2")]
pub(super) fn store_u128(v: __m128i) -> u128 {
    let mut out = [0u8; 16];
    // SAFETY: `out` is 16 writable bytes and `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) };
    u128::from_le_bytes(out)
}

/// Montgomery reduction of the 256-bit sum `hi·x^128 + mid·x^64 + lo` by x^128, modulo
/// x^128 + x^127 + x^126 + x^121 + 1. Each fold adds `l0·P` (clearing the low 64 bits, as
/// P's constant term is 1) and divides by x^64; `P / x^64` above x^64 is 0xc2 << 56.
#[inline]
#[target_feature(enable = "sse2,pclmulqdq")]
pub(super) fn reduce(lo: __m128i, mid: __m128i, hi: __m128i) -> __m128i {
    let lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
    let hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
    let poly = _mm_set_epi64x(0xc200_0000_0000_0000u64 as i64, 1);
    let t = _mm_clmulepi64_si128(lo, poly, 0x10);
    let lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), t);
    let t = _mm_clmulepi64_si128(lo, poly, 0x10);
    let lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), t);
    _mm_xor_si128(hi, lo)
}

/// Sums the products of the blocks of `segments` (in order, each a whole number of blocks,
/// at most `hs.len()` blocks in all) with `hs` (one power per block) into `sums`
/// (lo, mid, hi), the state `acc` added to the first block; no reduction.
#[inline]
#[target_feature(enable = "sse2,ssse3,pclmulqdq")]
pub(super) fn products(acc: __m128i, segments: &[&[u8]], hs: &[u128], sums: &mut [__m128i; 3]) {
    let bswap = bswap_mask();
    let mut i = 0;
    for segment in segments {
        for block in segment.chunks_exact(16) {
            let (Ok(block), Some(h)) = (<&[u8; 16]>::try_from(block), hs.get(i)) else {
                return; // more blocks than powers: callers never pass them
            };
            let mut x = _mm_shuffle_epi8(load(block), bswap);
            if i == 0 {
                x = _mm_xor_si128(x, acc);
            }
            i += 1;
            let h = load_u128(h);
            sums[0] = _mm_xor_si128(sums[0], _mm_clmulepi64_si128(x, h, 0x00));
            sums[1] = _mm_xor_si128(
                sums[1],
                _mm_xor_si128(
                    _mm_clmulepi64_si128(x, h, 0x01),
                    _mm_clmulepi64_si128(x, h, 0x10),
                ),
            );
            sums[2] = _mm_xor_si128(sums[2], _mm_clmulepi64_si128(x, h, 0x11));
        }
    }
}

/// Absorbs the blocks of `segments` (at most `POWERS` in all) with a single reduction.
#[inline]
#[target_feature(enable = "sse2,ssse3,pclmulqdq")]
pub(super) fn small_inner(powers: &[u128; POWERS], acc: __m128i, segments: &[&[u8]]) -> __m128i {
    let n: usize = segments.iter().map(|s| s.len() / 16).sum();
    if n == 0 {
        return acc;
    }
    let zero = _mm_setzero_si128();
    let mut sums = [zero; 3];
    products(acc, segments, &powers[POWERS - n.min(POWERS)..], &mut sums);
    reduce(sums[0], sums[1], sums[2])
}

/// Absorbs the blocks of `segments` (at most `POWERS` in all) with a single reduction.
#[target_feature(enable = "sse2,ssse3,pclmulqdq")]
pub(super) fn small(powers: &[u128; POWERS], acc: u128, segments: &[&[u8]]) -> u128 {
    store_u128(small_inner(powers, load_u128(&acc), segments))
}

/// A whole GMAC tag for data of at most `POWERS` blocks (segments as for `small`, from a
/// zero state): `GHASH ^ E(K, J0)`, the AES rounds and the multiplications in one function so
/// that the CPU runs them side by side. `round_keys` are AES-128's 11 round keys.
#[target_feature(enable = "sse2,ssse3,pclmulqdq,aes")]
pub(super) fn small_tag(
    powers: &[u128; POWERS],
    segments: &[&[u8]],
    round_keys: &[[u8; 16]; 11],
    j0: &[u8; 16],
) -> [u8; 16] {
    let mut b = _mm_xor_si128(load(j0), load(&round_keys[0]));
    for k in &round_keys[1..10] {
        b = _mm_aesenc_si128(b, load(k));
    }
    let mask = _mm_aesenclast_si128(b, load(&round_keys[10]));
    let s = small_inner(powers, _mm_setzero_si128(), segments);
    let tag = _mm_xor_si128(_mm_shuffle_epi8(s, bswap_mask()), mask);
    let mut out = [0u8; 16];
    // SAFETY: `out` is 16 writable bytes and `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), tag) };
    out
}

/// `a·b·x^-128` (POLYVAL's "dot"), for the powers of H.
#[target_feature(enable = "sse2,ssse3,pclmulqdq")]
pub(super) fn dot(a: u128, b: u128) -> u128 {
    let (x, h) = (load_u128(&a), load_u128(&b));
    let lo = _mm_clmulepi64_si128(x, h, 0x00);
    let mid = _mm_xor_si128(
        _mm_clmulepi64_si128(x, h, 0x01),
        _mm_clmulepi64_si128(x, h, 0x10),
    );
    let hi = _mm_clmulepi64_si128(x, h, 0x11);
    store_u128(reduce(lo, mid, hi))
}

/// Absorbs whole 8-block runs, one reduction each; returns the state and the blocks left.
#[target_feature(enable = "sse2,ssse3,pclmulqdq")]
pub(super) fn runs<'a>(powers: &[u128; POWERS], acc: u128, blocks: &'a [u8]) -> (u128, &'a [u8]) {
    let mut acc = load_u128(&acc);
    let mut runs = blocks.chunks_exact(16 * 8);
    for run in &mut runs {
        acc = small_inner(powers, acc, &[run]);
    }
    (store_u128(acc), runs.remainder())
}
