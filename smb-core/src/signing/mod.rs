//! Message signing and key derivation (MS-SMB2 3.1.4.1, 3.1.4.2).
//!
//! A [`SigningKey`] binds a key to its algorithm and signs or verifies whole SMB2 messages in
//! place. The MAC runs over the message as three slices (header bytes 0..48, sixteen zero
//! bytes standing in for the signature, then the rest), so nothing is copied. Each algorithm
//! also has its own streaming type ([`HmacSha256`], [`AesCmac`], [`AesGmac`]), and [`Mac`]
//! wraps whichever a key uses.

pub mod aes_cmac;
pub mod aes_gmac;
pub mod hmac_sha256;
pub mod kdf;
pub mod preauth;

use std::fmt;

use aes::cipher::KeyInit;
use aes::Aes128;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use aes_cmac::AesCmac;
pub use aes_gmac::AesGmac;
pub use hmac_sha256::HmacSha256;
pub use kdf::{derive_session_keys, kdf_counter_hmac_sha256, Cipher, SessionKeys};
pub use preauth::PreauthHash;

use crate::codec::DecodeError;
use crate::header::{
    flags, wire_enum, Dialect, FLAGS_OFFSET, HEADER_LEN, SIGNATURE_LEN, SIGNATURE_OFFSET,
};

wire_enum! {
    /// SigningAlgorithmId of SMB2_SIGNING_CAPABILITIES (MS-SMB2 2.2.3.1.7).
    SigningAlgorithmId(u16) {
        HMAC_SHA256 = 0,
        AES_CMAC = 1,
        AES_GMAC = 2,
    }
}

/// A signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HmacSha256,
    AesCmac,
    AesGmac,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [
        Algorithm::HmacSha256,
        Algorithm::AesCmac,
        Algorithm::AesGmac,
    ];

    pub fn id(self) -> SigningAlgorithmId {
        match self {
            Algorithm::HmacSha256 => SigningAlgorithmId::HMAC_SHA256,
            Algorithm::AesCmac => SigningAlgorithmId::AES_CMAC,
            Algorithm::AesGmac => SigningAlgorithmId::AES_GMAC,
        }
    }

    pub fn from_id(id: SigningAlgorithmId) -> Option<Self> {
        match id {
            SigningAlgorithmId::HMAC_SHA256 => Some(Algorithm::HmacSha256),
            SigningAlgorithmId::AES_CMAC => Some(Algorithm::AesCmac),
            SigningAlgorithmId::AES_GMAC => Some(Algorithm::AesGmac),
            _ => None,
        }
    }

    /// MS-SMB2 3.1.4.1: 2.0.2 and 2.1 sign with HMAC-SHA256; 3.0 and 3.0.2 with AES-128-CMAC;
    /// 3.1.1 with the algorithm negotiated in SMB2_SIGNING_CAPABILITIES, AES-128-CMAC when
    /// none was.
    pub fn for_dialect(dialect: Dialect, negotiated: Option<Algorithm>) -> Algorithm {
        if dialect == Dialect::SMB311 {
            negotiated.unwrap_or(Algorithm::AesCmac)
        } else if dialect.is_smb3() {
            Algorithm::AesCmac
        } else {
            Algorithm::HmacSha256
        }
    }

    /// Parses "hmac-sha256", "aes-cmac", "aes-gmac" (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Algorithm::ALL.into_iter().find(|a| a.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::AesCmac => "aes-cmac",
            Algorithm::AesGmac => "aes-gmac",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a message could not be signed or verified, or keys not derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningError {
    /// The message is shorter than a 64-byte SMB2 header.
    TooShort { len: usize },
    /// The key has the wrong length for the algorithm.
    KeyLength { expected: usize, got: usize },
    /// The signature in the message is not the MAC of the message.
    BadSignature,
    /// A compound chain could not be split into messages.
    Chain(DecodeError),
    /// 3.1.1 key derivation needs the preauth integrity hash as its context.
    MissingPreauthHash,
}

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningError::TooShort { len } => {
                write!(
                    f,
                    "message of {len} bytes is shorter than the 64-byte SMB2 header"
                )
            }
            SigningError::KeyLength { expected, got } => {
                write!(f, "signing key is {got} bytes, expected {expected}")
            }
            SigningError::BadSignature => f.write_str("signature does not match the message"),
            SigningError::Chain(e) => write!(f, "compound chain: {e}"),
            SigningError::MissingPreauthHash => {
                f.write_str("SMB 3.1.1 key derivation needs the preauth integrity hash")
            }
        }
    }
}

impl std::error::Error for SigningError {}

impl From<DecodeError> for SigningError {
    fn from(e: DecodeError) -> Self {
        SigningError::Chain(e)
    }
}

/// The key material, per algorithm. AES keys are kept expanded; `aes` is built with its
/// `zeroize` feature, so the round keys are wiped when dropped.
#[derive(Clone)]
enum KeyMaterial {
    Hmac(Zeroizing<Vec<u8>>),
    Cmac(AesCmac),
    Gmac(Aes128),
}

/// A signing key bound to its algorithm. Zeroized on drop; `Debug` never prints the key.
#[derive(Clone)]
pub struct SigningKey {
    algorithm: Algorithm,
    material: KeyMaterial,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The streaming MAC of one message under a [`SigningKey`].
// The CMAC variant carries an expanded AES key; boxing it would allocate once per message,
// and a `Mac` only lives on the stack for the length of one message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Mac {
    HmacSha256(HmacSha256),
    AesCmac(AesCmac),
    AesGmac(AesGmac),
}

impl Mac {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Mac::HmacSha256(m) => m.update(data),
            Mac::AesCmac(m) => m.update(data),
            Mac::AesGmac(m) => m.update(data),
        }
    }

    pub fn finalize(self) -> [u8; 16] {
        match self {
            Mac::HmacSha256(m) => m.finalize(),
            Mac::AesCmac(m) => m.finalize(),
            Mac::AesGmac(m) => m.finalize(),
        }
    }
}

const ZERO_SIGNATURE: [u8; SIGNATURE_LEN] = [0; SIGNATURE_LEN];

/// Feeds a message (at least 64 bytes) as header[..48], sixteen zero bytes, message[64..]:
/// MS-SMB2 3.1.4.1 signs the message with its Signature field zeroed, and this does it
/// without copying the message.
fn feed_zeroed_signature(message: &[u8], mut update: impl FnMut(&[u8])) {
    let (head, rest) = message.split_at(SIGNATURE_OFFSET.min(message.len()));
    update(head);
    update(&ZERO_SIGNATURE);
    update(rest.get(SIGNATURE_LEN..).unwrap_or_default());
}

impl SigningKey {
    /// AES-CMAC and AES-GMAC take a 16-byte key. HMAC-SHA256 takes the session key (16 bytes
    /// in practice; any non-empty length is accepted, as HMAC allows).
    pub fn new(algorithm: Algorithm, key: &[u8]) -> Result<Self, SigningError> {
        let aes_key = || -> Result<&[u8; 16], SigningError> {
            key.try_into().map_err(|_| SigningError::KeyLength {
                expected: 16,
                got: key.len(),
            })
        };
        let material = match algorithm {
            Algorithm::HmacSha256 => {
                if key.is_empty() {
                    return Err(SigningError::KeyLength {
                        expected: 16,
                        got: 0,
                    });
                }
                KeyMaterial::Hmac(Zeroizing::new(key.to_vec()))
            }
            Algorithm::AesCmac => KeyMaterial::Cmac(AesCmac::new(aes_key()?)),
            Algorithm::AesGmac => KeyMaterial::Gmac(Aes128::new(aes_key()?.into())),
        };
        Ok(SigningKey {
            algorithm,
            material,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A fresh streaming MAC for the message whose 64-byte header is `header`. Only GMAC
    /// reads the header (for its nonce); feed the message to the returned MAC yourself.
    pub fn mac(&self, header: &[u8]) -> Result<Mac, SigningError> {
        if header.len() < HEADER_LEN {
            return Err(SigningError::TooShort { len: header.len() });
        }
        Ok(match &self.material {
            KeyMaterial::Hmac(key) => Mac::HmacSha256(HmacSha256::new(key)),
            KeyMaterial::Cmac(prepared) => Mac::AesCmac(prepared.clone()),
            KeyMaterial::Gmac(cipher) => {
                let nonce = aes_gmac::nonce_from_header(header)
                    .ok_or(SigningError::TooShort { len: header.len() })?;
                Mac::AesGmac(AesGmac::with_cipher(cipher, &nonce))
            }
        })
    }

    /// MAC of one message (header at 0) with bytes 48..64 taken as zero, without copying it.
    /// MS-SMB2 3.1.4.1: the signature is computed over the whole message with the Signature
    /// field set to zero. The GMAC nonce comes from the header: MessageId, SERVER_TO_REDIR
    /// (role bit) and Command == CANCEL (cancel bit).
    pub fn signature(&self, message: &[u8]) -> Result<[u8; 16], SigningError> {
        if message.len() < HEADER_LEN {
            return Err(SigningError::TooShort { len: message.len() });
        }
        // The concrete MAC types are used directly here (not `Mac`), so the large CMAC state
        // is not moved around inside an enum on every message.
        Ok(match &self.material {
            KeyMaterial::Hmac(key) => {
                let mut mac = HmacSha256::new(key);
                feed_zeroed_signature(message, |piece| mac.update(piece));
                mac.finalize()
            }
            KeyMaterial::Cmac(prepared) => {
                let mut mac = prepared.clone();
                feed_zeroed_signature(message, |piece| mac.update(piece));
                mac.finalize()
            }
            KeyMaterial::Gmac(cipher) => {
                let nonce = aes_gmac::nonce_from_header(message)
                    .ok_or(SigningError::TooShort { len: message.len() })?;
                let mut mac = AesGmac::with_cipher(cipher, &nonce);
                feed_zeroed_signature(message, |piece| mac.update(piece));
                mac.finalize()
            }
        })
    }

    /// Sets the SIGNED flag (the flags are covered by the MAC), then writes the signature
    /// into bytes 48..64.
    pub fn sign(&self, message: &mut [u8]) -> Result<(), SigningError> {
        if message.len() < HEADER_LEN {
            return Err(SigningError::TooShort { len: message.len() });
        }
        let flags_field = &mut message[FLAGS_OFFSET..FLAGS_OFFSET + 4];
        let mut fl = u32::from_le_bytes([
            flags_field[0],
            flags_field[1],
            flags_field[2],
            flags_field[3],
        ]);
        fl |= flags::SIGNED;
        flags_field.copy_from_slice(&fl.to_le_bytes());
        let sig = self.signature(message)?;
        message[SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN].copy_from_slice(&sig);
        Ok(())
    }

    /// Checks the message's own signature in constant time. The SIGNED flag is not
    /// consulted: a message that must be signed is checked whether or not it claims to be.
    pub fn verify(&self, message: &[u8]) -> Result<(), SigningError> {
        let expected = self.signature(message)?;
        let got = &message[SIGNATURE_OFFSET..SIGNATURE_OFFSET + SIGNATURE_LEN];
        if bool::from(expected.ct_eq(got)) {
            Ok(())
        } else {
            Err(SigningError::BadSignature)
        }
    }

    /// Signs each message of a compound chain, its padding included (MS-SMB2 3.2.4.1.4 /
    /// 3.3.4.1.1: each message of a compound is signed separately). Set every NextCommand
    /// first: the chain is split on them, and they are covered by the signatures.
    pub fn sign_chain(&self, chain: &mut [u8]) -> Result<(), SigningError> {
        for range in crate::compound::split_chain(chain)? {
            // split_chain returns ranges inside `chain`; `get_mut` keeps this panic-free anyway.
            let message = chain
                .get_mut(range)
                .ok_or(SigningError::TooShort { len: 0 })?;
            self.sign(message)?;
        }
        Ok(())
    }

    /// Verifies each message of a compound chain, padding included; the first failure wins.
    pub fn verify_chain(&self, chain: &[u8]) -> Result<(), SigningError> {
        for range in crate::compound::split_chain(chain)? {
            let message = chain.get(range).ok_or(SigningError::TooShort { len: 0 })?;
            self.verify(message)?;
        }
        Ok(())
    }
}
