//! Sans-IO client and server state machines: bytes in, bytes and events out.

pub mod client;
// The server state machine is being restructured (issue 13, helper `serverio`); its
// remaining undocumented items are documented there.
#[allow(missing_docs)]
pub mod server;
#[allow(missing_docs)]
pub mod share;

use crate::header::Dialect;
use crate::signing::{derive_session_keys, Algorithm, SigningError, SigningKey};

/// The credits a request moving `payload` bytes costs, the one formula both roles use
/// (MS-SMB2 3.1.5.2: `(max(SendPayloadSize, ExpectedResponsePayloadSize) - 1) / 65536 + 1`):
/// one per 64 KiB, at least one, saturating at `u16::MAX`.
pub(crate) fn credits_for_payload(payload: u64) -> u16 {
    u16::try_from(payload.saturating_sub(1) / 65_536 + 1).unwrap_or(u16::MAX)
}

/// Session.SigningKey, the same on both ends (MS-SMB2 3.2.5.3.1 client, 3.3.5.5.3 server):
/// derived from the authentication's session key for the dialect (3.1.1: with the
/// session's preauth hash as context) and bound to the connection's signing algorithm.
pub(crate) fn session_signing_key(
    dialect: Dialect,
    algorithm: Algorithm,
    session_key: &[u8],
    preauth: Option<&[u8; 64]>,
) -> Result<SigningKey, SigningError> {
    let keys = derive_session_keys(dialect, session_key, preauth, None)?;
    SigningKey::new(algorithm, &keys.signing)
}
