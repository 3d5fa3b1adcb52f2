//! Shared helpers for the criterion benches in `benches/`.

use smb_core::header::{flags, Command, Header, HEADER_LEN};

/// The sizes every signing bench runs at: whole SMB2 messages, header included.
pub const SIZES: [usize; 6] = [64, 1024, 4096, 16 * 1024, 64 * 1024, 1024 * 1024];

/// A READ response of `len` bytes in all (at least a header), with a deterministic body.
pub fn message(len: usize, message_id: u64) -> Vec<u8> {
    let mut h = Header::request(Command::READ, message_id, 0x0000_0400_0000_0011, 5);
    h.flags |= flags::SERVER_TO_REDIR;
    let mut out = Vec::with_capacity(len.max(HEADER_LEN));
    h.encode(&mut out);
    // A cheap xorshift fill: the MACs do not care about the values, only that they vary.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

/// A human label for a size: "64B", "1KiB", "1MiB".
pub fn size_label(len: usize) -> String {
    if len >= 1 << 20 {
        format!("{}MiB", len >> 20)
    } else if len >= 1 << 10 {
        format!("{}KiB", len >> 10)
    } else {
        format!("{len}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_the_requested_length_and_a_valid_header() {
        for len in SIZES {
            let m = message(len, 3);
            assert_eq!(m.len(), len);
            assert_eq!(Header::parse(&m).unwrap().message_id, 3);
        }
        assert_eq!(size_label(16 * 1024), "16KiB");
    }
}
