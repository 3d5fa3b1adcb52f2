//! `smb-core`: a sans-IO SMB2/3 engine: wire codec, signing, key derivation, NTLMv2 in
//! SPNEGO, signing policy, and the client and server state machines.
//!
//! Bytes go in, bytes and events come out. No sockets, threads or files live here, and no
//! clock or random generator is read behind the caller's back: time and randomness come in
//! through the configurations ([`env`](mod@env)). The tokio drivers (`smb-client`, `smb-server`) are
//! thin loops around [`ClientConnection`] and [`ServerConnection`].
//!
//! # Table of contents
//! - State machines ([`conn`]): [`ClientConnection`] with [`ClientConfig`],
//!   [`ClientEvent`], [`ClientError`]; [`ServerConnection`] with [`ServerConfig`],
//!   [`ServerEvent`]. Each documents its call order: `handle_*` in, `poll_*` out.
//! - Signing ([`signing`]): [`SigningKey`] (sign and verify in place, no copy; built from a
//!   raw key or, with [`SigningKey::for_session`], from what a session negotiated),
//!   [`Algorithm`], [`PreauthHash`], [`derive_session_keys`].
//! - Policy ([`policy`]): [`SigningPolicy`], Windows' RequireSecuritySignature semantics.
//! - Wire format: [`header`] ([`Header`], [`Command`], [`Dialect`], [`NtStatus`]),
//!   [`messages`] (one file per command, each body with `encode` and `read`), [`compound`]
//!   (NextCommand chains), [`framing`] (the Direct-TCP length prefix), [`codec`]
//!   (`Reader`/`Writer`, [`DecodeError`]), [`enums`] (wire enums shared by several modules).
//! - Authentication ([`auth`]): NTLMv2 inside SPNEGO, client and server; [`Credentials`].
//! - Audit ([`audit`]): the audit events of both roles as JSON lines (the drivers write them).
//! - Time and randomness ([`env`](mod@env)): [`Clock`], [`Random`]; the OS by default, fixed and
//!   seeded ones for reproducible tests.
//!
//! # Sign and verify a message
//! ```
//! use smb_core::messages::{build, echo::EchoRequest};
//! use smb_core::{Algorithm, Command, Header, SigningKey};
//!
//! let key = SigningKey::new(Algorithm::AesCmac, &[0x11; 16])?;
//! // An ECHO request on session 0x1234, MessageId 7.
//! let mut message = build(&Header::request(Command::ECHO, 7, 0x1234, 0), &EchoRequest);
//! key.sign(&mut message)?; // sets SMB2_FLAGS_SIGNED and writes bytes 48..64
//! assert!(Header::parse(&message)?.is_signed());
//! key.verify(&message)?;
//!
//! message[65] ^= 1; // one bit flipped in the body
//! assert!(key.verify(&message).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Derive the keys of a 3.1.1 session
//! The published example of Microsoft's Open Specifications blog ("SMB 3.1.1 Encryption in
//! Windows 10", Appendix A.1; `tests/data/signing-vectors.json`): from the session key and
//! the preauth integrity hash, the signing key, which then verifies the final SESSION_SETUP
//! response as captured.
//! ```
//! use smb_core::{derive_session_keys, Dialect, SigningKey};
//!
//! let hex = |s: &str| hex::decode(s).unwrap();
//! let session_key = hex("419FDDF34C1E001909D362AE7FB6AF79");
//! let preauth: [u8; 64] = hex(
//!     "B23F3CBFD69487D9832B79B1594A367CDD950909B774C3A4C412B4FCEA9EDDDB\
//!      A7DB256BA2EA30E977F11F9B113247578E0E915C6D2A513B8F2FCA5707DC8770",
//! )
//! .try_into()
//! .unwrap();
//!
//! let keys = derive_session_keys(Dialect::SMB311, &session_key, Some(&preauth), None)?;
//! assert_eq!(*keys.signing, hex("8765949DFEAEE105CE9118B45BE988F0"));
//! assert_eq!(*keys.application, hex("099D610789FBE82055B313601C3E8CC4"));
//!
//! // No SMB2_SIGNING_CAPABILITIES was negotiated: 3.1.1 signs with AES-CMAC.
//! let key = SigningKey::for_session(Dialect::SMB311, None, None, &session_key, Some(&preauth))?;
//! let response = hex(
//!     "FE534D4240000100000000000100800009000000000000000200000000000000\
//!      FFFE00000000000025000000001000006B85A4519A0F3EEA35BA946DD3AFE6B8\
//!      0900000048001D00A11B3019A0030A0100A3120410010000003932A87523AB660100000000",
//! );
//! key.verify(&response)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Drive a client and a server in memory
//! `examples/in_memory_pair.rs` (`cargo run -p smb-core --example in_memory_pair`):
#![doc = concat!("```\n", include_str!("../examples/in_memory_pair.rs"), "```")]
#![warn(missing_docs)]

// `missing_docs` is on for the whole crate, with no exception: every public item is documented
// (`cargo xtask test` builds these docs with warnings denied).
pub mod audit;
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

pub use auth::Credentials;
pub use codec::{DecodeError, InvalidReason};
pub use conn::client::{
    Authenticator, ClientConfig, ClientConnection, ClientError, ClientEvent, NegotiateInfo,
    OpenRequest, ResponseBody,
};
pub use conn::server::{ServerConfig, ServerConnection, ServerEvent, ShareConfig};
pub use env::{Clock, Random};
pub use header::{Command, Dialect, Header, NtStatus};
pub use policy::SigningPolicy;
pub use signing::{derive_session_keys, Algorithm, PreauthHash, SigningError, SigningKey};
