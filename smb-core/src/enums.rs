//! Wire enums shared by [`crate::messages`] (where NEGOTIATE contexts carry them) and
//! [`crate::signing`] (which keys and derives with them), so neither imports the other:
//! signing algorithms (MS-SMB2 2.2.3.1.7) and encryption ciphers (MS-SMB2 2.2.3.1.2).

use std::fmt;

use crate::header::{wire_enum, Dialect};

wire_enum! {
    /// SigningAlgorithmId of SMB2_SIGNING_CAPABILITIES (MS-SMB2 2.2.3.1.7).
    SigningAlgorithmId(u16) {
        /// HMAC-SHA256.
        HMAC_SHA256 = 0,
        /// AES-128-CMAC.
        AES_CMAC = 1,
        /// AES-128-GMAC.
        AES_GMAC = 2,
    }
}

wire_enum! {
    /// Encryption cipher ids of SMB2_ENCRYPTION_CAPABILITIES (MS-SMB2 2.2.3.1.2).
    CipherId(u16) {
        /// AES-128-CCM.
        AES_128_CCM = 0x0001,
        /// AES-128-GCM.
        AES_128_GCM = 0x0002,
        /// AES-256-CCM.
        AES_256_CCM = 0x0003,
        /// AES-256-GCM.
        AES_256_GCM = 0x0004,
    }
}

/// A signing algorithm this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-SHA256, truncated to 16 bytes (2.0.2, 2.1; 3.1.1 when negotiated).
    HmacSha256,
    /// AES-128-CMAC (3.0, 3.0.2; 3.1.1 by default).
    AesCmac,
    /// AES-128-GMAC (3.1.1 when negotiated).
    AesGmac,
}

impl Algorithm {
    /// Every algorithm, in wire-id order.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::HmacSha256,
        Algorithm::AesCmac,
        Algorithm::AesGmac,
    ];

    /// The wire id.
    pub fn id(self) -> SigningAlgorithmId {
        match self {
            Algorithm::HmacSha256 => SigningAlgorithmId::HMAC_SHA256,
            Algorithm::AesCmac => SigningAlgorithmId::AES_CMAC,
            Algorithm::AesGmac => SigningAlgorithmId::AES_GMAC,
        }
    }

    /// The algorithm a wire id names, or `None` for an unknown id.
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

    /// The lower-case name [`Algorithm::parse`] reads.
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

/// SMB2 encryption ciphers (MS-SMB2 2.2.3.1.2, SMB2_ENCRYPTION_CAPABILITIES): the ones
/// this crate knows the key sizes of. On the wire they are [`CipherId`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-128-CCM.
    Aes128Ccm,
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-CCM.
    Aes256Ccm,
    /// AES-256-GCM.
    Aes256Gcm,
}

impl Cipher {
    /// Every cipher, in wire-id order.
    pub const ALL: [Cipher; 4] = [
        Cipher::Aes128Ccm,
        Cipher::Aes128Gcm,
        Cipher::Aes256Ccm,
        Cipher::Aes256Gcm,
    ];

    /// The wire CipherId.
    pub fn id(self) -> CipherId {
        match self {
            Cipher::Aes128Ccm => CipherId::AES_128_CCM,
            Cipher::Aes128Gcm => CipherId::AES_128_GCM,
            Cipher::Aes256Ccm => CipherId::AES_256_CCM,
            Cipher::Aes256Gcm => CipherId::AES_256_GCM,
        }
    }

    /// The cipher a wire CipherId names, or `None` for an unknown id.
    pub fn from_id(id: CipherId) -> Option<Self> {
        match id {
            CipherId::AES_128_CCM => Some(Cipher::Aes128Ccm),
            CipherId::AES_128_GCM => Some(Cipher::Aes128Gcm),
            CipherId::AES_256_CCM => Some(Cipher::Aes256Ccm),
            CipherId::AES_256_GCM => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }

    /// Parses "aes-128-ccm", "aes-128-gcm", "aes-256-ccm", "aes-256-gcm" (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Cipher::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The lower-case name [`Cipher::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Ccm => "aes-128-ccm",
            Cipher::Aes128Gcm => "aes-128-gcm",
            Cipher::Aes256Ccm => "aes-256-ccm",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// Encryption key length in bytes: 16 or 32.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes128Gcm => 16,
            Cipher::Aes256Ccm | Cipher::Aes256Gcm => 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for c in Cipher::ALL {
            assert_eq!(Cipher::parse(&c.name().to_ascii_uppercase()), Some(c));
            assert_eq!(Cipher::from_id(c.id()), Some(c));
        }
        assert_eq!(Cipher::parse("aes-512-gcm"), None);
        assert_eq!(Cipher::from_id(CipherId(9)), None);
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(&a.name().to_ascii_uppercase()), Some(a));
            assert_eq!(Algorithm::from_id(a.id()), Some(a));
        }
        assert_eq!(Algorithm::from_id(SigningAlgorithmId(9)), None);
    }
}
