//! Portable GHASH: carry-less multiplication with integer multiplies on operands masked to
//! every fourth bit, so the carries land in bits that are masked off (the method of BearSSL's
//! `ghash_ctmul64`). Constant time: no table lookups, no data-dependent branches.

/// The low 64 bits of the carry-less product of `x` and `y`. In each partial product the
/// operands have one bit in four set, so a column sums at most 16 terms; only column 60
/// reaches 16, and its carry goes to bit 64, outside the result.
fn bmul64(x: u64, y: u64) -> u64 {
    const M0: u64 = 0x1111_1111_1111_1111;
    const M1: u64 = 0x2222_2222_2222_2222;
    const M2: u64 = 0x4444_4444_4444_4444;
    const M3: u64 = 0x8888_8888_8888_8888;
    let (x0, x1, x2, x3) = (x & M0, x & M1, x & M2, x & M3);
    let (y0, y1, y2, y3) = (y & M0, y & M1, y & M2, y & M3);
    let m = |a: u64, b: u64| a.wrapping_mul(b);
    let z0 = m(x0, y0) ^ m(x1, y3) ^ m(x2, y2) ^ m(x3, y1);
    let z1 = m(x0, y1) ^ m(x1, y0) ^ m(x2, y3) ^ m(x3, y2);
    let z2 = m(x0, y2) ^ m(x1, y1) ^ m(x2, y0) ^ m(x3, y3);
    let z3 = m(x0, y3) ^ m(x1, y2) ^ m(x2, y1) ^ m(x3, y0);
    (z0 & M0) | (z1 & M1) | (z2 & M2) | (z3 & M3)
}

/// The 128-bit carry-less product of two 64-bit values: the high half is the low half of
/// the product of the bit-reversed operands, reversed again and shifted by one.
fn clmul64(x: u64, y: u64) -> u128 {
    let lo = bmul64(x, y);
    let hi = bmul64(x.reverse_bits(), y.reverse_bits()).reverse_bits() >> 1;
    u128::from(lo) | (u128::from(hi) << 64)
}

/// `a·b·x^-128` modulo x^128 + x^127 + x^126 + x^121 + 1 (POLYVAL's "dot").
pub(super) fn dot(a: u128, b: u128) -> u128 {
    let (lo, hi) = mul(a, b);
    reduce(lo, hi)
}

/// The 256-bit carry-less product, as (low, high) halves.
fn mul(a: u128, b: u128) -> (u128, u128) {
    let (a0, a1) = (a as u64, (a >> 64) as u64);
    let (b0, b1) = (b as u64, (b >> 64) as u64);
    let lo = clmul64(a0, b0);
    let hi = clmul64(a1, b1);
    let mid = clmul64(a0, b1) ^ clmul64(a1, b0);
    (lo ^ (mid << 64), hi ^ (mid >> 64))
}

/// Montgomery reduction of `hi·x^128 + lo` by x^128, 64 bits at a time: adding `l0·P`
/// clears the low 64 bits (P's constant term is 1), then the value is divided by x^64.
fn reduce(lo: u128, hi: u128) -> u128 {
    // x^127 + x^126 + x^121 divided by x^64.
    const P_HI: u64 = 0xc200_0000_0000_0000;
    let fold = |v: u128| -> u128 {
        let (l0, l1) = (v as u64, (v >> 64) as u64);
        (u128::from(l1) | (u128::from(l0) << 64)) ^ clmul64(l0, P_HI)
    };
    hi ^ fold(fold(lo))
}

/// Absorbs the blocks of `segments` (at most `POWERS` in all) with a single reduction.
pub(super) fn small(powers: &[u128; super::POWERS], acc: u128, segments: &[&[u8]]) -> u128 {
    let n: usize = segments.iter().map(|s| s.len() / 16).sum();
    if n == 0 {
        return acc;
    }
    let hs = &powers[super::POWERS - n.min(super::POWERS)..];
    let blocks = segments.iter().flat_map(|s| s.chunks_exact(16));
    let (mut lo, mut hi) = (0u128, 0u128);
    for (i, (block, h)) in blocks.zip(hs).enumerate() {
        let mut x = [0u8; 16];
        x.copy_from_slice(block);
        let mut x = u128::from_be_bytes(x);
        if i == 0 {
            x ^= acc;
        }
        let (l, h) = mul(x, *h);
        lo ^= l;
        hi ^= h;
    }
    reduce(lo, hi)
}

/// Absorbs whole 8-block runs, one reduction each; returns the state and the blocks left.
pub(super) fn runs<'a>(
    powers: &[u128; super::POWERS],
    mut acc: u128,
    blocks: &'a [u8],
) -> (u128, &'a [u8]) {
    let mut runs = blocks.chunks_exact(16 * 8);
    for run in &mut runs {
        acc = small(powers, acc, &[run]);
    }
    (acc, runs.remainder())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clmul64_matches_shift_and_add() {
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let y = x.rotate_left(29) ^ 0xdead_beef_f00d;
            let mut want = 0u128;
            for i in 0..64 {
                if (y >> i) & 1 == 1 {
                    want ^= u128::from(x) << i;
                }
            }
            assert_eq!(clmul64(x, y), want);
        }
        assert_eq!(clmul64(u64::MAX, u64::MAX).count_ones(), 64);
    }
}
