//! Sans-IO client and server state machines: bytes in, bytes and events out.

pub mod client;
pub mod server;
pub mod share;

/// The credits a request moving `payload` bytes costs, the one formula both roles use
/// (MS-SMB2 3.1.5.2: `(max(SendPayloadSize, ExpectedResponsePayloadSize) - 1) / 65536 + 1`):
/// one per 64 KiB, at least one, saturating at `u16::MAX`.
pub(crate) fn credits_for_payload(payload: u64) -> u16 {
    u16::try_from(payload.saturating_sub(1) / 65_536 + 1).unwrap_or(u16::MAX)
}
