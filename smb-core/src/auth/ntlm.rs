//! NTLMSSP (MS-NLMP): the three messages, the NTLMv2 computations, a client and a server.
//!
//! Everything here is sans-IO and deterministic: time (a Windows FILETIME) and randomness
//! (client challenge, server challenge, random session key) are parameters, so the
//! MS-NLMP 4.2.4 examples are tests. [`super::ClientAuth`] and [`super::ServerAuth`] add the
//! SPNEGO and draw these from a [`Clock`](crate::env::Clock) and a
//! [`Random`](crate::env::Random).
//!
//! Only NTLMv2 is spoken: NTLMv1 and LM responses are rejected by the server and never sent
//! by the client (the hardening guides require "Send NTLMv2 response only. Refuse LM & NTLM").

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use rc4::consts::U16;
use rc4::{KeyInit, Rc4, StreamCipher};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{AuthError, AuthOutcome, LogonFailure, SessionKey};
use crate::codec::{from_utf16le, slice_at, utf16le, DecodeError, Reader, Writer};
use crate::env::{Clock, Random};

/// Every NTLMSSP message starts with this (MS-NLMP 2.2.1).
pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
pub const NEGOTIATE_TYPE: u32 = 1;
pub const CHALLENGE_TYPE: u32 = 2;
pub const AUTHENTICATE_TYPE: u32 = 3;
/// Where the MIC sits in an AUTHENTICATE_MESSAGE that carries one (MS-NLMP 2.2.1.3).
pub const MIC_OFFSET: usize = 72;

/// NEGOTIATE flags (MS-NLMP 2.2.2.5).
pub mod flags {
    pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
    pub const NEGOTIATE_OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
    pub const NEGOTIATE_SEAL: u32 = 0x0000_0020;
    pub const NEGOTIATE_DATAGRAM: u32 = 0x0000_0040;
    pub const NEGOTIATE_LM_KEY: u32 = 0x0000_0080;
    pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
    pub const NEGOTIATE_ANONYMOUS: u32 = 0x0000_0800;
    pub const NEGOTIATE_OEM_DOMAIN_SUPPLIED: u32 = 0x0000_1000;
    pub const NEGOTIATE_OEM_WORKSTATION_SUPPLIED: u32 = 0x0000_2000;
    pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const NEGOTIATE_IDENTIFY: u32 = 0x0010_0000;
    pub const REQUEST_NON_NT_SESSION_KEY: u32 = 0x0040_0000;
    pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
    pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
    pub const NEGOTIATE_128: u32 = 0x2000_0000;
    pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
    pub const NEGOTIATE_56: u32 = 0x8000_0000;

    /// What a Windows client asks for in its NEGOTIATE_MESSAGE.
    pub const CLIENT_DEFAULT: u32 = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_SIGN
        | NEGOTIATE_SEAL
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION
        | NEGOTIATE_128
        | NEGOTIATE_KEY_EXCH
        | NEGOTIATE_56;
}

/// AV_PAIR identifiers (MS-NLMP 2.2.2.1).
pub mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const DNS_COMPUTER_NAME: u16 = 3;
    pub const DNS_DOMAIN_NAME: u16 = 4;
    pub const DNS_TREE_NAME: u16 = 5;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    pub const SINGLE_HOST: u16 = 8;
    pub const TARGET_NAME: u16 = 9;
    pub const CHANNEL_BINDINGS: u16 = 10;

    /// MsvAvFlags bit: the AUTHENTICATE_MESSAGE carries a MIC.
    pub const FLAG_MIC_PRESENT: u32 = 0x0000_0002;
}

// ---------------------------------------------------------------------------------------------
// Wire structures
// ---------------------------------------------------------------------------------------------

/// The 8-byte VERSION structure (MS-NLMP 2.2.2.10). Informational only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub build: u16,
    /// NTLMSSP_REVISION_W2K3 = 0x0F.
    pub revision: u8,
}

impl Version {
    /// Windows 10 / Server 2016 family, as most peers advertise.
    pub const WINDOWS_10: Version = Version {
        major: 10,
        minor: 0,
        build: 20348,
        revision: 0x0f,
    };

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_u16(self.build);
        out.put_zeros(3);
        out.put_u8(self.revision);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let major = r.u8("NTLM version")?;
        let minor = r.u8("NTLM version")?;
        let build = r.u16("NTLM version")?;
        r.skip(3, "NTLM version")?;
        let revision = r.u8("NTLM version")?;
        Ok(Version {
            major,
            minor,
            build,
            revision,
        })
    }
}

/// One AV_PAIR of a target info list (MS-NLMP 2.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvPair {
    pub id: u16,
    pub value: Vec<u8>,
}

/// A target info list: the AV pairs before MsvAvEOL (the terminator is implicit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetInfo {
    pub pairs: Vec<AvPair>,
}

impl TargetInfo {
    /// Parses pairs up to MsvAvEOL. Bytes after the terminator are ignored: in an NTLMv2
    /// client challenge the list is followed by padding (MS-NLMP 2.2.2.7).
    pub fn read(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let mut pairs = Vec::new();
        loop {
            let id = r.u16("AV_PAIR id")?;
            let len = r.u16("AV_PAIR length")? as usize;
            let value = r.take(len, "AV_PAIR value")?;
            // MS-NLMP 2.2.2.1: MsvAvEOL "Indicates that this is the last AV_PAIR in the list.
            // AvLen MUST be 0. This type of information MUST be present in the AV pair list."
            if id == av::EOL {
                if len != 0 {
                    return Err(DecodeError::invalid("AV_PAIR", "MsvAvEOL with a value"));
                }
                return Ok(TargetInfo { pairs });
            }
            pairs.push(AvPair {
                id,
                value: value.to_vec(),
            });
        }
    }

    /// The pairs, then MsvAvEOL.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for p in &self.pairs {
            out.put_u16(p.id);
            out.put_u16(u16::try_from(p.value.len()).unwrap_or(u16::MAX));
            out.put_bytes(&p.value[..p.value.len().min(u16::MAX as usize)]);
        }
        out.put_u32(0); // MsvAvEOL, length 0
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.value.as_slice())
    }

    /// Replaces the value of `id`, or appends the pair.
    pub fn set(&mut self, id: u16, value: Vec<u8>) {
        match self.pairs.iter_mut().find(|p| p.id == id) {
            Some(p) => p.value = value,
            None => self.pairs.push(AvPair { id, value }),
        }
    }

    pub fn set_string(&mut self, id: u16, value: &str) {
        self.set(id, utf16le(value));
    }

    /// A UTF-16 string pair (names), if present and well formed.
    pub fn get_string(&self, id: u16) -> Option<String> {
        self.get(id).and_then(|v| from_utf16le(v, "AV_PAIR").ok())
    }

    /// MsvAvTimestamp, a FILETIME.
    pub fn timestamp(&self) -> Option<u64> {
        self.get(av::TIMESTAMP)
            .and_then(|v| v.try_into().ok())
            .map(u64::from_le_bytes)
    }

    /// MsvAvFlags.
    pub fn flags(&self) -> Option<u32> {
        self.get(av::FLAGS)
            .and_then(|v| v.try_into().ok())
            .map(u32::from_le_bytes)
    }
}

/// Reserves an 8-byte (Len, MaxLen, Offset) field descriptor; returns where it sits.
fn reserve_field(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.put_zeros(8);
    at
}

/// Appends `data` to the payload and fills the descriptor at `at`. `base` is where the
/// NTLM message starts in `out` (offsets are relative to it). Callers keep fields under
/// 64 KiB (they are names and responses; [`NtlmClient`] checks).
fn fill_field(out: &mut Vec<u8>, at: usize, base: usize, data: &[u8]) {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    let offset = u32::try_from(out.len() - base).unwrap_or(u32::MAX);
    out.put_bytes(&data[..len as usize]);
    out.patch_u16(at, len);
    out.patch_u16(at + 2, len);
    out.patch_u32(at + 4, offset);
}

/// A field descriptor as read: (length, offset).
#[derive(Debug, Clone, Copy)]
struct Field {
    len: usize,
    offset: usize,
}

impl Field {
    fn read(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let len = r.u16(what)? as usize;
        let _max_len = r.u16(what)?;
        let offset = r.u32(what)? as usize;
        Ok(Field { len, offset })
    }

    /// The payload bytes, bounds-checked against the whole message.
    fn resolve<'a>(&self, msg: &'a [u8], what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.len == 0 {
            return Ok(&[]);
        }
        slice_at(msg, self.offset, self.len, what)
    }

    /// Where the payload begins, for fields that have one.
    fn start(&self) -> Option<usize> {
        (self.len > 0).then_some(self.offset)
    }
}

fn read_header<'a>(
    msg: &'a [u8],
    expected_type: u32,
    what: &'static str,
) -> Result<Reader<'a>, DecodeError> {
    let mut r = Reader::new(msg);
    if r.take(8, what)? != SIGNATURE {
        return Err(DecodeError::invalid(what, "missing NTLMSSP signature"));
    }
    let ty = r.u32(what)?;
    if ty != expected_type {
        return Err(DecodeError::invalid(
            what,
            format!("message type {ty}, expected {expected_type}"),
        ));
    }
    Ok(r)
}

/// Decodes a string field: UTF-16LE when UNICODE was negotiated, else OEM (read as Latin-1).
fn decode_string(bytes: &[u8], flags: u32, what: &'static str) -> Result<String, DecodeError> {
    if flags & flags::NEGOTIATE_UNICODE != 0 {
        from_utf16le(bytes, what)
    } else {
        Ok(bytes.iter().map(|b| *b as char).collect())
    }
}

fn encode_string(s: &str, flags: u32) -> Vec<u8> {
    if flags & flags::NEGOTIATE_UNICODE != 0 {
        utf16le(s)
    } else {
        s.chars().map(|c| u8::try_from(c).unwrap_or(b'?')).collect()
    }
}

/// NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateMessage {
    pub flags: u32,
    /// OEM domain name, only with NEGOTIATE_OEM_DOMAIN_SUPPLIED (clients normally leave it empty).
    pub domain: Vec<u8>,
    pub workstation: Vec<u8>,
    pub version: Option<Version>,
}

impl NegotiateMessage {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.put_bytes(SIGNATURE);
        out.put_u32(NEGOTIATE_TYPE);
        out.put_u32(self.flags);
        let domain = reserve_field(out);
        let workstation = reserve_field(out);
        match self.version {
            Some(v) => v.encode(out),
            None => out.put_zeros(8),
        }
        fill_field(out, domain, base, &self.domain);
        fill_field(out, workstation, base, &self.workstation);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Accepts the short forms old clients send (16 or 32 bytes, without fields or version).
    pub fn read(msg: &[u8]) -> Result<Self, DecodeError> {
        let what = "NTLM NEGOTIATE";
        let mut r = read_header(msg, NEGOTIATE_TYPE, what)?;
        let flags = r.u32(what)?;
        let (mut domain, mut workstation, mut version) = (Vec::new(), Vec::new(), None);
        if r.remaining() >= 16 {
            let d = Field::read(&mut r, what)?;
            let w = Field::read(&mut r, what)?;
            domain = d.resolve(msg, "NTLM NEGOTIATE domain")?.to_vec();
            workstation = w.resolve(msg, "NTLM NEGOTIATE workstation")?.to_vec();
            let payload = [d.start(), w.start()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(msg.len());
            if flags & flags::NEGOTIATE_VERSION != 0 && payload >= 40 && r.remaining() >= 8 {
                version = Some(Version::read(&mut r)?);
            }
        }
        Ok(NegotiateMessage {
            flags,
            domain,
            workstation,
            version,
        })
    }
}

/// CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeMessage {
    pub target_name: String,
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_info: TargetInfo,
    pub version: Option<Version>,
}

impl ChallengeMessage {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.put_bytes(SIGNATURE);
        out.put_u32(CHALLENGE_TYPE);
        let target_name = reserve_field(out);
        out.put_u32(self.flags);
        out.put_bytes(&self.server_challenge);
        out.put_zeros(8); // Reserved
        let target_info = reserve_field(out);
        match self.version {
            Some(v) => v.encode(out),
            None => out.put_zeros(8),
        }
        fill_field(
            out,
            target_name,
            base,
            &encode_string(&self.target_name, self.flags),
        );
        let info = if self.flags & flags::NEGOTIATE_TARGET_INFO != 0 {
            self.target_info.to_bytes()
        } else {
            Vec::new()
        };
        fill_field(out, target_info, base, &info);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    pub fn read(msg: &[u8]) -> Result<Self, DecodeError> {
        let what = "NTLM CHALLENGE";
        let mut r = read_header(msg, CHALLENGE_TYPE, what)?;
        let name = Field::read(&mut r, what)?;
        let flags = r.u32(what)?;
        let server_challenge = r.array(what)?;
        r.skip(8, what)?;
        let info = Field::read(&mut r, what)?;
        let payload = [name.start(), info.start()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(msg.len());
        let version = if flags & flags::NEGOTIATE_VERSION != 0 && payload >= 56 {
            Some(Version::read(&mut r)?)
        } else {
            None
        };
        let target_name = decode_string(
            name.resolve(msg, "NTLM target name")?,
            flags,
            "NTLM target name",
        )?;
        let info = info.resolve(msg, "NTLM target info")?;
        let target_info = if info.is_empty() {
            TargetInfo::default()
        } else {
            TargetInfo::read(info)?
        };
        Ok(ChallengeMessage {
            target_name,
            flags,
            server_challenge,
            target_info,
            version,
        })
    }
}

/// AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticateMessage {
    pub lm_response: Vec<u8>,
    pub nt_response: Vec<u8>,
    pub domain: String,
    pub user: String,
    pub workstation: String,
    pub encrypted_session_key: Vec<u8>,
    pub flags: u32,
    pub version: Option<Version>,
    /// Present when the message has room for it (payload starting at or after 88).
    pub mic: Option<[u8; 16]>,
}

impl fmt::Debug for AuthenticateMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateMessage")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("workstation", &self.workstation)
            .field("flags", &format_args!("{:#010x}", self.flags))
            .field("nt_response_len", &self.nt_response.len())
            .field("mic", &self.mic.is_some())
            .finish_non_exhaustive()
    }
}

impl AuthenticateMessage {
    /// Payload order as Windows sends it: domain, user, workstation, LM, NT, session key.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        out.put_bytes(SIGNATURE);
        out.put_u32(AUTHENTICATE_TYPE);
        let lm = reserve_field(out);
        let nt = reserve_field(out);
        let domain = reserve_field(out);
        let user = reserve_field(out);
        let workstation = reserve_field(out);
        let key = reserve_field(out);
        out.put_u32(self.flags);
        match (self.version, self.mic) {
            (Some(v), _) => v.encode(out),
            (None, Some(_)) => out.put_zeros(8),
            (None, None) => {}
        }
        if let Some(mic) = self.mic {
            out.put_bytes(&mic);
        }
        fill_field(out, domain, base, &encode_string(&self.domain, self.flags));
        fill_field(out, user, base, &encode_string(&self.user, self.flags));
        fill_field(
            out,
            workstation,
            base,
            &encode_string(&self.workstation, self.flags),
        );
        fill_field(out, lm, base, &self.lm_response);
        fill_field(out, nt, base, &self.nt_response);
        fill_field(out, key, base, &self.encrypted_session_key);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    pub fn read(msg: &[u8]) -> Result<Self, DecodeError> {
        let what = "NTLM AUTHENTICATE";
        let mut r = read_header(msg, AUTHENTICATE_TYPE, what)?;
        let lm = Field::read(&mut r, what)?;
        let nt = Field::read(&mut r, what)?;
        let domain = Field::read(&mut r, what)?;
        let user = Field::read(&mut r, what)?;
        let workstation = Field::read(&mut r, what)?;
        let key = Field::read(&mut r, what)?;
        let flags = r.u32(what)?;
        // The optional Version and MIC are only there if the payload leaves room for them.
        let payload = [lm, nt, domain, user, workstation, key]
            .iter()
            .filter_map(Field::start)
            .min()
            .unwrap_or(msg.len());
        let version = if payload >= MIC_OFFSET && r.remaining() >= 8 {
            let v = Version::read(&mut r)?;
            (flags & flags::NEGOTIATE_VERSION != 0).then_some(v)
        } else {
            None
        };
        let mic = if payload >= MIC_OFFSET + 16 && r.remaining() >= 16 {
            Some(r.array(what)?)
        } else {
            None
        };
        Ok(AuthenticateMessage {
            lm_response: lm.resolve(msg, "NTLM LM response")?.to_vec(),
            nt_response: nt.resolve(msg, "NTLM NT response")?.to_vec(),
            domain: decode_string(domain.resolve(msg, "NTLM domain")?, flags, "NTLM domain")?,
            user: decode_string(user.resolve(msg, "NTLM user")?, flags, "NTLM user")?,
            workstation: decode_string(
                workstation.resolve(msg, "NTLM workstation")?,
                flags,
                "NTLM workstation",
            )?,
            encrypted_session_key: key.resolve(msg, "NTLM session key")?.to_vec(),
            flags,
            version,
            mic,
        })
    }
}

/// The message type of an NTLMSSP message, or None if it is not one.
pub fn message_type(msg: &[u8]) -> Option<u32> {
    if msg.len() < 12 || &msg[..8] != SIGNATURE {
        return None;
    }
    Some(u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]))
}

// ---------------------------------------------------------------------------------------------
// Crypto (MS-NLMP 3.3.2, 3.4)
// ---------------------------------------------------------------------------------------------

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
fn upcase(s: &str) -> String {
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
    ClientToServer,
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

// ---------------------------------------------------------------------------------------------
// Credentials and the server's user table
// ---------------------------------------------------------------------------------------------

/// A password or its NT hash. Zeroized on drop; Debug never prints it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub enum Secret {
    Password(String),
    NtHash([u8; 16]),
}

impl Secret {
    pub fn nt_hash(&self) -> [u8; 16] {
        match self {
            Secret::Password(p) => nt_hash(p),
            Secret::NtHash(h) => *h,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(..)"),
            Secret::NtHash(_) => f.write_str("NtHash(..)"),
        }
    }
}

/// Who the client authenticates as.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub domain: String,
    pub secret: Secret,
    pub workstation: String,
}

impl Credentials {
    pub fn password(user: &str, domain: &str, password: &str) -> Self {
        Credentials {
            user: user.to_owned(),
            domain: domain.to_owned(),
            secret: Secret::Password(password.to_owned()),
            workstation: String::new(),
        }
    }

    pub fn nt_hash(user: &str, domain: &str, nt_hash: [u8; 16]) -> Self {
        Credentials {
            user: user.to_owned(),
            domain: domain.to_owned(),
            secret: Secret::NtHash(nt_hash),
            workstation: String::new(),
        }
    }

    /// The anonymous identity: empty user, empty responses (MS-NLMP 3.1.5.1.2).
    pub fn anonymous() -> Self {
        Credentials::password("", "", "")
    }

    pub fn with_workstation(mut self, workstation: &str) -> Self {
        self.workstation = workstation.to_owned();
        self
    }

    pub fn is_anonymous(&self) -> bool {
        self.user.is_empty() && matches!(&self.secret, Secret::Password(p) if p.is_empty())
    }
}

#[derive(Clone)]
struct UserEntry {
    name: String,
    domain: Option<String>,
    nt_hash: Zeroizing<[u8; 16]>,
}

/// The server's local accounts: user name (case-insensitive) -> NT hash, optionally bound
/// to one domain name. Debug lists names only.
#[derive(Clone, Default)]
pub struct UserTable {
    users: Vec<UserEntry>,
}

impl fmt::Debug for UserTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.users.iter().map(|u| &u.name))
            .finish()
    }
}

impl UserTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a user whose domain is not checked.
    pub fn add(&mut self, user: &str, secret: &Secret) {
        self.insert(user, None, secret);
    }

    pub fn add_password(&mut self, user: &str, password: &str) {
        self.add(user, &Secret::Password(password.to_owned()));
    }

    /// Adds a user that only authenticates with this domain name (case-insensitive).
    pub fn add_in_domain(&mut self, domain: &str, user: &str, secret: &Secret) {
        self.insert(user, Some(domain.to_owned()), secret);
    }

    fn insert(&mut self, user: &str, domain: Option<String>, secret: &Secret) {
        let key = upcase(user);
        self.users.retain(|u| upcase(&u.name) != key);
        self.users.push(UserEntry {
            name: user.to_owned(),
            domain,
            nt_hash: Zeroizing::new(secret.nt_hash()),
        });
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn lookup(&self, user: &str) -> Option<&UserEntry> {
        let key = upcase(user);
        self.users.iter().find(|u| upcase(&u.name) == key)
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// The client's per-attempt randomness and clock, as parameters (MS-NLMP 4.2.4 uses
/// time 0, client challenge aa.., random session key 55..).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClientInputs {
    /// FILETIME used when the server sent no MsvAvTimestamp.
    pub now: u64,
    pub client_challenge: [u8; 8],
    pub random_session_key: [u8; 16],
}

impl fmt::Debug for ClientInputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInputs")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl ClientInputs {
    /// Fresh inputs from a clock and a random source.
    pub fn generate(clock: &dyn Clock, random: &dyn Random) -> Result<Self, AuthError> {
        let mut client_challenge = [0u8; 8];
        let mut random_session_key = [0u8; 16];
        random
            .fill(&mut client_challenge)
            .map_err(|_| AuthError::Random)?;
        random
            .fill(&mut random_session_key)
            .map_err(|_| AuthError::Random)?;
        Ok(ClientInputs {
            now: clock.now(),
            client_challenge,
            random_session_key,
        })
    }
}

/// What the client produced from a CHALLENGE.
#[derive(Debug)]
pub struct ClientAuthenticate {
    pub message: Vec<u8>,
    /// The exported session key (zeros for anonymous, which has no session security).
    pub session_key: SessionKey,
    /// The flags sent in the AUTHENTICATE_MESSAGE (the negotiated set).
    pub flags: u32,
    /// Whether the AUTHENTICATE carries a MIC (and so SPNEGO should send a mechListMIC).
    pub has_mic: bool,
}

/// NTLMv2 client: NEGOTIATE, then AUTHENTICATE from the server's CHALLENGE.
#[derive(Debug)]
pub struct NtlmClient {
    creds: Credentials,
    /// What we ask for in NEGOTIATE; KEY_EXCH in here is the key-exchange switch.
    flags: u32,
    send_mic: bool,
    target_name: Option<String>,
    negotiate: Option<Vec<u8>>,
}

/// Longest user, domain or workstation name accepted from the caller (Windows: 256).
const MAX_NAME_CHARS: usize = 256;

impl NtlmClient {
    pub fn new(creds: Credentials) -> Self {
        NtlmClient {
            creds,
            flags: flags::CLIENT_DEFAULT,
            send_mic: true,
            target_name: None,
            negotiate: None,
        }
    }

    /// KEY_EXCH on (default, as Windows) or off (the exported key is then the KeyExchangeKey).
    pub fn set_key_exchange(&mut self, on: bool) {
        if on {
            self.flags |= flags::NEGOTIATE_KEY_EXCH;
        } else {
            self.flags &= !flags::NEGOTIATE_KEY_EXCH;
        }
    }

    /// Whether to send MsvAvFlags(MIC) and the MIC (default on, as Windows).
    pub fn set_mic(&mut self, on: bool) {
        self.send_mic = on;
    }

    /// The SPN to put in MsvAvTargetName, e.g. "cifs/127.0.0.1".
    pub fn set_target_name(&mut self, spn: &str) {
        self.target_name = Some(spn.to_owned());
    }

    /// The NEGOTIATE_MESSAGE (remembered for the MIC).
    pub fn negotiate(&mut self) -> Vec<u8> {
        let msg = NegotiateMessage {
            flags: self.flags,
            domain: Vec::new(),
            workstation: Vec::new(),
            version: Some(Version::WINDOWS_10),
        }
        .to_bytes();
        self.negotiate = Some(msg.clone());
        msg
    }

    /// Builds the AUTHENTICATE_MESSAGE for `challenge` (MS-NLMP 3.1.5.1.2).
    pub fn authenticate(
        &mut self,
        challenge: &[u8],
        inputs: &ClientInputs,
    ) -> Result<ClientAuthenticate, AuthError> {
        let negotiate = self
            .negotiate
            .clone()
            .ok_or(AuthError::UnexpectedToken("CHALLENGE before NEGOTIATE"))?;
        for name in [
            &self.creds.user,
            &self.creds.domain,
            &self.creds.workstation,
        ] {
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(AuthError::InvalidCredentials(
                    "name longer than 256 characters",
                ));
            }
        }
        let chal = ChallengeMessage::read(challenge)?;
        // The negotiated set: what both sides asked for (MS-NLMP 3.1.5.1.2, 3.2.5.1.1).
        let mut negotiated = self.flags & chal.flags;
        if negotiated & flags::NEGOTIATE_UNICODE == 0 {
            negotiated |= chal.flags & flags::NEGOTIATE_OEM;
        }
        if chal.flags & flags::NEGOTIATE_VERSION == 0 {
            negotiated &= !flags::NEGOTIATE_VERSION;
        }
        negotiated |= flags::NEGOTIATE_NTLM;

        if self.creds.is_anonymous() {
            // MS-NLMP 3.1.5.1.2: anonymous sends NtChallengeResponse = Nil, LmChallengeResponse
            // = Z(1), and has no session key (so no KEY_EXCH and no MIC).
            let flags = (negotiated | flags::NEGOTIATE_ANONYMOUS) & !flags::NEGOTIATE_KEY_EXCH;
            let msg = AuthenticateMessage {
                lm_response: vec![0],
                nt_response: Vec::new(),
                domain: String::new(),
                user: String::new(),
                workstation: self.creds.workstation.clone(),
                encrypted_session_key: Vec::new(),
                flags,
                version: Some(Version::WINDOWS_10)
                    .filter(|_| flags & flags::NEGOTIATE_VERSION != 0),
                mic: None,
            };
            return Ok(ClientAuthenticate {
                message: msg.to_bytes(),
                session_key: SessionKey::new([0; 16]),
                flags,
                has_mic: false,
            });
        }

        // The NT hash is as good as the password: wipe this copy too.
        let nt_hash = Zeroizing::new(self.creds.secret.nt_hash());
        let response_key = Zeroizing::new(ntowf_v2(&nt_hash, &self.creds.user, &self.creds.domain));
        let server_time = chal.target_info.timestamp();
        let mut info = chal.target_info.clone();
        if self.send_mic {
            let av_flags = info.flags().unwrap_or(0) | av::FLAG_MIC_PRESENT;
            info.set(av::FLAGS, av_flags.to_le_bytes().to_vec());
        }
        if let Some(spn) = &self.target_name {
            info.set_string(av::TARGET_NAME, spn);
        }
        let temp = ntlmv2_client_blob(
            server_time.unwrap_or(inputs.now),
            &inputs.client_challenge,
            &info.to_bytes(),
        );
        let nt_response = ntlmv2_response(&response_key, &chal.server_challenge, &temp);
        if nt_response.len() > u16::MAX as usize {
            return Err(AuthError::Malformed(DecodeError::invalid(
                "NTLM CHALLENGE",
                "target info too large",
            )));
        }
        let mut proof = [0u8; 16];
        proof.copy_from_slice(&nt_response[..16]);
        // MS-NLMP 3.1.5.1.2: with MsvAvTimestamp the client sends Z(24) instead of LMv2.
        let lm_response = match server_time {
            Some(_) => vec![0u8; 24],
            None => lmv2_response(
                &response_key,
                &chal.server_challenge,
                &inputs.client_challenge,
            )
            .to_vec(),
        };
        let key_exchange_key = Zeroizing::new(session_base_key(&response_key, &proof));
        let (exported, encrypted_session_key) = if negotiated & flags::NEGOTIATE_KEY_EXCH != 0 {
            let enc = rc4_key(&key_exchange_key, &inputs.random_session_key);
            (inputs.random_session_key, enc.to_vec())
        } else {
            (*key_exchange_key, Vec::new())
        };
        let exported = SessionKey::new(exported);

        let mut msg = AuthenticateMessage {
            lm_response,
            nt_response,
            domain: self.creds.domain.clone(),
            user: self.creds.user.clone(),
            workstation: self.creds.workstation.clone(),
            encrypted_session_key,
            flags: negotiated,
            version: Some(Version::WINDOWS_10)
                .filter(|_| negotiated & flags::NEGOTIATE_VERSION != 0),
            mic: self.send_mic.then_some([0u8; 16]),
        };
        let mut bytes = msg.to_bytes();
        if self.send_mic {
            let mic = compute_mic(exported.as_bytes(), &negotiate, challenge, &bytes);
            bytes[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(&mic);
            msg.mic = Some(mic);
        }
        Ok(ClientAuthenticate {
            message: bytes,
            session_key: exported,
            flags: negotiated,
            has_mic: self.send_mic,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// The names the server puts in its CHALLENGE target info (MS-NLMP 2.2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    pub nb_domain: String,
    pub nb_computer: String,
    pub dns_domain: String,
    pub dns_computer: String,
}

impl Default for ServerIdentity {
    fn default() -> Self {
        ServerIdentity {
            nb_domain: "WORKGROUP".into(),
            nb_computer: "SMBRS".into(),
            dns_domain: "workgroup".into(),
            dns_computer: "smbrs".into(),
        }
    }
}

/// The server's policy: the user table and which fallbacks are allowed.
#[derive(Debug, Clone)]
pub struct ServerPolicy {
    pub users: Arc<UserTable>,
    /// Unknown user names log on as guest (Samba's "map to guest = bad user").
    pub allow_guest: bool,
    pub allow_anonymous: bool,
    pub identity: ServerIdentity,
}

/// What the server concluded from an AUTHENTICATE_MESSAGE.
#[derive(Debug)]
pub struct ServerVerified {
    pub outcome: AuthOutcome,
    /// The flags from the AUTHENTICATE_MESSAGE.
    pub flags: u32,
    /// The AUTHENTICATE carried a MIC and it verified.
    pub mic_verified: bool,
}

/// NTLMv2 server: CHALLENGE from NEGOTIATE, then verification of AUTHENTICATE.
#[derive(Debug)]
pub struct NtlmServer {
    policy: ServerPolicy,
    negotiate: Option<Vec<u8>>,
    challenge: Option<(Vec<u8>, [u8; 8])>,
}

impl NtlmServer {
    pub fn new(policy: ServerPolicy) -> Self {
        NtlmServer {
            policy,
            negotiate: None,
            challenge: None,
        }
    }

    /// Answers a NEGOTIATE_MESSAGE with a CHALLENGE_MESSAGE (MS-NLMP 3.2.5.1.1).
    pub fn challenge(
        &mut self,
        negotiate: &[u8],
        server_challenge: [u8; 8],
        now: u64,
    ) -> Result<Vec<u8>, AuthError> {
        if self.negotiate.is_some() {
            return Err(AuthError::UnexpectedToken("second NTLM NEGOTIATE"));
        }
        let neg = NegotiateMessage::read(negotiate)?;
        let c = neg.flags;
        let mut f =
            flags::NEGOTIATE_NTLM | flags::NEGOTIATE_TARGET_INFO | flags::TARGET_TYPE_SERVER;
        f |= if c & flags::NEGOTIATE_UNICODE != 0 {
            flags::NEGOTIATE_UNICODE
        } else {
            flags::NEGOTIATE_OEM
        };
        // Echo what we support of the client's request; LM_KEY is never granted.
        f |= c
            & (flags::REQUEST_TARGET
                | flags::NEGOTIATE_SIGN
                | flags::NEGOTIATE_SEAL
                | flags::NEGOTIATE_ALWAYS_SIGN
                | flags::NEGOTIATE_EXTENDED_SESSIONSECURITY
                | flags::NEGOTIATE_VERSION
                | flags::NEGOTIATE_128
                | flags::NEGOTIATE_56
                | flags::NEGOTIATE_KEY_EXCH);
        let id = &self.policy.identity;
        let mut info = TargetInfo::default();
        info.set_string(av::NB_DOMAIN_NAME, &id.nb_domain);
        info.set_string(av::NB_COMPUTER_NAME, &id.nb_computer);
        info.set_string(av::DNS_DOMAIN_NAME, &id.dns_domain);
        info.set_string(av::DNS_COMPUTER_NAME, &id.dns_computer);
        info.set(av::TIMESTAMP, now.to_le_bytes().to_vec());
        let msg = ChallengeMessage {
            target_name: id.nb_computer.clone(),
            flags: f,
            server_challenge,
            target_info: info,
            version: Some(Version::WINDOWS_10).filter(|_| f & flags::NEGOTIATE_VERSION != 0),
        }
        .to_bytes();
        self.negotiate = Some(negotiate.to_vec());
        self.challenge = Some((msg.clone(), server_challenge));
        Ok(msg)
    }

    /// Verifies an AUTHENTICATE_MESSAGE (MS-NLMP 3.2.5.1.2).
    pub fn authenticate(&mut self, authenticate: &[u8]) -> Result<ServerVerified, AuthError> {
        let (challenge, server_challenge) = self
            .challenge
            .take()
            .ok_or(AuthError::UnexpectedToken("AUTHENTICATE before CHALLENGE"))?;
        let negotiate = self.negotiate.take().unwrap_or_default();
        let msg = AuthenticateMessage::read(authenticate)?;
        let policy = &self.policy;

        // Anonymous: empty user, no NT response, LM response empty or Z(1).
        if msg.user.is_empty()
            && msg.nt_response.is_empty()
            && msg.lm_response.iter().all(|b| *b == 0)
            && msg.lm_response.len() <= 1
        {
            return if policy.allow_anonymous {
                Ok(ServerVerified {
                    outcome: AuthOutcome::Anonymous,
                    flags: msg.flags,
                    mic_verified: false,
                })
            } else {
                Err(AuthError::LogonFailure(LogonFailure::AnonymousNotAllowed))
            };
        }
        // NTLMv2 only: a 24-byte NT response is NTLMv1 (or NTLM2 session response).
        if msg.nt_response.len() <= 24 {
            return Err(AuthError::LogonFailure(LogonFailure::NotNtlmV2));
        }
        let Some(entry) = policy.users.lookup(&msg.user) else {
            return if policy.allow_guest {
                Ok(ServerVerified {
                    outcome: AuthOutcome::Guest,
                    flags: msg.flags,
                    mic_verified: false,
                })
            } else {
                Err(AuthError::LogonFailure(LogonFailure::UnknownUser))
            };
        };
        if let Some(d) = &entry.domain {
            if upcase(d) != upcase(&msg.domain) {
                return Err(AuthError::LogonFailure(LogonFailure::WrongDomain));
            }
        }
        let (proof, temp) = msg.nt_response.split_at(16);
        // NTLMv2_CLIENT_CHALLENGE: RespType 1, HiRespType 1 (MS-NLMP 2.2.2.7).
        if temp.len() < 28 || temp[0] != 1 || temp[1] != 1 {
            return Err(AuthError::LogonFailure(LogonFailure::NotNtlmV2));
        }
        let blob_info = TargetInfo::read(&temp[28..])?;

        // The client computed NTOWFv2 with the domain it sent; like Samba, also accept the
        // upper-cased and the empty domain (clients differ in what they hash).
        let mut candidates = vec![msg.domain.clone()];
        for d in [upcase(&msg.domain), String::new()] {
            if !candidates.contains(&d) {
                candidates.push(d);
            }
        }
        let mut matched = None;
        for domain in &candidates {
            let key = Zeroizing::new(ntowf_v2(&entry.nt_hash, &msg.user, domain));
            let expected = nt_proof_str(&key, &server_challenge, temp);
            if bool::from(expected.as_slice().ct_eq(proof)) {
                matched = Some(key);
                break;
            }
        }
        let response_key = matched.ok_or(AuthError::LogonFailure(LogonFailure::WrongPassword))?;
        let mut proof_arr = [0u8; 16];
        proof_arr.copy_from_slice(proof);
        let key_exchange_key = Zeroizing::new(session_base_key(&response_key, &proof_arr));
        let exported = if msg.flags & flags::NEGOTIATE_KEY_EXCH != 0 {
            let enc: [u8; 16] = msg
                .encrypted_session_key
                .as_slice()
                .try_into()
                .map_err(|_| {
                    AuthError::Malformed(DecodeError::invalid(
                        "NTLM AUTHENTICATE",
                        "KEY_EXCH without a 16-byte session key",
                    ))
                })?;
            rc4_key(&key_exchange_key, &enc)
        } else {
            *key_exchange_key
        };
        let exported = SessionKey::new(exported);

        // MS-NLMP 3.2.5.1.2: if MsvAvFlags says a MIC is present, the server MUST verify it.
        let mut mic_verified = false;
        if blob_info.flags().unwrap_or(0) & av::FLAG_MIC_PRESENT != 0 {
            let Some(mic) = msg.mic else {
                return Err(AuthError::LogonFailure(LogonFailure::BadMic));
            };
            let expected = compute_mic(exported.as_bytes(), &negotiate, &challenge, authenticate);
            if !bool::from(expected.ct_eq(&mic)) {
                return Err(AuthError::LogonFailure(LogonFailure::BadMic));
            }
            mic_verified = true;
        }
        Ok(ServerVerified {
            outcome: AuthOutcome::Authenticated {
                user: entry.name.clone(),
                domain: msg.domain.clone(),
                session_key: exported,
            },
            flags: msg.flags,
            mic_verified,
        })
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
    fn target_info_requires_terminator() {
        assert!(TargetInfo::read(&[2, 0, 2, 0, b'a', 0]).is_err());
        assert!(
            TargetInfo::read(&[0, 0, 1, 0, 0]).is_err(),
            "EOL with a value"
        );
        let t = TargetInfo::read(&[2, 0, 2, 0, b'a', 0, 0, 0, 0, 0, 0xff]).unwrap();
        assert_eq!(t.get_string(av::NB_DOMAIN_NAME).as_deref(), Some("a"));
    }

    #[test]
    fn mic_over_short_message_does_not_panic() {
        let k = [0u8; 16];
        let _ = compute_mic(&k, &[], &[], &[1, 2, 3]);
        let _ = compute_mic(&k, &[], &[], &[0u8; 80]);
    }
}
