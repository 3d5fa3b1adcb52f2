//! Sign throughput of each algorithm at 64 B .. 1 MiB: our `SigningKey::sign` (on the
//! detected backend and on each fallback), the raw RustCrypto primitive over the contiguous
//! message, OpenSSL and aws-lc-rs, in the same run; the CMAC batch API over 8 messages of
//! 4 KiB against single messages; plus the 3.1.1 key derivation and the preauth hash.
//!
//! `cargo bench -p benches --bench signing`. The machine has 2 shared cores, so the run is
//! kept short (0.5 s warm-up, 1 s measurement, 15 samples); criterion reports medians.

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit};
use benches::{message, size_label, SIZES};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::Mac as _;
use openssl::cipher::Cipher as OsslCipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use openssl::symm::Cipher as OsslSymmCipher;
use smb_core::header::Dialect;
use smb_core::signing::aes_gmac::nonce_from_header;
use smb_core::signing::{derive_session_keys, Algorithm, Backend, Cipher, PreauthHash, SigningKey};

const KEY: [u8; 16] = *b"0123456789abcdef";

/// The MAC over the message with its signature slot zeroed, as the raw primitives see it
/// (the message is prepared once, so they pay for no copy either).
fn zeroed(len: usize) -> Vec<u8> {
    let mut m = message(len, 42);
    m[48..64].fill(0);
    m
}

fn openssl_hmac(pkey: &PKey<Private>, data: &[u8]) -> [u8; 16] {
    let mut s = Signer::new(MessageDigest::sha256(), pkey).unwrap();
    s.update(data).unwrap();
    let mut full = [0u8; 32];
    s.sign(&mut full).unwrap();
    full[..16].try_into().unwrap()
}

fn openssl_cmac(pkey: &PKey<Private>, data: &[u8]) -> [u8; 16] {
    let mut s = Signer::new_without_digest(pkey).unwrap();
    s.update(data).unwrap();
    let mut out = [0u8; 16];
    s.sign(&mut out).unwrap();
    out
}

/// GMAC = GCM with the message as AAD and no plaintext; the context keeps the key schedule
/// and each call only sets the IV.
fn openssl_gmac(ctx: &mut CipherCtx, nonce: &[u8; 12], data: &[u8]) -> [u8; 16] {
    ctx.encrypt_init(None, None, Some(nonce)).unwrap();
    ctx.cipher_update(data, None).unwrap();
    ctx.cipher_final(&mut []).unwrap();
    let mut tag = [0u8; 16];
    ctx.tag(&mut tag).unwrap();
    tag
}

/// aws-lc-rs keys, prepared once (as ours are).
struct AwsLc {
    hmac: aws_lc_rs::hmac::Key,
    cmac: aws_lc_rs::cmac::Key,
    gcm: aws_lc_rs::aead::LessSafeKey,
}

impl AwsLc {
    fn new() -> Self {
        AwsLc {
            hmac: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &KEY),
            cmac: aws_lc_rs::cmac::Key::new(aws_lc_rs::cmac::AES_128, &KEY).unwrap(),
            gcm: aws_lc_rs::aead::LessSafeKey::new(
                aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, &KEY).unwrap(),
            ),
        }
    }

    fn mac(&self, algorithm: Algorithm, nonce: &[u8; 12], data: &[u8]) -> [u8; 16] {
        match algorithm {
            Algorithm::HmacSha256 => aws_lc_rs::hmac::sign(&self.hmac, data).as_ref()[..16]
                .try_into()
                .unwrap(),
            Algorithm::AesCmac => aws_lc_rs::cmac::sign(&self.cmac, data)
                .unwrap()
                .as_ref()
                .try_into()
                .unwrap(),
            // GMAC = GCM with the message as AAD and an empty plaintext.
            Algorithm::AesGmac => self
                .gcm
                .seal_in_place_separate_tag(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                    aws_lc_rs::aead::Aad::from(data),
                    &mut [],
                )
                .unwrap()
                .as_ref()
                .try_into()
                .unwrap(),
        }
    }
}

/// The backends worth timing for an algorithm besides the detected one: every GHASH path for
/// GMAC, the portable AES for CMAC; HMAC has one path (`sha2` picks SHA-NI itself).
fn fallbacks(algorithm: Algorithm) -> Vec<Backend> {
    let all: Vec<Backend> = match algorithm {
        Algorithm::HmacSha256 => vec![],
        Algorithm::AesCmac => vec![Backend::Portable],
        Algorithm::AesGmac => Backend::ALL.to_vec(),
    };
    all.into_iter()
        .filter(|b| b.available() && *b != Backend::detect())
        .collect()
}

fn rustcrypto_hmac(data: &[u8]) -> [u8; 16] {
    let mut m = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&KEY).unwrap();
    m.update(data);
    m.finalize().into_bytes()[..16].try_into().unwrap()
}

fn rustcrypto_cmac(prepared: &cmac::Cmac<aes::Aes128>, data: &[u8]) -> [u8; 16] {
    let mut m = prepared.clone();
    cmac::Mac::update(&mut m, data);
    cmac::Mac::finalize(m).into_bytes().into()
}

fn rustcrypto_gmac(gcm: &Aes128Gcm, nonce: &[u8; 12], data: &[u8]) -> [u8; 16] {
    let mut empty: [u8; 0] = [];
    gcm.encrypt_in_place_detached(nonce.into(), data, &mut empty)
        .unwrap()
        .into()
}

fn signing(c: &mut Criterion) {
    let hmac_pkey = PKey::hmac(&KEY).unwrap();
    let cmac_pkey = PKey::cmac(&OsslSymmCipher::aes_128_cbc(), &KEY).unwrap();
    let mut gcm_ctx = CipherCtx::new().unwrap();
    gcm_ctx
        .encrypt_init(Some(OsslCipher::aes_128_gcm()), Some(&KEY), None)
        .unwrap();
    let cmac_prepared = <cmac::Cmac<aes::Aes128> as cmac::Mac>::new_from_slice(&KEY).unwrap();
    let gcm = Aes128Gcm::new(&KEY.into());
    let aws = AwsLc::new();

    for algorithm in Algorithm::ALL {
        let key = SigningKey::new(algorithm, &KEY).unwrap();
        let mut group = c.benchmark_group(format!("sign/{}", algorithm.name()));
        for len in SIZES {
            let mut msg = message(len, 42);
            let plain = zeroed(len);
            let nonce = nonce_from_header(&plain).unwrap();

            // The three implementations must agree before they are timed.
            key.sign(&mut msg).unwrap();
            let mut signed_input = msg.clone();
            signed_input[48..64].fill(0);
            let (raw, ossl): ([u8; 16], [u8; 16]) = match algorithm {
                Algorithm::HmacSha256 => (
                    rustcrypto_hmac(&signed_input),
                    openssl_hmac(&hmac_pkey, &signed_input),
                ),
                Algorithm::AesCmac => (
                    rustcrypto_cmac(&cmac_prepared, &signed_input),
                    openssl_cmac(&cmac_pkey, &signed_input),
                ),
                Algorithm::AesGmac => (
                    rustcrypto_gmac(&gcm, &nonce, &signed_input),
                    openssl_gmac(&mut gcm_ctx, &nonce, &signed_input),
                ),
            };
            assert_eq!(
                &msg[48..64],
                &raw[..],
                "{algorithm} {len}: ours vs RustCrypto"
            );
            assert_eq!(
                &msg[48..64],
                &ossl[..],
                "{algorithm} {len}: ours vs OpenSSL"
            );
            assert_eq!(
                &msg[48..64],
                &aws.mac(algorithm, &nonce, &signed_input)[..],
                "{algorithm} {len}: ours vs aws-lc-rs"
            );

            group.throughput(Throughput::Bytes(len as u64));
            let label = size_label(len);
            group.bench_function(BenchmarkId::new("ours", &label), |b| {
                b.iter(|| key.sign(black_box(&mut msg)).unwrap())
            });
            for backend in fallbacks(algorithm) {
                let forced = SigningKey::with_backend(algorithm, &KEY, backend).unwrap();
                let mut check = msg.clone();
                forced.sign(&mut check).unwrap();
                assert_eq!(check, msg, "{algorithm} {len}: {} path", backend.name());
                group.bench_function(
                    BenchmarkId::new(format!("ours-{}", backend.name()), &label),
                    |b| b.iter(|| forced.sign(black_box(&mut check)).unwrap()),
                );
            }
            group.bench_function(BenchmarkId::new("aws-lc-rs", &label), |b| {
                b.iter(|| aws.mac(algorithm, &nonce, black_box(&plain)))
            });
            group.bench_function(
                BenchmarkId::new("rustcrypto", &label),
                |b| match algorithm {
                    Algorithm::HmacSha256 => b.iter(|| rustcrypto_hmac(black_box(&plain))),
                    Algorithm::AesCmac => {
                        b.iter(|| rustcrypto_cmac(&cmac_prepared, black_box(&plain)))
                    }
                    Algorithm::AesGmac => {
                        b.iter(|| rustcrypto_gmac(&gcm, &nonce, black_box(&plain)))
                    }
                },
            );
            group.bench_function(BenchmarkId::new("openssl", &label), |b| match algorithm {
                Algorithm::HmacSha256 => b.iter(|| openssl_hmac(&hmac_pkey, black_box(&plain))),
                Algorithm::AesCmac => b.iter(|| openssl_cmac(&cmac_pkey, black_box(&plain))),
                Algorithm::AesGmac => {
                    b.iter(|| openssl_gmac(&mut gcm_ctx, &nonce, black_box(&plain)))
                }
            });
        }
        group.finish();
    }
}

/// 8 independent messages of 4 KiB (a server's READ responses in flight): our batch API,
/// our one-by-one `sign`, and aws-lc-rs on one 4 KiB message (throughput per byte signed).
fn batch(c: &mut Criterion) {
    const N: usize = 8;
    const LEN: usize = 4096;
    let key = SigningKey::new(Algorithm::AesCmac, &KEY).unwrap();
    let aws = AwsLc::new();
    let mut messages: Vec<Vec<u8>> = (0..N as u64).map(|i| message(LEN, i)).collect();
    let mut expected = messages.clone();
    for m in &mut expected {
        key.sign(m).unwrap();
    }
    {
        let mut refs: Vec<&mut [u8]> = messages.iter_mut().map(|m| &mut m[..]).collect();
        key.sign_batch(&mut refs).unwrap();
    }
    assert_eq!(messages, expected, "batch = one by one");
    let mut group = c.benchmark_group("batch/aes-cmac");
    group.throughput(Throughput::Bytes((N * LEN) as u64));
    group.bench_function("ours-batch-8x4KiB", |b| {
        b.iter(|| {
            let mut refs: Vec<&mut [u8]> = messages.iter_mut().map(|m| &mut m[..]).collect();
            key.sign_batch(black_box(&mut refs)).unwrap()
        })
    });
    group.bench_function("ours-serial-8x4KiB", |b| {
        b.iter(|| {
            for m in messages.iter_mut() {
                key.sign(black_box(m)).unwrap();
            }
        })
    });
    let plain = zeroed(LEN);
    group.throughput(Throughput::Bytes(LEN as u64));
    group.bench_function("aws-lc-rs-1x4KiB", |b| {
        b.iter(|| aws.mac(Algorithm::AesCmac, &[0; 12], black_box(&plain)))
    });
    group.finish();
}

fn key_derivation(c: &mut Criterion) {
    let session_key = [0x41u8; 16];
    let preauth = [0x5Au8; 64];
    let mut group = c.benchmark_group("kdf");
    group.bench_function("derive_session_keys/3.1.1", |b| {
        b.iter(|| {
            derive_session_keys(
                Dialect::SMB311,
                black_box(&session_key),
                Some(&preauth),
                None,
            )
            .unwrap()
        })
    });
    group.bench_function("derive_session_keys/3.1.1-aes-256-gcm", |b| {
        b.iter(|| {
            derive_session_keys(
                Dialect::SMB311,
                black_box(&session_key),
                Some(&preauth),
                Some(Cipher::Aes256Gcm),
            )
            .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("preauth");
    // Typical NEGOTIATE / SESSION_SETUP sizes.
    for len in [256usize, 1024, 4096] {
        let msg = message(len, 0);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("update", size_label(len)), |b| {
            let mut h = PreauthHash::new();
            b.iter(|| h.update(black_box(&msg)))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(15)
}

criterion_group! { name = benches; config = config(); targets = signing, batch, key_derivation }
criterion_main!(benches);
