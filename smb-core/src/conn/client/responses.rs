//! The response side: [`handle_input`](ClientConnection::handle_input), the signature check
//! every response passes, and the handlers of NEGOTIATE, TREE_CONNECT (with the 3.0
//! negotiation validation) and the plain file responses.

use std::collections::VecDeque;

use bytes::Bytes;

use super::error::ValidationFailure;
use super::error::{ClientError, NegotiateMismatch, ProtocolError, SignatureFailure, StateError};
use super::events::{ClientEvent, DirEntry, NegotiateInfo, ResponseBody};
use super::state::{Kind, Negotiated, Outstanding, Phase};
use super::ClientConnection;
use crate::compound::split_chain;
use crate::header::{Command, Dialect, Header, NtStatus, OPLOCK_BREAK_MESSAGE_ID};
use crate::messages::change_notify::ChangeNotifyResponse;
use crate::messages::close::CloseResponse;
use crate::messages::create::{CreateResponse, OplockLevel};
use crate::messages::info::decode_directory_entries;
use crate::messages::ioctl::{
    fsctl, ioctl_flags, IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
};
use crate::messages::lease::LeaseContext;
use crate::messages::negotiate::{
    Guid, HashAlgorithm, NegotiateContext, NegotiateContextType, NegotiateResponse,
};
use crate::messages::query_directory::QueryDirectoryResponse;
use crate::messages::query_info::QueryInfoResponse;
use crate::messages::read::ReadResponse;
use crate::messages::tree_connect::TreeConnectResponse;
use crate::messages::write::WriteResponse;
use crate::messages::FileId;
use crate::policy::SIGNING_REQUIRED;
use crate::signing::{exemption, must_verify, Algorithm, Exemption};

/// The answer to request `id` (`header` is the response's).
pub(super) fn response_event(id: u64, header: &Header, body: ResponseBody) -> ClientEvent {
    ClientEvent::Response {
        id,
        command: header.command,
        status: header.status,
        body,
    }
}

/// Reports a rejected signature as an event and returns the error that fails the connection.
pub(super) fn signature_rejected(
    events: &mut VecDeque<ClientEvent>,
    header: &Header,
    reason: SignatureFailure,
) -> ClientError {
    events.push_back(ClientEvent::SignatureRejected {
        message_id: header.message_id,
        command: header.command,
        reason: reason.clone(),
    });
    ClientError::BadSignature {
        message_id: header.message_id,
        command: header.command,
        reason,
    }
}

impl ClientConnection {
    /// Processes one received frame: a single response or a compound chain of them. An
    /// error fails the connection for good. The frame is copied once; a driver that owns
    /// its receive buffer calls [`handle_frame`](Self::handle_frame) instead.
    pub fn handle_input(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        self.handle_frame(Bytes::copy_from_slice(frame))
    }

    /// [`handle_input`](Self::handle_input) for a frame the caller hands over: the data of
    /// a READ response is passed on as a slice of `frame` ([`ResponseBody::Read`]), not
    /// copied, so a `get` moves each byte from the socket to the file with no copy between.
    pub fn handle_frame(&mut self, frame: Bytes) -> Result<(), ClientError> {
        self.check_alive()?;
        let ranges = split_chain(&frame).map_err(|e| self.fail(e.into()))?;
        for range in ranges {
            if range.start > range.end || range.end > frame.len() {
                return Err(self.fail(ProtocolError::ChainOutsideFrame.into()));
            }
            if let Err(e) = self.handle_message(&frame.slice(range)) {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn handle_message(&mut self, message: &Bytes) -> Result<(), ClientError> {
        let header = Header::parse(message)?;
        if !header.is_response() {
            return Err(ProtocolError::RequestFromServer(header.command).into());
        }
        self.credits = self.credits.saturating_add(u32::from(header.credits));
        // Oplock/lease break notifications are never signed (MS-SMB2 3.2.5.1.3,
        // Exemption::BreakNotification). Every message with this MessageId goes there: one
        // that is not an OPLOCK_BREAK is refused as unsolicited.
        if header.message_id == OPLOCK_BREAK_MESSAGE_ID {
            return self.on_break_notification(message, &header);
        }
        // An interim response: the final one follows (MS-SMB2 3.2.5.1.5); never signed.
        if exemption(&header) == Some(Exemption::InterimResponse) {
            self.interim_responses += 1;
            if let Some(out) = self.outstanding.get_mut(&header.message_id) {
                out.async_id = header.async_id;
            }
            return Ok(());
        }
        let Some(out) = self.outstanding.remove(&header.message_id) else {
            return Err(ProtocolError::NotOutstanding(header.message_id).into());
        };
        if out.command != header.command {
            return Err(ProtocolError::CommandMismatch {
                message_id: header.message_id,
                request: out.command,
                response: header.command,
            }
            .into());
        }
        self.check_response_signature(message, &header, &out)?;
        match out.kind {
            Kind::Negotiate => self.on_negotiate(message, &header, out.id),
            Kind::SessionSetup => self.on_session_setup(message, &header),
            Kind::TreeConnect => self.on_tree_connect(message, &header, out.id),
            Kind::ValidateNegotiate { tree_event } => {
                self.on_validate_negotiate(message, &header, *tree_event)
            }
            Kind::QueryDirectory(class) => {
                let body = if header.status.is_error() || header.status == NtStatus::NO_MORE_FILES {
                    ResponseBody::None
                } else {
                    let resp = QueryDirectoryResponse::read(message)?;
                    let entries = decode_directory_entries(class, &resp.buffer)?
                        .into_iter()
                        .map(|e| DirEntry {
                            name: e.file_name,
                            attributes: e.file_attributes,
                            size: e.end_of_file,
                            creation_time: e.creation_time,
                            last_write_time: e.last_write_time,
                        })
                        .collect();
                    ResponseBody::Directory { entries }
                };
                self.events.push_back(response_event(out.id, &header, body));
                Ok(())
            }
            Kind::OplockAck { file_id, level } => {
                self.on_oplock_ack_response(message, &header, out.id, file_id, level)
            }
            Kind::LeaseAck { key, state } => {
                self.on_lease_ack_response(message, &header, out.id, key, state)
            }
            Kind::Create { tree_id, lease_key } => {
                let body = decode_plain(message, &header)?;
                if let ResponseBody::Create {
                    file_id,
                    oplock_level,
                    lease,
                    ..
                } = &body
                {
                    self.on_create_granted(out.session_id, tree_id, *file_id, *oplock_level);
                    if let (OplockLevel::LEASE, Some(lease)) = (*oplock_level, lease) {
                        self.on_lease_granted(out.session_id, tree_id, *file_id, lease_key, lease)?;
                    }
                }
                self.events.push_back(response_event(out.id, &header, body));
                Ok(())
            }
            Kind::Close { file_id } => {
                let body = decode_plain(message, &header)?;
                // MS-SMB2 3.2.5.8: the open is gone once CLOSE succeeds (FILE_CLOSED too).
                if !header.status.is_error() || header.status == NtStatus::FILE_CLOSED {
                    self.on_closed(file_id);
                }
                self.events.push_back(response_event(out.id, &header, body));
                Ok(())
            }
            Kind::Plain => {
                let body = decode_plain(message, &header)?;
                if header.command == Command::LOGOFF && !header.status.is_error() {
                    // MS-SMB2 3.2.5.4: the session (and its key) is gone.
                    self.phase = match self.take_phase() {
                        Phase::Established(n, _) => Phase::Negotiated(n),
                        other => other,
                    };
                }
                self.events.push_back(response_event(out.id, &header, body));
                Ok(())
            }
        }
    }

    /// MS-SMB2 3.2.5.1.3: on a session with SigningRequired, every response must carry a
    /// valid signature, whether or not SMB2_FLAGS_SIGNED is set; a message claiming a
    /// signature is checked whenever a key exists ([`must_verify`], the one rule). The final
    /// SESSION_SETUP response is checked in `on_session_setup`, once its key is derived
    /// (3.2.5.3.1 has its own MUST there: signed on 3.1.1 whatever the session requires).
    fn check_response_signature(
        &mut self,
        message: &[u8],
        header: &Header,
        out: &Outstanding,
    ) -> Result<(), ClientError> {
        if out.command == Command::SESSION_SETUP || out.session_id == 0 {
            return Ok(());
        }
        let Some(session) = self.phase.session() else {
            return Ok(());
        };
        if session.id != out.session_id {
            return Ok(());
        }
        // The VALIDATE_NEGOTIATE response must be signed whatever the session requires
        // (3.2.5.14.12: "If the response is neither signed nor encrypted, the client MUST
        // terminate the Connection").
        let required =
            session.signing_required || matches!(out.kind, Kind::ValidateNegotiate { .. });
        // 3.2.5.1.3: "For all other messages, the client MUST retrieve SessionId from the
        // corresponding Request.Message": a SessionId rewritten to 0 does not make a response
        // exempt.
        let bound = Header {
            session_id: out.session_id,
            ..header.clone()
        };
        if !must_verify(&bound, required) {
            return Ok(());
        }
        let failure = match &session.key {
            Some(key) => key.verify(message).err().map(SignatureFailure::Invalid),
            None if required => Some(SignatureFailure::NoKey),
            None => None, // guest/anonymous: nothing to check a claimed signature with
        };
        match failure {
            None => Ok(()),
            Some(reason) => {
                let reason = if header.is_signed() {
                    reason
                } else {
                    SignatureFailure::Unsigned(Box::new(reason))
                };
                Err(signature_rejected(&mut self.events, header, reason))
            }
        }
    }

    fn on_negotiate(
        &mut self,
        message: &[u8],
        header: &Header,
        id: u64,
    ) -> Result<(), ClientError> {
        if header.status != NtStatus::SUCCESS {
            self.events
                .push_back(response_event(id, header, ResponseBody::None));
            return Err(ProtocolError::NegotiateFailed(header.status).into());
        }
        let resp = NegotiateResponse::read(message)?;
        let dialect = resp.dialect_revision;
        if !self.config.dialects.contains(&dialect) {
            return Err(ProtocolError::DialectNotOffered(dialect).into());
        }
        let mut negotiated_alg = None;
        if dialect == Dialect::SMB311 {
            // MS-SMB2 3.2.5.2: exactly one preauth hash algorithm, one we offered (SHA-512).
            match resp.context(NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES) {
                Some(NegotiateContext::PreauthIntegrity {
                    hash_algorithms, ..
                }) if hash_algorithms.as_slice() == [HashAlgorithm::SHA512] => {}
                _ => return Err(ProtocolError::NoPreauthIntegrity.into()),
            }
            if let Some(NegotiateContext::Signing { algorithms }) =
                resp.context(NegotiateContextType::SIGNING_CAPABILITIES)
            {
                let chosen = match algorithms.as_slice() {
                    [one] => Algorithm::from_id(*one),
                    _ => None,
                };
                match chosen {
                    Some(a) if self.config.signing_algorithms.contains(&a) => {
                        negotiated_alg = Some(a)
                    }
                    _ => {
                        return Err(
                            ProtocolError::SigningAlgorithmNotOffered(algorithms.clone()).into(),
                        )
                    }
                }
            }
        }
        let (offer, preauth) = match self.take_phase() {
            Phase::Negotiating { offer, preauth } => (offer, preauth),
            other => {
                self.phase = other;
                return Err(StateError::NotNegotiating.into());
            }
        };
        // The preauth hash only exists on 3.1.1, where it covers the response too.
        let preauth = preauth.filter(|_| dialect == Dialect::SMB311).map(|mut h| {
            h.update(message);
            h
        });
        let info = NegotiateInfo {
            dialect,
            server_security_mode: resp.security_mode,
            server_requires_signing: resp.security_mode & SIGNING_REQUIRED != 0,
            server_guid: resp.server_guid.0,
            server_capabilities: resp.capabilities,
            signing_algorithm: Algorithm::for_dialect(dialect, negotiated_alg),
            signing_algorithm_negotiated: negotiated_alg.is_some(),
            max_read_size: resp.max_read_size,
            max_write_size: resp.max_write_size,
            max_transact_size: resp.max_transact_size,
        };
        if !info.server_requires_signing {
            self.events
                .push_back(ClientEvent::ServerDoesNotRequireSigning {
                    server: self.config.server_name.clone(),
                    dialect,
                });
        }
        self.events.push_back(response_event(
            id,
            header,
            ResponseBody::Negotiate(info.clone()),
        ));
        self.phase = Phase::Negotiated(Box::new(Negotiated {
            info,
            offer,
            gss_hint: resp.security_buffer,
            preauth,
        }));
        Ok(())
    }

    fn on_tree_connect(
        &mut self,
        message: &[u8],
        header: &Header,
        id: u64,
    ) -> Result<(), ClientError> {
        let body = if header.status.is_error() {
            ResponseBody::None
        } else {
            let resp = TreeConnectResponse::read(message)?;
            ResponseBody::TreeConnect {
                tree_id: header.tree_id,
                share_type: resp.share_type.0,
            }
        };
        let event = ClientEvent::Response {
            id,
            command: Command::TREE_CONNECT,
            status: header.status,
            body,
        };
        // MS-SMB2 3.2.5.5: on 3.0/3.0.2, validate the NEGOTIATE after the first successful
        // TREE_CONNECT of an authenticated (non-guest, non-anonymous) session.
        let validate = !header.status.is_error()
            && match &self.phase {
                Phase::Established(n, s) => {
                    matches!(n.info.dialect, Dialect::SMB30 | Dialect::SMB302)
                        && !s.negotiate_validated
                        && s.key.is_some()
                }
                _ => false,
            };
        if validate {
            self.send_validate_negotiate(header.tree_id, event)?;
        } else {
            self.events.push_back(event);
        }
        Ok(())
    }

    /// MS-SMB2 3.2.5.5 / 3.2.4.20.11: FSCTL_VALIDATE_NEGOTIATE_INFO repeats what this client
    /// sent in NEGOTIATE, in a signed IOCTL; the TREE_CONNECT answer is held until it checks out.
    fn send_validate_negotiate(
        &mut self,
        tree_id: u32,
        tree_event: ClientEvent,
    ) -> Result<(), ClientError> {
        let sid = self.established()?;
        let Some(offer) = self.phase.negotiated().map(|n| n.offer) else {
            return Err(StateError::NotNegotiated(Command::IOCTL).into());
        };
        let mut input = Vec::new();
        ValidateNegotiateInfoRequest {
            capabilities: offer.capabilities,
            guid: Guid(offer.guid),
            security_mode: self.config.signing.security_mode(),
            dialects: self.config.dialects.clone(),
        }
        .encode(&mut input);
        let body = IoctlRequest {
            ctl_code: fsctl::VALIDATE_NEGOTIATE_INFO,
            // MS-SMB2 2.2.31: FileId is all ones for this FSCTL.
            file_id: FileId::RELATED,
            input,
            max_input_response: 0,
            output: Vec::new(),
            max_output_response: ValidateNegotiateInfoResponse::LEN as u32,
            flags: ioctl_flags::IS_FSCTL,
        };
        let kind = Kind::ValidateNegotiate {
            tree_event: Box::new(tree_event),
        };
        self.send(Command::IOCTL, sid, tree_id, 1, kind, None, &body)?;
        Ok(())
    }

    /// MS-SMB2 3.2.5.14.12. The signature was already checked (this response must be signed
    /// whatever the session's policy); now compare what the server says it negotiated with
    /// what this client saw in the NEGOTIATE response.
    fn on_validate_negotiate(
        &mut self,
        message: &[u8],
        header: &Header,
        tree_event: ClientEvent,
    ) -> Result<(), ClientError> {
        if header.status == NtStatus::ACCESS_DENIED {
            return Err(ClientError::ValidateNegotiate(
                ValidationFailure::AccessDenied,
            ));
        }
        // A genuine (signed) refusal from a server without the FSCTL shows nothing was
        // tampered with. Windows accepts this from servers that predate it.
        if !header.status.is_error() {
            let resp = IoctlResponse::read(message)?;
            let v = ValidateNegotiateInfoResponse::read(&resp.output)?;
            let Some(n) = self.phase.negotiated().map(|n| &n.info) else {
                return Err(StateError::NotNegotiated(Command::IOCTL).into());
            };
            let mut mismatches = Vec::new();
            if v.capabilities != n.server_capabilities {
                mismatches.push(NegotiateMismatch::Capabilities {
                    validated: v.capabilities,
                    negotiated: n.server_capabilities,
                });
            }
            if v.guid.0 != n.server_guid {
                mismatches.push(NegotiateMismatch::ServerGuid);
            }
            if v.security_mode != n.server_security_mode {
                mismatches.push(NegotiateMismatch::SecurityMode {
                    validated: v.security_mode,
                    negotiated: n.server_security_mode,
                });
            }
            if v.dialect != n.dialect {
                mismatches.push(NegotiateMismatch::Dialect {
                    validated: v.dialect,
                    negotiated: n.dialect,
                });
            }
            if !mismatches.is_empty() {
                return Err(ClientError::ValidateNegotiate(ValidationFailure::Mismatch(
                    mismatches,
                )));
            }
        }
        if let Phase::Established(_, s) = &mut self.phase {
            s.negotiate_validated = true;
        }
        self.events.push_back(tree_event);
        Ok(())
    }
}

/// Decodes the body of a response that needs no further protocol step.
fn decode_plain(message: &Bytes, header: &Header) -> Result<ResponseBody, ClientError> {
    // Error responses carry an ERROR body (MS-SMB2 2.2.2), not the command's.
    if header.status.is_error() {
        return Ok(ResponseBody::None);
    }
    Ok(match header.command {
        Command::CREATE => {
            let r = CreateResponse::read(message)?;
            ResponseBody::Create {
                file_id: r.file_id,
                create_action: r.create_action,
                file_attributes: r.file_attributes,
                end_of_file: r.end_of_file,
                last_write_time: r.last_write_time,
                oplock_level: r.oplock_level,
                // A lease context that does not decode is not a lease this client can hold.
                lease: LeaseContext::find(&r.contexts).and_then(Result::ok),
            }
        }
        Command::CLOSE => {
            let r = CloseResponse::read(message)?;
            ResponseBody::Close {
                file_attributes: r.file_attributes,
                end_of_file: r.end_of_file,
                last_write_time: r.last_write_time,
            }
        }
        Command::READ => ResponseBody::Read {
            data: message.slice(ReadResponse::data_range(message)?),
        },
        Command::WRITE => ResponseBody::Write {
            count: WriteResponse::read(message)?.count,
        },
        Command::CHANGE_NOTIFY => ResponseBody::ChangeNotify {
            buffer: ChangeNotifyResponse::read(message)?.buffer,
        },
        // BUFFER_OVERFLOW (a warning, not an error) still carries the truncated buffer.
        Command::QUERY_INFO => ResponseBody::Info {
            buffer: QueryInfoResponse::read(message)?.buffer,
        },
        _ => ResponseBody::None,
    })
}
