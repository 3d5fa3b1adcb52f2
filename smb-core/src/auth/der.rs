//! The little DER that SPNEGO needs (X.690), written by hand.
//!
//! Only definite, minimally encoded lengths are accepted (DER, X.690 10.1), tags are single
//! bytes (no high-tag-number form), and a token may not exceed [`MAX_TOKEN_LEN`]. The SPNEGO
//! parser walks a fixed grammar, so nesting depth is bounded by that grammar, never by input.

use crate::codec::{DecodeError, InvalidReason};

/// Largest SPNEGO token accepted (an NTLM AUTHENTICATE is well under 4 KiB in practice).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// SEQUENCE (constructed).
pub const SEQUENCE: u8 = 0x30;
/// OBJECT IDENTIFIER.
pub const OID: u8 = 0x06;
/// OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// ENUMERATED.
pub const ENUMERATED: u8 = 0x0a;
/// BIT STRING.
pub const BIT_STRING: u8 = 0x03;
/// GeneralString.
pub const GENERAL_STRING: u8 = 0x1b;
/// `[APPLICATION 0]` constructed: the GSS-API InitialContextToken (RFC 2743 3.1).
pub const APPLICATION_0: u8 = 0x60;

/// The tag of a constructed context-specific field `[n]`.
pub const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// One tag-length-value element borrowed from its buffer.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    /// The identifier octet (class, constructed bit and tag number).
    pub tag: u8,
    /// The contents, borrowed from the input.
    pub content: &'a [u8],
    /// The whole element, tag and length included (the mechListMIC covers raw bytes).
    pub raw: &'a [u8],
}

/// Reads one element from the front of `buf`; returns it and the bytes after it.
pub fn read_tlv<'a>(buf: &'a [u8], what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), DecodeError> {
    if buf.len() > MAX_TOKEN_LEN {
        return Err(DecodeError::invalid(
            what,
            InvalidReason::TooLong {
                len: buf.len(),
                max: MAX_TOKEN_LEN,
            },
        ));
    }
    let short = |needed| DecodeError::Short {
        what,
        needed,
        have: buf.len(),
    };
    let tag = *buf.first().ok_or_else(|| short(2))?;
    if tag & 0x1f == 0x1f {
        return Err(DecodeError::invalid(what, InvalidReason::DerHighTagNumber));
    }
    let first = *buf.get(1).ok_or_else(|| short(2))?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        // X.690 8.1.3.5 long form; DER (10.1) forbids the indefinite form (0x80) and
        // non-minimal encodings. Four length bytes are far beyond MAX_TOKEN_LEN anyway.
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(DecodeError::invalid(what, InvalidReason::DerLength));
        }
        let bytes = buf.get(2..2 + n).ok_or_else(|| short(2 + n))?;
        if bytes[0] == 0 {
            return Err(DecodeError::invalid(what, InvalidReason::DerLength));
        }
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        if len < 0x80 {
            return Err(DecodeError::invalid(what, InvalidReason::DerLength));
        }
        (len, 2 + n)
    };
    let end = header
        .checked_add(len)
        .filter(|end| *end <= buf.len())
        .ok_or_else(|| short(header.saturating_add(len)))?;
    let tlv = Tlv {
        tag,
        content: &buf[header..end],
        raw: &buf[..end],
    };
    Ok((tlv, &buf[end..]))
}

/// Reads exactly one element that must fill `buf` and carry `tag`.
pub fn expect_one<'a>(buf: &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, DecodeError> {
    let (tlv, rest) = read_tlv(buf, what)?;
    if tlv.tag != tag {
        return Err(DecodeError::invalid(
            what,
            InvalidReason::DerTag {
                expected: Some(tag),
                found: tlv.tag,
            },
        ));
    }
    if !rest.is_empty() {
        return Err(DecodeError::Trailing {
            what,
            extra: rest.len(),
        });
    }
    Ok(tlv)
}

/// Splits the content of a constructed element into its children.
pub fn children<'a>(
    mut content: &'a [u8],
    what: &'static str,
) -> Result<Vec<Tlv<'a>>, DecodeError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read_tlv(content, what)?;
        out.push(tlv);
        content = rest;
    }
    Ok(out)
}

/// Appends a DER length in its minimal form.
fn put_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends one element.
pub fn put_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    put_len(content.len(), out);
    out.extend_from_slice(content);
}

/// One element as a new vector.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    put_tlv(tag, content, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_in_minimal_form() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536] {
            let content = vec![7u8; len];
            let enc = tlv(OCTET_STRING, &content);
            let expected_header = match len {
                0..=127 => 2,
                128..=255 => 3,
                256..=65535 => 4,
                _ => 5,
            };
            assert_eq!(enc.len(), expected_header + len, "len {len}");
            if len <= MAX_TOKEN_LEN - 5 {
                let t = expect_one(&enc, OCTET_STRING, "t").unwrap();
                assert_eq!(t.content.len(), len);
                assert_eq!(t.raw, &enc[..]);
            }
        }
    }

    #[test]
    fn rejects_non_der_lengths() {
        assert!(read_tlv(&[0x04, 0x80, 0, 0], "t").is_err(), "indefinite");
        assert!(
            read_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5], "t").is_err(),
            "long form for 5"
        );
        assert!(
            read_tlv(&[0x04, 0x82, 0x00, 0x80], "t").is_err(),
            "leading zero"
        );
        assert!(
            read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1], "t").is_err(),
            "5 length bytes"
        );
        assert!(
            read_tlv(&[0x04, 0x03, 1, 2], "t").is_err(),
            "length past the end"
        );
        assert!(read_tlv(&[0x1f, 0x01, 0], "t").is_err(), "high tag number");
        assert!(read_tlv(&[0x04], "t").is_err(), "no length");
        assert!(read_tlv(&[], "t").is_err(), "empty");
        assert!(
            expect_one(&[0x04, 0x00, 0x00], OCTET_STRING, "t").is_err(),
            "trailing"
        );
        assert!(
            expect_one(&[0x04, 0x00], SEQUENCE, "t").is_err(),
            "wrong tag"
        );
    }

    #[test]
    fn rejects_oversized_input() {
        let big = vec![0u8; MAX_TOKEN_LEN + 1];
        assert!(read_tlv(&big, "t").is_err());
    }
}
