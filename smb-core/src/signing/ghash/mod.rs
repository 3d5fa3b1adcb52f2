//! Streaming GHASH (NIST SP 800-38D 6.4) with run-time dispatch between three paths:
//!
//! - [`vclmul`]: VPCLMULQDQ over 256-bit (two blocks per instruction) or 512-bit vectors
//!   (four), one reduction per 16 or 64 blocks; with GFNI, the 512-bit runs in the natural
//!   bit order (blocks put in order off the multiplier's port);
//! - [`clmul`]: PCLMULQDQ, one reduction per 8 blocks;
//! - [`soft`]: portable constant-time carry-less multiplication (integer multiplies on
//!   masked operands), for CPUs without either.
//!
//! All three compute in the POLYVAL representation (RFC 8452, appendix A): a GHASH block `X`
//! is the POLYVAL element `ByteReverse(X)` and the key is `mulX_POLYVAL(ByteReverse(H))`, so a
//! field product is one 128x128 carry-less multiplication and one Montgomery reduction by
//! `x^128`, with no bit reflection. The powers `H^1..H^32` are computed once per key; the
//! aggregated paths multiply a run of blocks by descending powers and reduce once:
//! `S' = (S + X_1)·H^n + X_2·H^(n-1) + ... + X_n·H`.

#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod clmul;
mod soft;
#[cfg(target_arch = "x86_64")]
mod vclmul;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// How many powers of H a key keeps: the widest path multiplies 64 blocks per reduction, and
/// the last run of a message (up to 63 blocks) takes the padded last block and the length
/// block along: 65.
pub(crate) const POWERS: usize = 66;

/// The implementation a [`super::SigningKey`] runs on. Chosen at run time by
/// [`Backend::detect`]; tests and benches force each one with
/// [`super::SigningKey::with_backend`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Portable Rust: GHASH by integer multiplication, AES from the `aes` crate.
    Portable,
    /// AES-NI and PCLMULQDQ on 128-bit registers.
    Clmul,
    /// AES-NI, and VPCLMULQDQ on 256-bit registers (AVX2).
    Vclmul256,
    /// AES-NI, and VPCLMULQDQ on 512-bit registers (AVX-512F/BW).
    Vclmul512,
    /// As [`Backend::Vclmul512`], the blocks' bits put in order by GFNI instead of a byte
    /// shuffle (see `vclmul::runs512_gfni`).
    Vclmul512Gfni,
}

impl Backend {
    /// Every backend, the slowest first.
    pub const ALL: [Backend; 5] = [
        Backend::Portable,
        Backend::Clmul,
        Backend::Vclmul256,
        Backend::Vclmul512,
        Backend::Vclmul512Gfni,
    ];

    /// Whether this CPU can run the backend.
    pub fn available(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Clmul => {
                std::is_x86_feature_detected!("aes")
                    && std::is_x86_feature_detected!("pclmulqdq")
                    && std::is_x86_feature_detected!("ssse3")
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Vclmul256 => {
                Backend::Clmul.available()
                    && std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("vpclmulqdq")
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Vclmul512 => {
                Backend::Vclmul256.available()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Vclmul512Gfni => {
                Backend::Vclmul512.available() && std::is_x86_feature_detected!("gfni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest backend this CPU runs: the 512-bit VPCLMULQDQ path measured fastest from
    /// 16 KiB up on the benchmark machine, with GFNI faster still (see BENCHMARKS.md;
    /// messages of up to ~480 bytes never reach the wide registers on any path), then
    /// 256-bit, then PCLMULQDQ.
    pub fn detect() -> Backend {
        use std::sync::OnceLock;
        static DETECTED: OnceLock<Backend> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            [
                Backend::Vclmul512Gfni,
                Backend::Vclmul512,
                Backend::Vclmul256,
                Backend::Clmul,
            ]
            .into_iter()
            .find(|b| b.available())
            .unwrap_or(Backend::Portable)
        })
    }

    /// Whether AES runs on AES-NI (every backend but the portable one needs it).
    pub(crate) fn aes_ni(self) -> bool {
        self != Backend::Portable
    }

    /// A short name for benches and test messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::Clmul => "pclmulqdq",
            Backend::Vclmul256 => "vpclmulqdq-256",
            Backend::Vclmul512 => "vpclmulqdq-512",
            Backend::Vclmul512Gfni => "vpclmulqdq-512-gfni",
        }
    }
}

/// A GHASH key: the powers of H, in POLYVAL form, and the path that uses them. Wiped on drop.
#[derive(Clone)]
pub(crate) struct GhashKey {
    backend: Backend,
    /// `powers[i] = H^(POWERS - i)`: descending, so `powers[POWERS - n..]` are the powers a
    /// run of n blocks is multiplied by, in block order.
    powers: [u128; POWERS],
    /// H^64..H^1 in the natural bit order, for [`Backend::Vclmul512Gfni`] (zero otherwise).
    natural: [u128; NATURAL_POWERS],
}

/// How many natural-order powers [`Backend::Vclmul512Gfni`] uses: one 512-bit run.
const NATURAL_POWERS: usize = 64;

impl Drop for GhashKey {
    fn drop(&mut self) {
        self.powers.zeroize();
        self.natural.zeroize();
    }
}

impl ZeroizeOnDrop for GhashKey {}

impl GhashKey {
    /// `h` = E(K, 0^128). A backend this CPU cannot run is replaced by the portable one, so
    /// a `GhashKey`'s backend is always one whose features were detected.
    pub(crate) fn new(h: &[u8; 16], backend: Backend) -> Self {
        let backend = if backend.available() {
            backend
        } else {
            Backend::Portable
        };
        let h1 = mulx(u128::from_be_bytes(*h));
        let mut powers = [0u128; POWERS];
        powers[POWERS - 1] = h1;
        let mut p = h1;
        for i in (0..POWERS - 1).rev() {
            p = dot(backend, p, h1);
            powers[i] = p;
        }
        let mut natural = [0u128; NATURAL_POWERS];
        if backend == Backend::Vclmul512Gfni {
            for (n, p) in natural.iter_mut().zip(&powers[POWERS - NATURAL_POWERS..]) {
                *n = to_natural(*p);
            }
        }
        GhashKey {
            backend,
            powers,
            natural,
        }
    }

    /// Absorbs whole runs of blocks (8, 16 or 64 per reduction, by path); returns the state
    /// and the blocks left over (fewer than one run), for [`GhashKey::small`].
    pub(crate) fn runs<'a>(&self, acc: u128, blocks: &'a [u8]) -> (u128, &'a [u8]) {
        match self.backend {
            Backend::Portable => soft::runs(&self.powers, acc, blocks),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `GhashKey`'s backend is one whose CPU features
            // `Backend::available` confirmed (checked in `GhashKey::new`).
            Backend::Clmul => unsafe { clmul::runs(&self.powers, acc, blocks) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, VPCLMULQDQ and AVX2 were detected.
            Backend::Vclmul256 => unsafe { vclmul::runs256(&self.powers, acc, blocks) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, VPCLMULQDQ, AVX-512F and AVX-512BW were detected (and with
            // them AVX2). The 64-block runs' leftover still takes 16-block runs.
            Backend::Vclmul512 => unsafe {
                let (acc, rest) = vclmul::runs512(&self.powers, acc, blocks);
                vclmul::runs256(&self.powers, acc, rest)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, and GFNI was detected too.
            Backend::Vclmul512Gfni => unsafe {
                let (acc, rest) = vclmul::runs512_gfni(&self.natural, acc, blocks);
                vclmul::runs256(&self.powers, acc, rest)
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => soft::runs(&self.powers, acc, blocks),
        }
    }

    /// Absorbs the blocks of `segments`, in order, as one sequence with a single reduction:
    /// each segment a whole number of blocks, at most [`POWERS`] blocks in all (checked: more
    /// go through [`GhashKey::runs`] first).
    pub(crate) fn small(&self, acc: u128, segments: &[&[u8]]) -> u128 {
        let n: usize = segments.iter().map(|s| s.len() / 16).sum();
        if n > POWERS {
            return segments.iter().fold(acc, |acc, s| self.absorb(acc, s));
        }
        match self.backend {
            Backend::Portable => soft::small(&self.powers, acc, segments),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: every x86-64 backend but the portable one has PCLMULQDQ and SSSE3,
            // confirmed by `Backend::available` in `GhashKey::new`.
            _ => unsafe { clmul::small(&self.powers, acc, segments) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => soft::small(&self.powers, acc, segments),
        }
    }

    /// The whole GMAC tag (`GHASH ^ E(K, J0)`) of at most [`POWERS`] blocks from a zero
    /// state, AES and GHASH in one function; `None` on the portable path or for more blocks.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn small_tag(
        &self,
        segments: &[&[u8]],
        round_keys: &super::aesni::RoundKeys,
        j0: &[u8; 16],
    ) -> Option<[u8; 16]> {
        let n: usize = segments.iter().map(|s| s.len() / 16).sum();
        if self.backend == Backend::Portable || n > POWERS {
            return None;
        }
        // SAFETY: the backend is not the portable one, so PCLMULQDQ and SSSE3 were detected
        // (`GhashKey::new`), and a `RoundKeys` exists only once AES-NI was detected.
        Some(unsafe { clmul::small_tag(&self.powers, segments, round_keys.blocks(), j0) })
    }

    /// The field product of two POLYVAL-form values (`dot`, RFC 8452): multiplying a state
    /// by a power of H from [`GhashKey::power`].
    pub(crate) fn mul(&self, a: u128, b: u128) -> u128 {
        dot(self.backend, a, b)
    }

    /// H^n (n at least 1) in the form the state is multiplied by: absorbing n blocks into
    /// a state `s` gives `mul(s, power(n))` plus the absorption of the same blocks from zero
    /// (GHASH is linear), which lets the hash of a message's tail be computed first.
    /// Square-and-multiply: about 2·log2(n) products.
    pub(crate) fn power(&self, n: u64) -> u128 {
        let h = self.powers[POWERS - 1];
        if n == 0 {
            return h; // callers never ask; H^1 keeps this total
        }
        let mut p = h;
        for bit in (0..63 - n.leading_zeros()).rev() {
            p = self.mul(p, p);
            if n >> bit & 1 == 1 {
                p = self.mul(p, h);
            }
        }
        p
    }

    /// Absorbs whole blocks (`blocks.len()` a multiple of 16) into the POLYVAL-form state.
    pub(crate) fn absorb(&self, acc: u128, blocks: &[u8]) -> u128 {
        let (acc, rest) = self.runs(acc, blocks);
        self.small(acc, &[rest])
    }
}

/// The field product of two POLYVAL-form values on `backend` (which `GhashKey::new` made
/// one this CPU runs).
fn dot(backend: Backend, a: u128, b: u128) -> u128 {
    match backend {
        Backend::Portable => soft::dot(a, b),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: every backend but the portable one has PCLMULQDQ, confirmed by
        // `Backend::available` in `GhashKey::new`.
        _ => unsafe { clmul::dot(a, b) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => soft::dot(a, b),
    }
}

/// `mulX_POLYVAL` (RFC 8452, appendix A): multiplication by x modulo
/// x^128 + x^127 + x^126 + x^121 + 1. Branch-free (the key goes through it).
fn mulx(v: u128) -> u128 {
    let carry = 0u128.wrapping_sub(v >> 127);
    (v << 1) ^ (carry & 0xc200_0000_0000_0000_0000_0000_0000_0001)
}

/// The inverse of [`mulx`]: division by x. `mulx` leaves bit 0 clear unless it added the
/// polynomial (whose constant term is 1), so bit 0 says whether to take it back out.
fn divx(v: u128) -> u128 {
    let added = 0u128.wrapping_sub(v & 1);
    let v = v ^ (added & 0xc200_0000_0000_0000_0000_0000_0000_0001);
    (v >> 1) | (added & 1 << 127)
}

/// A stored power of H in the natural bit order (coefficient of x^i in bit i, modulo
/// x^128 + x^7 + x^2 + x + 1). A GHASH element Y is the POLYVAL element
/// `from_be_bytes(Y)` (RFC 8452 appendix A), and in the natural order that value with its
/// 128 bits reversed; the stored power of H^k is that POLYVAL element times x
/// (`mulX_POLYVAL`, which the key goes through), hence the division first.
fn to_natural(power: u128) -> u128 {
    divx(power).reverse_bits()
}

/// The running state of one GHASH (the key is passed to each call). Wiped on drop.
#[derive(Clone, Default)]
pub(crate) struct GhashState {
    /// The running POLYVAL-form state.
    acc: u128,
    /// A partial block carried between `update` calls.
    pending: [u8; 16],
    pending_len: usize,
    /// Bytes absorbed so far, for the length block.
    len: u64,
}

impl Drop for GhashState {
    fn drop(&mut self) {
        self.acc.zeroize();
        self.pending.zeroize();
    }
}

impl GhashState {
    /// Feeds data in any number of pieces; only whole blocks reach the multiplier, straight
    /// from `data` (a partial block is buffered).
    pub(crate) fn update(&mut self, key: &GhashKey, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (16 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 16 {
                return;
            }
            self.acc = key.absorb(self.acc, &self.pending);
            self.pending_len = 0;
        }
        let whole = data.len() - data.len() % 16;
        self.acc = key.absorb(self.acc, &data[..whole]);
        let tail = &data[whole..];
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
    }

    /// GHASH of the data as GCM's additional data with an empty ciphertext: the last partial
    /// block zero-padded, then `[len(A) in bits]64be || [0]64be`, in one reduction.
    pub(crate) fn finalize_aad(&self, key: &GhashKey) -> [u8; 16] {
        let mut last = [0u8; 32];
        let mut at = 0;
        if self.pending_len > 0 {
            last[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            at = 16;
        }
        last[at..at + 8].copy_from_slice(&self.len.wrapping_mul(8).to_be_bytes());
        let s = key.small(self.acc, &[&last[..at + 16]]);
        last.zeroize();
        s.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulx_matches_rfc8452_example() {
        // RFC 8452 appendix A: mulX_POLYVAL(01000000000000000000000000000000) =
        // 02000000000000000000000000000000, and of 9c98c04df9387ded828175a92ba652d8 it is
        // 3931819bf271fada0503eb52574ca572.
        let le = |s: &str| u128::from_le_bytes(hex16(s));
        assert_eq!(
            mulx(le("01000000000000000000000000000000")),
            le("02000000000000000000000000000000")
        );
        assert_eq!(
            mulx(le("9c98c04df9387ded828175a92ba652d8")),
            le("3931819bf271fada0503eb52574ca572")
        );
    }

    #[test]
    fn divx_undoes_mulx() {
        for v in [
            0u128,
            1,
            1 << 127,
            u128::MAX,
            0x9c98_c04d_f938_7ded_8281_75a9_2ba6_52d8,
        ] {
            assert_eq!(divx(mulx(v)), v, "{v:#x}");
        }
    }

    fn hex16(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// Absorbing n blocks into a state equals the state times H^n plus the same blocks
    /// absorbed from zero, for every path and lengths on both sides of each run size.
    #[test]
    fn absorbing_from_a_state_is_the_state_times_a_power_plus_the_blocks() {
        let h = hex16("66e94bd4ef8a2c3b884cfa59ca342b2e");
        let data: Vec<u8> = (0..16 * 300u32).map(|i| (i * 13 + 5) as u8).collect();
        for backend in Backend::ALL.into_iter().filter(|b| b.available()) {
            let key = GhashKey::new(&h, backend);
            for blocks in [1usize, 2, 7, 8, 16, 63, 64, 65, 66, 67, 129, 300] {
                let d = &data[..16 * blocks];
                let state = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
                assert_eq!(
                    key.absorb(state, d),
                    key.mul(state, key.power(blocks as u64)) ^ key.absorb(0, d),
                    "{} over {blocks} blocks",
                    backend.name()
                );
            }
        }
    }

    /// Every available path gives the portable path's result for every length up to three
    /// chunks of the widest path, from every start state.
    #[test]
    fn paths_agree_with_portable() {
        let h = hex16("66e94bd4ef8a2c3b884cfa59ca342b2e");
        let data: Vec<u8> = (0..16 * 100u32).map(|i| (i * 7 + 3) as u8).collect();
        let reference = GhashKey::new(&h, Backend::Portable);
        for backend in Backend::ALL.into_iter().filter(|b| b.available()) {
            let key = GhashKey::new(&h, backend);
            for blocks in 0..100 {
                let d = &data[..16 * blocks];
                let want = reference.absorb(0x1234, d);
                assert_eq!(
                    key.absorb(0x1234, d),
                    want,
                    "{} over {blocks} blocks",
                    backend.name()
                );
                // The same blocks as three segments, or as runs then the rest, agree.
                let (a, rest) = d.split_at(16 * (blocks / 3));
                let (b, c) = rest.split_at(16 * (rest.len() / 32));
                assert_eq!(
                    key.small(0x1234, &[a, b, c]),
                    want,
                    "{} segments",
                    backend.name()
                );
                let (acc, left) = key.runs(0x1234, d);
                assert_eq!(key.small(acc, &[left]), want, "{} runs", backend.name());
            }
        }
    }
}
