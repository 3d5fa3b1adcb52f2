//! Key derivation for SMB 3.x (MS-SMB2 3.1.4.2): SP800-108 KDF in counter mode with
//! HMAC-SHA256 as the PRF, and the per-dialect labels and contexts of MS-SMB2 3.2.5.3.1
//! (client) / 3.3.5.5.3 (server).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::SigningError;
pub use crate::enums::Cipher;
use crate::header::Dialect;

/// SP800-108 section 5.1, counter mode, PRF = HMAC-SHA256, r = 32, counter before the fixed
/// input: `K(i) = PRF(Ki, [i]32be || fixed_input)`, i = 1, 2, ...; `out` receives the first
/// `out.len()` bytes of K(1) || K(2) || ... This is the shape of the NIST CAVP vectors, where
/// the fixed input is opaque (and already encodes L).
pub fn kdf_counter_fixed(ki: &[u8], fixed_input: &[u8], out: &mut [u8]) {
    kdf_counter_parts(ki, &[fixed_input], out)
}

/// The SMB flavour of the KDF (MS-SMB2 3.1.4.2):
/// `K(i) = HMAC-SHA256(Ki, [i]32be || Label || 0x00 || Context || [L]32be)`, L = 8 * out.len().
///
/// `label` and `context` are passed exactly as MS-SMB2 spells them, *including* their own
/// trailing NUL (e.g. `b"SMB2AESCMAC\0"`); this function adds the SP800-108 0x00 separator
/// between them. So the PRF input for the 3.0 signing key is `SMB2AESCMAC\0` `\0` `SmbSign\0`.
pub fn kdf_counter_hmac_sha256(ki: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let l_bits = (out.len() as u32).wrapping_mul(8);
    kdf_smb(ki, label, context, l_bits, out)
}

/// The SMB KDF with an explicit L (in bits) that may exceed the bytes kept: MS-SMB2 3.1.4.2
/// sets L = 256 for every key of a session whose cipher is AES-256, signing key included,
/// and a 16-byte key is then the first 16 bytes of that output.
fn kdf_smb(ki: &[u8], label: &[u8], context: &[u8], l_bits: u32, out: &mut [u8]) {
    kdf_counter_parts(ki, &[label, &[0u8], context, &l_bits.to_be_bytes()], out)
}

/// Counter-mode core: the fixed input is given in pieces, fed to the PRF without a copy.
fn kdf_counter_parts(ki: &[u8], fixed_input: &[&[u8]], out: &mut [u8]) {
    let prf = match <Hmac<Sha256> as Mac>::new_from_slice(ki) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let mut mac = prf.clone();
        let counter = (i as u32).wrapping_add(1);
        mac.update(&counter.to_be_bytes());
        for part in fixed_input {
            mac.update(part);
        }
        let mut block = Zeroizing::new([0u8; 32]);
        block.copy_from_slice(&mac.finalize().into_bytes());
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

/// The keys of one SMB session. Every field is zeroized on drop; `Debug` prints lengths only.
#[derive(Clone, Default)]
pub struct SessionKeys {
    /// Session.SigningKey (for 2.x, the session key itself).
    pub signing: Zeroizing<Vec<u8>>,
    /// Session.ApplicationKey (empty for 2.x).
    pub application: Zeroizing<Vec<u8>>,
    /// Client's Session.EncryptionKey = server's DecryptionKey (empty for 2.x).
    pub client_encryption: Zeroizing<Vec<u8>>,
    /// Client's Session.DecryptionKey = server's EncryptionKey (empty for 2.x).
    pub client_decryption: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("signing", &format_args!("[{} bytes]", self.signing.len()))
            .field(
                "application",
                &format_args!("[{} bytes]", self.application.len()),
            )
            .field(
                "client_encryption",
                &format_args!("[{} bytes]", self.client_encryption.len()),
            )
            .field(
                "client_decryption",
                &format_args!("[{} bytes]", self.client_decryption.len()),
            )
            .finish()
    }
}

/// Derives a session's keys from its session key.
///
/// - `session_key`: the full cryptographic key of the authentication (16 bytes for NTLM).
///   MS-SMB2 3.2.1.3: Session.SessionKey is its first 16 bytes, right-padded with zeros when
///   shorter. With an AES-256 cipher, the full key (Session.FullSessionKey) is the KDF input.
/// - 2.0.2 / 2.1: the signing key is Session.SessionKey; no other keys.
/// - 3.0 / 3.0.2: labels and contexts are constants; `preauth_hash` is ignored.
/// - 3.1.1: the context is the preauth integrity hash, which is then required.
/// - `cipher` (3.1.1 only): AES-256 ciphers make L = 256 for every key and 32-byte encryption
///   keys (MS-SMB2 3.1.4.2; the 16-byte signing and application keys are then the first 16
///   bytes of the L = 256 output, as the Linux client does); `None` or an AES-128 cipher gives
///   L = 128 and 16-byte keys.
pub fn derive_session_keys(
    dialect: Dialect,
    session_key: &[u8],
    preauth_hash: Option<&[u8; 64]>,
    cipher: Option<Cipher>,
) -> Result<SessionKeys, SigningError> {
    if session_key.is_empty() {
        // Anonymous and guest sessions have no key; there is nothing to derive from.
        return Err(SigningError::KeyLength {
            expected: 16,
            got: 0,
        });
    }
    let mut key16 = Zeroizing::new([0u8; 16]);
    let n = session_key.len().min(16);
    key16[..n].copy_from_slice(&session_key[..n]);

    if !dialect.is_smb3() {
        return Ok(SessionKeys {
            signing: Zeroizing::new(key16.to_vec()),
            ..Default::default()
        });
    }

    // AES-256 ciphers exist only in 3.1.1 (negotiated in ENCRYPTION_CAPABILITIES); 3.0 and
    // 3.0.2 always derive 128-bit keys.
    let wide =
        dialect == Dialect::SMB311 && matches!(cipher, Some(Cipher::Aes256Ccm | Cipher::Aes256Gcm));
    let (ki, l_bits, enc_len): (&[u8], u32, usize) = if wide {
        (session_key, 256, 32)
    } else {
        (&key16[..], 128, 16)
    };

    // (signing, application, client encryption, client decryption): (label, context)
    let preauth: &[u8];
    let labels: [(&[u8], &[u8]); 4] = if dialect == Dialect::SMB311 {
        // MS-SMB2 3.2.5.3.1 / 3.3.5.5.3, dialect 3.1.1: context = Session.PreauthIntegrityHashValue.
        preauth = match preauth_hash {
            Some(h) => &h[..],
            None => return Err(SigningError::MissingPreauthHash),
        };
        [
            (b"SMBSigningKey\0", preauth),
            (b"SMBAppKey\0", preauth),
            (b"SMBC2SCipherKey\0", preauth),
            (b"SMBS2CCipherKey\0", preauth),
        ]
    } else {
        // MS-SMB2 3.2.5.3.1 / 3.3.5.5.3, dialects 3.0 and 3.0.2. Note the space in "ServerIn ".
        [
            (b"SMB2AESCMAC\0", b"SmbSign\0"),
            (b"SMB2APP\0", b"SmbRpc\0"),
            (b"SMB2AESCCM\0", b"ServerIn \0"),
            (b"SMB2AESCCM\0", b"ServerOut\0"),
        ]
    };
    let derive = |(label, context): (&[u8], &[u8]), len: usize| {
        let mut k = Zeroizing::new(vec![0u8; len]);
        kdf_smb(ki, label, context, l_bits, &mut k);
        k
    };
    Ok(SessionKeys {
        signing: derive(labels[0], 16),
        application: derive(labels[1], 16),
        client_encryption: derive(labels[2], enc_len),
        client_decryption: derive(labels[3], enc_len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smb_kdf_equals_fixed_input_form() {
        // The SMB form is the NIST form with fixed input Label || 0x00 || Context || [L]32be.
        let ki = [7u8; 16];
        let mut a = [0u8; 16];
        kdf_counter_hmac_sha256(&ki, b"SMB2AESCMAC\0", b"SmbSign\0", &mut a);
        let mut fixed = b"SMB2AESCMAC\0\0SmbSign\0".to_vec();
        fixed.extend_from_slice(&128u32.to_be_bytes());
        let mut b = [0u8; 16];
        kdf_counter_fixed(&ki, &fixed, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn multi_block_output_uses_counter() {
        let mut out = [0u8; 40];
        kdf_counter_fixed(b"k", b"x", &mut out);
        let mut first = [0u8; 32];
        kdf_counter_fixed(b"k", b"x", &mut first);
        assert_eq!(out[..32], first);
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"k").unwrap();
        m.update(&2u32.to_be_bytes());
        m.update(b"x");
        assert_eq!(out[32..], m.finalize().into_bytes()[..8]);
    }

    #[test]
    fn aes256_gives_32_byte_encryption_keys_and_311_needs_preauth() {
        let hash = [3u8; 64];
        let k = derive_session_keys(
            Dialect::SMB311,
            &[1; 16],
            Some(&hash),
            Some(Cipher::Aes256Gcm),
        )
        .unwrap();
        assert_eq!(k.signing.len(), 16);
        assert_eq!(k.client_encryption.len(), 32);
        assert_eq!(k.client_decryption.len(), 32);
        let narrow = derive_session_keys(
            Dialect::SMB311,
            &[1; 16],
            Some(&hash),
            Some(Cipher::Aes128Gcm),
        )
        .unwrap();
        assert_eq!(narrow.client_encryption.len(), 16);
        assert_ne!(narrow.client_encryption[..], k.client_encryption[..16]);
        assert!(matches!(
            derive_session_keys(Dialect::SMB311, &[1; 16], None, None),
            Err(SigningError::MissingPreauthHash)
        ));
        let two = derive_session_keys(Dialect::SMB21, &[9; 16], None, None).unwrap();
        assert_eq!(&two.signing[..], &[9; 16]);
        assert!(two.application.is_empty());
    }
}
