//! Compound chains (MS-SMB2 2.2.1, 3.2.4.1.4, 3.3.5.2.7): several SMB2 messages in one
//! transport frame, each header's NextCommand giving the offset of the next one.
//!
//! Each message of a chain is signed on its own, its trailing padding included, so the
//! ranges returned by [`split_chain`] are exactly the bytes a signature covers.

use std::ops::Range;

use crate::codec::{DecodeError, InvalidReason};
use crate::header::{HEADER_LEN, NEXT_COMMAND_OFFSET};

/// Every message of a chain but the last starts on an 8-byte boundary
/// (MS-SMB2 2.2.1: "NextCommand ... MUST be 8-byte aligned").
pub const CHAIN_ALIGN: usize = 8;

const WHAT: &str = "compound chain";

/// Splits a compound chain into the byte ranges of its messages. Each range covers one
/// message including its padding (NextCommand bytes, or to the end for the last one).
///
/// MS-SMB2 3.3.5.2.7 / 2.2.1: NextCommand must be 8-byte aligned, point forward inside the
/// buffer and leave room for a 64-byte header; anything else is a [`DecodeError`]. Offsets
/// only move forward, so there is no loop, and at most `buf.len() / 64` ranges are made.
///
/// Only the framing of the chain is checked here; each message's header (protocol id,
/// structure size) is left to [`crate::header::Header::parse`].
pub fn split_chain(buf: &[u8]) -> Result<Vec<Range<usize>>, DecodeError> {
    let mut ranges = Vec::new();
    let mut start = 0usize;
    loop {
        let rest = buf.get(start..).unwrap_or_default();
        if rest.len() < HEADER_LEN {
            return Err(DecodeError::Short {
                what: WHAT,
                needed: HEADER_LEN,
                have: rest.len(),
            });
        }
        let next = next_command(rest);
        if next == 0 {
            ranges.push(start..buf.len());
            return Ok(ranges);
        }
        // MS-SMB2 2.2.1.2: "NextCommand (4 bytes): For a compounded request and response,
        // this field MUST be set to the offset, in bytes, from the beginning of this SMB2
        // header to the start of the subsequent 8-byte aligned SMB2 header."
        if !next.is_multiple_of(CHAIN_ALIGN) {
            return Err(DecodeError::invalid(
                "NextCommand",
                InvalidReason::Unaligned { offset: next },
            ));
        }
        if next < HEADER_LEN {
            return Err(DecodeError::invalid(
                "NextCommand",
                InvalidReason::OffsetTooSmall {
                    offset: next,
                    min: HEADER_LEN,
                },
            ));
        }
        // MS-SMB2 3.3.5.2.7: a NextCommand that leaves no room for the next header makes the
        // request invalid (the server answers STATUS_INVALID_PARAMETER or disconnects).
        // (rest.len() >= HEADER_LEN was checked above, so the subtraction cannot underflow.)
        if next > rest.len() - HEADER_LEN {
            return Err(DecodeError::invalid(
                "NextCommand",
                InvalidReason::OutOfBounds {
                    offset: start + next,
                    len: HEADER_LEN,
                    buffer: buf.len(),
                },
            ));
        }
        ranges.push(start..start + next);
        start += next;
    }
}

/// NextCommand of the header at the start of `message` (caller checked it holds 64 bytes).
fn next_command(message: &[u8]) -> usize {
    let mut field = [0u8; 4];
    if let Some(b) = message.get(NEXT_COMMAND_OFFSET..NEXT_COMMAND_OFFSET + 4) {
        field.copy_from_slice(b);
    }
    // u32 -> usize cannot truncate on the 32/64-bit targets we build for.
    u32::from_le_bytes(field) as usize
}

/// Concatenates single messages into a chain: pads every message but the last to 8 bytes
/// and writes its NextCommand; the last one gets NextCommand 0. Signing happens after,
/// per message, padding included (see `SigningKey::sign_chain`).
///
/// Each message must start with its 64-byte header. A message too short to hold the
/// NextCommand field is copied as is (it cannot be a valid message; no panic).
pub fn build_chain(messages: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = messages.iter().map(|m| m.len() + CHAIN_ALIGN).sum();
    let mut out = Vec::with_capacity(total);
    let last = messages.len().saturating_sub(1);
    for (i, message) in messages.iter().enumerate() {
        let start = out.len();
        out.extend_from_slice(message);
        let next = if i == last {
            0
        } else {
            // MS-SMB2 3.2.4.1.4: each message but the last is padded to an 8-byte boundary.
            let padded = message.len().next_multiple_of(CHAIN_ALIGN);
            out.resize(start + padded, 0);
            u32::try_from(padded).unwrap_or(0)
        };
        let field = start + NEXT_COMMAND_OFFSET..start + NEXT_COMMAND_OFFSET + 4;
        if let Some(slot) = out.get_mut(field) {
            slot.copy_from_slice(&next.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{Command, Header};

    /// A message of `len` bytes (>= 64) with a real header and a recognisable body.
    fn message(command: Command, message_id: u64, len: usize) -> Vec<u8> {
        let mut m = Vec::new();
        Header::request(command, message_id, 0x42, 7).encode(&mut m);
        m.extend((0..len - HEADER_LEN).map(|i| (i as u8) ^ 0xA5));
        m
    }

    fn set_next(buf: &mut [u8], at: usize, next: u32) {
        buf[at + NEXT_COMMAND_OFFSET..at + NEXT_COMMAND_OFFSET + 4]
            .copy_from_slice(&next.to_le_bytes());
    }

    #[test]
    fn single_message_is_a_chain_of_one() {
        let m = message(Command::ECHO, 1, 68);
        assert_eq!(split_chain(&m).unwrap(), vec![0..68]);
        let built = build_chain(std::slice::from_ref(&m));
        assert_eq!(built, m, "a chain of one is the message itself, unpadded");
    }

    #[test]
    fn build_then_split_keeps_padding_in_ranges() {
        let msgs = vec![
            message(Command::CREATE, 1, 64 + 57), // 121 -> padded to 128
            message(Command::READ, 2, 64 + 49),   // 113 -> padded to 120
            message(Command::CLOSE, 3, 64 + 24),  // last: 88, not padded
        ];
        let chain = build_chain(&msgs);
        assert_eq!(chain.len(), 128 + 120 + 88);
        let ranges = split_chain(&chain).unwrap();
        assert_eq!(ranges, vec![0..128, 128..248, 248..336]);
        for (range, original) in ranges.iter().zip(&msgs) {
            let part = &chain[range.clone()];
            // The message bytes are intact apart from NextCommand; padding is zeros.
            assert_eq!(
                &part[..NEXT_COMMAND_OFFSET],
                &original[..NEXT_COMMAND_OFFSET]
            );
            assert_eq!(
                &part[NEXT_COMMAND_OFFSET + 4..original.len()],
                &original[24..]
            );
            assert!(part[original.len()..].iter().all(|&b| b == 0));
            let h = Header::parse(part).unwrap();
            let expected_next = if range.end == chain.len() {
                0
            } else {
                range.len()
            };
            assert_eq!(h.next_command as usize, expected_next);
        }
    }

    #[test]
    fn build_chain_overwrites_stale_next_command() {
        let mut a = message(Command::ECHO, 1, 72);
        let mut b = message(Command::ECHO, 2, 72);
        set_next(&mut a, 0, 999);
        set_next(&mut b, 0, 4096);
        let chain = build_chain(&[a, b]);
        assert_eq!(split_chain(&chain).unwrap(), vec![0..72, 72..144]);
    }

    #[test]
    fn aligned_but_unpadded_message_gets_no_padding() {
        let msgs = vec![message(Command::ECHO, 1, 72), message(Command::ECHO, 2, 64)];
        let chain = build_chain(&msgs);
        assert_eq!(chain.len(), 136);
        assert_eq!(split_chain(&chain).unwrap(), vec![0..72, 72..136]);
    }

    #[test]
    fn misaligned_next_command_is_rejected() {
        let mut chain =
            build_chain(&[message(Command::ECHO, 1, 72), message(Command::ECHO, 2, 72)]);
        set_next(&mut chain, 0, 68);
        let err = split_chain(&chain).unwrap_err();
        assert_eq!(
            err.invalid_reason(),
            Some(InvalidReason::Unaligned { offset: 68 }),
            "{err}"
        );
    }

    #[test]
    fn next_command_inside_own_header_is_rejected() {
        let mut chain =
            build_chain(&[message(Command::ECHO, 1, 72), message(Command::ECHO, 2, 72)]);
        for bad in [8, 16, 56] {
            set_next(&mut chain, 0, bad);
            assert_eq!(
                split_chain(&chain).unwrap_err().invalid_reason(),
                Some(InvalidReason::OffsetTooSmall {
                    offset: bad as usize,
                    min: HEADER_LEN
                }),
                "NextCommand {bad}"
            );
        }
    }

    #[test]
    fn next_command_past_the_end_is_rejected() {
        let mut chain =
            build_chain(&[message(Command::ECHO, 1, 72), message(Command::ECHO, 2, 72)]);
        for bad in [152, 4096, 0xFFFF_FFF8] {
            set_next(&mut chain, 0, bad);
            assert!(
                matches!(
                    split_chain(&chain).unwrap_err().invalid_reason(),
                    Some(InvalidReason::OutOfBounds {
                        len: HEADER_LEN,
                        ..
                    })
                ),
                "NextCommand {bad}"
            );
        }
    }

    #[test]
    fn zero_length_or_short_tail_is_rejected() {
        // NextCommand points exactly at the end: no next message at all.
        let mut m = message(Command::ECHO, 1, 72);
        set_next(&mut m, 0, 72);
        assert!(split_chain(&m).is_err());
        // ... or at a tail shorter than a header.
        let mut chain = message(Command::ECHO, 1, 72);
        chain.extend_from_slice(&[0u8; 56]);
        set_next(&mut chain, 0, 72);
        assert!(split_chain(&chain).is_err());
        // A second element whose own NextCommand points at a short tail fails too.
        let mut three =
            build_chain(&[message(Command::ECHO, 1, 64), message(Command::ECHO, 2, 64)]);
        three.extend_from_slice(&[0u8; 8]);
        set_next(&mut three, 64, 64);
        assert!(split_chain(&three).is_err());
    }

    #[test]
    fn short_and_empty_buffers_are_rejected() {
        assert!(split_chain(&[]).is_err());
        let m = message(Command::ECHO, 1, 64);
        for len in [0, 1, 23, 24, 63] {
            assert!(split_chain(&m[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn self_pointing_chain_cannot_loop() {
        // Each header points exactly to the next; the walk must end at the buffer's end.
        let msgs: Vec<_> = (0..100).map(|i| message(Command::ECHO, i, 64)).collect();
        let chain = build_chain(&msgs);
        let ranges = split_chain(&chain).unwrap();
        assert_eq!(ranges.len(), 100);
        assert!(ranges.iter().all(|r| r.len() == 64));
    }

    proptest::proptest! {
        /// Any list of messages builds into a chain that splits back into the same
        /// messages, each padded to 8 bytes but the last.
        #[test]
        fn build_then_split_round_trips(body_lens in proptest::collection::vec(0usize..200, 1..12)) {
            let msgs: Vec<_> = body_lens
                .iter()
                .enumerate()
                .map(|(i, &n)| message(Command::WRITE, i as u64, HEADER_LEN + n))
                .collect();
            let chain = build_chain(&msgs);
            let ranges = split_chain(&chain).unwrap();
            proptest::prop_assert_eq!(ranges.len(), msgs.len());
            for (i, (range, m)) in ranges.iter().zip(&msgs).enumerate() {
                let last = i + 1 == msgs.len();
                let expected = if last { m.len() } else { m.len().next_multiple_of(8) };
                proptest::prop_assert_eq!(range.len(), expected);
                proptest::prop_assert_eq!(&chain[range.start + 24..range.start + m.len()], &m[24..]);
            }
        }

        /// Arbitrary bytes never panic, and any ranges returned tile the buffer.
        #[test]
        fn split_arbitrary_bytes(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Ok(ranges) = split_chain(&buf) {
                let mut at = 0;
                for r in &ranges {
                    proptest::prop_assert_eq!(r.start, at);
                    proptest::prop_assert!(r.len() >= HEADER_LEN);
                    at = r.end;
                }
                proptest::prop_assert_eq!(at, buf.len());
            }
        }
    }

    #[test]
    fn build_chain_tolerates_short_and_empty_input() {
        assert!(build_chain(&[]).is_empty());
        let chain = build_chain(&[vec![1, 2, 3], vec![4]]);
        assert_eq!(chain, [1, 2, 3, 0, 0, 0, 0, 0, 4]);
    }
}
