//! SESSION_SETUP: the [`Authenticator`] hook, its default (NTLMv2 in SPNEGO), and the
//! exchange that turns a negotiated connection into an established, keyed session.

use std::fmt;

use zeroize::Zeroizing;

use super::error::{AuthFailure, ClientError, ProtocolError, SignatureFailure};
use super::events::{ClientEvent, ResponseBody};
use super::responses::{response_event, signature_rejected};
use super::state::{Auth, Kind, Phase, Session};
use super::ClientConnection;
use crate::auth::{AuthError, ClientAuth, ClientStep};
use crate::header::{Command, Dialect, Header, NtStatus};
use crate::messages::session_setup::{session_flags, SessionSetupRequest, SessionSetupResponse};
use crate::signing::PreauthHash;

/// A GSS mechanism as the state machine drives it. The default one (NTLMv2 in SPNEGO, from
/// [`ClientConfig::credentials`](super::ClientConfig::credentials)) is built by
/// [`ClientConnection::session_setup`]; a relay tool plugs in its own with
/// [`ClientConnection::session_setup_with`].
pub trait Authenticator: fmt::Debug + Send {
    /// The first token, given the server's NEGOTIATE security buffer (may be empty).
    fn initial_token(&mut self, server_hint: &[u8]) -> Result<Vec<u8>, AuthError>;
    /// Consumes a server token; `Some(token)` to send next, `None` when done.
    fn step(&mut self, server_token: &[u8]) -> Result<Option<Vec<u8>>, AuthError>;
    /// Once done: the session key (None for an anonymous session, or when unknown).
    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>>;
}

/// NTLMv2 inside SPNEGO (or raw NTLMSSP), as [`ClientAuth`] implements it.
#[derive(Debug)]
pub struct NtlmAuthenticator(pub ClientAuth);

impl Authenticator for NtlmAuthenticator {
    fn initial_token(&mut self, _server_hint: &[u8]) -> Result<Vec<u8>, AuthError> {
        // The hint only lists mechanisms; NTLMSSP is the one we speak either way.
        self.0.first_token()
    }

    fn step(&mut self, server_token: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        match self.0.step(server_token)? {
            ClientStep::Continue(token) => Ok(Some(token)),
            ClientStep::Done => Ok(None),
        }
    }

    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.0
            .session_key()
            .map(|k| Zeroizing::new(k.as_bytes().to_vec()))
    }
}

/// What a SESSION_SETUP response led to, decided while the phase is borrowed.
enum Next {
    /// An error status: back to Negotiated, the status goes to the caller.
    Refused,
    /// MORE_PROCESSING_REQUIRED: send this token.
    Leg(Vec<u8>),
    /// SUCCESS: the session.
    Up(Box<Session>),
}

impl ClientConnection {
    /// Starts SESSION_SETUP with the configured credentials (NTLMv2 in SPNEGO), its
    /// randomness and time from the configured sources.
    pub fn session_setup(&mut self) -> Result<u64, ClientError> {
        let auth = ClientAuth::new(self.config.credentials.clone())
            .with_sources(self.config.clock.clone(), self.config.random.clone());
        self.session_setup_with(Box::new(NtlmAuthenticator(auth)))
    }

    /// Starts SESSION_SETUP with any GSS mechanism (a relay tool passes one that forwards
    /// the victim's tokens).
    pub fn session_setup_with(
        &mut self,
        mut mechanism: Box<dyn Authenticator>,
    ) -> Result<u64, ClientError> {
        self.check_alive()?;
        let Phase::Negotiated(n) = &self.phase else {
            return Err(ClientError::State(
                "SESSION_SETUP needs a negotiated connection",
            ));
        };
        let token = mechanism
            .initial_token(&n.gss_hint)
            .map_err(AuthFailure::Mechanism)?;
        let auth = Box::new(Auth {
            mechanism,
            id: self.next_message_id,
            // Session.PreauthIntegrityHashValue starts from the connection's (3.2.4.2.3).
            preauth: n.preauth.clone(),
            session_id: 0,
        });
        self.phase = match self.take_phase() {
            Phase::Negotiated(n) => Phase::Authenticating(n, auth),
            other => other,
        };
        let sent = self.send_session_setup(token);
        if sent.is_err() {
            // Nothing went out: back to where we were.
            self.phase = match self.take_phase() {
                Phase::Authenticating(n, _) => Phase::Negotiated(n),
                other => other,
            };
        }
        sent
    }

    /// Queues one SESSION_SETUP leg carrying `token`.
    fn send_session_setup(&mut self, token: Vec<u8>) -> Result<u64, ClientError> {
        let Phase::Authenticating(_, auth) = &self.phase else {
            return Err(ClientError::State("no authentication"));
        };
        let (id, session_id) = (auth.id, auth.session_id);
        let body = SessionSetupRequest {
            flags: 0,
            // The SecurityMode field is one byte here (MS-SMB2 2.2.5).
            security_mode: self.config.signing.security_mode() as u8,
            capabilities: 0,
            channel: 0,
            previous_session_id: 0,
            security_buffer: token,
        };
        self.send(
            Command::SESSION_SETUP,
            session_id,
            0,
            1,
            Kind::SessionSetup,
            Some(id),
            &body,
        )
    }

    /// A SESSION_SETUP response: the next leg, the refusal, or the session (MS-SMB2
    /// 3.2.5.3).
    pub(super) fn on_session_setup(
        &mut self,
        message: &[u8],
        header: &Header,
    ) -> Result<(), ClientError> {
        let Phase::Authenticating(n, auth) = &mut self.phase else {
            return Err(ProtocolError::UnexpectedSessionSetup.into());
        };
        let id = auth.id;
        let status = header.status;
        let next = if status != NtStatus::SUCCESS && status != NtStatus::MORE_PROCESSING_REQUIRED {
            // MS-SMB2 3.2.5.3.1: return the error to the caller; the session is gone.
            Next::Refused
        } else {
            let resp = SessionSetupResponse::read(message)?;
            if auth.session_id == 0 {
                auth.session_id = header.session_id;
            } else if auth.session_id != header.session_id {
                return Err(ProtocolError::SessionIdChanged.into());
            }
            if status == NtStatus::MORE_PROCESSING_REQUIRED {
                // 3.1.1: every SESSION_SETUP response but the final one joins the hash.
                if let Some(h) = &mut auth.preauth {
                    h.update(message);
                }
                let next = auth
                    .mechanism
                    .step(&resp.security_buffer)
                    .map_err(AuthFailure::Mechanism)?;
                Next::Leg(next.ok_or(AuthFailure::NoToken)?)
            } else {
                // STATUS_SUCCESS: the mechanism may still have a final token to check
                // (mechListMIC).
                if !resp.security_buffer.is_empty() {
                    auth.mechanism
                        .step(&resp.security_buffer)
                        .map_err(AuthFailure::Mechanism)?;
                }
                if resp.session_flags & session_flags::ENCRYPT_DATA != 0 {
                    // We never offer encryption; a server that insists cannot be talked to.
                    return Err(ProtocolError::EncryptionRequired.into());
                }
                let guest = resp.is_guest();
                let session_key = auth.mechanism.session_key();
                let anonymous = resp.is_null() || session_key.is_none();
                let info = &n.info;
                // MS-SMB2 3.2.5.3.1: Session.SigningRequired when the client requires signing
                // or the server's NEGOTIATE SecurityMode has SIGNING_REQUIRED.
                let client_requires = self.config.signing.require_security_signature;
                let required = client_requires || info.server_requires_signing;
                let session = if guest || anonymous {
                    // A guest or anonymous session has no key to sign with. A client that
                    // requires signing refuses it, as Windows 11 24H2 does.
                    if client_requires {
                        return Err(ClientError::UnsignableSessionRefused { guest });
                    }
                    Session {
                        id: auth.session_id,
                        signing_required: false,
                        key: None,
                        guest,
                        anonymous,
                        negotiate_validated: false,
                    }
                } else {
                    let session_key = session_key.ok_or(AuthFailure::NoSessionKey)?;
                    let preauth = auth.preauth.as_ref().map(PreauthHash::value);
                    let key = super::super::session_signing_key(
                        info.dialect,
                        info.signing_algorithm,
                        &session_key,
                        preauth.as_ref(),
                    )
                    .map_err(AuthFailure::SigningKey)?;
                    // The final SESSION_SETUP response proves the server holds the same key
                    // (and, on 3.1.1, saw the same NEGOTIATE: the key depends on the preauth
                    // hash). MS-SMB2 3.2.5.3.1: on 3.1.1 it MUST be signed; otherwise it is
                    // checked when signed, and must be signed when the session requires
                    // signing (3.2.5.1.3).
                    let must = info.dialect == Dialect::SMB311 || required;
                    if header.is_signed() || must {
                        if let Err(e) = key.verify(message) {
                            let reason = if header.is_signed() {
                                SignatureFailure::Invalid(e)
                            } else {
                                SignatureFailure::FinalSessionSetupUnsigned
                            };
                            return Err(signature_rejected(&mut self.events, header, reason));
                        }
                    }
                    Session {
                        id: auth.session_id,
                        signing_required: required,
                        key: Some(key),
                        guest: false,
                        anonymous: false,
                        negotiate_validated: false,
                    }
                };
                Next::Up(Box::new(session))
            }
        };
        match next {
            Next::Refused => {
                self.phase = match self.take_phase() {
                    Phase::Authenticating(n, _) => Phase::Negotiated(n),
                    other => other,
                };
                self.events
                    .push_back(response_event(id, header, ResponseBody::None));
            }
            Next::Leg(token) => {
                self.send_session_setup(token)?;
            }
            Next::Up(session) => {
                let Phase::Authenticating(n, _) = self.take_phase() else {
                    return Err(ClientError::State("SESSION_SETUP before NEGOTIATE"));
                };
                let signed = session.signed();
                self.events.push_back(ClientEvent::SessionEstablished {
                    dialect: n.info.dialect,
                    algorithm: signed.then_some(n.info.signing_algorithm),
                    signed,
                    guest: session.guest,
                    anonymous: session.anonymous,
                });
                self.events.push_back(response_event(
                    id,
                    header,
                    ResponseBody::SessionSetup {
                        session_id: session.id,
                        guest: session.guest,
                        anonymous: session.anonymous,
                        signed,
                    },
                ));
                self.phase = Phase::Established(n, session);
            }
        }
        Ok(())
    }
}
