//! Little-endian reader and writer over byte slices, shared by every wire type.
//!
//! Every wire type has the same shape: `encode(&self, &mut Vec<u8>)` and
//! `read(&mut Reader) -> Result<Self, DecodeError>`. Short or inconsistent input
//! is a [`DecodeError`], never a panic.

use std::fmt;

/// Why some bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    Short {
        /// The structure or field being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that were left.
        have: usize,
    },
    /// A field holds a value the structure does not allow.
    Invalid {
        /// The structure or field being read.
        what: &'static str,
        /// What is wrong with it.
        reason: InvalidReason,
    },
    /// Bytes left over after a structure that must fill its buffer.
    Trailing {
        /// The structure being read.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

impl DecodeError {
    /// [`DecodeError::Invalid`] for `what`, with `reason`.
    pub fn invalid(what: &'static str, reason: InvalidReason) -> Self {
        DecodeError::Invalid { what, reason }
    }

    /// The reason, when this is [`DecodeError::Invalid`].
    pub fn invalid_reason(&self) -> Option<InvalidReason> {
        match self {
            DecodeError::Invalid { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short { what, needed, have } => {
                write!(f, "{what}: need {needed} bytes, have {have}")
            }
            DecodeError::Invalid { what, reason } => write!(f, "{what}: {reason}"),
            DecodeError::Trailing { what, extra } => {
                write!(f, "{what}: {extra} unexpected trailing bytes")
            }
        }
    }
}

/// What is wrong with a field: the reason of a [`DecodeError::Invalid`], one variant per
/// rule a decoder enforces, so that a caller can match on it. New rules add variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    // Layout: offsets, lengths, sizes.
    /// An offset plus a length overflows.
    LengthOverflow,
    /// An (offset, length) pair reaches past the end of its buffer.
    OutOfBounds {
        /// Where the field starts.
        offset: usize,
        /// Its length.
        len: usize,
        /// The length of the buffer it must lie in.
        buffer: usize,
    },
    /// An offset points into a header or fixed part that precedes where it may point.
    OffsetTooSmall {
        /// The offset found.
        offset: usize,
        /// The smallest offset allowed.
        min: usize,
    },
    /// An offset that must be 8-byte aligned is not.
    Unaligned {
        /// The offset found.
        offset: usize,
    },
    /// A length larger than the structure allows.
    TooLong {
        /// The length found.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A next-entry offset (NextEntryOffset, a create context's Next) that does not move
    /// forward inside its buffer.
    BadNextOffset {
        /// The offset found.
        next: usize,
    },
    /// A StructureSize other than the structure's own.
    StructureSize {
        /// The value found.
        found: u16,
        /// The value the structure has.
        expected: u16,
    },
    /// A length or StructureSize that is none of the few values the structure allows
    /// (a lease context is 32 or 52 bytes; an OPLOCK_BREAK is 24, 36 or 44).
    NotOneOf {
        /// The value found.
        found: usize,
        /// The values allowed.
        allowed: &'static [usize],
    },
    /// A count or length that must be at least 1 is 0 (DialectCount, LockCount,
    /// a create context's NameLength).
    Zero,
    /// A revision other than the one supported (SIDs and security descriptors: 1).
    Revision {
        /// The revision found.
        found: u8,
    },
    // Strings.
    /// A UTF-16 string of an odd number of bytes.
    OddUtf16Length,
    /// A UTF-16 string with an unpaired surrogate.
    InvalidUtf16,
    /// A string without its terminating NUL.
    Unterminated,
    // SMB headers and classes.
    /// A ProtocolId other than the structure's (0xFE 'SMB' for SMB2, 0xFF 'SMB' for SMB1).
    ProtocolId([u8; 4]),
    /// An SMB1 command other than NEGOTIATE (0x72).
    Smb1Command(u8),
    /// An SMB1 NEGOTIATE WordCount other than 0.
    Smb1WordCount(u8),
    /// An SMB1 dialect string without its BufferFormat 0x02.
    Smb1BufferFormat,
    /// A FileInformationClass that is not a query-directory class.
    NotDirectoryClass(u8),
    // NTLMSSP (MS-NLMP).
    /// A message that does not start with "NTLMSSP\0".
    NtlmSignature,
    /// An NTLM message of another MessageType.
    NtlmMessageType {
        /// The type found.
        found: u32,
        /// The type expected.
        expected: u32,
    },
    /// An MsvAvEOL AV pair with a value.
    AvEolWithValue,
    /// NEGOTIATE_KEY_EXCH without a 16-byte EncryptedRandomSessionKey.
    KeyExchangeWithoutKey,
    // SPNEGO and DER.
    /// A GSS-API token whose mechanism is not SPNEGO.
    NotSpnego,
    /// A token that is neither a GSS-API InitialContextToken nor a NegTokenInit/Resp.
    NotGssToken,
    /// A NegTokenInit without mechTypes, or mechTypes holding a non-OID.
    BadMechTypes,
    /// A negState outside accept-completed, accept-incomplete, reject, request-mic.
    UnknownNegState,
    /// Explicitly tagged fields out of ascending order, or repeated.
    FieldOrder,
    /// A DER element with another tag than the one required (`expected` None: any
    /// context-specific tag was allowed).
    DerTag {
        /// The tag required, if one tag was.
        expected: Option<u8>,
        /// The tag found.
        found: u8,
    },
    /// The DER high-tag-number form, which SPNEGO never uses.
    DerHighTagNumber,
    /// An indefinite, oversized or non-minimal DER length.
    DerLength,
    // DCE/RPC over a named pipe.
    /// A DCE/RPC PDU larger than one fragment.
    RpcFragment,
    /// A pipe write while earlier answers are still unread.
    RpcUnreadOutput,
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use InvalidReason::*;
        match *self {
            LengthOverflow => write!(f, "offset + length overflows"),
            OutOfBounds {
                offset,
                len,
                buffer,
            } => write!(
                f,
                "offset {offset} + length {len} is outside the {buffer}-byte buffer"
            ),
            OffsetTooSmall { offset, min } => {
                write!(f, "offset {offset} points before byte {min}")
            }
            Unaligned { offset } => write!(f, "offset {offset} is not 8-byte aligned"),
            TooLong { len, max } => write!(f, "length {len} is over {max}"),
            BadNextOffset { next } => write!(f, "next-entry offset {next} out of range"),
            StructureSize { found, expected } => {
                write!(f, "StructureSize {found}, must be {expected}")
            }
            Zero => write!(f, "must not be 0"),
            NotOneOf { found, allowed } => write!(f, "{found}, must be one of {allowed:?}"),
            Revision { found } => write!(f, "revision {found} is not 1"),
            OddUtf16Length => write!(f, "odd length for UTF-16"),
            InvalidUtf16 => write!(f, "invalid UTF-16"),
            Unterminated => write!(f, "string without NUL"),
            ProtocolId(id) => write!(f, "protocol id {id:02x?}"),
            Smb1Command(c) => write!(f, "SMB1 command {c:#04x}, not NEGOTIATE"),
            Smb1WordCount(n) => write!(f, "WordCount {n}, must be 0"),
            Smb1BufferFormat => write!(f, "dialect without BufferFormat 0x02"),
            NotDirectoryClass(c) => write!(f, "class {c} is not a directory class"),
            NtlmSignature => write!(f, "missing NTLMSSP signature"),
            NtlmMessageType { found, expected } => {
                write!(f, "message type {found}, expected {expected}")
            }
            AvEolWithValue => write!(f, "MsvAvEOL with a value"),
            KeyExchangeWithoutKey => write!(f, "KEY_EXCH without a 16-byte session key"),
            NotSpnego => write!(f, "GSS-API token is not SPNEGO"),
            NotGssToken => write!(f, "not a GSS-API InitialContextToken"),
            BadMechTypes => write!(f, "mechTypes missing or holding a non-OID"),
            UnknownNegState => write!(f, "unknown negState"),
            FieldOrder => write!(f, "fields out of order or repeated"),
            DerTag {
                expected: Some(e),
                found,
            } => write!(f, "expected DER tag {e:#04x}, found {found:#04x}"),
            DerTag {
                expected: None,
                found,
            } => write!(f, "unexpected DER tag {found:#04x}"),
            DerHighTagNumber => write!(f, "high-tag-number form is not used by SPNEGO"),
            DerLength => write!(f, "indefinite, oversized or non-minimal DER length"),
            RpcFragment => write!(f, "PDU larger than one fragment"),
            RpcUnreadOutput => write!(f, "earlier answers were not read"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a borrowed byte slice. Reads are little-endian, as SMB2 is.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unconsumed bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The whole underlying buffer (offsets in SMB2 are from the header start).
    pub fn whole(&self) -> &'a [u8] {
        self.buf
    }

    /// The next `n` bytes, borrowed; [`DecodeError::Short`] (naming `what`) if fewer are
    /// left.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Short {
                what,
                needed: n,
                have: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Consumes `n` bytes without looking at them.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.take(n, what).map(|_| ())
    }

    /// The next `N` bytes, copied.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Fails unless every byte has been consumed.
    pub fn expect_end(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::Trailing { what, extra }),
        }
    }
}

/// Bounds-checked sub-slice `buf[offset..offset+len]`, the way SMB2 offset/length pairs
/// must be resolved (MS-SMB2 3.3.5.2: lengths and offsets outside the message are invalid).
pub fn slice_at<'a>(
    buf: &'a [u8],
    offset: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| DecodeError::invalid(what, InvalidReason::LengthOverflow))?;
    if end > buf.len() {
        return Err(DecodeError::invalid(
            what,
            InvalidReason::OutOfBounds {
                offset,
                len,
                buffer: buf.len(),
            },
        ));
    }
    Ok(&buf[offset..end])
}

/// Little-endian writes onto a `Vec<u8>`, with back-patching of lengths and offsets.
pub trait Writer {
    /// Appends one byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a little-endian `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a little-endian `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a little-endian `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends bytes as they are.
    fn put_bytes(&mut self, v: &[u8]);
    /// Appends `n` zero bytes.
    fn put_zeros(&mut self, n: usize);
    /// Pads with zeros until the length is a multiple of `align`.
    fn pad_to(&mut self, align: usize);
    /// Overwrites the `u16` at byte `at` (a length or offset known only later).
    fn patch_u16(&mut self, at: usize, v: u16);
    /// Overwrites the `u32` at byte `at` (a length or offset known only later).
    fn patch_u32(&mut self, at: usize, v: u32);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bytes(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn pad_to(&mut self, align: usize) {
        let rem = self.len() % align;
        if rem != 0 {
            self.put_zeros(align - rem);
        }
    }
    fn patch_u16(&mut self, at: usize, v: u16) {
        self[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn patch_u32(&mut self, at: usize, v: u32) {
        self[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// UTF-16LE encoding of a string, as SMB2 names and paths are sent.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Decodes UTF-16LE bytes; an odd length or an unpaired surrogate is an error.
pub fn from_utf16le(b: &[u8], what: &'static str) -> Result<String, DecodeError> {
    if !b.len().is_multiple_of(2) {
        return Err(DecodeError::invalid(what, InvalidReason::OddUtf16Length));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| DecodeError::invalid(what, InvalidReason::InvalidUtf16))
}

/// Seconds from 1601-01-01 (the FILETIME epoch) to 1970-01-01 (the Unix epoch).
const FILETIME_UNIX_OFFSET_SECS: u64 = 11_644_473_600;

/// A time as a Windows FILETIME (MS-DTYP 2.3.3): 100 ns intervals since 1601-01-01 UTC.
/// Times before 1970 give 0 (SMB2 reads 0 as "no time"); times past the year 60056
/// saturate instead of overflowing.
pub fn filetime(t: std::time::SystemTime) -> u64 {
    let Ok(since_unix) = t.duration_since(std::time::UNIX_EPOCH) else {
        return 0;
    };
    since_unix
        .as_secs()
        .saturating_add(FILETIME_UNIX_OFFSET_SECS)
        .saturating_mul(10_000_000)
        .saturating_add(u64::from(since_unix.subsec_nanos() / 100))
}

/// Now as a FILETIME (see [`filetime`]), from [`SystemClock`](crate::env::SystemClock):
/// for drivers. The state machines never call it; they ask their configuration's clock.
pub fn filetime_now() -> u64 {
    crate::env::Clock::now(&crate::env::SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_short_input() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").unwrap(), 0x0201);
        assert_eq!(
            r.u32("b"),
            Err(DecodeError::Short {
                what: "b",
                needed: 4,
                have: 1
            })
        );
        assert_eq!(
            r.expect_end("c"),
            Err(DecodeError::Trailing {
                what: "c",
                extra: 1
            })
        );
    }

    #[test]
    fn slice_at_rejects_out_of_range_and_overflow() {
        let buf = [0u8; 8];
        assert!(slice_at(&buf, 4, 4, "x").is_ok());
        assert!(slice_at(&buf, 5, 4, "x").is_err());
        assert!(slice_at(&buf, usize::MAX, 2, "x").is_err());
    }

    #[test]
    fn writer_back_patches() {
        let mut w = Vec::new();
        w.put_u16(0);
        w.put_bytes(b"abc");
        w.pad_to(8);
        w.patch_u16(0, 0xBEEF);
        assert_eq!(w, [0xEF, 0xBE, b'a', b'b', b'c', 0, 0, 0]);
    }

    #[test]
    fn filetime_counts_100ns_from_1601() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(filetime(UNIX_EPOCH), 116_444_736_000_000_000);
        let t = UNIX_EPOCH + Duration::new(1, 250);
        assert_eq!(filetime(t), 116_444_736_010_000_002);
        assert_eq!(filetime(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(
            filetime(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)),
            u64::MAX
        );
    }

    #[test]
    fn utf16_round_trip() {
        let s = "dir\\fichier é";
        assert_eq!(from_utf16le(&utf16le(s), "n").unwrap(), s);
        assert!(from_utf16le(&[0x41], "n").is_err());
    }
}
