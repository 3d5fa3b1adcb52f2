//! The three NTLMSSP messages (MS-NLMP 2.2.1) and the structures inside them: VERSION, AV
//! pairs (target info), and the (Len, MaxLen, Offset) field descriptors of the payload.

use std::fmt;

use super::{av, flags, AUTHENTICATE_TYPE, CHALLENGE_TYPE, MIC_OFFSET, NEGOTIATE_TYPE, SIGNATURE};
use crate::codec::{from_utf16le, slice_at, utf16le, DecodeError, InvalidReason, Reader, Writer};

/// The 8-byte VERSION structure (MS-NLMP 2.2.2.10). Informational only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// ProductMajorVersion.
    pub major: u8,
    /// ProductMinorVersion.
    pub minor: u8,
    /// ProductBuild.
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

    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_u16(self.build);
        out.put_zeros(3);
        out.put_u8(self.revision);
    }

    /// Reads the wire form.
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
    /// AvId ([`av`]).
    pub id: u16,
    /// Value (UTF-16LE for the names).
    pub value: Vec<u8>,
}

/// A target info list: the AV pairs before MsvAvEOL (the terminator is implicit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetInfo {
    /// The pairs in wire order, without the terminating MsvAvEOL.
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
                    return Err(DecodeError::invalid(
                        "AV_PAIR",
                        InvalidReason::AvEolWithValue,
                    ));
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

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The value of the first pair with this AvId.
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

    /// Sets (or adds) a UTF-16LE string pair.
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
        return Err(DecodeError::invalid(what, InvalidReason::NtlmSignature));
    }
    let ty = r.u32(what)?;
    if ty != expected_type {
        return Err(DecodeError::invalid(
            what,
            InvalidReason::NtlmMessageType {
                found: ty,
                expected: expected_type,
            },
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
    /// NegotiateFlags ([`flags`]).
    pub flags: u32,
    /// OEM domain name, only with NEGOTIATE_OEM_DOMAIN_SUPPLIED (clients normally leave it empty).
    pub domain: Vec<u8>,
    /// WorkstationName as sent (OEM bytes).
    pub workstation: Vec<u8>,
    /// Version, when NEGOTIATE_VERSION is set.
    pub version: Option<Version>,
}

impl NegotiateMessage {
    /// Appends the wire form.
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

    /// The wire form.
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
    /// TargetName (the server's domain or name).
    pub target_name: String,
    /// NegotiateFlags ([`flags`]).
    pub flags: u32,
    /// ServerChallenge: the 8 random bytes the client's proof covers.
    pub server_challenge: [u8; 8],
    /// TargetInfo: the AV pairs the client echoes in its NTLMv2 response.
    pub target_info: TargetInfo,
    /// Version, when NEGOTIATE_VERSION is set.
    pub version: Option<Version>,
}

impl ChallengeMessage {
    /// Appends the wire form.
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

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses a whole message, checking its signature and type.
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
    /// LmChallengeResponse (24 zero bytes or LMv2 for NTLMv2 clients).
    pub lm_response: Vec<u8>,
    /// NtChallengeResponse: NTProofStr followed by the client's blob.
    pub nt_response: Vec<u8>,
    /// DomainName.
    pub domain: String,
    /// UserName.
    pub user: String,
    /// Workstation.
    pub workstation: String,
    /// EncryptedRandomSessionKey (with KEY_EXCH).
    pub encrypted_session_key: Vec<u8>,
    /// NegotiateFlags ([`flags`]).
    pub flags: u32,
    /// Version, when NEGOTIATE_VERSION is set.
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

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses a whole message, checking its signature and type.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
