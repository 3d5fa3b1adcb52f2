//! `smb-lab`: the NTLM relay lab.
//!
//! - [`relay`]: an NTLM relay attacker (victim-facing SMB2 server; towards the target, the
//!   one client state machine, `smb_core::conn::client::ClientConnection`).
//! - [`tamper`]: a framing-aware man in the middle that flips a READ bit or strips
//!   SIGNING_REQUIRED from the NEGOTIATE response.
//! - [`loopback`]: the fence that keeps both on loopback addresses.
//! - [`scenario`]: each lab scenario as a function (target, victim and attacker started on
//!   loopback in process, an expected outcome stated from the protocol, a verdict).
//! - [`demo`] runs them all, [`report`] renders the terminal table, `lab-report.md` and
//!   `lab-report.json`; [`target`] is our server in process, [`samba`] a private smbd.
//! - [`cli`]: the `relay`, `tamper` and `demo` subcommands (main.rs dispatches to them).
//! - [`gss`] unwraps and re-wraps SPNEGO around the relayed NTLM messages; [`transport`]
//!   frames SMB2 over tokio streams.
//!
//! The engine CLI (keys/sign/verify/preauth) lives in the binary.

pub mod cli;
pub mod demo;
pub mod gss;
pub mod loopback;
pub mod relay;
pub mod report;
pub mod samba;
pub mod scenario;
pub mod tamper;
pub mod target;
pub mod transport;
