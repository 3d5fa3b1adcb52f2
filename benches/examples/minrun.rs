//! The signing comparison as the fastest of many short runs: for each size, ours (on every
//! backend) and aws-lc-rs, RustCrypto and OpenSSL take turns, each timed as the minimum over
//! 150 runs of a few hundred microseconds. On a machine shared with other jobs the minimum
//! is the run nobody interrupted, so the ratios hold where medians wander.
//!
//! `cargo run --release -p benches --example minrun` prints a Markdown table (GB/s = 10^9
//! bytes of whole message per second). `MINRUN_ONLY=hmac-sha256` (or aes-gmac, aes-cmac)
//! runs one algorithm's rows only. HMAC rows also time the streaming path
//! (`SigningKey::mac`, what `sign` used for every length before the one-pass path for
//! messages up to 512 bytes) as "streaming".

use std::hint::black_box;
use std::time::Instant;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::KeyInit;
use benches::{message, size_label, SIZES};
use hmac::Mac as _;
use smb_core::signing::aes_gmac::nonce_from_header;
use smb_core::signing::{Algorithm, Backend, SigningKey};

const KEY: [u8; 16] = *b"0123456789abcdef";

/// Seconds per call: the fastest of 150 runs of `iters` calls.
fn fastest(iters: u32, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..150 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / f64::from(iters));
    }
    best
}

fn main() {
    let aws_gcm = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, &KEY).unwrap(),
    );
    let aws_cmac = aws_lc_rs::cmac::Key::new(aws_lc_rs::cmac::AES_128, &KEY).unwrap();
    let aws_hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &KEY);
    let rc_gcm = aes_gcm::Aes128Gcm::new(&KEY.into());
    let rc_cmac = <cmac::Cmac<aes::Aes128> as cmac::Mac>::new_from_slice(&KEY).unwrap();
    let ossl_cmac = openssl::pkey::PKey::cmac(&openssl::symm::Cipher::aes_128_cbc(), &KEY).unwrap();

    println!(
        "| MAC | size | ours | aws-lc-rs | RustCrypto | OpenSSL | ours / aws-lc-rs | other paths |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let only = std::env::var("MINRUN_ONLY").ok();
    for algorithm in [
        Algorithm::AesGmac,
        Algorithm::AesCmac,
        Algorithm::HmacSha256,
    ] {
        if only.as_ref().is_some_and(|o| *o != algorithm.to_string()) {
            continue;
        }
        for len in SIZES {
            let iters = (300_000 / len).max(2) as u32;
            let mut msg = message(len, 1);
            let mut plain = msg.clone();
            plain[48..64].fill(0);
            let nonce = nonce_from_header(&plain).unwrap();
            let gbs = |secs: f64| len as f64 / secs / 1e9;
            let aws = gbs(match algorithm {
                Algorithm::AesGmac => fastest(iters, || {
                    let tag = aws_gcm.seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::from(black_box(&plain[..])),
                        &mut [],
                    );
                    let _tag = black_box(tag.unwrap());
                }),
                Algorithm::AesCmac => fastest(iters, || {
                    black_box(aws_lc_rs::cmac::sign(&aws_cmac, black_box(&plain)).unwrap());
                }),
                Algorithm::HmacSha256 => fastest(iters, || {
                    black_box(aws_lc_rs::hmac::sign(&aws_hmac, black_box(&plain)));
                }),
            });
            let rc = gbs(match algorithm {
                Algorithm::AesGmac => fastest(iters, || {
                    let mut empty: [u8; 0] = [];
                    let tag = rc_gcm.encrypt_in_place_detached(
                        (&nonce).into(),
                        black_box(&plain),
                        &mut empty,
                    );
                    black_box(tag.unwrap());
                }),
                Algorithm::AesCmac => fastest(iters, || {
                    let mut m = rc_cmac.clone();
                    cmac::Mac::update(&mut m, black_box(&plain));
                    black_box(cmac::Mac::finalize(m));
                }),
                Algorithm::HmacSha256 => fastest(iters, || {
                    let mut m =
                        <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&KEY).unwrap();
                    m.update(black_box(&plain));
                    black_box(m.finalize());
                }),
            });
            let ossl = gbs(match algorithm {
                Algorithm::AesCmac => fastest(iters, || {
                    let mut s = openssl::sign::Signer::new_without_digest(&ossl_cmac).unwrap();
                    s.update(black_box(&plain)).unwrap();
                    black_box(s.sign_to_vec().unwrap());
                }),
                // OpenSSL's GMAC and HMAC are in the criterion bench; CMAC is the one whose
                // serial speed matters for the batch comparison.
                _ => f64::NAN,
            });
            let mut ours = f64::NAN;
            let mut others = Vec::new();
            for backend in Backend::ALL.into_iter().filter(|b| b.available()) {
                let detected = backend == Backend::detect();
                let relevant = match algorithm {
                    Algorithm::AesGmac => true,
                    Algorithm::AesCmac => detected || backend == Backend::Portable,
                    Algorithm::HmacSha256 => detected,
                };
                if !relevant || (backend == Backend::Portable && len > 64 * 1024) {
                    continue;
                }
                let key = SigningKey::with_backend(algorithm, &KEY, backend).unwrap();
                let v = gbs(fastest(iters, || key.sign(black_box(&mut msg)).unwrap()));
                if detected && algorithm == Algorithm::HmacSha256 {
                    let streamed = gbs(fastest(iters, || {
                        let mut mac = key.mac(black_box(&plain)).unwrap();
                        mac.update(black_box(&plain));
                        black_box(mac.finalize());
                    }));
                    others.push(format!("streaming {streamed:.2}"));
                }
                if detected {
                    ours = v;
                } else {
                    others.push(format!("{} {v:.2}", backend.name()));
                }
            }
            let show = |v: f64| {
                if v.is_nan() {
                    "–".to_string()
                } else {
                    format!("{v:.2}")
                }
            };
            println!(
                "| {algorithm} | {} | {} | {} | {} | {} | {:.2} | {} |",
                size_label(len),
                show(ours),
                show(aws),
                show(rc),
                show(ossl),
                ours / aws,
                others.join(", ")
            );
        }
    }

    if only
        .as_ref()
        .is_some_and(|o| *o != Algorithm::AesCmac.to_string())
    {
        return;
    }
    // 8 independent 4 KiB messages through the CMAC batch API, against one 4 KiB message
    // through aws-lc-rs (GB/s of message signed).
    let key = SigningKey::new(Algorithm::AesCmac, &KEY).unwrap();
    let mut batch: Vec<Vec<u8>> = (0..8).map(|i| message(4096, i)).collect();
    let plain = message(4096, 0);
    let ours = 8.0 * 4096.0
        / fastest(20, || {
            let mut refs: Vec<&mut [u8]> = batch.iter_mut().map(|m| &mut m[..]).collect();
            key.sign_batch(black_box(&mut refs)).unwrap();
        })
        / 1e9;
    let serial = 8.0 * 4096.0
        / fastest(20, || {
            for m in batch.iter_mut() {
                key.sign(black_box(m)).unwrap();
            }
        })
        / 1e9;
    let aws = 4096.0
        / fastest(100, || {
            black_box(aws_lc_rs::cmac::sign(&aws_cmac, black_box(&plain)).unwrap());
        })
        / 1e9;
    println!("\n| AES-CMAC, 4 KiB messages | GB/s | vs aws-lc-rs, one message |");
    println!("|---|---:|---:|");
    println!("| ours, batch of 8 | {ours:.2} | {:.2} |", ours / aws);
    println!("| ours, 8 one by one | {serial:.2} | {:.2} |", serial / aws);
    println!("| aws-lc-rs, one message | {aws:.2} | 1.00 |");
}
