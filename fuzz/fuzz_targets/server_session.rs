//! The server state machine behind a real NTLM logon: see `fuzz/harness/server.rs`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use smb_core::conn::server::ServerConfig;

#[path = "../harness/server.rs"]
mod server;

fuzz_target!(|data: &[u8]| {
    static CFG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    server::run(CFG.get_or_init(server::config), data);
});
