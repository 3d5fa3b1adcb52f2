//! GHASH on VPCLMULQDQ: two blocks per 256-bit or four per 512-bit instruction, 16 (256-bit)
//! or 32 (512-bit) blocks per reduction. Each lane multiplies its block by its own power of
//! H; the lanes' 256-bit products are summed, folded to 128 bits, and reduced once.
//! What is left over (fewer blocks than one run) goes through the 128-bit code, still with a
//! single reduction.

use std::arch::x86_64::*;

use super::clmul::{bswap_mask, load_u128, products, reduce, store_u128};
use super::POWERS;

/// 32 bytes at `bytes[at..at + 32]`.
#[inline]
#[target_feature(enable = "avx")]
fn load256(bytes: &[u8], at: usize) -> __m256i {
    let Some(chunk) = bytes.get(at..at + 32) else {
        return _mm256_setzero_si256(); // callers stay in bounds; never taken
    };
    // SAFETY: `chunk` is 32 readable bytes and `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) }
}

/// Powers `powers[at]` and `powers[at + 1]` in the low and high lanes.
#[inline]
#[target_feature(enable = "avx")]
fn load_powers256(powers: &[u128; POWERS], at: usize) -> __m256i {
    let Some(pair) = powers.get(at..at + 2) else {
        return _mm256_setzero_si256(); // callers stay in bounds; never taken
    };
    // SAFETY: `pair` is two `u128`s, 32 contiguous readable bytes, in lane order.
    unsafe { _mm256_loadu_si256(pair.as_ptr().cast()) }
}

/// 64 bytes at `bytes[at..at + 64]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn load512(bytes: &[u8], at: usize) -> __m512i {
    let Some(chunk) = bytes.get(at..at + 64) else {
        return _mm512_setzero_si512(); // callers stay in bounds; never taken
    };
    // SAFETY: `chunk` is 64 readable bytes and `loadu` has no alignment requirement.
    unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) }
}

/// Powers `powers[at..at + 4]` in lane order.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_powers512(powers: &[u128; POWERS], at: usize) -> __m512i {
    let Some(quad) = powers.get(at..at + 4) else {
        return _mm512_setzero_si512(); // callers stay in bounds; never taken
    };
    // SAFETY: `quad` is four `u128`s, 64 contiguous readable bytes, in lane order.
    unsafe { _mm512_loadu_si512(quad.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn fold256(v: __m256i) -> __m128i {
    _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1))
}

#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn fold512(v: __m512i) -> __m128i {
    fold256(_mm256_xor_si256(
        _mm512_castsi512_si256(v),
        _mm512_extracti64x4_epi64(v, 1),
    ))
}

/// Blocks per 256-bit run: 8 registers of two blocks.
const RUN256: usize = 16;
/// Blocks per 512-bit run: 8 registers of four blocks.
const RUN512: usize = 32;

/// Whole 16-block runs on 256-bit registers, then the rest on 128-bit ones.
#[inline]
#[target_feature(enable = "sse2,ssse3,pclmulqdq,avx,avx2,vpclmulqdq")]
fn absorb256_inner(powers: &[u128; POWERS], acc: __m128i, blocks: &[u8]) -> __m128i {
    let mut acc = acc;
    let bswap = _mm256_broadcastsi128_si256(bswap_mask());
    let mut hs = [_mm256_setzero_si256(); RUN256 / 2];
    for (k, h) in hs.iter_mut().enumerate() {
        *h = load_powers256(powers, POWERS - RUN256 + 2 * k);
    }
    let mut runs = blocks.chunks_exact(16 * RUN256);
    for run in &mut runs {
        let mut lo = _mm256_setzero_si256();
        let mut mid = _mm256_setzero_si256();
        let mut hi = _mm256_setzero_si256();
        for (k, h) in hs.iter().enumerate() {
            let mut x = _mm256_shuffle_epi8(load256(run, 32 * k), bswap);
            if k == 0 {
                x = _mm256_xor_si256(x, _mm256_zextsi128_si256(acc));
            }
            lo = _mm256_xor_si256(lo, _mm256_clmulepi64_epi128(x, *h, 0x00));
            mid = _mm256_xor_si256(
                mid,
                _mm256_xor_si256(
                    _mm256_clmulepi64_epi128(x, *h, 0x01),
                    _mm256_clmulepi64_epi128(x, *h, 0x10),
                ),
            );
            hi = _mm256_xor_si256(hi, _mm256_clmulepi64_epi128(x, *h, 0x11));
        }
        acc = reduce(fold256(lo), fold256(mid), fold256(hi));
    }
    let rest = runs.remainder();
    if !rest.is_empty() {
        let zero = _mm_setzero_si128();
        let mut sums = [zero; 3];
        products(acc, rest, &powers[POWERS - rest.len() / 16..], &mut sums);
        acc = reduce(sums[0], sums[1], sums[2]);
    }
    acc
}

/// Absorbs whole blocks into the POLYVAL-form state on 256-bit VPCLMULQDQ.
#[target_feature(enable = "sse2,ssse3,pclmulqdq,avx,avx2,vpclmulqdq")]
pub(super) fn absorb256(powers: &[u128; POWERS], acc: u128, blocks: &[u8]) -> u128 {
    store_u128(absorb256_inner(powers, load_u128(&acc), blocks))
}

/// Absorbs whole blocks into the POLYVAL-form state on 512-bit VPCLMULQDQ: whole 32-block
/// runs, then the rest as on the 256-bit path.
#[target_feature(enable = "sse2,ssse3,pclmulqdq,avx,avx2,vpclmulqdq,avx512f,avx512bw")]
pub(super) fn absorb512(powers: &[u128; POWERS], acc: u128, blocks: &[u8]) -> u128 {
    let mut acc = load_u128(&acc);
    let bswap = _mm512_broadcast_i32x4(bswap_mask());
    let mut hs = [_mm512_setzero_si512(); RUN512 / 4];
    for (k, h) in hs.iter_mut().enumerate() {
        *h = load_powers512(powers, POWERS - RUN512 + 4 * k);
    }
    let mut runs = blocks.chunks_exact(16 * RUN512);
    for run in &mut runs {
        let mut lo = _mm512_setzero_si512();
        let mut mid = _mm512_setzero_si512();
        let mut hi = _mm512_setzero_si512();
        for (k, h) in hs.iter().enumerate() {
            let mut x = _mm512_shuffle_epi8(load512(run, 64 * k), bswap);
            if k == 0 {
                x = _mm512_xor_si512(x, _mm512_zextsi128_si512(acc));
            }
            lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(x, *h, 0x00));
            mid = _mm512_xor_si512(
                mid,
                _mm512_xor_si512(
                    _mm512_clmulepi64_epi128(x, *h, 0x01),
                    _mm512_clmulepi64_epi128(x, *h, 0x10),
                ),
            );
            hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128(x, *h, 0x11));
        }
        acc = reduce(fold512(lo), fold512(mid), fold512(hi));
    }
    store_u128(absorb256_inner(powers, acc, runs.remainder()))
}
