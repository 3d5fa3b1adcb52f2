//! The relay's view of the GSS tokens in SESSION_SETUP: it only moves NTLM messages between
//! two connections, so it unwraps them from SPNEGO on one side and wraps them again on the
//! other. The NTLM messages themselves are forwarded byte for byte (their MIC stays valid).

use anyhow::{anyhow, bail};

/// "NTLMSSP\0": the signature every NTLM message starts with (MS-NLMP 2.2.1).
pub const NTLMSSP_SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NTLM message types (MS-NLMP 2.2.1).
pub const NTLM_NEGOTIATE: u32 = 1;
pub const NTLM_CHALLENGE: u32 = 2;
pub const NTLM_AUTHENTICATE: u32 = 3;

/// How the victim wrapped its NTLM message, so the answer can be wrapped the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrapping {
    /// A bare NTLMSSP message.
    Raw,
    /// SPNEGO; `mech_list_mic` is the victim's mechListMIC (in its final NegTokenResp).
    Spnego { mech_list_mic: Option<Vec<u8>> },
}

/// An NTLM message taken out of a victim's SESSION_SETUP token.
#[derive(Debug, Clone)]
pub struct Unwrapped {
    pub ntlm: Vec<u8>,
    pub wrapping: Wrapping,
}

/// The NTLM message type of `ntlm`, checking the signature.
pub fn ntlm_type(ntlm: &[u8]) -> anyhow::Result<u32> {
    if ntlm.get(..8) != Some(&NTLMSSP_SIGNATURE[..]) {
        bail!("not an NTLMSSP message");
    }
    let t = ntlm
        .get(8..12)
        .ok_or_else(|| anyhow!("NTLMSSP message too short"))?;
    Ok(u32::from_le_bytes([t[0], t[1], t[2], t[3]]))
}

/// Takes the NTLM message out of a token the victim (initiator) sent.
pub fn unwrap_initiator(token: &[u8]) -> anyhow::Result<Unwrapped> {
    if token.starts_with(NTLMSSP_SIGNATURE) {
        return Ok(Unwrapped {
            ntlm: token.to_vec(),
            wrapping: Wrapping::Raw,
        });
    }
    bail!("SPNEGO tokens are not handled yet")
}

/// Takes the NTLM CHALLENGE out of the target's (acceptor's) token.
pub fn unwrap_acceptor(token: &[u8]) -> anyhow::Result<Vec<u8>> {
    if token.starts_with(NTLMSSP_SIGNATURE) {
        return Ok(token.to_vec());
    }
    bail!("SPNEGO tokens are not handled yet")
}

/// The first token for the target: the victim's NTLM NEGOTIATE.
pub fn wrap_first_for_target(ntlm: &[u8], _like: &Wrapping) -> Vec<u8> {
    ntlm.to_vec()
}

/// The second token for the target: the victim's NTLM AUTHENTICATE (and its mechListMIC).
pub fn wrap_last_for_target(ntlm: &[u8], _like: &Wrapping) -> Vec<u8> {
    ntlm.to_vec()
}

/// The target's CHALLENGE, wrapped for the victim the way the victim wrapped its NEGOTIATE.
pub fn wrap_challenge_for_victim(ntlm: &[u8], _like: &Wrapping) -> Vec<u8> {
    ntlm.to_vec()
}

/// The security buffer of the relay's NEGOTIATE response to the victim.
pub fn negotiate_hint() -> Vec<u8> {
    Vec::new()
}

/// `DOMAIN\user` from an NTLM AUTHENTICATE message (MS-NLMP 2.2.1.3), for the report.
pub fn authenticate_user(ntlm: &[u8]) -> Option<String> {
    if ntlm_type(ntlm).ok()? != NTLM_AUTHENTICATE {
        return None;
    }
    let field = |at: usize| -> Option<String> {
        let f = ntlm.get(at..at + 8)?;
        let len = usize::from(u16::from_le_bytes([f[0], f[1]]));
        let off = u32::from_le_bytes([f[4], f[5], f[6], f[7]]) as usize;
        let bytes = smb_core::codec::slice_at(ntlm, off, len, "NTLM field").ok()?;
        // NegotiateFlags at 60; NTLMSSP_NEGOTIATE_UNICODE = 0x1.
        let flags = ntlm.get(60..64)?;
        if flags[0] & 1 != 0 {
            smb_core::codec::from_utf16le(bytes, "NTLM field").ok()
        } else {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    };
    let domain = field(28)?;
    let user = field(36)?;
    Some(if domain.is_empty() {
        user
    } else {
        format!("{domain}\\{user}")
    })
}
