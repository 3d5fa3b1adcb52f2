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
        what: &'static str,
        needed: usize,
        have: usize,
    },
    /// A field holds a value the structure does not allow.
    Invalid { what: &'static str, reason: String },
    /// Bytes left over after a structure that must fill its buffer.
    Trailing { what: &'static str, extra: usize },
}

impl DecodeError {
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            reason: reason.into(),
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

impl std::error::Error for DecodeError {}

/// A cursor over a borrowed byte slice. Reads are little-endian, as SMB2 is.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
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

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.take(n, what).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

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
        .ok_or_else(|| DecodeError::invalid(what, "offset + length overflows"))?;
    if end > buf.len() {
        return Err(DecodeError::invalid(
            what,
            format!(
                "offset {offset} + length {len} is outside the {}-byte message",
                buf.len()
            ),
        ));
    }
    Ok(&buf[offset..end])
}

/// Little-endian writes onto a `Vec<u8>`, with back-patching of lengths and offsets.
pub trait Writer {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_bytes(&mut self, v: &[u8]);
    fn put_zeros(&mut self, n: usize);
    /// Pads with zeros until the length is a multiple of `align`.
    fn pad_to(&mut self, align: usize);
    fn patch_u16(&mut self, at: usize, v: u16);
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
        return Err(DecodeError::invalid(what, "odd length for UTF-16"));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| DecodeError::invalid(what, "invalid UTF-16"))
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
