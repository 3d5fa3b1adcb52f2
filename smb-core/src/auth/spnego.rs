//! SPNEGO (RFC 4178, with the MS-SPNG NegTokenInit2 extension): the tokens that wrap NTLMSSP
//! in SMB2 SESSION_SETUP and in the NEGOTIATE response.
//!
//! ```text
//! InitialContextToken ::= [APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID 1.3.6.1.5.5.2,
//!                                                           innerContextToken NegotiationToken }
//! NegotiationToken ::= CHOICE { negTokenInit [0] NegTokenInit, negTokenResp [1] NegTokenResp }
//! NegTokenInit  ::= SEQUENCE { mechTypes [0] MechTypeList, reqFlags [1] OPTIONAL,
//!                              mechToken [2] OCTET STRING OPTIONAL, mechListMIC [3] OCTET STRING OPTIONAL }
//! NegTokenInit2 ::= SEQUENCE { mechTypes [0], reqFlags [1] OPTIONAL, mechToken [2] OPTIONAL,
//!                              negHints [3] NegHints OPTIONAL, mechListMIC [4] OPTIONAL }  (MS-SPNG 2.2.1)
//! NegTokenResp  ::= SEQUENCE { negState [0] ENUMERATED OPTIONAL, supportedMech [1] OID OPTIONAL,
//!                              responseToken [2] OCTET STRING OPTIONAL, mechListMIC [3] OCTET STRING OPTIONAL }
//! ```
//! [`NegTokenInit`] reads both init forms: a `[3]` holding a SEQUENCE is negHints, one holding
//! an OCTET STRING is the RFC 4178 mechListMIC.

use super::der::{self, Tlv};
use crate::codec::{DecodeError, InvalidReason};

/// 1.3.6.1.5.5.2, the SPNEGO pseudo-mechanism.
pub const OID_SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// 1.3.6.1.4.1.311.2.2.10, NTLMSSP.
pub const OID_NTLMSSP: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
/// 1.2.840.113554.1.2.2, Kerberos 5.
pub const OID_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// 1.2.840.48018.1.2.2, Microsoft's legacy Kerberos 5 OID.
pub const OID_MS_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// The negHints name Windows and Samba send (MS-SPNG 3.2.5.2).
pub const NEG_HINTS_NAME: &str = "not_defined_in_RFC4178@please_ignore";

/// negState (RFC 4178 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    /// accept-completed: the exchange is done.
    AcceptCompleted = 0,
    /// accept-incomplete: more tokens follow.
    AcceptIncomplete = 1,
    /// reject: the acceptor refuses.
    Reject = 2,
    /// request-mic: the acceptor wants a mechListMIC.
    RequestMic = 3,
}

impl NegState {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(NegState::AcceptCompleted),
            1 => Some(NegState::AcceptIncomplete),
            2 => Some(NegState::Reject),
            3 => Some(NegState::RequestMic),
            _ => None,
        }
    }
}

/// The DER MechTypeList (SEQUENCE OF OID) for `mechs`: the bytes a mechListMIC covers.
pub fn encode_mech_types(mechs: &[&[u8]]) -> Vec<u8> {
    let mut seq = Vec::new();
    for m in mechs {
        der::put_tlv(der::OID, m, &mut seq);
    }
    der::tlv(der::SEQUENCE, &seq)
}

/// NegTokenInit (client) or NegTokenInit2 (server, with negHints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegTokenInit {
    /// The OIDs (DER content bytes), in the sender's order of preference.
    pub mech_types: Vec<Vec<u8>>,
    /// The MechTypeList exactly as sent (SEQUENCE tag included): the mechListMIC input.
    pub mech_types_der: Vec<u8>,
    /// mechToken: the optimistic first token of the preferred mechanism.
    pub mech_token: Option<Vec<u8>>,
    /// negHints.hintName (NegTokenInit2 only).
    pub hint_name: Option<String>,
    /// mechListMIC: the mechanism's MIC over the DER mechTypes.
    pub mech_list_mic: Option<Vec<u8>>,
}

impl NegTokenInit {
    /// A client's first token: `mechs` and the optimistic token of the first one.
    pub fn new(mechs: &[&[u8]], mech_token: Option<Vec<u8>>) -> Self {
        NegTokenInit {
            mech_types: mechs.iter().map(|m| m.to_vec()).collect(),
            mech_types_der: encode_mech_types(mechs),
            mech_token,
            hint_name: None,
            mech_list_mic: None,
        }
    }

    /// The server's NegTokenInit2 for the SMB2 NEGOTIATE response, as Windows and Samba
    /// send it (MS-SPNG 3.2.5.2): the mechanisms and the fixed negHints name.
    pub fn server_hints(mechs: &[&[u8]]) -> Self {
        NegTokenInit {
            hint_name: Some(NEG_HINTS_NAME.to_owned()),
            ..NegTokenInit::new(mechs, None)
        }
    }

    /// Whether mechTypes lists `oid`.
    pub fn offers(&self, oid: &[u8]) -> bool {
        self.mech_types.iter().any(|m| m == oid)
    }

    /// The InitialContextToken (`[APPLICATION 0]` wrapped).
    pub fn encode(&self) -> Vec<u8> {
        let mut seq = Vec::new();
        der::put_tlv(der::context(0), &self.mech_types_der, &mut seq);
        if let Some(t) = &self.mech_token {
            der::put_tlv(der::context(2), &der::tlv(der::OCTET_STRING, t), &mut seq);
        }
        let mic_tag = if let Some(name) = &self.hint_name {
            let hint = der::tlv(
                der::context(0),
                &der::tlv(der::GENERAL_STRING, name.as_bytes()),
            );
            der::put_tlv(der::context(3), &der::tlv(der::SEQUENCE, &hint), &mut seq);
            4
        } else {
            3
        };
        if let Some(mic) = &self.mech_list_mic {
            der::put_tlv(
                der::context(mic_tag),
                &der::tlv(der::OCTET_STRING, mic),
                &mut seq,
            );
        }
        let init = der::tlv(der::context(0), &der::tlv(der::SEQUENCE, &seq));
        let mut inner = der::tlv(der::OID, OID_SPNEGO);
        inner.extend_from_slice(&init);
        der::tlv(der::APPLICATION_0, &inner)
    }

    /// Reads an InitialContextToken; also accepts a bare `[0]` NegTokenInit.
    pub fn read(token: &[u8]) -> Result<Self, DecodeError> {
        let what = "SPNEGO NegTokenInit";
        let (outer, rest) = der::read_tlv(token, what)?;
        if !rest.is_empty() {
            return Err(DecodeError::Trailing {
                what,
                extra: rest.len(),
            });
        }
        let init = match outer.tag {
            der::APPLICATION_0 => {
                let (oid, rest) = der::read_tlv(outer.content, what)?;
                if oid.tag != der::OID || oid.content != OID_SPNEGO {
                    return Err(DecodeError::invalid(what, InvalidReason::NotSpnego));
                }
                der::expect_one(rest, der::context(0), what)?
            }
            t if t == der::context(0) => outer,
            _ => return Err(DecodeError::invalid(what, InvalidReason::NotGssToken)),
        };
        let seq = der::expect_one(init.content, der::SEQUENCE, what)?;
        let mut out = NegTokenInit {
            mech_types: Vec::new(),
            mech_types_der: Vec::new(),
            mech_token: None,
            hint_name: None,
            mech_list_mic: None,
        };
        let mut seen_mech_types = false;
        for (n, field) in context_fields(seq.content, what)? {
            match n {
                0 => {
                    let list = der::expect_one(field.content, der::SEQUENCE, what)?;
                    out.mech_types = read_oids(list.content, what)?;
                    out.mech_types_der = list.raw.to_vec();
                    seen_mech_types = true;
                }
                1 => {} // reqFlags: deprecated, ignored (RFC 4178 4.2.1)
                2 => out.mech_token = Some(octet_string(field.content, what)?),
                3 => {
                    let (inner, _) = der::read_tlv(field.content, what)?;
                    if inner.tag == der::SEQUENCE {
                        out.hint_name = read_hints(field.content, what)?;
                    } else {
                        out.mech_list_mic = Some(octet_string(field.content, what)?);
                    }
                }
                4 => out.mech_list_mic = Some(octet_string(field.content, what)?),
                _ => {} // later extensions: ignored
            }
        }
        if !seen_mech_types || out.mech_types.is_empty() {
            return Err(DecodeError::invalid(what, InvalidReason::BadMechTypes));
        }
        Ok(out)
    }
}

/// NegTokenResp, never wrapped in `[APPLICATION 0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NegTokenResp {
    /// negState.
    pub neg_state: Option<NegState>,
    /// supportedMech: the mechanism the acceptor chose (its OID).
    pub supported_mech: Option<Vec<u8>>,
    /// responseToken: the mechanism's token.
    pub response_token: Option<Vec<u8>>,
    /// mechListMIC: the mechanism's MIC over the DER mechTypes.
    pub mech_list_mic: Option<Vec<u8>>,
}

impl NegTokenResp {
    /// The DER encoding (wrapped in its context tag).
    pub fn encode(&self) -> Vec<u8> {
        let mut seq = Vec::new();
        if let Some(s) = self.neg_state {
            der::put_tlv(
                der::context(0),
                &der::tlv(der::ENUMERATED, &[s as u8]),
                &mut seq,
            );
        }
        if let Some(m) = &self.supported_mech {
            der::put_tlv(der::context(1), &der::tlv(der::OID, m), &mut seq);
        }
        if let Some(t) = &self.response_token {
            der::put_tlv(der::context(2), &der::tlv(der::OCTET_STRING, t), &mut seq);
        }
        if let Some(mic) = &self.mech_list_mic {
            der::put_tlv(der::context(3), &der::tlv(der::OCTET_STRING, mic), &mut seq);
        }
        der::tlv(der::context(1), &der::tlv(der::SEQUENCE, &seq))
    }

    /// Parses a token.
    pub fn read(token: &[u8]) -> Result<Self, DecodeError> {
        let what = "SPNEGO NegTokenResp";
        let outer = der::expect_one(token, der::context(1), what)?;
        let seq = der::expect_one(outer.content, der::SEQUENCE, what)?;
        let mut out = NegTokenResp::default();
        for (n, field) in context_fields(seq.content, what)? {
            match n {
                0 => {
                    let e = der::expect_one(field.content, der::ENUMERATED, what)?;
                    let state = match e.content {
                        [v] => NegState::from_u8(*v),
                        _ => None,
                    };
                    out.neg_state = Some(state.ok_or_else(|| {
                        DecodeError::invalid(what, InvalidReason::UnknownNegState)
                    })?);
                }
                1 => {
                    let oid = der::expect_one(field.content, der::OID, what)?;
                    out.supported_mech = Some(oid.content.to_vec());
                }
                2 => out.response_token = Some(octet_string(field.content, what)?),
                3 => out.mech_list_mic = Some(octet_string(field.content, what)?),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Either SPNEGO token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationToken {
    /// A NegTokenInit (the initiator's first token, in its GSS-API wrapper).
    Init(NegTokenInit),
    /// A NegTokenResp.
    Resp(NegTokenResp),
}

impl NegotiationToken {
    /// Parses a token.
    pub fn read(token: &[u8]) -> Result<Self, DecodeError> {
        match token.first() {
            Some(&t) if t == der::context(1) => {
                NegTokenResp::read(token).map(NegotiationToken::Resp)
            }
            _ => NegTokenInit::read(token).map(NegotiationToken::Init),
        }
    }
}

/// True if `token` is a raw NTLMSSP message rather than SPNEGO.
pub fn is_raw_ntlmssp(token: &[u8]) -> bool {
    token.starts_with(super::ntlm::SIGNATURE)
}

/// The children of a SEQUENCE of `[n]` EXPLICIT fields, each with its one inner element.
/// DER requires them in ascending tag order with no repeats.
fn context_fields<'a>(
    content: &'a [u8],
    what: &'static str,
) -> Result<Vec<(u8, Tlv<'a>)>, DecodeError> {
    let mut out: Vec<(u8, Tlv<'a>)> = Vec::new();
    for child in der::children(content, what)? {
        if child.tag & 0xe0 != 0xa0 {
            return Err(DecodeError::invalid(
                what,
                InvalidReason::DerTag {
                    expected: None,
                    found: child.tag,
                },
            ));
        }
        let n = child.tag & 0x1f;
        if out.last().is_some_and(|(prev, _)| *prev >= n) {
            return Err(DecodeError::invalid(what, InvalidReason::FieldOrder));
        }
        out.push((n, child));
    }
    Ok(out)
}

fn octet_string(field: &[u8], what: &'static str) -> Result<Vec<u8>, DecodeError> {
    Ok(der::expect_one(field, der::OCTET_STRING, what)?
        .content
        .to_vec())
}

fn read_oids(content: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>, DecodeError> {
    der::children(content, what)?
        .into_iter()
        .map(|t| {
            if t.tag != der::OID || t.content.is_empty() {
                return Err(DecodeError::invalid(what, InvalidReason::BadMechTypes));
            }
            Ok(t.content.to_vec())
        })
        .collect()
}

fn read_hints(field: &[u8], what: &'static str) -> Result<Option<String>, DecodeError> {
    let seq = der::expect_one(field, der::SEQUENCE, what)?;
    let mut name = None;
    for (n, f) in context_fields(seq.content, what)? {
        if n == 0 {
            let s = der::expect_one(f.content, der::GENERAL_STRING, what)?;
            name = Some(String::from_utf8_lossy(s.content).into_owned());
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neg_state_values_match_rfc4178() {
        for (s, v) in [
            (NegState::AcceptCompleted, 0u8),
            (NegState::AcceptIncomplete, 1),
            (NegState::Reject, 2),
            (NegState::RequestMic, 3),
        ] {
            let t = NegTokenResp {
                neg_state: Some(s),
                ..Default::default()
            }
            .encode();
            assert_eq!(t, [0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, v]);
            assert_eq!(NegTokenResp::read(&t).unwrap().neg_state, Some(s));
        }
        assert!(NegTokenResp::read(&[0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 9]).is_err());
    }

    #[test]
    fn fields_must_ascend() {
        // [2] then [0]
        let t = [
            0xa1, 0x0c, 0x30, 0x0a, 0xa2, 0x03, 0x04, 0x01, 0x00, 0xa0, 0x03, 0x0a, 0x01, 0x00,
        ];
        assert!(NegTokenResp::read(&t).is_err());
    }
}
