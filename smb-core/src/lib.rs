//! `smb-core`: a sans-IO SMB2/3 engine.
//!
//! Bytes go in, bytes and events come out; no sockets, threads or clocks live here.
//!
//! The modules, one responsibility each:
//! - [`codec`]: `Reader`/`Writer` over byte slices, `DecodeError`, UTF-16 and FILETIME.
//! - [`header`]: the 64-byte SMB2 header and its wire enums (`Command`, `Dialect`, `NtStatus`).
//! - [`messages`]: one file per command, every body with `encode` and `read`.
//! - [`compound`]: NextCommand chains; [`framing`]: the Direct-TCP length prefix.
//! - [`signing`]: `SigningKey` (sign/verify in place, no copy), the three MACs, the KDF and
//!   the preauth hash; [`policy`]: `SigningPolicy` (RequireSecuritySignature).
//! - [`auth`]: NTLMv2 inside SPNEGO, client and server.
//! - [`conn`]: the client and server state machines (bytes in, bytes and events out).
//!
//! `DESIGN.md` (in `../shared/`, beside the workspace) has the layout, the style and the
//! protocol facts that are easy to get wrong.

pub mod auth;
pub mod codec;
pub mod compound;
pub mod conn;
pub mod enums;
pub mod env;
pub mod framing;
pub mod header;
pub mod messages;
pub mod policy;
pub mod signing;
