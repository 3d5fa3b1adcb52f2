//! `smb-lab`: the NTLM relay lab.
//!
//! - [`relay`]: an NTLM relay attacker (victim-facing SMB2 server, target-facing client).
//! - [`tamper`]: a framing-aware man in the middle that flips a READ bit or strips
//!   SIGNING_REQUIRED from the NEGOTIATE response.
//! - [`loopback`]: the fence that keeps both on loopback addresses.
//!
//! The engine CLI (keys/sign/verify/preauth) lives in the binary.

pub mod cli;
pub mod demo;
pub mod gss;
pub mod loopback;
pub mod relay;
mod relay_ops;
pub mod report;
pub mod samba;
pub mod scenario;
pub mod tamper;
pub mod target;
pub mod transport;
