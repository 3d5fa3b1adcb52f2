//! Adapts the `auth` module's [`ServerAuth`] exchange to what SESSION_SETUP needs, and
//! names the user for the audit log even when authentication fails.

use zeroize::Zeroizing;

use super::ServerConfig;
use crate::auth::ntlm::{AuthenticateMessage, ServerIdentity};
use crate::auth::spnego::{is_raw_ntlmssp, NegTokenResp};
use crate::auth::{self, AuthOutcome, ServerAuth};

/// One SESSION_SETUP round's outcome.
#[derive(Debug)]
pub(crate) enum AuthStep {
    /// Send this token with STATUS_MORE_PROCESSING_REQUIRED.
    Continue(Vec<u8>),
    /// Authentication finished.
    Done(AuthDone),
    /// Authentication failed: STATUS_LOGON_FAILURE (or the status in `status`).
    Failed {
        user: String,
        error: auth::AuthError,
    },
}

#[derive(Debug)]
pub(crate) struct AuthDone {
    /// `DOMAIN\user` as the client sent it (empty for anonymous).
    pub user: String,
    /// The exported session key; `None` for guest and anonymous.
    pub session_key: Option<Zeroizing<Vec<u8>>>,
    pub guest: bool,
    pub anonymous: bool,
    /// The final token (SPNEGO accept-completed), possibly empty.
    pub token: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct AuthState {
    auth: ServerAuth,
}

impl AuthState {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        let identity = ServerIdentity {
            nb_domain: config.domain.clone(),
            nb_computer: config.server_name.clone(),
            dns_domain: config.domain.to_ascii_lowercase(),
            dns_computer: config.server_name.to_ascii_lowercase(),
        };
        // Guest and anonymous outcomes are let through here when configured; the session
        // layer then refuses them when the session would have to be signed.
        let auth = ServerAuth::with_identity(
            config.users.clone(),
            config.allow_guest,
            config.allow_guest,
            identity,
        )
        .with_sources(config.clock.clone(), config.random.clone());
        AuthState { auth }
    }

    pub(crate) fn step(&mut self, token: &[u8]) -> AuthStep {
        let user = claimed_user(token);
        match self.auth.step(token) {
            Ok(auth::AuthStep::Continue(t)) => AuthStep::Continue(t),
            Ok(auth::AuthStep::Done { out_token, outcome }) => AuthStep::Done(match outcome {
                AuthOutcome::Authenticated {
                    user,
                    domain,
                    session_key,
                } => AuthDone {
                    user: if domain.is_empty() {
                        user
                    } else {
                        format!("{domain}\\{user}")
                    },
                    session_key: Some(Zeroizing::new(session_key.as_bytes().to_vec())),
                    guest: false,
                    anonymous: false,
                    token: out_token,
                },
                AuthOutcome::Guest => AuthDone {
                    user: user.unwrap_or_default(),
                    session_key: None,
                    guest: true,
                    anonymous: false,
                    token: out_token,
                },
                AuthOutcome::Anonymous => AuthDone {
                    user: String::new(),
                    session_key: None,
                    guest: false,
                    anonymous: true,
                    token: out_token,
                },
            }),
            Err(error) => AuthStep::Failed {
                user: user.unwrap_or_default(),
                error,
            },
        }
    }
}

/// The `DOMAIN\user` of an NTLM AUTHENTICATE message inside `token`, if it is one.
fn claimed_user(token: &[u8]) -> Option<String> {
    let ntlm = if is_raw_ntlmssp(token) {
        token.to_vec()
    } else {
        NegTokenResp::read(token).ok()?.response_token?
    };
    let m = AuthenticateMessage::read(&ntlm).ok()?;
    Some(if m.domain.is_empty() {
        m.user
    } else {
        format!("{}\\{}", m.domain, m.user)
    })
}

/// The SPNEGO NegTokenInit2 sent in the NEGOTIATE response.
pub(crate) fn negotiate_token() -> Vec<u8> {
    ServerAuth::negotiate_token()
}
