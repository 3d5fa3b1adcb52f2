//! The `pcap_reader` fuzz target's body, shared with its stable-toolchain corpus replay
//! (`smb-audit/tests/fuzz_pcap_replay.rs`). `smb-audit pcap` over hostile captures: the
//! pcap/pcapng reader, link and IP decoding, TCP reassembly, framing and the SMB session
//! tracker must never panic, whatever the bytes.
//!
//! The first byte picks the mode: even = the input is a capture file; odd = the rest is a
//! sequence of frames (u16 length, then bytes) fed to the analyser as Ethernet or raw-IP
//! packets, with a password so key derivation and signature checks run too.

use pcap_file::DataLink;
use smb_audit::pcap::{secrets, Analyzer};

/// One input: nothing may panic, and no session counts more messages than it saw.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let secrets = secrets(&["alice%Passw0rd!".to_string()], &[]).expect("fixed secrets");
    let mut a = Analyzer::new(&[4455], secrets);
    if mode % 2 == 0 {
        let _ = a.read("fuzz", rest);
    } else {
        let link = if mode & 2 == 0 {
            DataLink::ETHERNET
        } else {
            DataLink::RAW
        };
        let mut at = 0;
        let mut frame = 0;
        while at + 2 <= rest.len() {
            let len = usize::from(u16::from_le_bytes([rest[at], rest[at + 1]]));
            at += 2;
            let end = (at + len).min(rest.len());
            frame += 1;
            a.packet(Some(link), &rest[at..end], frame);
            at = end;
        }
    }
    a.finish();
    for s in &a.sessions {
        assert!(s.signed + s.unsigned + s.exempt.total() <= s.after_auth || s.smb1);
    }
}
