//! GHASH on VPCLMULQDQ: two blocks per 256-bit or four per 512-bit instruction, 16 (256-bit)
//! or 64 (512-bit) blocks per reduction. Each lane multiplies its block by its own power of
//! H; the lanes' 256-bit products are summed, folded to 128 bits, and reduced once.
//! What is left over (fewer blocks than one run) goes through the 128-bit code, still with a
//! single reduction. With GFNI, the 512-bit runs can also work in the natural bit order
//! ([`runs512_gfni`]), which takes the byte reordering off the multiplier's port.

use std::arch::x86_64::*;

use super::clmul::{bswap_mask, load_u128, reduce, store_u128};
use super::{NATURAL_POWERS, POWERS};

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
fn load_powers512(powers: &[u128], at: usize) -> __m512i {
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
/// Blocks per 512-bit run: 16 registers of four blocks (AVX-512 has 32 registers).
const RUN512: usize = 64;
// The key keeps one natural-order power per block of a 512-bit run.
const _: () = assert!(NATURAL_POWERS == RUN512);
/// How far ahead of the run being hashed its cache lines are asked for (both VPCLMULQDQ
/// loops). Data just copied by the kernel (a READ's file data, a received frame) sits in L3
/// or memory, and the hardware prefetchers stop at each 4 KiB page: with the hint, GHASH
/// over a 1 MiB buffer right after `pread` ran at 24-29 GB/s here instead of 21-23 on the
/// 512-bit path (from memory at 10 GB/s instead of 8), 18.5-19.0 instead of 17.4-18.1 on
/// the 256-bit one; hot, no change. Any distance from 2 to 8 KiB did as well.
const PREFETCH_AHEAD: usize = 4096;

/// Whole 16-block runs on 256-bit registers; returns the state and the blocks left.
#[target_feature(enable = "sse2,ssse3,pclmulqdq,avx,avx2,vpclmulqdq")]
pub(super) fn runs256<'a>(
    powers: &[u128; POWERS],
    acc: u128,
    blocks: &'a [u8],
) -> (u128, &'a [u8]) {
    let mut runs = blocks.chunks_exact(16 * RUN256);
    if blocks.len() < 16 * RUN256 {
        return (acc, blocks);
    }
    let mut acc = load_u128(&acc);
    let bswap = _mm256_broadcastsi128_si256(bswap_mask());
    let mut hs = [_mm256_setzero_si256(); RUN256 / 2];
    for (k, h) in hs.iter_mut().enumerate() {
        *h = load_powers256(powers, POWERS - RUN256 + 2 * k);
    }
    let end = blocks.as_ptr_range().end;
    for run in &mut runs {
        prefetch_lines::<4>(run.as_ptr().wrapping_add(PREFETCH_AHEAD), end);
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
    (store_u128(acc), runs.remainder())
}

/// Whole 64-block runs on 512-bit registers; returns the state and the blocks left.
#[target_feature(enable = "sse2,ssse3,pclmulqdq,avx,avx2,vpclmulqdq,avx512f,avx512bw")]
pub(super) fn runs512<'a>(
    powers: &[u128; POWERS],
    acc: u128,
    blocks: &'a [u8],
) -> (u128, &'a [u8]) {
    let bswap = _mm512_broadcast_i32x4(bswap_mask());
    let prepare = |bytes| _mm512_shuffle_epi8(bytes, bswap);
    let powers = &powers[POWERS - RUN512..];
    run_loop512(powers, acc, blocks, prepare, |sums| reduce512(sums))
}

/// GF2P8AFFINEQB's matrix for reversing the bits of every byte (row `7 - i` picks bit `i`).
const BYTE_BIT_REVERSAL: u64 = 0x8040_2010_0804_0201;

/// [`runs512`] in the natural bit order (coefficient of x^i in bit i, modulo
/// x^128 + x^7 + x^2 + x + 1), where a GHASH block is its bytes with each byte's bits
/// reversed (GF2P8AFFINEQB) rather than its bytes reversed (VPSHUFB). On Intel cores both
/// the byte shuffle and the multiplications run only on port 5; the affine instruction runs
/// on port 0, which leaves port 5 to the multiplications: about a fifth faster (see
/// BENCHMARKS.md). `natural` holds H^64..H^1 in that order and form
/// ([`super::GhashKey`] derives them from the POLYVAL powers); the POLYVAL state in and out
/// is the same state with its 128 bits reversed.
#[target_feature(enable = "sse2,ssse3,pclmulqdq,avx,avx2,vpclmulqdq,avx512f,avx512bw,gfni")]
pub(super) fn runs512_gfni<'a>(
    natural: &[u128; NATURAL_POWERS],
    acc: u128,
    blocks: &'a [u8],
) -> (u128, &'a [u8]) {
    let reversal = _mm512_set1_epi64(BYTE_BIT_REVERSAL as i64);
    let prepare = |bytes| _mm512_gf2p8affine_epi64_epi8(bytes, reversal, 0);
    let (acc, rest) = run_loop512(natural, acc.reverse_bits(), blocks, prepare, |sums| {
        reduce512_natural(sums)
    });
    (acc.reverse_bits(), rest)
}

/// The loop of both 512-bit paths: `powers` are the 64 powers a run's blocks are multiplied
/// by, in block order and in the path's form, `prepare` turns 64 loaded bytes into four of
/// its field elements, and `reduce` reduces each lane of the summed products.
#[inline]
#[target_feature(enable = "sse2,avx,avx2,vpclmulqdq,avx512f,avx512bw")]
fn run_loop512<'a>(
    powers: &[u128],
    acc: u128,
    blocks: &'a [u8],
    prepare: impl Fn(__m512i) -> __m512i,
    reduce: impl Fn([__m512i; 3]) -> __m512i,
) -> (u128, &'a [u8]) {
    let mut runs = blocks.chunks_exact(16 * RUN512);
    if blocks.len() < 16 * RUN512 {
        return (acc, blocks);
    }
    let mut acc = load_u128(&acc);
    let mut hs = [_mm512_setzero_si512(); RUN512 / 4];
    for (k, h) in hs.iter_mut().enumerate() {
        *h = load_powers512(powers, 4 * k);
    }
    let end = blocks.as_ptr_range().end;
    for run in &mut runs {
        prefetch_lines::<16>(run.as_ptr().wrapping_add(PREFETCH_AHEAD), end);
        let mut sums = [_mm512_setzero_si512(); 3];
        for (k, h) in hs.chunks_exact(2).enumerate() {
            let mut x0 = prepare(load512(run, 128 * k));
            let x1 = prepare(load512(run, 128 * k + 64));
            if k == 0 {
                x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(acc));
            }
            multiply_pair(&mut sums, [x0, x1], [h[0], h[1]]);
        }
        acc = fold512(reduce(sums));
    }
    (store_u128(acc), runs.remainder())
}

/// Asks for the `LINES` cache lines of one run at `at` (16 for a 512-bit run of 1 KiB, 4
/// for a 256-bit one), unless it starts past `end`.
#[inline]
#[target_feature(enable = "sse")]
fn prefetch_lines<const LINES: usize>(at: *const u8, end: *const u8) {
    if at >= end {
        return;
    }
    // A prefetch is only a hint: it never faults, whatever the address (here up to one run
    // past the message's last one), so the intrinsic is safe.
    for line in 0..LINES {
        _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(64 * line).cast());
    }
}

/// Adds the 256-bit products `x[0]·h[0] + x[1]·h[1]` (four blocks per register) to the
/// unreduced sums (lo, mid, hi). Two registers at a time: each sum takes both products in
/// one three-way XOR, two XORs per 64 bytes instead of three beside the four multiplications
/// (which, with the byte shuffle of the POLYVAL path, compete for one port).
#[inline]
#[target_feature(enable = "avx512f,vpclmulqdq")]
fn multiply_pair(sums: &mut [__m512i; 3], x: [__m512i; 2], h: [__m512i; 2]) {
    let [lo, mid, hi] = sums;
    *lo = xor3(
        *lo,
        _mm512_clmulepi64_epi128(x[0], h[0], 0x00),
        _mm512_clmulepi64_epi128(x[1], h[1], 0x00),
    );
    *hi = xor3(
        *hi,
        _mm512_clmulepi64_epi128(x[0], h[0], 0x11),
        _mm512_clmulepi64_epi128(x[1], h[1], 0x11),
    );
    for (x, h) in x.into_iter().zip(h) {
        *mid = xor3(
            *mid,
            _mm512_clmulepi64_epi128(x, h, 0x01),
            _mm512_clmulepi64_epi128(x, h, 0x10),
        );
    }
}

/// `a ^ b ^ c` in one VPTERNLOGQ.
#[inline]
#[target_feature(enable = "avx512f")]
fn xor3(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
    _mm512_ternarylogic_epi64(a, b, c, 0x96)
}

/// `reduce` on each 128-bit lane (the reduction is linear, so reducing the lanes and then
/// adding them equals reducing their sum): one register to fold instead of three.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,vpclmulqdq")]
fn reduce512(sums: [__m512i; 3]) -> __m512i {
    let (lo, hi) = merge_mid(sums);
    let poly = _mm512_set1_epi64(0xc200_0000_0000_0000u64 as i64);
    let t = _mm512_clmulepi64_epi128(lo, poly, 0x10);
    let lo = _mm512_xor_si512(_mm512_shuffle_epi32(lo, _MM_PERM_BADC), t);
    let t = _mm512_clmulepi64_epi128(lo, poly, 0x10);
    xor3(hi, _mm512_shuffle_epi32(lo, _MM_PERM_BADC), t)
}

/// The natural-order counterpart of [`reduce512`], on each lane: with the 256-bit product
/// as 64-bit words q3..q0, x^128 = x^7 + x^2 + x + 1 (0x87) folds q3·x^192 into q2 and q1,
/// then q2·x^128 into q1 and q0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,vpclmulqdq")]
fn reduce512_natural(sums: [__m512i; 3]) -> __m512i {
    let (lo, hi) = merge_mid(sums);
    let r = _mm512_set1_epi64(0x87);
    let t = _mm512_clmulepi64_epi128(hi, r, 0x01);
    let lo = _mm512_xor_si512(lo, _mm512_bslli_epi128(t, 8));
    let hi = _mm512_xor_si512(hi, _mm512_bsrli_epi128(t, 8));
    _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(hi, r, 0x00))
}

/// Each lane's 256-bit product as (low, high) 128-bit halves: the sum of the two cross
/// products (`mid`) added in across the middle 64-bit boundary. Both reductions start so.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn merge_mid([lo, mid, hi]: [__m512i; 3]) -> (__m512i, __m512i) {
    (
        _mm512_xor_si512(lo, _mm512_bslli_epi128(mid, 8)),
        _mm512_xor_si512(hi, _mm512_bsrli_epi128(mid, 8)),
    )
}
