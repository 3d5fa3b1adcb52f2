//! `smb-audit pcap` over hostile captures: see `fuzz/harness/pcap.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/pcap.rs"]
mod pcap;

fuzz_target!(|data: &[u8]| pcap::run(data));
