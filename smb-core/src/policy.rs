//! `SigningPolicy`: the Windows semantics of RequireSecuritySignature and
//! EnableSecuritySignature, for both roles (LanmanServer and LanmanWorkstation).
//!
//! For SMB2 and later, EnableSecuritySignature has no effect: signing is always
//! *enabled*, and a session is signed when either side *requires* it.

/// NEGOTIATE / SESSION_SETUP SecurityMode bit: signing enabled (MS-SMB2 2.2.3).
pub const SIGNING_ENABLED: u16 = 0x0001;
/// NEGOTIATE / SESSION_SETUP SecurityMode bit: signing required (MS-SMB2 2.2.3).
pub const SIGNING_REQUIRED: u16 = 0x0002;

/// One role's signing settings, named after the registry values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningPolicy {
    /// `RequireSecuritySignature`: refuse to run a session unsigned.
    pub require_security_signature: bool,
    /// `EnableSecuritySignature`: accepted for familiarity; it has no effect on SMB2+,
    /// where signing is always enabled.
    pub enable_security_signature: bool,
}

impl SigningPolicy {
    /// Signing required (the Windows 11 24H2 default for both roles).
    pub const REQUIRED: SigningPolicy = SigningPolicy {
        require_security_signature: true,
        enable_security_signature: true,
    };
    /// Signing enabled but not required.
    pub const ENABLED: SigningPolicy = SigningPolicy {
        require_security_signature: false,
        enable_security_signature: true,
    };

    /// Signing enabled, and required when `require` is true.
    pub fn new(require: bool) -> Self {
        SigningPolicy {
            require_security_signature: require,
            enable_security_signature: true,
        }
    }

    /// The SecurityMode bits this role sends in NEGOTIATE and SESSION_SETUP.
    /// SIGNING_ENABLED is always set for SMB2+ (MS-SMB2 3.2.4.2.2.2, 3.3.5.4).
    pub fn security_mode(&self) -> u16 {
        if self.require_security_signature {
            SIGNING_ENABLED | SIGNING_REQUIRED
        } else {
            SIGNING_ENABLED
        }
    }
}

impl Default for SigningPolicy {
    fn default() -> Self {
        SigningPolicy::REQUIRED
    }
}

/// Whether an SMB2 session is signed: when either side requires it, given the
/// SecurityMode bits each side announced (the SMB2 column of the client/server table).
/// Guest and anonymous sessions are never signed: they have no usable key.
pub fn session_is_signed(client_security_mode: u16, server_security_mode: u16) -> bool {
    (client_security_mode | server_security_mode) & SIGNING_REQUIRED != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_when_either_side_requires() {
        for client in [SigningPolicy::REQUIRED, SigningPolicy::ENABLED] {
            for server in [SigningPolicy::REQUIRED, SigningPolicy::ENABLED] {
                let signed = session_is_signed(client.security_mode(), server.security_mode());
                assert_eq!(
                    signed,
                    client.require_security_signature || server.require_security_signature
                );
            }
        }
    }

    #[test]
    fn enable_has_no_effect_on_smb2() {
        let p = SigningPolicy {
            require_security_signature: false,
            enable_security_signature: false,
        };
        assert_eq!(p.security_mode(), SIGNING_ENABLED);
    }
}
