//! Property tests of the signing engine, each checked against an independent implementation
//! or an independent property: sign→verify round trips for every algorithm and length, single
//! bit flips, chunked = one-shot MACs, compound chains, and the GMAC nonce.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit as _};
use hmac::Mac as _;
use proptest::prelude::*;
use smb_core::compound::{build_chain, split_chain};
use smb_core::header::{flags, Command, Header, HEADER_LEN};
use smb_core::signing::aes_gmac::{nonce_for, nonce_from_header};
use smb_core::signing::{
    AesCmac, AesGmac, Algorithm, Backend, HmacSha256, MessageMac, SigningError, SigningKey, Tag,
};

/// A message: a real header (random MessageId, command, role) and a random body.
fn message(message_id: u64, command: u16, from_server: bool, body: &[u8]) -> Vec<u8> {
    let mut h = Header::request(Command(command), message_id, 0x1122_3344_5566_7788, 9);
    if from_server {
        h.flags |= flags::SERVER_TO_REDIR;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    h.encode(&mut out);
    out.extend_from_slice(body);
    out
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::HmacSha256),
        Just(Algorithm::AesCmac),
        Just(Algorithm::AesGmac)
    ]
}

/// Every backend this CPU runs (on the x86-64 CI machines: all five). A test that picks from
/// these runs every path: AES-NI + VPCLMULQDQ 512 (with and without GFNI) and 256, AES-NI +
/// PCLMULQDQ, portable.
fn backend() -> impl Strategy<Value = Backend> {
    let available: Vec<Backend> = Backend::ALL.into_iter().filter(|b| b.available()).collect();
    proptest::sample::select(available)
}

/// The MAC computed by the RustCrypto crates on a copy with the signature zeroed, with the
/// GMAC nonce laid out here by hand from MS-SMB2 3.1.4.1 (not from the code under test).
fn reference_signature(algorithm: Algorithm, key: &[u8; 16], message: &[u8]) -> [u8; 16] {
    let mut copy = message.to_vec();
    copy[48..64].fill(0);
    match algorithm {
        Algorithm::HmacSha256 => {
            let mut m = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key).unwrap();
            m.update(&copy);
            m.finalize().into_bytes()[..16].try_into().unwrap()
        }
        Algorithm::AesCmac => {
            let mut m = <cmac::Cmac<aes::Aes128> as cmac::Mac>::new_from_slice(key).unwrap();
            cmac::Mac::update(&mut m, &copy);
            cmac::Mac::finalize(m).into_bytes().into()
        }
        Algorithm::AesGmac => {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&copy[24..32]); // MessageId, already little-endian
            let fl = u32::from_le_bytes(copy[16..20].try_into().unwrap());
            let cmd = u16::from_le_bytes(copy[12..14].try_into().unwrap());
            nonce[8] = (fl & 1) as u8 | if cmd == 0x000C { 2 } else { 0 };
            let gcm = Aes128Gcm::new(key.into());
            let mut empty: Vec<u8> = Vec::new();
            let tag = gcm
                .encrypt_in_place_detached((&nonce).into(), &copy, &mut empty)
                .unwrap();
            tag.into()
        }
    }
}

/// Splits `data` at the given (sorted, clamped) cut points.
fn chunks<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(&data[start..p]);
        start = p;
    }
    out.push(&data[start..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_round_trips_and_matches_reference(
        algorithm in algorithm(),
        key in any::<[u8; 16]>(),
        message_id in any::<u64>(),
        command in 0u16..0x13,
        from_server in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..70_000),
    ) {
        let key_obj = SigningKey::new(algorithm, &key).unwrap();
        let mut msg = message(message_id, command, from_server, &body);
        key_obj.sign(&mut msg).unwrap();
        // The SIGNED flag is set before the MAC, so it is covered by it.
        prop_assert!(Header::parse(&msg).unwrap().is_signed());
        prop_assert_eq!(&msg[48..64], &reference_signature(algorithm, &key, &msg)[..]);
        prop_assert_eq!(key_obj.verify(&msg), Ok(()));
        // Another key does not verify it.
        let mut other = key;
        other[0] ^= 1;
        prop_assert_eq!(
            SigningKey::new(algorithm, &other).unwrap().verify(&msg),
            Err(SigningError::BadSignature)
        );
    }

    /// Every backend against the RustCrypto crates, on random lengths (around the 8-, 16- and
    /// 32-block runs of the GHASH paths and CMAC's last block), at a random alignment in
    /// memory, fed in random pieces through `SigningKey::mac`.
    #[test]
    fn every_backend_matches_rustcrypto_at_any_length_alignment_and_chunking(
        backend in backend(),
        algorithm in algorithm(),
        key in any::<[u8; 16]>(),
        message_id in any::<u64>(),
        from_server in any::<bool>(),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..1100),
            proptest::collection::vec(any::<u8>(), 0..20_000),
        ],
        align in 0usize..64,
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let key_obj = SigningKey::with_backend(algorithm, &key, backend).unwrap();
        prop_assert_eq!(key_obj.backend(), backend);
        let plain = message(message_id, 0x0008, from_server, &body);
        // The message at `align` bytes into its buffer.
        let mut buffer = vec![0xEEu8; align];
        buffer.extend_from_slice(&plain);
        let msg = &mut buffer[align..];
        key_obj.sign(msg).unwrap();
        let want = reference_signature(algorithm, &key, msg);
        prop_assert_eq!(&msg[48..64], &want[..], "{} {}", backend.name(), algorithm);
        prop_assert_eq!(key_obj.verify(msg), Ok(()));

        let mut zeroed = msg.to_vec();
        zeroed[48..64].fill(0);
        let mut mac = key_obj.mac(&zeroed).unwrap();
        chunks(&zeroed, &cuts).iter().for_each(|p| mac.update(p));
        prop_assert_eq!(mac.finalize(), Tag::from(want));
    }

    /// A GMAC tail digested ahead (as the server does on the thread that read a READ's
    /// data) gives the signature RustCrypto gives the whole message, on every backend, for
    /// tails on both sides of the GHASH runs; any other key's digest, or a tail that does not
    /// start on a block boundary after the header, falls back to hashing everything.
    #[test]
    fn gmac_with_a_tail_digested_ahead_matches_rustcrypto(
        backend in backend(),
        key in any::<[u8; 16]>(),
        message_id in any::<u64>(),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 16..1100),
            proptest::collection::vec(any::<u8>(), 16..40_000),
        ],
        head_blocks in 0usize..4,
        shift in 0usize..16,
    ) {
        let signer = SigningKey::with_backend(Algorithm::AesGmac, &key, backend).unwrap();
        let other = SigningKey::with_backend(Algorithm::AesGmac, &key, backend).unwrap();
        let plain = message(message_id, 0x0008, true, &body);
        // The tail starts on a block boundary after the header, or `shift` bytes past one.
        let at = (HEADER_LEN + 16 * head_blocks + shift).min(plain.len() - 1);
        for digester in [&signer, &other] {
            let mut msg = plain.clone();
            let digest = digester.tail_digest(&msg[at..]).unwrap();
            prop_assert_eq!(digest.len(), plain.len() - at);
            signer.sign_with_tail(&mut msg, &digest).unwrap();
            let want = reference_signature(Algorithm::AesGmac, &key, &msg);
            prop_assert_eq!(&msg[48..64], &want[..], "{} at {}", backend.name(), at);
            prop_assert_eq!(signer.verify(&msg), Ok(()));
        }
        // The other algorithms have no tail digest.
        let cmac = SigningKey::with_backend(Algorithm::AesCmac, &key, backend).unwrap();
        prop_assert!(cmac.tail_digest(&plain[at..]).is_none());
    }

    /// The batch API gives each message the signature the reference gives it, whatever the
    /// mix of lengths (lanes of the interleaved CMAC drop out as their messages end).
    #[test]
    fn batches_match_rustcrypto(
        backend in backend(),
        algorithm in algorithm(),
        key in any::<[u8; 16]>(),
        lens in proptest::collection::vec(
            prop_oneof![Just(0usize), 0usize..40, 0usize..5000],
            0..19,
        ),
        tamper in any::<proptest::sample::Index>(),
    ) {
        let key_obj = SigningKey::with_backend(algorithm, &key, backend).unwrap();
        let mut messages: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| message(i as u64, 0x0009, i % 2 == 1, &vec![i as u8 ^ 0x5A; n]))
            .collect();
        {
            let mut refs: Vec<&mut [u8]> = messages.iter_mut().map(|m| &mut m[..]).collect();
            key_obj.sign_batch(&mut refs).unwrap();
        }
        for m in &messages {
            prop_assert!(Header::parse(m).unwrap().is_signed());
            prop_assert_eq!(&m[48..64], &reference_signature(algorithm, &key, m)[..]);
        }
        if !messages.is_empty() {
            let hit = tamper.index(messages.len());
            messages[hit][10] ^= 0x40;
            let views: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
            let results = key_obj.verify_batch(&views);
            prop_assert_eq!(results.len(), messages.len());
            for (i, r) in results.into_iter().enumerate() {
                if i == hit {
                    prop_assert_eq!(r, Err(SigningError::BadSignature));
                } else {
                    prop_assert_eq!(r, Ok(()));
                }
            }
        }
    }

    #[test]
    fn any_single_bit_flip_fails(
        algorithm in algorithm(),
        key in any::<[u8; 16]>(),
        message_id in any::<u64>(),
        from_server in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        bit in any::<proptest::sample::Index>(),
    ) {
        let key_obj = SigningKey::new(algorithm, &key).unwrap();
        let mut msg = message(message_id, 0x0008, from_server, &body);
        key_obj.sign(&mut msg).unwrap();
        let bit = bit.index(msg.len() * 8);
        msg[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(key_obj.verify(&msg), Err(SigningError::BadSignature), "bit {}", bit);
    }

    #[test]
    fn chunked_mac_equals_one_shot(
        key in any::<[u8; 16]>(),
        nonce in any::<[u8; 12]>(),
        data in proptest::collection::vec(any::<u8>(), 0..5000),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let pieces = chunks(&data, &cuts);

        let mut whole = HmacSha256::new(&key);
        whole.update(&data);
        let mut parts = HmacSha256::new(&key);
        pieces.iter().for_each(|p| parts.update(p));
        prop_assert_eq!(whole.finalize(), parts.finalize());

        let mut whole = AesCmac::new(&key);
        whole.update(&data);
        let mut parts = AesCmac::new(&key);
        pieces.iter().for_each(|p| parts.update(p));
        prop_assert_eq!(whole.finalize(), parts.finalize());

        let mut whole = AesGmac::new(&key, &nonce);
        whole.update(&data);
        let mut parts = AesGmac::new(&key, &nonce);
        pieces.iter().for_each(|p| parts.update(p));
        let gmac = parts.finalize();
        prop_assert_eq!(whole.finalize(), gmac);
        // ... and GMAC equals GCM with an empty plaintext (aes-gcm, an independent code path).
        let mut empty: Vec<u8> = Vec::new();
        let tag = Aes128Gcm::new((&key).into())
            .encrypt_in_place_detached((&nonce).into(), &data, &mut empty)
            .unwrap();
        prop_assert_eq!(&gmac[..], &tag[..]);
    }

    #[test]
    fn signing_key_mac_fed_in_pieces_equals_signature(
        algorithm in algorithm(),
        key in any::<[u8; 16]>(),
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let key_obj = SigningKey::new(algorithm, &key).unwrap();
        let mut msg = message(7, 0x0009, false, &body);
        msg[48..64].fill(0);
        let mut mac: MessageMac = key_obj.mac(&msg).unwrap();
        chunks(&msg, &cuts).iter().for_each(|p| mac.update(p));
        prop_assert_eq!(mac.finalize(), key_obj.signature(&msg).unwrap());
    }

    #[test]
    fn each_message_of_a_compound_chain_verifies_on_its_own(
        algorithm in algorithm(),
        key in any::<[u8; 16]>(),
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
        flip in any::<proptest::sample::Index>(),
    ) {
        let key_obj = SigningKey::new(algorithm, &key).unwrap();
        let messages: Vec<Vec<u8>> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| message(100 + i as u64, 0x0005, false, b))
            .collect();
        let mut chain = build_chain(&messages);
        key_obj.sign_chain(&mut chain).unwrap();
        prop_assert_eq!(key_obj.verify_chain(&chain), Ok(()));
        let ranges = split_chain(&chain).unwrap();
        prop_assert_eq!(ranges.len(), messages.len());
        for (i, r) in ranges.iter().enumerate() {
            // Each range includes its padding; the message verifies alone, as a receiver
            // of a compound checks it (MS-SMB2 3.3.5.2.4).
            prop_assert_eq!(key_obj.verify(&chain[r.clone()]), Ok(()));
            prop_assert_eq!(&chain[r.start + 64..r.start + 64 + bodies[i].len()], &bodies[i][..]);
            prop_assert_eq!(&chain[r.clone()], &reference_signed(algorithm, &key, &chain[r.clone()])[..]);
        }
        // One flipped bit anywhere (padding included) breaks exactly the message holding it.
        let bit = flip.index(chain.len() * 8);
        let mut tampered = chain.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        let hit = ranges.iter().position(|r| r.contains(&(bit / 8))).unwrap();
        // A flip in a NextCommand field may make the chain unsplittable: also a failure.
        prop_assert!(key_obj.verify_chain(&tampered).is_err());
        prop_assert_eq!(
            key_obj.verify(&tampered[ranges[hit].clone()]),
            Err(SigningError::BadSignature)
        );
        for (i, r) in ranges.iter().enumerate() {
            if i != hit {
                prop_assert_eq!(key_obj.verify(&tampered[r.clone()]), Ok(()));
            }
        }
    }

    #[test]
    fn gmac_nonce_separates_role_and_cancel(
        key in any::<[u8; 16]>(),
        message_id in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let client = message(message_id, 0x0008, false, &body);
        let server = message(message_id, 0x0008, true, &body);
        let cancel = message(message_id, 0x000C, false, &body);
        let n_client = nonce_from_header(&client).unwrap();
        let n_server = nonce_from_header(&server).unwrap();
        let n_cancel = nonce_from_header(&cancel).unwrap();
        prop_assert_eq!(&n_client[..8], &message_id.to_le_bytes()[..]);
        prop_assert_eq!(&n_client[8..], &[0, 0, 0, 0][..]);
        prop_assert_eq!(&n_server[8..], &[1, 0, 0, 0][..]);
        prop_assert_eq!(&n_cancel[8..], &[2, 0, 0, 0][..]);
        prop_assert_eq!(n_server, nonce_for(message_id, true, false));

        // Signed whole: the three messages get three different signatures.
        let key_obj = SigningKey::new(Algorithm::AesGmac, &key).unwrap();
        let signature_of = |m: &[u8]| {
            let mut m = m.to_vec();
            key_obj.sign(&mut m).unwrap();
            m[48..64].to_vec()
        };
        let (s_client, s_server, s_cancel) =
            (signature_of(&client), signature_of(&server), signature_of(&cancel));
        prop_assert_ne!(&s_client, &s_server);
        prop_assert_ne!(&s_client, &s_cancel);
        prop_assert_ne!(&s_server, &s_cancel);
        // Same AAD, only the nonce's role bit differs: the tags still differ.
        let mut a = AesGmac::new(&key, &nonce_for(message_id, false, false));
        a.update(&body);
        let mut b = AesGmac::new(&key, &nonce_for(message_id, true, false));
        b.update(&body);
        let mut c = AesGmac::new(&key, &nonce_for(message_id, false, true));
        c.update(&body);
        let (a, b, c) = (a.finalize(), b.finalize(), c.finalize());
        prop_assert_ne!(a, b);
        prop_assert_ne!(a, c);
        prop_assert_ne!(b, c);
    }

    #[test]
    fn short_or_garbage_input_is_an_error_not_a_panic(
        algorithm in algorithm(),
        data in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let key_obj = SigningKey::new(algorithm, &[5; 16]).unwrap();
        let mut copy = data.clone();
        if data.len() < HEADER_LEN {
            prop_assert_eq!(key_obj.signature(&data), Err(SigningError::TooShort { len: data.len() }));
            prop_assert_eq!(key_obj.sign(&mut copy), Err(SigningError::TooShort { len: data.len() }));
        }
        let _ = key_obj.verify(&data);
        let _ = key_obj.verify_chain(&data);
        let _ = key_obj.sign_chain(&mut copy);
    }
}

/// The message with the reference signature written in (SIGNED flag already set by sign).
fn reference_signed(algorithm: Algorithm, key: &[u8; 16], message: &[u8]) -> Vec<u8> {
    let mut out = message.to_vec();
    let sig = reference_signature(algorithm, key, message);
    out[48..64].copy_from_slice(&sig);
    out
}

#[test]
fn key_lengths_are_checked() {
    for alg in [Algorithm::AesCmac, Algorithm::AesGmac] {
        assert_eq!(
            SigningKey::new(alg, &[0; 15]).unwrap_err(),
            SigningError::KeyLength {
                expected: 16,
                got: 15
            }
        );
    }
    assert!(SigningKey::new(Algorithm::HmacSha256, &[]).is_err());
    let k = SigningKey::new(Algorithm::AesGmac, &[0x42; 16]).unwrap();
    assert!(
        !format!("{k:?}").contains("42"),
        "Debug must not print the key"
    );
}

/// HMAC's one-pass path for short messages (up to 512 bytes) and the streaming path above
/// it, at every length around the boundaries (tails of 55, 56 and 63 bytes need one or two
/// padding blocks), against RustCrypto's `hmac`.
#[test]
fn hmac_one_pass_and_streaming_match_rustcrypto_at_every_short_length() {
    let key = [0x42u8; 16];
    let key_obj = SigningKey::new(Algorithm::HmacSha256, &key).unwrap();
    for len in HEADER_LEN..=700 {
        let body: Vec<u8> = (0..len - HEADER_LEN).map(|i| (i * 7 + len) as u8).collect();
        let mut msg = message(len as u64, 0x0009, false, &body);
        key_obj.sign(&mut msg).unwrap();
        let want = reference_signature(Algorithm::HmacSha256, &key, &msg);
        assert_eq!(&msg[48..64], &want[..], "length {len}");
        assert_eq!(key_obj.verify(&msg), Ok(()), "length {len}");
    }
}
