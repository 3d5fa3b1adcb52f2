//! Sans-IO client and server state machines: bytes in, bytes and events out.

pub mod client;
pub mod server;
pub mod share;
