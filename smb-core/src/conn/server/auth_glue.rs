//! Adapts the `auth` module's server-side NTLM/SPNEGO exchange to what SESSION_SETUP needs.

use zeroize::Zeroizing;

use super::ServerConfig;

/// One SESSION_SETUP round's outcome.
#[derive(Debug)]
pub(crate) enum AuthStep {
    /// Send this token with STATUS_MORE_PROCESSING_REQUIRED.
    Continue(Vec<u8>),
    /// Authentication finished.
    Done(AuthDone),
    /// Authentication failed: STATUS_LOGON_FAILURE.
    Failed { user: String, reason: String },
}

#[derive(Debug)]
pub(crate) struct AuthDone {
    pub user: String,
    /// The exported session key; `None` for guest and anonymous.
    pub session_key: Option<Zeroizing<Vec<u8>>>,
    pub guest: bool,
    pub anonymous: bool,
    /// The final token (SPNEGO accept-completed), possibly empty.
    pub token: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct AuthState {}

impl AuthState {
    pub(crate) fn new(_config: &ServerConfig, _now: u64) -> Self {
        AuthState {}
    }

    pub(crate) fn step(&mut self, _token: &[u8]) -> AuthStep {
        AuthStep::Failed {
            user: String::new(),
            reason: "authentication not available yet".into(),
        }
    }
}

/// The SPNEGO NegTokenInit2 sent in the NEGOTIATE response.
pub(crate) fn negotiate_token() -> Vec<u8> {
    Vec::new()
}
