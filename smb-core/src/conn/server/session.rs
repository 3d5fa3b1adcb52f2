//! NEGOTIATE (SMB1 and SMB2), SESSION_SETUP, LOGOFF, TREE_CONNECT and TREE_DISCONNECT.

use std::collections::HashMap;

use super::auth_glue::{self, AuthState, AuthStep};
use super::events::LogonRefusal;
use super::files::Then;
use super::io::Op;
use super::{
    Ctx, HandlerResult, HashInto, Negotiated, Reply, ServerConnection, ServerEvent, Session,
    SessionState, State, Step, StepResult, Transmit, Tree, ValidSession, FULL_ACCESS,
    NO_PREAUTH_OVERLAP, SMB202_MAX_IO,
};
use crate::header::{Command, Dialect, Header, NtStatus};
use crate::messages::build;
use crate::messages::logoff::{LogoffRequest, LogoffResponse};
use crate::messages::negotiate::{
    capabilities, CipherId, Guid, HashAlgorithm, NegotiateContext, NegotiateContextType,
    NegotiateRequest, NegotiateResponse,
};
use crate::messages::session_setup::{
    request_flags, session_flags, SessionSetupRequest, SessionSetupResponse,
};
use crate::messages::smb1_negotiate::Smb1Negotiate;
use crate::messages::tree_connect::{ShareType, TreeConnectRequest, TreeConnectResponse};
use crate::messages::tree_disconnect::{TreeDisconnectRequest, TreeDisconnectResponse};
use crate::policy::SIGNING_REQUIRED;
use crate::signing::{Algorithm, PreauthHash};

impl ServerConnection {
    // ---- SMB1 ----------------------------------------------------------------------

    /// MS-SMB2 3.3.5.3: an SMB1 multi-protocol NEGOTIATE is answered with an SMB2 NEGOTIATE
    /// response; SMB1 itself is never spoken.
    pub(super) fn handle_smb1(&mut self, input: &[u8]) {
        if !matches!(self.state, State::Initial) {
            return self.fail("SMB1 message after negotiation".into());
        }
        let neg = match Smb1Negotiate::read(input) {
            Ok(n) => n,
            Err(e) => {
                self.events.push_back(ServerEvent::Smb1Attempt {
                    client_addr: self.client_addr.clone(),
                    dialects: Vec::new(),
                    answered: None,
                });
                return self.fail(format!("SMB1 message that is not a valid NEGOTIATE: {e}"));
            }
        };
        let supports_21 = self.config.dialects.iter().any(|d| *d >= Dialect::SMB21);
        let answered = neg
            .smb2_reply_dialect(supports_21)
            .filter(|d| *d == Dialect::WILDCARD || self.config.dialects.contains(d));
        self.events.push_back(ServerEvent::Smb1Attempt {
            client_addr: self.client_addr.clone(),
            dialects: neg.dialects.clone(),
            answered,
        });
        let Some(dialect) = answered else {
            return self.fail("client offered only SMB1, which is disabled".into());
        };
        // The SMB1 request counts as MessageId 0 (MS-SMB2 3.3.5.3.1).
        self.window.consume(0, 1);
        let credits = self.window.grant(1);
        let mut hdr = Header {
            command: Command::NEGOTIATE,
            ..Header::default()
        }
        .response(NtStatus::SUCCESS);
        hdr.credits = credits;
        let body = self.negotiate_response_body(dialect, Vec::new());
        self.transmit
            .push_back(Transmit::new(build(&hdr, &body), None));
        self.state = if dialect == Dialect::WILDCARD {
            State::Wildcard
        } else {
            State::Negotiated(Box::new(Negotiated {
                dialect,
                client_guid: Guid::default(),
                client_security_mode: 0,
                client_capabilities: 0,
                client_dialects: vec![dialect],
                server_capabilities: 0,
                server_security_mode: self.config.signing.security_mode(),
                signing_algorithm: None,
                preauth: None,
            }))
        };
    }

    // ---- NEGOTIATE ---------------------------------------------------------------------

    fn negotiate_response_body(
        &self,
        dialect: Dialect,
        contexts: Vec<NegotiateContext>,
    ) -> NegotiateResponse {
        let max_io = if dialect == Dialect::SMB202 {
            SMB202_MAX_IO
        } else {
            self.config.limits.max_io_size
        };
        NegotiateResponse {
            security_mode: self.config.signing.security_mode(),
            dialect_revision: dialect,
            server_guid: Guid(self.config.server_guid),
            capabilities: server_capabilities(dialect),
            max_transact_size: max_io,
            max_read_size: max_io,
            max_write_size: max_io,
            system_time: self.config.clock.now(),
            server_start_time: 0,
            security_buffer: auth_glue::negotiate_token(),
            contexts,
        }
    }

    /// MS-SMB2 3.3.5.4: SMB2 NEGOTIATE. Unknown context types are ignored, contexts come in
    /// any order (2.2.3.1: "The server MUST support receiving negotiate contexts in any
    /// order"), and a context's DataLength may exceed its contents (as Windows and Samba do).
    pub(super) fn negotiate(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let (mut req, list) = NegotiateRequest::read_without_contexts(ctx.msg)
            .map_err(|_| NtStatus::INVALID_PARAMETER)?;
        // MS-SMB2 3.3.5.4: "If the DialectCount of the SMB2 NEGOTIATE Request is 0, the
        // server MUST fail the request with STATUS_INVALID_PARAMETER."
        if req.dialects.is_empty() {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        // "If a common dialect is not found, the server MUST fail the request with
        // STATUS_NOT_SUPPORTED."
        let Some(dialect) = self.config.pick_dialect(&req.dialects) else {
            return Err(NtStatus::NOT_SUPPORTED);
        };
        let mut contexts = Vec::new();
        let mut signing_algorithm = None;
        let mut preauth = None;
        if dialect == Dialect::SMB311 {
            // The list is read only now: it is processed only when 3.1.1 is selected.
            // A list that runs outside the message does not conform (3.3.5.2.6).
            req.contexts = match list {
                Some(list) => list
                    .read(ctx.msg)
                    .map_err(|_| NtStatus::INVALID_PARAMETER)?,
                None => Vec::new(),
            };
            check_negotiate_contexts(&req.contexts)?;
            let mut salt = [0u8; 32];
            let _ = self.config.random.fill(&mut salt);
            for c in &req.contexts {
                match c {
                    NegotiateContext::PreauthIntegrity {
                        hash_algorithms, ..
                    } => {
                        if !hash_algorithms.contains(&HashAlgorithm::SHA512) {
                            return Err(NO_PREAUTH_OVERLAP);
                        }
                        contexts.insert(
                            0,
                            NegotiateContext::PreauthIntegrity {
                                hash_algorithms: vec![HashAlgorithm::SHA512],
                                salt: salt.to_vec(),
                            },
                        );
                    }
                    NegotiateContext::Encryption { .. } => {
                        // Encryption is parsed and declined: "no common cipher" is a single
                        // cipher id of 0 (MS-SMB2 3.3.5.4).
                        contexts.push(NegotiateContext::Encryption {
                            ciphers: vec![CipherId(0)],
                        });
                    }
                    NegotiateContext::Signing { algorithms } => {
                        let pick = self
                            .config
                            .signing_algorithms
                            .iter()
                            .copied()
                            .find(|a| algorithms.contains(&a.id()))
                            .unwrap_or(Algorithm::AesCmac);
                        signing_algorithm = Some(pick);
                        contexts.push(NegotiateContext::Signing {
                            algorithms: vec![pick.id()],
                        });
                    }
                    NegotiateContext::Other { .. } => {}
                }
            }
            let mut h = PreauthHash::new();
            h.update(ctx.msg);
            preauth = Some(h);
        }
        let body = self.negotiate_response_body(dialect, contexts);
        self.state = State::Negotiated(Box::new(Negotiated {
            dialect,
            client_guid: req.client_guid,
            client_security_mode: req.security_mode,
            client_capabilities: req.capabilities,
            client_dialects: req.dialects.clone(),
            server_capabilities: body.capabilities,
            server_security_mode: body.security_mode,
            signing_algorithm,
            preauth,
        }));
        let mut reply = Reply::new(ctx.hdr, &body);
        if dialect == Dialect::SMB311 {
            reply.hash = Some(HashInto::Connection);
        }
        Ok(reply)
    }

    // ---- SESSION_SETUP / LOGOFF --------------------------------------------------------

    /// MS-SMB2 3.3.5.5.
    pub(super) fn session_setup(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let req = SessionSetupRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let (dialect, client_mode, conn_preauth, negotiated_alg) = {
            let n = self.negotiated()?;
            (
                n.dialect,
                n.client_security_mode,
                n.preauth.clone(),
                n.signing_algorithm,
            )
        };
        if req.flags & request_flags::BINDING != 0 {
            // Multichannel is not offered, so there is nothing to bind to.
            return Err(NtStatus::REQUEST_NOT_ACCEPTED);
        }
        let session_id = if ctx.hdr.session_id == 0 {
            if self.sessions.len() >= self.config.limits.max_sessions {
                return Err(NtStatus::INSUFFICIENT_RESOURCES);
            }
            let id = self.next_session;
            self.next_session = self.next_session.wrapping_add(1);
            let auth = Box::new(AuthState::new(&self.config));
            self.sessions.insert(
                id,
                Session {
                    state: SessionState::InProgress {
                        auth,
                        preauth: conn_preauth,
                    },
                    trees: HashMap::new(),
                },
            );
            id
        } else {
            match self.sessions.get(&ctx.hdr.session_id) {
                Some(Session {
                    state: SessionState::InProgress { .. },
                    ..
                }) => ctx.hdr.session_id,
                // Re-authentication of a valid session is not supported.
                Some(_) => return Err(NtStatus::REQUEST_NOT_ACCEPTED),
                None => return Err(NtStatus::USER_SESSION_DELETED),
            }
        };
        let Some(Session {
            state: SessionState::InProgress { auth, preauth },
            ..
        }) = self.sessions.get_mut(&session_id)
        else {
            return Err(NtStatus::USER_SESSION_DELETED);
        };
        // 3.1.1: Session.PreauthIntegrityHashValue covers every SESSION_SETUP request.
        if let Some(h) = preauth {
            h.update(ctx.msg);
        }
        let preauth_value = preauth.as_ref().map(PreauthHash::value);
        match auth.step(&req.security_buffer) {
            AuthStep::Continue(token) => {
                let body = SessionSetupResponse {
                    session_flags: 0,
                    security_buffer: token,
                };
                let mut reply =
                    Reply::with_status(ctx.hdr, NtStatus::MORE_PROCESSING_REQUIRED, &body);
                reply.session_id = Some(session_id);
                reply.hash = Some(HashInto::Session(session_id));
                Ok(reply)
            }
            AuthStep::Failed { user, error } => {
                self.sessions.remove(&session_id);
                self.events.push_back(ServerEvent::LogonFailed {
                    user,
                    client_addr: self.client_addr.clone(),
                    reason: LogonRefusal::Auth(error),
                });
                Err(NtStatus::LOGON_FAILURE)
            }
            AuthStep::Done(done) => {
                // MS-SMB2 3.3.5.5.3: Session.SigningRequired is TRUE when the server requires
                // signing or the client's SecurityMode has SIGNING_REQUIRED (in this
                // request, or in NEGOTIATE: either side requiring it signs the session).
                let signing_required = self.config.signing.require_security_signature
                    || (u16::from(req.security_mode) | client_mode) & SIGNING_REQUIRED != 0;
                let unkeyed = done.guest || done.anonymous;
                if unkeyed && (signing_required || !self.config.allow_guest) {
                    // A guest or anonymous session has no key, so it cannot be signed: when
                    // signing is required it is refused, as Windows does.
                    self.sessions.remove(&session_id);
                    let reason = if self.config.allow_guest {
                        LogonRefusal::UnsignableSession
                    } else {
                        LogonRefusal::GuestDisabled
                    };
                    self.events.push_back(ServerEvent::LogonFailed {
                        user: done.user,
                        client_addr: self.client_addr.clone(),
                        reason,
                    });
                    return Err(NtStatus::LOGON_FAILURE);
                }
                let (key, algorithm) = if unkeyed {
                    (None, None)
                } else {
                    let Some(session_key) = done.session_key.as_deref() else {
                        self.sessions.remove(&session_id);
                        return Err(NtStatus::INTERNAL_ERROR);
                    };
                    let algorithm = Algorithm::for_dialect(dialect, negotiated_alg);
                    let key = crate::conn::session_signing_key(
                        dialect,
                        algorithm,
                        session_key,
                        preauth_value.as_ref(),
                    );
                    match key {
                        Ok(k) => (Some(k), Some(algorithm)),
                        Err(_) => {
                            self.sessions.remove(&session_id);
                            return Err(NtStatus::INTERNAL_ERROR);
                        }
                    }
                };
                let signed = key.is_some() && signing_required;
                self.events.push_back(ServerEvent::SessionEstablished {
                    session_id,
                    user: done.user.clone(),
                    dialect,
                    algorithm,
                    signed,
                    guest: done.guest,
                    anonymous: done.anonymous,
                });
                if !signed {
                    self.events.push_back(ServerEvent::SessionUnsigned {
                        session_id,
                        user: done.user.clone(),
                        client_addr: self.client_addr.clone(),
                        reason: if unkeyed {
                            "guest or anonymous session"
                        } else {
                            "client did not require signing"
                        },
                    });
                }
                // MS-SMB2 3.3.5.5.3: for 3.x the final response is signed with the new key
                // (unless guest/anonymous); for 2.x only when the session is signed.
                let response_key = match &key {
                    Some(k) if dialect.is_smb3() || signing_required => Some(k.clone()),
                    _ => None,
                };
                let session_flags = if done.anonymous {
                    session_flags::IS_NULL
                } else if done.guest {
                    session_flags::IS_GUEST
                } else {
                    0
                };
                if let Some(s) = self.sessions.get_mut(&session_id) {
                    s.state = SessionState::Valid(Box::new(ValidSession {
                        user: done.user,
                        key,
                        signing_required,
                    }));
                }
                let body = SessionSetupResponse {
                    session_flags,
                    security_buffer: done.token,
                };
                let mut reply = Reply::new(ctx.hdr, &body);
                reply.session_id = Some(session_id);
                reply.key = Some(response_key);
                Ok(reply)
            }
        }
    }

    /// MS-SMB2 3.3.5.6.
    pub(super) fn logoff(&mut self, ctx: &mut Ctx) -> StepResult {
        LogoffRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let deletes = self.opens.close_session(ctx.session_id);
        if let Some(Session {
            state: SessionState::Valid(v),
            ..
        }) = self.sessions.remove(&ctx.session_id)
        {
            self.events.push_back(ServerEvent::LoggedOff {
                session_id: ctx.session_id,
                user: v.user,
            });
        }
        Ok(after_deletes(deletes, Reply::new(ctx.hdr, &LogoffResponse)))
    }

    // ---- TREE_CONNECT / TREE_DISCONNECT ------------------------------------------------

    /// MS-SMB2 3.3.5.7: disk shares from the configuration, and IPC$ as a pipe share.
    pub(super) fn tree_connect(&mut self, ctx: &mut Ctx) -> HandlerResult {
        let req = TreeConnectRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let name = req.share_name().to_string();
        let (tree, share_type) = if name.eq_ignore_ascii_case("IPC$") {
            (Tree { share: None }, ShareType::PIPE)
        } else {
            match self.config.share(&name) {
                Some(s) => (
                    Tree {
                        share: Some(s.clone()),
                    },
                    ShareType::DISK,
                ),
                // MS-SMB2 3.3.5.7: "If no share with a matching share name and server name
                // is found, the server MUST fail the request with STATUS_BAD_NETWORK_NAME."
                None => return Err(NtStatus::BAD_NETWORK_NAME),
            }
        };
        let max_trees = self.config.limits.max_trees;
        let tree_id = self.next_tree;
        let session = self
            .sessions
            .get_mut(&ctx.session_id)
            .ok_or(NtStatus::USER_SESSION_DELETED)?;
        if session.trees.len() >= max_trees {
            return Err(NtStatus::INSUFFICIENT_RESOURCES);
        }
        session.trees.insert(tree_id, tree);
        self.next_tree = self.next_tree.wrapping_add(1).max(1);
        let body = TreeConnectResponse {
            share_type,
            share_flags: 0,
            capabilities: 0,
            maximal_access: FULL_ACCESS,
        };
        let mut reply = Reply::new(ctx.hdr, &body);
        reply.tree_id = Some(tree_id);
        Ok(reply)
    }

    /// MS-SMB2 3.3.5.8.
    pub(super) fn tree_disconnect(&mut self, ctx: &mut Ctx) -> StepResult {
        TreeDisconnectRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let deletes = self.opens.close_tree(ctx.session_id, ctx.tree_id);
        if let Some(s) = self.sessions.get_mut(&ctx.session_id) {
            s.trees.remove(&ctx.tree_id);
        }
        Ok(after_deletes(
            deletes,
            Reply::new(ctx.hdr, &TreeDisconnectResponse),
        ))
    }
}

/// The reply now, or after the share has deleted the delete-on-close files of the opens
/// that were just dropped.
fn after_deletes(deletes: Vec<super::files::Delete>, reply: Reply) -> Step {
    if deletes.is_empty() {
        Step::Reply(reply)
    } else {
        Step::Io(Op::DeleteAll(deletes), Then::Ready(Box::new(reply)))
    }
}

/// The context-list rules of MS-SMB2 3.3.5.4 for a 3.1.1 NEGOTIATE: "The server MUST fail the
/// negotiate request with STATUS_INVALID_PARAMETER" if the list does not hold exactly one
/// SMB2_PREAUTH_INTEGRITY_CAPABILITIES, or more than one SMB2_ENCRYPTION_CAPABILITIES,
/// SMB2_COMPRESSION_CAPABILITIES, SMB2_RDMA_TRANSFORM_CAPABILITIES or
/// SMB2_SIGNING_CAPABILITIES; and a context whose algorithm count is zero (2.2.3.1.x: the count
/// "MUST be greater than zero"; 3.3.5.4 fails CompressionAlgorithmCount and TransformCount 0,
/// Samba fails HashAlgorithmCount, CipherCount and SigningAlgorithmCount 0 the same way).
/// Other types, known or not, are ignored whatever their number and contents.
fn check_negotiate_contexts(contexts: &[NegotiateContext]) -> Result<(), NtStatus> {
    let of_type = |t: NegotiateContextType| contexts.iter().filter(move |c| c.context_type() == t);
    if of_type(NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES).count() != 1 {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    for t in [
        NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES,
        NegotiateContextType::ENCRYPTION_CAPABILITIES,
        NegotiateContextType::COMPRESSION_CAPABILITIES,
        NegotiateContextType::RDMA_TRANSFORM_CAPABILITIES,
        NegotiateContextType::SIGNING_CAPABILITIES,
    ] {
        let mut found = of_type(t);
        let first = found.next();
        if found.next().is_some() || first.is_some_and(|c| c.leading_count().unwrap_or(0) == 0) {
            return Err(NtStatus::INVALID_PARAMETER);
        }
    }
    Ok(())
}

/// Capabilities the server announces: LARGE_MTU (multi-credit requests) and LEASING from
/// 2.1 on; no directory leasing, multichannel, persistent handles or encryption.
fn server_capabilities(dialect: Dialect) -> u32 {
    if dialect == Dialect::SMB202 {
        0
    } else {
        capabilities::LARGE_MTU | capabilities::LEASING
    }
}
