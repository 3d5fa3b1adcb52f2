//! Every published vector in `tests/data/signing-vectors.json` (vendored with its sources):
//! the SMB 3.1.1 session (keys, then the CMAC signature of the published message), the SMB 3.0
//! keys, NIST SP800-108 KBKDF, RFC 4493 AES-CMAC and NIST GCM used as GMAC.

use serde_json::Value;
use smb_core::header::Dialect;
use smb_core::signing::kdf::kdf_counter_fixed;
use smb_core::signing::{
    derive_session_keys, AesCmac, AesGmac, Algorithm, SigningError, SigningKey,
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
