//! One direction of a TCP connection put back in order: retransmitted bytes are dropped,
//! segments that arrive early wait (up to a bound), and a hole that never fills is reported as
//! a gap so the framer above can resynchronise.

use std::collections::BTreeMap;

/// Most out-of-order bytes held per direction before giving up on a hole.
pub const MAX_PENDING: usize = 4 << 20;

/// What the stream hands up.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// Bytes were lost here; what follows does not continue what came before.
    Gap,
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Stream {
    /// The next sequence number expected; None until the first segment.
    next: Option<u32>,
    /// Early segments by their distance from `next` when stored (re-keyed on delivery).
    pending: BTreeMap<u32, (u32, Vec<u8>)>,
    pending_bytes: usize,
}

/// Signed distance from `a` to `b` in sequence space.
fn dist(a: u32, b: u32) -> i64 {
    i64::from(b.wrapping_sub(a) as i32)
}

impl Stream {
    /// A SYN: data starts at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some(seq.wrapping_add(1));
        }
    }

    /// Adds a segment and hands every in-order byte (and gaps) to `out`.
    pub fn push(&mut self, seq: u32, data: &[u8], out: &mut dyn FnMut(Chunk<'_>)) {
        if data.is_empty() {
            return;
        }
        let next = *self.next.get_or_insert(seq);
        let d = dist(next, seq);
        if d <= 0 {
            // Retransmission or overlap: only the new tail counts.
            let skip = (-d) as usize;
            if skip < data.len() {
                out(Chunk::Data(&data[skip..]));
                self.next = Some(next.wrapping_add((data.len() - skip) as u32));
                self.drain(out);
            }
            return;
        }
        if self.pending_bytes + data.len() > MAX_PENDING {
            // The hole will not fill: skip to the earliest segment we hold.
            self.skip_hole(out);
            return self.push(seq, data, out);
        }
        let key = seq;
        let keep = match self.pending.get(&key) {
            Some((_, old)) => old.len() < data.len(),
            None => true,
        };
        if keep {
            if let Some((_, old)) = self.pending.insert(key, (seq, data.to_vec())) {
                self.pending_bytes -= old.len();
            }
            self.pending_bytes += data.len();
        }
    }

    /// Delivers whatever pending segments now continue the stream.
    fn drain(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        loop {
            let Some(next) = self.next else { return };
            let ready = self
                .pending
                .iter()
                .find(|(_, (seq, _))| dist(next, *seq) <= 0)
                .map(|(k, _)| *k);
            let Some(k) = ready else { return };
            let Some((seq, data)) = self.pending.remove(&k) else {
                return;
            };
            self.pending_bytes -= data.len();
            let skip = (-dist(next, seq)) as usize;
            if skip < data.len() {
                out(Chunk::Data(&data[skip..]));
                self.next = Some(next.wrapping_add((data.len() - skip) as u32));
            }
        }
    }

    /// Gives up on the current hole: a gap, then the earliest pending data onward.
    fn skip_hole(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        let Some(next) = self.next else { return };
        let earliest = self
            .pending
            .values()
            .map(|(seq, _)| *seq)
            .min_by_key(|seq| dist(next, *seq));
        if let Some(seq) = earliest {
            out(Chunk::Gap);
            self.next = Some(seq);
            self.drain(out);
        }
    }

    /// The connection ended: whatever is held after a hole is delivered after a gap.
    pub fn finish(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while !self.pending.is_empty() {
            self.skip_hole(out);
        }
    }

    /// Bytes held for out-of-order delivery.
    pub fn held(&self) -> usize {
        self.pending_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream: &mut Stream, segs: &[(u32, &[u8])]) -> Vec<String> {
        let mut got = Vec::new();
        for (seq, data) in segs {
            stream.push(*seq, data, &mut |c| {
                got.push(match c {
                    Chunk::Data(d) => String::from_utf8_lossy(d).into_owned(),
                    Chunk::Gap => "<gap>".into(),
                })
            });
        }
        got
    }

    #[test]
    fn in_order_out_of_order_and_retransmitted() {
        let mut s = Stream::default();
        s.syn(99);
        let got = run(
            &mut s,
            &[
                (100, b"abc"),
                (106, b"ghi"),
                (103, b"def"),
                (100, b"abcdef"),
                (104, b"efghijk"),
            ],
        );
        assert_eq!(got.concat(), "abcdefghijk");
        assert_eq!(s.held(), 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Stream::default();
        let start = u32::MAX - 1;
        let got = run(&mut s, &[(start, b"ab"), (1, b"d"), (0, b"c")]);
        assert_eq!(got.concat(), "abcd");
    }

    #[test]
    fn a_hole_that_never_fills_is_a_gap() {
        let mut s = Stream::default();
        let mut got = run(&mut s, &[(0, b"ab"), (10, b"xyz")]);
        s.finish(&mut |c| {
            got.push(match c {
                Chunk::Data(d) => String::from_utf8_lossy(d).into_owned(),
                Chunk::Gap => "<gap>".into(),
            })
        });
        assert_eq!(got, ["ab", "<gap>", "xyz"]);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut s = Stream::default();
        run(&mut s, &[(0, b"a")]);
        let big = vec![b'x'; 1 << 20];
        for i in 0..10u32 {
            s.push(10 + i * (2 << 20), &big, &mut |_| {});
            assert!(s.held() <= MAX_PENDING);
        }
    }
}
