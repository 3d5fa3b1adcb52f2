//! NTLMSSP messages as an observer sees them inside SESSION_SETUP security buffers (raw or
//! wrapped in SPNEGO): the NEGOTIATE flags, and from AUTHENTICATE the user, the domain, the
//! response kind, and what key derivation needs. Passwords and responses are never printed.

/// NTLMSSP NegotiateFlags we name (MS-NLMP 2.2.2.5).
pub mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ANONYMOUS: u32 = 0x0000_0800;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const N128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const N56: u32 = 0x8000_0000;
}

/// The names of the flags set in `f`.
pub fn flag_names(f: u32) -> Vec<&'static str> {
    [
        (flags::UNICODE, "UNICODE"),
        (flags::SIGN, "SIGN"),
        (flags::SEAL, "SEAL"),
        (flags::NTLM, "NTLM"),
        (flags::ANONYMOUS, "ANONYMOUS"),
        (flags::ALWAYS_SIGN, "ALWAYS_SIGN"),
        (flags::EXTENDED_SESSIONSECURITY, "EXTENDED_SESSIONSECURITY"),
        (flags::TARGET_INFO, "TARGET_INFO"),
        (flags::VERSION, "VERSION"),
        (flags::N128, "128"),
        (flags::KEY_EXCH, "KEY_EXCH"),
        (flags::N56, "56"),
    ]
    .into_iter()
    .filter(|(b, _)| f & b != 0)
    .map(|(_, n)| n)
    .collect()
}

/// One NTLMSSP message found in a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ntlm {
    Negotiate {
        flags: u32,
    },
    Challenge {
        flags: u32,
        server_challenge: [u8; 8],
    },
    Authenticate(Authenticate),
}

/// The parts of AUTHENTICATE (MS-NLMP 2.2.1.3) an auditor uses.
#[derive(Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub flags: u32,
    pub user: String,
    pub domain: String,
    pub workstation: String,
    /// NtChallengeResponse; kept only to derive keys in memory, never printed.
    pub nt_response: Vec<u8>,
    pub encrypted_session_key: Vec<u8>,
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("flags", &format_args!("0x{:08x}", self.flags))
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

impl Authenticate {
    /// `NTLMv2`, `NTLMv1` or `anonymous` (from the NtChallengeResponse length).
    pub fn version(&self) -> &'static str {
        match self.nt_response.len() {
            0 => "anonymous",
            24 => "NTLMv1",
            _ => "NTLMv2",
        }
    }
}

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Finds and parses the NTLMSSP message inside `token` (raw or SPNEGO-wrapped).
pub fn find(token: &[u8]) -> Option<Ntlm> {
    let at = token.windows(8).position(|w| w == SIGNATURE)?;
    parse(&token[at..])
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A security buffer field (len, maxlen, offset) at `at`.
fn field(msg: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16_at(msg, at)?);
    let off = u32_at(msg, at + 4)? as usize;
    msg.get(off..off.checked_add(len)?)
}

fn text(b: &[u8], unicode: bool) -> String {
    if unicode {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

/// Parses one NTLMSSP message starting at its signature.
pub fn parse(msg: &[u8]) -> Option<Ntlm> {
    if !msg.starts_with(SIGNATURE) {
        return None;
    }
    match u32_at(msg, 8)? {
        1 => Some(Ntlm::Negotiate {
            flags: u32_at(msg, 12)?,
        }),
        2 => Some(Ntlm::Challenge {
            flags: u32_at(msg, 20)?,
            server_challenge: msg.get(24..32)?.try_into().ok()?,
        }),
        3 => {
            let flags = u32_at(msg, 60)?;
            let unicode = flags & self::flags::UNICODE != 0;
            Some(Ntlm::Authenticate(Authenticate {
                flags,
                nt_response: field(msg, 20)?.to_vec(),
                domain: text(field(msg, 28)?, unicode),
                user: text(field(msg, 36)?, unicode),
                workstation: text(field(msg, 44)?, unicode),
                encrypted_session_key: field(msg, 52).map(<[u8]>::to_vec).unwrap_or_default(),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::auth::{ClientAuth, Credentials};

    #[test]
    fn reads_what_our_ntlm_client_sends() {
        let mut auth = ClientAuth::raw_ntlmssp(Credentials::password("alice", "LAB", "pw"));
        let first = auth.first_token().unwrap();
        let Some(Ntlm::Negotiate { flags: f }) = find(&first) else {
            panic!("no NEGOTIATE in {first:02x?}")
        };
        assert!(f & flags::SIGN != 0, "{:?}", flag_names(f));
        assert!(find(b"no ntlm here").is_none());
        assert!(
            parse(b"NTLMSSP\0\x03\0\0\0").is_none(),
            "short AUTHENTICATE"
        );
    }
}
