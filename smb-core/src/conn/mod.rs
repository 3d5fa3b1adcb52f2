//! Sans-IO client and server state machines: bytes in, bytes and events out.

pub mod client;
pub mod server;
pub mod share;

use crate::header::Dialect;
use crate::signing::{Algorithm, SigningError, SigningKey};

/// The credits a request moving `payload` bytes costs, the one formula both roles use
/// (MS-SMB2 3.1.5.2: `(max(SendPayloadSize, ExpectedResponsePayloadSize) - 1) / 65536 + 1`):
/// one per 64 KiB, at least one, saturating at `u16::MAX`.
pub(crate) fn credits_for_payload(payload: u64) -> u16 {
    u16::try_from(payload.saturating_sub(1) / 65_536 + 1).unwrap_or(u16::MAX)
}

/// Session.SigningKey for a connection whose algorithm is already settled
/// (`Algorithm::for_dialect`): [`SigningKey::for_session`], the one public constructor.
pub(crate) fn session_signing_key(
    dialect: Dialect,
    algorithm: Algorithm,
    session_key: &[u8],
    preauth: Option<&[u8; 64]>,
) -> Result<SigningKey, SigningError> {
    SigningKey::for_session(dialect, Some(algorithm), None, session_key, preauth)
}
