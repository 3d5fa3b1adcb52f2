//! `smb-core`: a sans-IO SMB2/3 engine.
//!
//! Bytes go in, bytes and events come out; no sockets, threads or clocks live here.
//! See `DESIGN.md` at the workspace root for the map of modules.

pub mod auth;
pub mod codec;
pub mod compound;
pub mod conn;
pub mod framing;
pub mod header;
pub mod messages;
pub mod policy;
pub mod signing;
