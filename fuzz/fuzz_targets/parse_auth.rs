//! The SESSION_SETUP security buffer parsers and both authentication state machines: see
//! `fuzz/harness/auth.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/auth.rs"]
mod auth;

fuzz_target!(|data: &[u8]| auth::run(data));
