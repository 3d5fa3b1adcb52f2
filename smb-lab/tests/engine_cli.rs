//! The engine subcommands of the built `smb-lab` binary, run as a process, checked against
//! the published vectors and independent implementations (sha2, hmac, aes-gcm).

use std::path::PathBuf;
use std::process::{Command, Output};

use aes::Aes128;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use cmac::Cmac;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

/// The published vectors smb-core's own tests use, vendored in the repository.
const VECTORS: &str = include_str!("../../smb-core/tests/data/signing-vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("signing vectors are JSON")
}

fn vector_hex(v: &Value, section: &str, field: &str) -> String {
    v[section][field]
        .as_str()
        .unwrap_or_else(|| panic!("{section}.{field}"))
        .to_lowercase()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smb-lab"))
        .args(args)
        .output()
        .expect("run smb-lab")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects exit 0; returns the stdout lines.
fn ok_lines(args: &[&str]) -> Vec<String> {
    let o = run(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: stderr {}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

/// Bad input: exit 2, one clear line on stderr, no panic, nothing on stdout.
fn assert_bad_input(args: &[&str], expect_in_message: &str) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}: stdout {} stderr {err}",
        stdout(&o)
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(o.stdout.is_empty(), "{args:?} printed {}", stdout(&o));
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    assert!(
        err.to_lowercase()
            .contains(&expect_in_message.to_lowercase()),
        "{args:?}: {err:?} does not mention {expect_in_message:?}"
    );
}

/// The published 3.1.1 message with bit `bit` of byte `byte` flipped.
fn flipped(message_hex: &str, byte: usize, bit: u8) -> String {
    let mut m = hex::decode(message_hex).unwrap();
    m[byte] ^= 1 << bit;
    hex::encode(m)
}

/// A scratch file under the target dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("engine_cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
    fn arg(&self) -> String {
        format!("@{}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn keys_311_match_the_published_vector() {
    let v = vectors();
    let s = "smb311_cmac_session";
    let lines = ok_lines(&[
        "keys",
        "--dialect",
        "3.1.1",
        "--session-key",
        &vector_hex(&v, s, "session_key"),
        "--preauth-hash",
        &vector_hex(&v, s, "preauth_integrity_hash"),
    ]);
    assert_eq!(
        lines,
        [
            format!("signing_key={}", vector_hex(&v, s, "signing_key")),
            format!("application_key={}", vector_hex(&v, s, "application_key")),
            format!(
                "client_encryption_key={}",
                vector_hex(&v, s, "client_encryption_key")
            ),
            format!(
                "client_decryption_key={}",
                vector_hex(&v, s, "client_decryption_key")
            ),
        ]
    );
}

#[test]
fn keys_30_match_the_published_vector_and_302_derives_the_same() {
    let v = vectors();
    let s = "smb30_keys";
    let expected = [
        format!("signing_key={}", vector_hex(&v, s, "signing_key")),
        format!("application_key={}", vector_hex(&v, s, "application_key")),
        format!(
            "client_encryption_key={}",
            vector_hex(&v, s, "client_encryption_key")
        ),
        format!(
            "client_decryption_key={}",
            vector_hex(&v, s, "client_decryption_key")
        ),
    ];
    for dialect in ["3.0", "3.0.2"] {
        let session_key = vector_hex(&v, s, "session_key");
        let lines = ok_lines(&["keys", "--dialect", dialect, "--session-key", &session_key]);
        assert_eq!(lines, expected, "dialect {dialect}");
    }
}

#[test]
fn keys_2x_print_the_session_key_as_signing_key_only() {
    for dialect in ["2.0.2", "2.1"] {
        let lines = ok_lines(&[
            "keys",
            "--dialect",
            dialect,
            "--session-key",
            "00112233445566778899AABBCCDDEEFF",
        ]);
        assert_eq!(
            lines,
            ["signing_key=00112233445566778899aabbccddeeff"],
            "{dialect}"
        );
    }
}

#[test]
fn keys_aes_256_gives_32_byte_encryption_keys() {
    let v = vectors();
    let s = "smb311_cmac_session";
    let lines = ok_lines(&[
        "keys",
        "--dialect",
        "3.1.1",
        "--session-key",
        &vector_hex(&v, s, "session_key"),
        "--preauth-hash",
        &vector_hex(&v, s, "preauth_integrity_hash"),
        "--cipher",
        "aes-256-gcm",
    ]);
    let lens: Vec<_> = lines.iter().map(|l| l.split_once('=').unwrap()).collect();
    let names: Vec<_> = lens.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "signing_key",
            "application_key",
            "client_encryption_key",
            "client_decryption_key"
        ]
    );
    // Signing and application keys stay 16 bytes; encryption keys are 32 (L = 256).
    let hex_lens: Vec<_> = lens.iter().map(|(_, v)| v.len()).collect();
    assert_eq!(hex_lens, [32, 32, 64, 64]);
    // The AES-128 ciphers give the published keys.
    let with_128 = |cipher: &str| {
        ok_lines(&[
            "keys",
            "--dialect",
            "3.1.1",
            "--session-key",
            &vector_hex(&v, s, "session_key"),
            "--preauth-hash",
            &vector_hex(&v, s, "preauth_integrity_hash"),
            "--cipher",
            cipher,
        ])
    };
    let expected = format!(
        "client_encryption_key={}",
        vector_hex(&v, s, "client_encryption_key")
    );
    assert_eq!(with_128("aes-128-gcm")[2], expected);
    assert_eq!(with_128("aes-128-ccm")[2], expected);
}

#[test]
fn sign_prints_the_published_311_signature() {
    let v = vectors();
    let s = "smb311_cmac_session";
    let key = vector_hex(&v, s, "signing_key");
    let message = vector_hex(&v, s, "message");
    let expected = format!("signature={}", vector_hex(&v, s, "signature"));
    // Default algorithm for 3.1.1 without negotiation is AES-CMAC; explicit gives the same.
    let lines = ok_lines(&[
        "sign",
        "--dialect",
        "3.1.1",
        "--key",
        &key,
        "--message",
        &message,
    ]);
    assert_eq!(lines, std::slice::from_ref(&expected));
    let lines = ok_lines(&[
        "sign",
        "--dialect",
        "3.1.1",
        "--algorithm",
        "aes-cmac",
        "--key",
        &key,
        "--message",
        &message,
    ]);
    assert_eq!(lines, std::slice::from_ref(&expected));
    // The signature bytes in the input are ignored.
    let mut zeroed = hex::decode(&message).unwrap();
    zeroed[48..64].fill(0);
    let lines = ok_lines(&[
        "sign",
        "--dialect",
        "3.1.1",
        "--key",
        &key,
        "--message",
        &hex::encode(zeroed),
    ]);
    assert_eq!(lines, std::slice::from_ref(&expected));
    // And raw bytes from a file give the same.
    let file = TempFile::new("msg.bin", &hex::decode(&message).unwrap());
    let lines = ok_lines(&[
        "sign",
        "--dialect",
        "3.1.1",
        "--key",
        &key,
        "--message",
        &file.arg(),
    ]);
    assert_eq!(lines, [expected]);
}

/// The message with its signature zeroed, as every SMB2 MAC sees it.
fn mac_input(message: &[u8]) -> Vec<u8> {
    let mut m = message.to_vec();
    m[48..64].fill(0);
    m
}

#[test]
fn sign_hmac_matches_an_independent_hmac_sha256() {
    let v = vectors();
    let message = hex::decode(vector_hex(&v, "smb311_cmac_session", "message")).unwrap();
    let key = [0x5Au8; 16];
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(&mac_input(&message));
    let expected = hex::encode(&mac.finalize().into_bytes()[..16]);
    let lines = ok_lines(&[
        "sign",
        "--dialect",
        "2.1",
        "--key",
        &hex::encode(key),
        "--message",
        &hex::encode(&message),
    ]);
    assert_eq!(lines, [format!("signature={expected}")]);
}

/// AES-GMAC as AES-GCM with an empty plaintext; nonce = MessageId || role/cancel bits.
fn independent_gmac(key: &[u8; 16], message: &[u8], from_server: bool, cancel: bool) -> String {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&message[24..32]);
    nonce[8] = u8::from(from_server) | (u8::from(cancel) << 1);
    let cipher = Aes128Gcm::new_from_slice(key).unwrap();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &mac_input(message), &mut [])
        .unwrap();
    hex::encode(tag)
}

#[test]
fn sign_gmac_reads_role_and_cancel_from_the_header() {
    let v = vectors();
    let response = hex::decode(vector_hex(&v, "smb311_cmac_session", "message")).unwrap();
    let key = [0x3Cu8; 16];
    let gmac = |m: &[u8]| {
        ok_lines(&[
            "sign",
            "--dialect",
            "3.1.1",
            "--algorithm",
            "aes-gmac",
            "--key",
            &hex::encode(key),
            "--message",
            &hex::encode(m),
        ])
    };
    // The published message is a response (SERVER_TO_REDIR set).
    assert_eq!(
        gmac(&response),
        [format!(
            "signature={}",
            independent_gmac(&key, &response, true, false)
        )]
    );
    // The same bytes as a request.
    let mut request = response.clone();
    request[16] &= !0x01;
    assert_eq!(
        gmac(&request),
        [format!(
            "signature={}",
            independent_gmac(&key, &request, false, false)
        )]
    );
    // A CANCEL request.
    let mut cancel = request.clone();
    cancel[12..14].copy_from_slice(&0x000Cu16.to_le_bytes());
    assert_eq!(
        gmac(&cancel),
        [format!(
            "signature={}",
            independent_gmac(&key, &cancel, false, true)
        )]
    );
}

#[test]
fn verify_accepts_the_published_message_and_rejects_any_flipped_bit() {
    let v = vectors();
    let s = "smb311_cmac_session";
    let key = vector_hex(&v, s, "signing_key");
    let message = vector_hex(&v, s, "message");
    let o = run(&[
        "verify",
        "--dialect",
        "3.1.1",
        "--key",
        &key,
        "--message",
        &message,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "signature valid");

    // A bit in the body, in the header, and in the signature itself.
    let len = message.len() / 2;
    for (byte, bit) in [(len - 1, 0), (70, 3), (24, 0), (48, 7), (63, 1)] {
        let bad = flipped(&message, byte, bit);
        let o = run(&[
            "verify",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            &bad,
        ]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "byte {byte} bit {bit}: {}",
            stdout(&o)
        );
        let out = stdout(&o);
        assert_eq!(out.trim_end().lines().count(), 1, "{out}");
        assert!(out.contains("signature invalid"), "{out}");
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn verify_with_the_wrong_key_fails() {
    let v = vectors();
    let s = "smb311_cmac_session";
    let message = vector_hex(&v, s, "message");
    let mut key = hex::decode(vector_hex(&v, s, "signing_key")).unwrap();
    key[0] ^= 1;
    let o = run(&[
        "verify",
        "--dialect",
        "3.1.1",
        "--key",
        &hex::encode(key),
        "--message",
        &message,
    ]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn compound_chain_is_signed_message_by_message_padding_included() {
    let v = vectors();
    let s = "smb311_cmac_session";
    let key_hex = vector_hex(&v, s, "signing_key");
    let key = hex::decode(&key_hex).unwrap();
    let one = hex::decode(vector_hex(&v, s, "message")).unwrap();
    // A chain of two: the first padded to 8 bytes with its NextCommand set.
    let mut first = one.clone();
    first.resize(one.len().next_multiple_of(8), 0);
    assert!(
        first.len() > one.len(),
        "the vector message needs padding in a chain"
    );
    let next = u32::try_from(first.len()).unwrap();
    first[20..24].copy_from_slice(&next.to_le_bytes());
    let mut second = one.clone();
    second[24] = 3; // MessageId 3
    let chain = [first.clone(), second.clone()].concat();

    // Independent AES-CMAC over each message, padding included, signature zeroed.
    let cmac = |m: &[u8]| {
        let mut mac = <Cmac<Aes128> as Mac>::new_from_slice(&key).unwrap();
        mac.update(&mac_input(m));
        hex::encode(mac.finalize().into_bytes())
    };
    let sign = |m: &[u8]| {
        ok_lines(&[
            "sign",
            "--dialect",
            "3.1.1",
            "--key",
            &key_hex,
            "--message",
            &hex::encode(m),
        ])
    };
    let lines = sign(&chain);
    assert_eq!(
        lines,
        [
            format!("signature={}", cmac(&first)),
            format!("signature={}", cmac(&second))
        ]
    );
    // The last message of a chain is the message alone.
    assert_eq!(lines[1], sign(&second)[0]);

    // Write those signatures in: verify passes for both; a flipped padding byte fails the
    // first message only.
    let mut signed = chain.clone();
    for (range, line) in [
        (0..first.len(), &lines[0]),
        (first.len()..chain.len(), &lines[1]),
    ] {
        let sig = hex::decode(line.strip_prefix("signature=").unwrap()).unwrap();
        signed[range.start + 48..range.start + 64].copy_from_slice(&sig);
    }
    let verify = |m: &[u8]| {
        run(&[
            "verify",
            "--dialect",
            "3.1.1",
            "--key",
            &key_hex,
            "--message",
            &hex::encode(m),
        ])
    };
    let o = verify(&signed);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o).lines().count(), 2);
    signed[first.len() - 1] ^= 0x80; // last padding byte of the first message
    let o = verify(&signed);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("message 1: signature invalid"), "{out}");
    assert!(out.contains("message 2: signature valid"), "{out}");
}

#[test]
fn preauth_chains_like_sha512() {
    let v = vectors();
    let m1 = hex::decode(vector_hex(&v, "smb311_cmac_session", "message")).unwrap();
    let mut m2 = m1.clone();
    m2[16] = 0; // a "request"
    m2.extend_from_slice(b"more bytes");
    let file = TempFile::new("preauth.bin", &m2);
    let lines = ok_lines(&[
        "preauth",
        "--message",
        &hex::encode(&m1),
        "--message",
        &file.arg(),
    ]);

    let mut h = [0u8; 64];
    let mut expected = Vec::new();
    for m in [&m1, &m2] {
        let mut d = Sha512::new();
        d.update(h);
        d.update(m);
        h.copy_from_slice(&d.finalize());
        expected.push(format!("hash={}", hex::encode(h)));
    }
    assert_eq!(lines, expected);
}

#[test]
fn bad_input_exits_2_with_one_clear_line() {
    let v = vectors();
    let s = "smb311_cmac_session";
    let key = vector_hex(&v, s, "signing_key");
    let message = vector_hex(&v, s, "message");
    let sk = vector_hex(&v, s, "session_key");
    let hash = vector_hex(&v, s, "preauth_integrity_hash");

    // Odd-length and non-hex input.
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.1.1",
            "--key",
            &key[1..],
            "--message",
            &message,
        ],
        "odd",
    );
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            &message[1..],
        ],
        "odd",
    );
    let mut nonhex = message.clone();
    nonhex.replace_range(10..12, "zz");
    assert_bad_input(
        &[
            "verify",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            &nonhex,
        ],
        "hex digit",
    );
    assert_bad_input(
        &["keys", "--dialect", "3.0", "--session-key", "xyz0"],
        "hex digit",
    );
    // A message shorter than a header, and one that is not SMB2.
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            &message[..126],
        ],
        "shorter",
    );
    assert_bad_input(
        &["sign", "--dialect", "3.1.1", "--key", &key, "--message", ""],
        "shorter",
    );
    assert_bad_input(
        &["preauth", "--message", &message, "--message", "fe534d42"],
        "shorter",
    );
    let smb1 = format!("ff{}", &message[2..]);
    assert_bad_input(
        &[
            "verify",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            &smb1,
        ],
        "protocol",
    );
    // A broken compound chain (NextCommand misaligned).
    let chained = {
        let mut m = hex::decode(&message).unwrap();
        m[20] = 0x45;
        hex::encode(m)
    };
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            &chained,
        ],
        "NextCommand",
    );
    // Unknown dialect, algorithm, cipher.
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "4.0",
            "--key",
            &key,
            "--message",
            &message,
        ],
        "dialect",
    );
    assert_bad_input(
        &["keys", "--dialect", "smb1", "--session-key", &sk],
        "dialect",
    );
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.1.1",
            "--algorithm",
            "md5",
            "--key",
            &key,
            "--message",
            &message,
        ],
        "algorithm",
    );
    assert_bad_input(
        &[
            "keys",
            "--dialect",
            "3.0",
            "--session-key",
            &sk,
            "--cipher",
            "des",
        ],
        "cipher",
    );
    // A cipher the dialect does not have.
    assert_bad_input(
        &[
            "keys",
            "--dialect",
            "3.0.2",
            "--session-key",
            &sk,
            "--cipher",
            "aes-256-gcm",
        ],
        "3.1.1",
    );
    assert_bad_input(
        &[
            "keys",
            "--dialect",
            "2.1",
            "--session-key",
            &sk,
            "--cipher",
            "aes-128-ccm",
        ],
        "3.x",
    );
    // An algorithm the dialect does not use.
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.0",
            "--algorithm",
            "aes-gmac",
            "--key",
            &key,
            "--message",
            &message,
        ],
        "aes-gmac",
    );
    // Wrong key lengths.
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.0",
            "--key",
            &key[..30],
            "--message",
            &message,
        ],
        "key",
    );
    assert_bad_input(
        &[
            "verify",
            "--dialect",
            "3.1.1",
            "--algorithm",
            "aes-gmac",
            "--key",
            &format!("{key}00"),
            "--message",
            &message,
        ],
        "key",
    );
    assert_bad_input(
        &[
            "keys",
            "--dialect",
            "3.1.1",
            "--session-key",
            &sk,
            "--preauth-hash",
            &hash[..126],
        ],
        "64",
    );
    // 3.1.1 keys need the preauth hash; 3.0 keys must not get one.
    assert_bad_input(
        &["keys", "--dialect", "3.1.1", "--session-key", &sk],
        "preauth",
    );
    assert_bad_input(
        &[
            "keys",
            "--dialect",
            "3.0",
            "--session-key",
            &sk,
            "--preauth-hash",
            &hash,
        ],
        "preauth",
    );
    // A message file that does not exist.
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            "@/nonexistent/smb-lab-msg",
        ],
        "cannot read",
    );
    // A file larger than any SMB2 frame is refused, not read whole.
    let huge = TempFile::new("huge.bin", &vec![0u8; (1 << 24) + 1]);
    assert_bad_input(
        &[
            "sign",
            "--dialect",
            "3.1.1",
            "--key",
            &key,
            "--message",
            &huge.arg(),
        ],
        "larger than the largest SMB2 frame",
    );
}

#[test]
fn usage_errors_exit_2_without_panic() {
    for args in [
        &["sign", "--dialect", "3.1.1"][..],
        &["preauth"],
        &["keys", "--bogus"],
        &[],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!stderr(&o).contains("panicked"));
        assert!(!stderr(&o).is_empty());
    }
}
