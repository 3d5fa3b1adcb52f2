//! Authentication for SMB2 SESSION_SETUP: NTLMv2 (MS-NLMP) inside SPNEGO (RFC 4178, MS-SPNG).
//!
//! Sans-IO like the rest of the crate: security buffers go in, security buffers come out.
//!
//! # Server
//! ```text
//! let mut auth = ServerAuth::new(users, allow_guest, allow_anonymous);   // one per session setup
//! // NEGOTIATE response buffer: spnego::NegTokenInit::server_hints(&[OID_NTLMSSP]).encode()
//! //   (or ServerAuth::negotiate_token())
//! loop {
//!     match auth.step(request.security_buffer)? {        // Err(e) -> e.status(), e.g. LOGON_FAILURE
//!         AuthStep::Continue(token) => reply MORE_PROCESSING_REQUIRED with `token`,
//!         AuthStep::Done { out_token, outcome } => reply SUCCESS with `out_token`; break,
//!     }
//! }
//! ```
//! The first buffer may be SPNEGO (NegTokenInit) or raw NTLMSSP ("NTLMSSP\0"); the answers
//! use the same wrapping. A SPNEGO client whose first mechanism is not NTLMSSP is asked for
//! NTLMSSP (accept-incomplete, supportedMech, no token) and must then send a mechListMIC.
//! [`AuthOutcome::Authenticated`] carries the exported session key (the SMB2 session key);
//! guest and anonymous outcomes have none.
//!
//! # Client
//! ```text
//! let mut auth = ClientAuth::new(Credentials::password("alice", "", "Passw0rd!"));  // or ::raw_ntlmssp
//! send SESSION_SETUP with auth.first_token()?;
//! on MORE_PROCESSING_REQUIRED: ClientStep::Continue(t) = auth.step(buffer)? -> send `t`;
//!                              auth.session_key() is now available (for the signed final reply)
//! on SUCCESS:                  ClientStep::Done = auth.step(buffer)?  (checks the server's mechListMIC)
//! ```
//! Before `first_token`, `auth.ntlm_mut()` can set MsvAvTargetName (`set_target_name("cifs/HOST")`,
//! as Windows sends), or turn KEY_EXCH or the MIC off.
//!
//! # Time and randomness
//! Both sides draw their challenges, keys and timestamps from a [`Clock`] and a [`Random`]
//! (the OS by default; `with_sources` sets others, e.g. a seeded one). `with_inputs` /
//! `with_challenge_inputs` fix the exact values instead (the spec's test vectors).
//!
//! # What is checked
//! NTLMv2 only (NTLMv1/LM refused), NTProofStr and MIC compared in constant time, KEY_EXCH,
//! the MIC required when MsvAvFlags announces it, mechListMIC (MS-NLMP 3.4.4 signature with
//! sequence number 0 over the DER mechTypes) verified in both directions when present.
//! A failed exchange stays failed. Not checked: the age of the client's blob timestamp (the
//! random 8-byte server challenge already defeats replay), MsvAvTargetName and channel bindings.

pub mod der;
pub mod ntlm;
pub mod spnego;

use std::fmt;
use std::sync::Arc;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::DecodeError;
use crate::env::{self, Clock, Random};
use crate::header::NtStatus;
use ntlm::{
    ClientInputs, Direction, NtlmClient, NtlmSecurity, NtlmServer, ServerIdentity, ServerPolicy,
};
use spnego::{NegState, NegTokenInit, NegTokenResp, OID_NTLMSSP};

pub use ntlm::{Credentials, Secret, UserTable};

/// The exported session key: 16 bytes, zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey([u8; 16]);

impl SessionKey {
    pub fn new(key: [u8; 16]) -> Self {
        SessionKey(key)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Who the server let in.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Authenticated {
        user: String,
        domain: String,
        session_key: SessionKey,
    },
    /// Unknown user mapped to guest (only when configured). No session key.
    Guest,
    /// Null session (only when configured). No session key.
    Anonymous,
}

/// Why a logon was refused; all map to STATUS_LOGON_FAILURE on the wire, the reason is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogonFailure {
    UnknownUser,
    WrongPassword,
    WrongDomain,
    /// NTLMv1 or LM responses: refused (NTLMv2 only).
    NotNtlmV2,
    /// MsvAvFlags announced a MIC that is missing or wrong.
    BadMic,
    AnonymousNotAllowed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A token that does not parse.
    Malformed(DecodeError),
    LogonFailure(LogonFailure),
    /// SPNEGO without NTLMSSP among the mechanisms, or a server choosing another one.
    UnsupportedMechanism,
    /// The server answered negState reject.
    Rejected,
    /// The peer's mechListMIC did not verify.
    BadMechListMic,
    /// A mechListMIC was required (RFC 4178 5) and is absent.
    MissingMechListMic,
    /// A token at the wrong time (or after the exchange finished or failed).
    UnexpectedToken(&'static str),
    InvalidCredentials(&'static str),
    /// The system random number generator failed.
    Random,
}

impl AuthError {
    /// The status a server returns for this error.
    pub fn status(&self) -> NtStatus {
        match self {
            AuthError::Malformed(_) | AuthError::UnexpectedToken(_) => NtStatus::INVALID_PARAMETER,
            AuthError::UnsupportedMechanism => NtStatus::NOT_SUPPORTED,
            AuthError::Random => NtStatus::INTERNAL_ERROR,
            _ => NtStatus::LOGON_FAILURE,
        }
    }
}

impl From<DecodeError> for AuthError {
    fn from(e: DecodeError) -> Self {
        AuthError::Malformed(e)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Malformed(e) => write!(f, "malformed security token: {e}"),
            AuthError::LogonFailure(r) => write!(f, "logon failure: {r:?}"),
            AuthError::UnsupportedMechanism => f.write_str("no NTLMSSP in the SPNEGO negotiation"),
            AuthError::Rejected => f.write_str("the server rejected the authentication"),
            AuthError::BadMechListMic => f.write_str("SPNEGO mechListMIC did not verify"),
            AuthError::MissingMechListMic => f.write_str("SPNEGO mechListMIC required but absent"),
            AuthError::UnexpectedToken(w) => write!(f, "unexpected security token: {w}"),
            AuthError::InvalidCredentials(w) => write!(f, "invalid credentials: {w}"),
            AuthError::Random => f.write_str("the system random number generator failed"),
        }
    }
}

impl std::error::Error for AuthError {}

/// One server step.
#[derive(Debug)]
pub enum AuthStep {
    /// Send `token` with STATUS_MORE_PROCESSING_REQUIRED.
    Continue(Vec<u8>),
    /// Send `out_token` (possibly empty) with STATUS_SUCCESS.
    Done {
        out_token: Vec<u8>,
        outcome: AuthOutcome,
    },
}

/// One client step.
#[derive(Debug)]
pub enum ClientStep {
    /// Send this token in the next SESSION_SETUP request.
    Continue(Vec<u8>),
    /// Authentication is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapping {
    Spnego,
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Start,
    /// SPNEGO: we asked the client to start NTLMSSP (its first mechanism was another one).
    AwaitNegotiate,
    AwaitAuthenticate,
    Finished,
}

/// Server side of SESSION_SETUP authentication (see the module docs for the call order).
#[derive(Debug)]
pub struct ServerAuth {
    ntlm: NtlmServer,
    wrapping: Wrapping,
    state: ServerState,
    mech_types_der: Vec<u8>,
    /// RFC 4178 5: the mechanism chosen was not the client's first, so a MIC is required.
    mech_list_mic_required: bool,
    fixed_inputs: Option<([u8; 8], u64)>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

impl ServerAuth {
    pub fn new(users: Arc<UserTable>, allow_guest: bool, allow_anonymous: bool) -> Self {
        Self::with_identity(
            users,
            allow_guest,
            allow_anonymous,
            ServerIdentity::default(),
        )
    }

    pub fn with_identity(
        users: Arc<UserTable>,
        allow_guest: bool,
        allow_anonymous: bool,
        identity: ServerIdentity,
    ) -> Self {
        ServerAuth {
            ntlm: NtlmServer::new(ServerPolicy {
                users,
                allow_guest,
                allow_anonymous,
                identity,
            }),
            wrapping: Wrapping::Spnego,
            state: ServerState::Start,
            mech_types_der: Vec::new(),
            mech_list_mic_required: false,
            fixed_inputs: None,
            clock: env::system_clock(),
            random: env::os_random(),
        }
    }

    /// Draws the server challenge from `random` and its timestamp from `clock` (instead of
    /// the OS).
    pub fn with_sources(mut self, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        self.clock = clock;
        self.random = random;
        self
    }

    /// Uses exactly this server challenge and FILETIME instead of the sources (tests).
    pub fn with_challenge_inputs(mut self, server_challenge: [u8; 8], now: u64) -> Self {
        self.fixed_inputs = Some((server_challenge, now));
        self
    }

    /// The security buffer of the SMB2 NEGOTIATE response (a NegTokenInit2).
    pub fn negotiate_token() -> Vec<u8> {
        NegTokenInit::server_hints(&[OID_NTLMSSP]).encode()
    }

    /// Feeds the client's security buffer. An error ends the exchange for good.
    pub fn step(&mut self, security_buffer: &[u8]) -> Result<AuthStep, AuthError> {
        let state = std::mem::replace(&mut self.state, ServerState::Finished);
        let result = self.step_inner(state, security_buffer);
        if result.is_err() {
            self.state = ServerState::Finished;
        }
        result
    }

    fn step_inner(&mut self, state: ServerState, token: &[u8]) -> Result<AuthStep, AuthError> {
        match state {
            ServerState::Start if spnego::is_raw_ntlmssp(token) => {
                self.wrapping = Wrapping::Raw;
                let challenge = self.challenge(token)?;
                self.state = ServerState::AwaitAuthenticate;
                Ok(AuthStep::Continue(challenge))
            }
            ServerState::Start => {
                let init = NegTokenInit::read(token)?;
                if !init.offers(OID_NTLMSSP) {
                    return Err(AuthError::UnsupportedMechanism);
                }
                self.mech_types_der = init.mech_types_der.clone();
                let ntlm_first = init.mech_types.first().is_some_and(|m| m == OID_NTLMSSP);
                let mut resp = NegTokenResp {
                    neg_state: Some(NegState::AcceptIncomplete),
                    supported_mech: Some(OID_NTLMSSP.to_vec()),
                    ..Default::default()
                };
                match init.mech_token.filter(|_| ntlm_first) {
                    Some(negotiate) => {
                        resp.response_token = Some(self.challenge(&negotiate)?);
                        self.state = ServerState::AwaitAuthenticate;
                    }
                    None => {
                        // No optimistic NTLM token: ask for one. RFC 4178 5 then requires
                        // the mechListMIC if NTLMSSP was not the client's first choice.
                        self.mech_list_mic_required = !ntlm_first;
                        self.state = ServerState::AwaitNegotiate;
                    }
                }
                Ok(AuthStep::Continue(resp.encode()))
            }
            ServerState::AwaitNegotiate => {
                let resp = NegTokenResp::read(token)?;
                let negotiate = resp.response_token.ok_or(AuthError::UnexpectedToken(
                    "NegTokenResp without the NTLM NEGOTIATE",
                ))?;
                let challenge = self.challenge(&negotiate)?;
                self.state = ServerState::AwaitAuthenticate;
                let out = NegTokenResp {
                    neg_state: Some(NegState::AcceptIncomplete),
                    response_token: Some(challenge),
                    ..Default::default()
                };
                Ok(AuthStep::Continue(out.encode()))
            }
            ServerState::AwaitAuthenticate => self.authenticate(token),
            ServerState::Finished => Err(AuthError::UnexpectedToken(
                "authentication already finished",
            )),
        }
    }

    fn challenge(&mut self, negotiate: &[u8]) -> Result<Vec<u8>, AuthError> {
        if ntlm::message_type(negotiate) != Some(ntlm::NEGOTIATE_TYPE) {
            return Err(AuthError::UnexpectedToken("expected an NTLM NEGOTIATE"));
        }
        let (server_challenge, now) = match self.fixed_inputs {
            Some(v) => v,
            None => {
                let mut c = [0u8; 8];
                self.random.fill(&mut c).map_err(|_| AuthError::Random)?;
                (c, self.clock.now())
            }
        };
        self.ntlm.challenge(negotiate, server_challenge, now)
    }

    fn authenticate(&mut self, token: &[u8]) -> Result<AuthStep, AuthError> {
        if self.wrapping == Wrapping::Raw {
            let verified = self.ntlm.authenticate(token)?;
            return Ok(AuthStep::Done {
                out_token: Vec::new(),
                outcome: verified.outcome,
            });
        }
        let resp = NegTokenResp::read(token)?;
        let auth = resp.response_token.ok_or(AuthError::UnexpectedToken(
            "NegTokenResp without the NTLM AUTHENTICATE",
        ))?;
        let verified = self.ntlm.authenticate(&auth)?;
        let mut out = NegTokenResp {
            neg_state: Some(NegState::AcceptCompleted),
            ..Default::default()
        };
        if let AuthOutcome::Authenticated { session_key, .. } = &verified.outcome {
            match &resp.mech_list_mic {
                Some(mic) => {
                    // MS-SPNG 3.2.5.1 / RFC 4178 5: verify the client's MIC over the mechTypes
                    // it sent, then answer with ours.
                    let flags = verified.flags;
                    let mut client =
                        NtlmSecurity::new(session_key.as_bytes(), flags, Direction::ClientToServer);
                    if !client.verify(&self.mech_types_der, mic) {
                        return Err(AuthError::BadMechListMic);
                    }
                    let mut server =
                        NtlmSecurity::new(session_key.as_bytes(), flags, Direction::ServerToClient);
                    out.mech_list_mic = Some(server.sign(&self.mech_types_der).to_vec());
                }
                None if self.mech_list_mic_required => return Err(AuthError::MissingMechListMic),
                None => {}
            }
        }
        Ok(AuthStep::Done {
            out_token: out.encode(),
            outcome: verified.outcome,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    AwaitChallenge,
    AwaitResult,
    Finished,
}

/// Client side of SESSION_SETUP authentication (see the module docs for the call order).
#[derive(Debug)]
pub struct ClientAuth {
    ntlm: NtlmClient,
    wrapping: Wrapping,
    state: ClientState,
    anonymous: bool,
    mech_types_der: Vec<u8>,
    session_key: Option<SessionKey>,
    flags: u32,
    fixed_inputs: Option<ClientInputs>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

impl ClientAuth {
    /// SPNEGO-wrapped NTLMSSP (what Windows, Samba and impacket clients send).
    pub fn new(creds: Credentials) -> Self {
        let anonymous = creds.is_anonymous();
        ClientAuth {
            ntlm: NtlmClient::new(creds),
            wrapping: Wrapping::Spnego,
            state: ClientState::Start,
            anonymous,
            mech_types_der: spnego::encode_mech_types(&[OID_NTLMSSP]),
            session_key: None,
            flags: 0,
            fixed_inputs: None,
            clock: env::system_clock(),
            random: env::os_random(),
        }
    }

    /// Draws the client challenge and the random session key from `random`, and the
    /// timestamp (used when the server sends none) from `clock`, instead of the OS.
    pub fn with_sources(mut self, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        self.clock = clock;
        self.random = random;
        self
    }

    /// Raw NTLMSSP tokens, without SPNEGO.
    pub fn raw_ntlmssp(creds: Credentials) -> Self {
        ClientAuth {
            wrapping: Wrapping::Raw,
            ..Self::new(creds)
        }
    }

    /// The NTLM layer, to switch KEY_EXCH or the MIC, or set MsvAvTargetName, before starting.
    pub fn ntlm_mut(&mut self) -> &mut NtlmClient {
        &mut self.ntlm
    }

    /// Uses exactly these inputs instead of the sources (tests).
    pub fn with_inputs(mut self, inputs: ClientInputs) -> Self {
        self.fixed_inputs = Some(inputs);
        self
    }

    /// The exported session key, once the AUTHENTICATE has been built (None for anonymous).
    pub fn session_key(&self) -> Option<&SessionKey> {
        self.session_key.as_ref()
    }

    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// The security buffer of the first SESSION_SETUP request.
    pub fn first_token(&mut self) -> Result<Vec<u8>, AuthError> {
        if self.state != ClientState::Start {
            return Err(AuthError::UnexpectedToken("first_token called twice"));
        }
        self.state = ClientState::AwaitChallenge;
        let negotiate = self.ntlm.negotiate();
        Ok(match self.wrapping {
            Wrapping::Raw => negotiate,
            Wrapping::Spnego => NegTokenInit::new(&[OID_NTLMSSP], Some(negotiate)).encode(),
        })
    }

    /// Feeds the server's security buffer. An error ends the exchange for good.
    pub fn step(&mut self, server_token: &[u8]) -> Result<ClientStep, AuthError> {
        let state = std::mem::replace(&mut self.state, ClientState::Finished);
        let result = self.step_inner(state, server_token);
        if result.is_err() {
            self.state = ClientState::Finished;
        }
        result
    }

    fn step_inner(&mut self, state: ClientState, token: &[u8]) -> Result<ClientStep, AuthError> {
        match state {
            ClientState::AwaitChallenge => {
                let mut mic_requested = false;
                let challenge = match self.wrapping {
                    Wrapping::Raw => token.to_vec(),
                    Wrapping::Spnego => {
                        let resp = NegTokenResp::read(token)?;
                        match resp.neg_state {
                            Some(NegState::Reject) => return Err(AuthError::Rejected),
                            Some(NegState::AcceptIncomplete) | None => {}
                            // RFC 4178 4.2.2: the acceptor wants a mechListMIC (pyspnego asks).
                            Some(NegState::RequestMic) => mic_requested = true,
                            Some(NegState::AcceptCompleted) => {
                                return Err(AuthError::UnexpectedToken(
                                    "accept-completed without a CHALLENGE",
                                ))
                            }
                        }
                        if resp
                            .supported_mech
                            .as_deref()
                            .is_some_and(|m| m != OID_NTLMSSP)
                        {
                            return Err(AuthError::UnsupportedMechanism);
                        }
                        resp.response_token.ok_or(AuthError::UnexpectedToken(
                            "NegTokenResp without a CHALLENGE",
                        ))?
                    }
                };
                let inputs = match &self.fixed_inputs {
                    Some(i) => i.clone(),
                    None => ClientInputs::generate(self.clock.as_ref(), self.random.as_ref())?,
                };
                let auth = self.ntlm.authenticate(&challenge, &inputs)?;
                self.flags = auth.flags;
                let out = match self.wrapping {
                    Wrapping::Raw => auth.message,
                    Wrapping::Spnego => {
                        let mut resp = NegTokenResp {
                            response_token: Some(auth.message),
                            ..Default::default()
                        };
                        // MS-SPNG 3.3.5.1: with an NTLM MIC, send a mechListMIC (Windows and Samba
                        // do); also whenever the server asked for one.
                        if (auth.has_mic || mic_requested)
                            && !self.anonymous
                            && auth.flags & ntlm::flags::NEGOTIATE_EXTENDED_SESSIONSECURITY != 0
                        {
                            let mut sec = NtlmSecurity::new(
                                auth.session_key.as_bytes(),
                                auth.flags,
                                Direction::ClientToServer,
                            );
                            resp.mech_list_mic = Some(sec.sign(&self.mech_types_der).to_vec());
                        }
                        resp.encode()
                    }
                };
                if !self.anonymous {
                    self.session_key = Some(auth.session_key);
                }
                self.state = ClientState::AwaitResult;
                Ok(ClientStep::Continue(out))
            }
            ClientState::AwaitResult => {
                if self.wrapping == Wrapping::Raw || token.is_empty() {
                    return Ok(ClientStep::Done);
                }
                let resp = NegTokenResp::read(token)?;
                match resp.neg_state {
                    Some(NegState::AcceptCompleted) | None => {}
                    Some(NegState::Reject) => return Err(AuthError::Rejected),
                    Some(_) => {
                        return Err(AuthError::UnexpectedToken(
                            "final NegTokenResp not accept-completed",
                        ))
                    }
                }
                if let (Some(mic), Some(key)) = (&resp.mech_list_mic, &self.session_key) {
                    let mut server =
                        NtlmSecurity::new(key.as_bytes(), self.flags, Direction::ServerToClient);
                    if !server.verify(&self.mech_types_der, mic) {
                        return Err(AuthError::BadMechListMic);
                    }
                }
                Ok(ClientStep::Done)
            }
            ClientState::Start => Err(AuthError::UnexpectedToken("step before first_token")),
            ClientState::Finished => Err(AuthError::UnexpectedToken(
                "authentication already finished",
            )),
        }
    }
}
