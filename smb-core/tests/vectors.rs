//! Every published vector in `tests/data/signing-vectors.json` (vendored with its sources):
//! the SMB 3.1.1 session (keys, then the CMAC signature of the published message), the SMB 3.0
//! keys, NIST SP800-108 KBKDF, RFC 4493 AES-CMAC and NIST GCM used as GMAC.
//!
//! The MAC vectors are one table ([`mac_vectors`]) run on every backend this CPU has and fed
//! in every chunking, as RustCrypto's own MAC tests do: in pieces of every size from 1 byte to
//! the whole input, and split in two at every offset.

use serde_json::Value;
use smb_core::header::Dialect;
use smb_core::signing::kdf::kdf_counter_fixed;
use smb_core::signing::{
    derive_session_keys, AesCmac, AesGmac, Algorithm, Backend, SigningError, SigningKey, Tag,
};

/// The published vectors, vendored beside this test with their sources (`data/README.md`).
const VECTORS: &str = include_str!("data/signing-vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("tests/data/signing-vectors.json is valid JSON")
}

fn hex_field(v: &Value, name: &str) -> Vec<u8> {
    let s = v[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {name:?} missing"));
    hex::decode(s).unwrap_or_else(|e| panic!("vector field {name:?} is not hex: {e}"))
}

fn array<const N: usize>(bytes: &[u8], what: &str) -> [u8; N] {
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("{what}: expected {N} bytes, got {}", bytes.len()))
}

#[test]
fn smb311_session_keys_from_session_key_and_preauth_hash() {
    let v = &vectors()["smb311_cmac_session"];
    let hash: [u8; 64] = array(&hex_field(v, "preauth_integrity_hash"), "preauth hash");
    let keys = derive_session_keys(
        Dialect::SMB311,
        &hex_field(v, "session_key"),
        Some(&hash),
        None,
    )
    .unwrap();
    assert_eq!(
        &keys.signing[..],
        &hex_field(v, "signing_key")[..],
        "signing key"
    );
    assert_eq!(
        &keys.application[..],
        &hex_field(v, "application_key")[..],
        "application key"
    );
    assert_eq!(
        &keys.client_encryption[..],
        &hex_field(v, "client_encryption_key")[..],
        "client encryption key"
    );
    assert_eq!(
        &keys.client_decryption[..],
        &hex_field(v, "client_decryption_key")[..],
        "client decryption key"
    );
}

#[test]
fn smb311_cmac_signature_of_published_message() {
    let v = &vectors()["smb311_cmac_session"];
    let hash: [u8; 64] = array(&hex_field(v, "preauth_integrity_hash"), "preauth hash");
    let keys = derive_session_keys(
        Dialect::SMB311,
        &hex_field(v, "session_key"),
        Some(&hash),
        None,
    )
    .unwrap();
    // No SMB2_SIGNING_CAPABILITIES was negotiated, so 3.1.1 signs with AES-128-CMAC.
    let algorithm = Algorithm::for_dialect(Dialect::SMB311, None);
    assert_eq!(algorithm, Algorithm::AesCmac);
    let key = SigningKey::new(algorithm, &keys.signing).unwrap();

    let message = hex_field(v, "message");
    let expected = hex_field(v, "signature");
    assert_eq!(
        &message[48..64],
        &expected[..],
        "the vector's message carries its signature"
    );
    assert_eq!(
        key.signature(&message).unwrap().to_bytes()[..],
        expected[..]
    );
    key.verify(&message).unwrap();

    // sign() on the message with a zeroed signature slot reproduces the published bytes.
    let mut resigned = message.clone();
    resigned[48..64].fill(0);
    key.sign(&mut resigned).unwrap();
    assert_eq!(resigned, message);

    // Any single flipped bit, in the signed bytes or the signature, is rejected.
    for bit in 0..message.len() * 8 {
        let mut tampered = message.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            key.verify(&tampered),
            Err(SigningError::BadSignature),
            "flipped bit {bit} was accepted"
        );
    }
}

#[test]
fn smb30_keys() {
    let v = &vectors()["smb30_keys"];
    assert_eq!(v["dialect"].as_str(), Some("3.0"));
    let keys =
        derive_session_keys(Dialect::SMB30, &hex_field(v, "session_key"), None, None).unwrap();
    assert_eq!(
        &keys.signing[..],
        &hex_field(v, "signing_key")[..],
        "signing key"
    );
    assert_eq!(
        &keys.application[..],
        &hex_field(v, "application_key")[..],
        "application key"
    );
    assert_eq!(
        &keys.client_encryption[..],
        &hex_field(v, "client_encryption_key")[..],
        "client encryption key"
    );
    assert_eq!(
        &keys.client_decryption[..],
        &hex_field(v, "client_decryption_key")[..],
        "client decryption key"
    );
    // 3.0.2 uses the same labels and contexts as 3.0.
    let k302 =
        derive_session_keys(Dialect::SMB302, &hex_field(v, "session_key"), None, None).unwrap();
    assert_eq!(&k302.signing[..], &keys.signing[..]);
}

#[test]
fn nist_kbkdf_counter_hmac_sha256() {
    let v = &vectors()["kbkdf_nist_ctr_hmac_sha256"];
    let cases = v["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let l_bits = case["l_bits"].as_u64().expect("l_bits") as usize;
        let mut ko = vec![0u8; l_bits / 8];
        kdf_counter_fixed(
            &hex_field(case, "ki"),
            &hex_field(case, "fixed_input"),
            &mut ko,
        );
        assert_eq!(
            ko,
            hex_field(case, "ko"),
            "NIST KBKDF count {}",
            case["count"]
        );
    }
}

#[test]
fn rfc4493_aes_cmac() {
    let v = &vectors()["aes_cmac_rfc4493"];
    let key: [u8; 16] = array(&hex_field(v, "key"), "CMAC key");
    let message = hex_field(v, "message");
    let cases = v["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let len = case["len"].as_u64().expect("len") as usize;
        let mut mac = AesCmac::new(&key);
        mac.update(&message[..len]);
        assert_eq!(
            mac.finalize()[..],
            hex_field(case, "mac")[..],
            "RFC 4493 len {len}"
        );
    }
}

#[test]
fn nist_gcm_as_gmac() {
    let v = &vectors()["gmac_nist_gcm"];
    let cases = v["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let key: [u8; 16] = array(&hex_field(case, "key"), "GMAC key");
        let iv: [u8; 12] = array(&hex_field(case, "iv"), "GMAC iv");
        let aad = hex_field(case, "aad");
        let mut mac = AesGmac::new(&key, &iv);
        mac.update(&aad);
        assert_eq!(
            mac.finalize()[..],
            hex_field(case, "tag")[..],
            "NIST GCM key {}",
            case["key"]
        );
        // The same AAD fed one byte at a time.
        let mut bytewise = AesGmac::new(&key, &iv);
        for b in &aad {
            bytewise.update(std::slice::from_ref(b));
        }
        assert_eq!(bytewise.finalize()[..], hex_field(case, "tag")[..]);
    }
}

/// One published MAC vector: what it is, its algorithm's key (and GMAC nonce), input, tag.
struct MacVector {
    name: String,
    algorithm: Algorithm,
    key: [u8; 16],
    nonce: [u8; 12],
    input: Vec<u8>,
    tag: [u8; 16],
}

/// Every MAC vector of the vendored file, as one table.
fn mac_vectors() -> Vec<MacVector> {
    let v = vectors();
    let mut table = Vec::new();
    let cmac = &v["aes_cmac_rfc4493"];
    let message = hex_field(cmac, "message");
    for case in cmac["cases"].as_array().expect("cases") {
        let len = case["len"].as_u64().expect("len") as usize;
        table.push(MacVector {
            name: format!("RFC 4493 AES-CMAC, {len} bytes"),
            algorithm: Algorithm::AesCmac,
            key: array(&hex_field(cmac, "key"), "CMAC key"),
            nonce: [0; 12],
            input: message[..len].to_vec(),
            tag: array(&hex_field(case, "mac"), "CMAC tag"),
        });
    }
    for (i, case) in v["gmac_nist_gcm"]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let input = hex_field(case, "aad");
        table.push(MacVector {
            name: format!("NIST GCM as GMAC #{i}, {} bytes of AAD", input.len()),
            algorithm: Algorithm::AesGmac,
            key: array(&hex_field(case, "key"), "GMAC key"),
            nonce: array(&hex_field(case, "iv"), "GMAC iv"),
            input,
            tag: array(&hex_field(case, "tag"), "GMAC tag"),
        });
    }
    assert!(table.len() >= 6, "the vendored file lost vectors");
    table
}

/// Every way this test cuts an input: pieces of each size 1..=len, and two pieces split at
/// each offset 0..=len.
fn chunkings(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut out = Vec::new();
    for size in 1..=input.len().max(1) {
        out.push(input.chunks(size).collect());
    }
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        out.push(vec![a, b]);
    }
    out
}

fn backends() -> Vec<Backend> {
    Backend::ALL.into_iter().filter(|b| b.available()).collect()
}

#[test]
fn mac_vectors_in_every_chunking_on_every_backend() {
    for v in mac_vectors() {
        for backend in backends() {
            for pieces in chunkings(&v.input) {
                let got = match v.algorithm {
                    Algorithm::AesCmac => {
                        let mut m = AesCmac::with_backend(&v.key, backend);
                        pieces.iter().for_each(|p| m.update(p));
                        m.finalize()
                    }
                    Algorithm::AesGmac => {
                        let mut m = AesGmac::with_backend(&v.key, &v.nonce, backend);
                        pieces.iter().for_each(|p| m.update(p));
                        m.finalize()
                    }
                    Algorithm::HmacSha256 => unreachable!("no HMAC vector in the table"),
                };
                assert_eq!(
                    got,
                    v.tag,
                    "{} on {}, in {} pieces",
                    v.name,
                    backend.name(),
                    pieces.len()
                );
            }
        }
    }
}

#[test]
fn smb311_published_message_in_every_chunking_on_every_backend() {
    let v = &vectors()["smb311_cmac_session"];
    let hash: [u8; 64] = array(&hex_field(v, "preauth_integrity_hash"), "preauth hash");
    let message = hex_field(v, "message");
    let expected = Tag::from(array::<16>(&hex_field(v, "signature"), "signature"));
    let mut zeroed = message.clone();
    zeroed[48..64].fill(0);
    for backend in backends() {
        let keys = derive_session_keys(
            Dialect::SMB311,
            &hex_field(v, "session_key"),
            Some(&hash),
            None,
        )
        .unwrap();
        let key = SigningKey::with_backend(Algorithm::AesCmac, &keys.signing, backend).unwrap();
        assert_eq!(
            key.signature(&message).unwrap(),
            expected,
            "{}",
            backend.name()
        );
        for pieces in chunkings(&zeroed) {
            let mut mac = key.mac(&zeroed).unwrap();
            pieces.iter().for_each(|p| mac.update(p));
            assert_eq!(
                mac.finalize(),
                expected,
                "{} in {} pieces",
                backend.name(),
                pieces.len()
            );
        }
        // The batch API: the published message among 9 others (its prefixes, signed one by
        // one), all verified at once.
        let others: Vec<Vec<u8>> = (0..9)
            .map(|i| {
                let mut m = message[..64 + 4 * i].to_vec();
                key.sign(&mut m).unwrap();
                m
            })
            .collect();
        let mut batch: Vec<&[u8]> = others.iter().map(|m| &m[..]).collect();
        batch.insert(4, &message);
        let results = key.verify_batch(&batch);
        assert!(
            results.iter().all(|r| r.is_ok()),
            "{} batch: {results:?}",
            backend.name()
        );
    }
}

#[test]
fn public_session_constructor_gives_the_published_signature() {
    let v = &vectors()["smb311_cmac_session"];
    let hash: [u8; 64] = array(&hex_field(v, "preauth_integrity_hash"), "preauth hash");
    let key = SigningKey::for_session(
        Dialect::SMB311,
        None,
        None,
        &hex_field(v, "session_key"),
        Some(&hash),
    )
    .unwrap();
    assert_eq!(key.algorithm(), Algorithm::AesCmac);
    key.verify(&hex_field(v, "message")).unwrap();
    assert_eq!(
        SigningKey::for_session(
            Dialect::SMB311,
            None,
            None,
            &hex_field(v, "session_key"),
            None
        )
        .unwrap_err(),
        SigningError::MissingPreauthHash
    );
}
