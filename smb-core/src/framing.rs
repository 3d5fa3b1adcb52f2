//! Direct-TCP framing (MS-SMB2 2.1) as pure functions: every SMB2 message or compound
//! chain is preceded by one zero byte and a 3-byte big-endian length.
//!
//! A driver keeps a receive buffer, calls [`frame_len`] after every read, and when it
//! returns `Ok(Some(len))` hands `buf[4..4 + len]` to the connection and drops `4 + len`
//! bytes. The length is checked against a limit before any byte of the payload is
//! buffered, so an absurd length costs nothing.

use std::fmt;

/// Length of the Direct-TCP prefix.
pub const PREFIX_LEN: usize = 4;

/// The largest length the 3-byte StreamProtocolLength field can carry.
pub const MAX_STREAM_LEN: usize = 0x00FF_FFFF;

/// Default receive limit: the largest frame the 3-byte length can express (16 MiB - 1),
/// which holds an 8 MiB READ or WRITE with room to spare. Drivers may pass a lower limit.
pub const DEFAULT_MAX_FRAME: usize = MAX_STREAM_LEN;

/// Why a frame prefix is unacceptable. Either way the connection cannot resynchronise and
/// should be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// The announced payload length is above the limit (or above what 3 bytes can carry).
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// The first byte is not zero: not a Direct-TCP SMB2 frame (e.g. a NetBIOS session
    /// request 0x81 or keep-alive 0x85 sent to port 139 semantics).
    BadType(u8),
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::TooLarge { len, max } => {
                write!(
                    f,
                    "frame of {len} bytes is larger than the {max}-byte limit"
                )
            }
            FramingError::BadType(t) => {
                write!(
                    f,
                    "frame type 0x{t:02x} is not a Direct-TCP SMB2 frame (must be 0x00)"
                )
            }
        }
    }
}

impl std::error::Error for FramingError {}

/// The 4-byte prefix for a payload of `len` bytes.
pub fn frame_header(len: usize) -> Result<[u8; 4], FramingError> {
    if len > MAX_STREAM_LEN {
        return Err(FramingError::TooLarge {
            len,
            max: MAX_STREAM_LEN,
        });
    }
    let be = (len as u32).to_be_bytes();
    // MS-SMB2 2.1: "Zero (1 byte): The first byte of the Direct TCP transport packet
    // header MUST be zero (0x00)."
    Ok([0, be[1], be[2], be[3]])
}

/// Appends the prefix and `message` to `out`.
///
/// # Panics
/// If `message` is longer than [`MAX_STREAM_LEN`]: the caller builds its own messages and
/// must keep them within the limits it negotiated (check with [`frame_header`] first when
/// the size is not already bounded).
pub fn encode_frame(message: &[u8], out: &mut Vec<u8>) {
    let prefix = match frame_header(message.len()) {
        Ok(p) => p,
        Err(e) => panic!("encode_frame: {e}"),
    };
    out.reserve(PREFIX_LEN + message.len());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(message);
}

/// Looks at the start of a receive buffer.
///
/// `Ok(None)` = need more bytes; `Ok(Some(len))` = a whole frame of `len` payload bytes is at
/// `buf[4..4 + len]`. The type byte is checked as soon as it arrives and the length as soon
/// as the prefix is complete, before waiting for the payload. A zero-length frame is
/// returned as `Some(0)`; it carries no SMB2 message and the caller decides what to do.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FramingError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    if kind != 0 {
        return Err(FramingError::BadType(kind));
    }
    let Some(len_bytes) = buf.get(1..PREFIX_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([0, len_bytes[0], len_bytes[1], len_bytes[2]]) as usize;
    if len > max {
        return Err(FramingError::TooLarge { len, max });
    }
    if buf.len() - PREFIX_LEN < len {
        return Ok(None);
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode() {
        let mut out = vec![0xEE]; // something already in the buffer stays
        encode_frame(b"hello smb", &mut out);
        assert_eq!(&out[..5], &[0xEE, 0, 0, 0, 9]);
        assert_eq!(frame_len(&out[1..], DEFAULT_MAX_FRAME), Ok(Some(9)));
        assert_eq!(&out[5..], b"hello smb");
    }

    #[test]
    fn prefix_is_big_endian_24_bit() {
        assert_eq!(frame_header(0), Ok([0, 0, 0, 0]));
        assert_eq!(frame_header(0x0001_0203), Ok([0, 1, 2, 3]));
        assert_eq!(frame_header(MAX_STREAM_LEN), Ok([0, 0xFF, 0xFF, 0xFF]));
        assert_eq!(
            frame_header(MAX_STREAM_LEN + 1),
            Err(FramingError::TooLarge {
                len: MAX_STREAM_LEN + 1,
                max: MAX_STREAM_LEN
            })
        );
    }

    #[test]
    fn partial_frames_need_more_bytes() {
        let mut frame = Vec::new();
        encode_frame(&[7u8; 100], &mut frame);
        for cut in 0..frame.len() {
            assert_eq!(
                frame_len(&frame[..cut], DEFAULT_MAX_FRAME),
                Ok(None),
                "cut at {cut}"
            );
        }
        assert_eq!(frame_len(&frame, DEFAULT_MAX_FRAME), Ok(Some(100)));
    }

    #[test]
    fn following_frame_bytes_do_not_matter() {
        let mut two = Vec::new();
        encode_frame(&[1u8; 70], &mut two);
        encode_frame(&[2u8; 3], &mut two);
        assert_eq!(frame_len(&two, DEFAULT_MAX_FRAME), Ok(Some(70)));
        assert_eq!(frame_len(&two[74..], DEFAULT_MAX_FRAME), Ok(Some(3)));
    }

    #[test]
    fn max_frame_is_enforced_before_the_payload_arrives() {
        let prefix = frame_header(1000).unwrap();
        assert_eq!(frame_len(&prefix, 1000), Ok(None));
        assert_eq!(
            frame_len(&prefix, 999),
            Err(FramingError::TooLarge {
                len: 1000,
                max: 999
            })
        );
        // The largest announceable length against the default limit: accepted, waits.
        assert_eq!(
            frame_len(&[0, 0xFF, 0xFF, 0xFF], DEFAULT_MAX_FRAME),
            Ok(None)
        );
    }

    #[test]
    fn non_zero_type_byte_is_rejected_at_once() {
        assert_eq!(
            frame_len(&[0x85], DEFAULT_MAX_FRAME),
            Err(FramingError::BadType(0x85))
        );
        assert_eq!(
            frame_len(&[0x81, 0, 0, 0x44], DEFAULT_MAX_FRAME),
            Err(FramingError::BadType(0x81))
        );
        assert!(FramingError::BadType(0xFF).to_string().contains("0xff"));
    }

    #[test]
    fn zero_length_frame() {
        assert_eq!(frame_len(&[0, 0, 0, 0], DEFAULT_MAX_FRAME), Ok(Some(0)));
    }
}
