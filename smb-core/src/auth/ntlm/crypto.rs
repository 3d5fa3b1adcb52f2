//! The NTLMv2 computations (MS-NLMP 3.3.2: NTOWFv2, the responses, the session base key),
//! the MIC, and NTLM session security (MS-NLMP 3.4: SIGNKEY, SEALKEY, sign and seal).

use std::fmt;

use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use rc4::consts::U16;
use rc4::{KeyInit, Rc4, StreamCipher};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{flags, MIC_OFFSET};
use crate::codec::{utf16le, Writer};

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// RtlUpcaseUnicodeString: per-character upper case that never changes the length
/// (Rust's full case mapping would turn "ß" into "SS"; Windows leaves it).
pub(super) fn upcase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// NTOWFv1 / the NT hash: MD4(UNICODE(password)) (MS-NLMP 3.3.1).
pub fn nt_hash(password: &str) -> [u8; 16] {
    let unicode = Zeroizing::new(utf16le(password));
    Md4::digest(&*unicode).into()
}

/// NTOWFv2 = HMAC_MD5(NT hash, UNICODE(Uppercase(User) || UserDom)) (MS-NLMP 3.3.2).
/// The user name is case-insensitive, the domain is not.
pub fn ntowf_v2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    hmac_md5(nt_hash, &[&utf16le(&upcase(user)), &utf16le(domain)])
}

/// The NTLMv2_CLIENT_CHALLENGE ("temp" in MS-NLMP 3.3.2):
/// Responserversion(1) || HiResponserversion(1) || Z(6) || Time || ClientChallenge || Z(4)
/// || ServerName (the AV pairs) || Z(4).
pub fn ntlmv2_client_blob(timestamp: u64, client_challenge: &[u8; 8], av_pairs: &[u8]) -> Vec<u8> {
    let mut temp = Vec::with_capacity(32 + av_pairs.len());
    temp.put_bytes(&[1, 1]);
    temp.put_zeros(6);
    temp.put_u64(timestamp);
    temp.put_bytes(client_challenge);
    temp.put_zeros(4);
    temp.put_bytes(av_pairs);
    temp.put_zeros(4);
    temp
}

/// NTProofStr = HMAC_MD5(ResponseKeyNT, ServerChallenge || temp).
pub fn nt_proof_str(
    response_key_nt: &[u8; 16],
    server_challenge: &[u8; 8],
    temp: &[u8],
) -> [u8; 16] {
    hmac_md5(response_key_nt, &[server_challenge, temp])
}

/// NtChallengeResponse = NTProofStr || temp.
pub fn ntlmv2_response(
    response_key_nt: &[u8; 16],
    server_challenge: &[u8; 8],
    temp: &[u8],
) -> Vec<u8> {
    let proof = nt_proof_str(response_key_nt, server_challenge, temp);
    let mut out = Vec::with_capacity(16 + temp.len());
    out.put_bytes(&proof);
    out.put_bytes(temp);
    out
}

/// LMv2: HMAC_MD5(ResponseKeyLM, ServerChallenge || ClientChallenge) || ClientChallenge.
pub fn lmv2_response(
    response_key_lm: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> [u8; 24] {
    let mac = hmac_md5(response_key_lm, &[server_challenge, client_challenge]);
    let mut out = [0u8; 24];
    out[..16].copy_from_slice(&mac);
    out[16..].copy_from_slice(client_challenge);
    out
}

/// SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr). For NTLMv2 this is also the
/// KeyExchangeKey (MS-NLMP 3.4.5.1: "If NTLM v2 is used, KeyExchangeKey MUST be set to the
/// given 128-bit SessionBaseKey value").
pub fn session_base_key(response_key_nt: &[u8; 16], nt_proof: &[u8; 16]) -> [u8; 16] {
    hmac_md5(response_key_nt, &[nt_proof])
}

/// RC4K(key, 16 bytes): encrypts (or decrypts) the random session key for KEY_EXCH.
pub fn rc4_key(key: &[u8; 16], data: &[u8; 16]) -> [u8; 16] {
    let mut cipher = Rc4::<U16>::new(&(*key).into());
    let mut out = *data;
    cipher.apply_keystream(&mut out);
    out
}

/// MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE || CHALLENGE || AUTHENTICATE) with the
/// AUTHENTICATE's MIC field zeroed (MS-NLMP 3.1.5.1.2).
pub fn compute_mic(
    exported_session_key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate: &[u8],
) -> [u8; 16] {
    let head = &authenticate[..authenticate.len().min(MIC_OFFSET)];
    let tail = authenticate.get(MIC_OFFSET + 16..).unwrap_or(&[]);
    let zeros = [0u8; 16];
    let zeros = &zeros[..authenticate.len().saturating_sub(MIC_OFFSET).min(16)];
    hmac_md5(
        exported_session_key,
        &[negotiate, challenge, head, zeros, tail],
    )
}

/// Which side of the session a signing or sealing key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Messages the client sends.
    ClientToServer,
    /// Messages the server sends.
    ServerToClient,
}

/// SIGNKEY (MS-NLMP 3.4.5.2), with extended session security.
pub fn sign_key(exported_session_key: &[u8; 16], direction: Direction) -> [u8; 16] {
    let magic: &[u8] = match direction {
        Direction::ClientToServer => {
            b"session key to client-to-server signing key magic constant\0"
        }
        Direction::ServerToClient => {
            b"session key to server-to-client signing key magic constant\0"
        }
    };
    Md5::new()
        .chain_update(exported_session_key)
        .chain_update(magic)
        .finalize()
        .into()
}

/// SEALKEY (MS-NLMP 3.4.5.3), with extended session security: 128, 56 or 40 bits of the key.
pub fn seal_key(
    exported_session_key: &[u8; 16],
    negotiated_flags: u32,
    direction: Direction,
) -> [u8; 16] {
    let magic: &[u8] = match direction {
        Direction::ClientToServer => {
            b"session key to client-to-server sealing key magic constant\0"
        }
        Direction::ServerToClient => {
            b"session key to server-to-client sealing key magic constant\0"
        }
    };
    let len = if negotiated_flags & flags::NEGOTIATE_128 != 0 {
        16
    } else if negotiated_flags & flags::NEGOTIATE_56 != 0 {
        7
    } else {
        5
    };
    Md5::new()
        .chain_update(&exported_session_key[..len])
        .chain_update(magic)
        .finalize()
        .into()
}

/// One direction of NTLM session security (MS-NLMP 3.4.4.2, extended session security,
/// connection-oriented): a signing key, a sealing RC4 handle that persists across messages,
/// and a sequence number. SPNEGO uses it for the mechListMIC (MS-SPNG 3.1.5.1). The keys and
/// the RC4 state (rc4's `zeroize` feature) are zeroized on drop.
pub struct NtlmSecurity {
    sign_key: Zeroizing<[u8; 16]>,
    handle: Rc4<U16>,
    key_exch: bool,
    seq: u32,
}

impl fmt::Debug for NtlmSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtlmSecurity")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl NtlmSecurity {
    /// The signing and sealing state for one direction, from the exported session key
    /// (MS-NLMP 3.4.5.2 and 3.4.5.3), sequence number 0.
    pub fn new(
        exported_session_key: &[u8; 16],
        negotiated_flags: u32,
        direction: Direction,
    ) -> Self {
        let seal = Zeroizing::new(seal_key(exported_session_key, negotiated_flags, direction));
        NtlmSecurity {
            sign_key: Zeroizing::new(sign_key(exported_session_key, direction)),
            handle: Rc4::<U16>::new(&(*seal).into()),
            key_exch: negotiated_flags & flags::NEGOTIATE_KEY_EXCH != 0,
            seq: 0,
        }
    }

    /// MAC(Handle, SigningKey, SeqNum, Message): Version(1) || Checksum[0..8] || SeqNum,
    /// where the checksum is RC4-encrypted with the sealing handle when KEY_EXCH was negotiated.
    pub fn sign(&mut self, message: &[u8]) -> [u8; 16] {
        let seq = self.seq.to_le_bytes();
        let mac = hmac_md5(&*self.sign_key, &[&seq, message]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&mac[..8]);
        if self.key_exch {
            self.handle.apply_keystream(&mut checksum);
        }
        self.seq = self.seq.wrapping_add(1);
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&1u32.to_le_bytes());
        out[4..12].copy_from_slice(&checksum);
        out[12..].copy_from_slice(&seq);
        out
    }

    /// Checks a signature made by the peer's matching `NtlmSecurity`, in constant time.
    pub fn verify(&mut self, message: &[u8], signature: &[u8]) -> bool {
        let expected = self.sign(message);
        bool::from(expected.as_slice().ct_eq(signature))
    }

    /// GSS_WrapEx: RC4-encrypts `message` in place with the sealing handle, then signs the
    /// plaintext (MS-NLMP 3.4.3). Not used by SMB; here so MS-NLMP 4.2.4.4 tests the handle.
    pub fn seal(&mut self, message: &mut [u8]) -> [u8; 16] {
        let plaintext = Zeroizing::new(message.to_vec());
        self.handle.apply_keystream(message);
        self.sign(&plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcase_keeps_length() {
        assert_eq!(upcase("straße"), "STRAßE");
        assert_eq!(upcase("alice"), "ALICE");
    }

    #[test]
    fn mic_over_short_message_does_not_panic() {
        let k = [0u8; 16];
        let _ = compute_mic(&k, &[], &[], &[1, 2, 3]);
        let _ = compute_mic(&k, &[], &[], &[0u8; 80]);
    }
}
