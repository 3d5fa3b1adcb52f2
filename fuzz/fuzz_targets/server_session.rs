//! The server state machine behind a real NTLM logon: see `fuzz/harness/server.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/server.rs"]
mod server;

fuzz_target!(|data: &[u8]| server::run(data));
