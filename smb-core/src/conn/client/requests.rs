//! The request builders: one method per request a caller can queue, and [`send`], the one
//! place that numbers, charges, signs and queues a message.
//!
//! [`send`]: ClientConnection::send

use super::caching::Caching;
use super::error::{ClientError, ProtocolError, StateError};
use super::state::{Kind, Offer, Outstanding, Phase};
use super::{credit_charge, ClientConnection, CREDIT_REQUEST, WRITE_DATA_AT};
use crate::header::{Command, Dialect, Header};
use crate::messages::close::{close_flags, CloseRequest};
use crate::messages::create::{
    access, create_options, file_attributes, share_access, CreateDisposition, CreateRequest,
    ImpersonationLevel,
};
use crate::messages::echo::EchoRequest;
use crate::messages::flush::FlushRequest;
use crate::messages::info::{FileDispositionInformation, FileInfoClass, FileRenameInformation};
use crate::messages::logoff::LogoffRequest;
use crate::messages::negotiate::{
    capabilities, Guid, HashAlgorithm, NegotiateContext, NegotiateRequest,
};
use crate::messages::query_directory::{query_directory_flags, QueryDirectoryRequest};
use crate::messages::query_info::{InfoType, QueryInfoRequest};
use crate::messages::read::{ReadRequest, ReadResponse};
use crate::messages::set_info::SetInfoRequest;
use crate::messages::tree_connect::TreeConnectRequest;
use crate::messages::tree_disconnect::TreeDisconnectRequest;
use crate::messages::write::WriteRequest;
use crate::messages::{build, EncodeBody, FileId};
use crate::signing::{PreauthHash, SigningKey, TailDigest};

/// The parameters of a CREATE, with constructors for what a file client does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// Share-relative path with backslashes, no leading separator ("" = the share root).
    pub path: String,
    /// DesiredAccess (`messages::create::access`).
    pub desired_access: u32,
    /// FileAttributes for a file created (`messages::create::file_attributes`).
    pub file_attributes: u32,
    /// ShareAccess (`messages::create::share_access`).
    pub share_access: u32,
    /// CreateDisposition: what to do when the file exists or not.
    pub disposition: CreateDisposition,
    /// CreateOptions (`messages::create::create_options`).
    pub options: u32,
    /// The oplock to ask for ([`Caching::None`] by the constructors).
    pub caching: Caching,
}

impl OpenRequest {
    const SHARE_ALL: u32 = share_access::READ | share_access::WRITE | share_access::DELETE;

    /// An existing file, for reading.
    pub fn read_file(path: &str) -> Self {
        OpenRequest {
            path: path.into(),
            desired_access: access::FILE_READ_DATA
                | access::FILE_READ_ATTRIBUTES
                | access::SYNCHRONIZE,
            file_attributes: 0,
            share_access: share_access::READ | share_access::WRITE,
            disposition: CreateDisposition::OPEN,
            options: create_options::NON_DIRECTORY_FILE,
            caching: Caching::None,
        }
    }

    /// A file created or truncated, for writing.
    pub fn write_file(path: &str) -> Self {
        OpenRequest {
            path: path.into(),
            desired_access: access::FILE_WRITE_DATA
                | access::FILE_READ_DATA
                | access::FILE_READ_ATTRIBUTES
                | access::FILE_WRITE_ATTRIBUTES
                | access::SYNCHRONIZE,
            file_attributes: file_attributes::ARCHIVE,
            share_access: share_access::READ,
            disposition: CreateDisposition::OVERWRITE_IF,
            options: create_options::NON_DIRECTORY_FILE,
            caching: Caching::None,
        }
    }

    /// An existing directory, for listing.
    pub fn directory(path: &str) -> Self {
        OpenRequest {
            path: path.into(),
            desired_access: access::FILE_LIST_DIRECTORY
                | access::FILE_READ_ATTRIBUTES
                | access::SYNCHRONIZE,
            file_attributes: 0,
            share_access: Self::SHARE_ALL,
            disposition: CreateDisposition::OPEN,
            options: create_options::DIRECTORY_FILE,
            caching: Caching::None,
        }
    }

    /// A new directory (fails if the name exists).
    pub fn mkdir(path: &str) -> Self {
        OpenRequest {
            path: path.into(),
            desired_access: access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            file_attributes: file_attributes::DIRECTORY,
            share_access: Self::SHARE_ALL,
            disposition: CreateDisposition::CREATE,
            options: create_options::DIRECTORY_FILE,
            caching: Caching::None,
        }
    }

    /// An existing file or directory opened for DELETE (then SET_INFO disposition or
    /// rename). `directory`: Some(true) must be a directory, Some(false) must not be.
    pub fn for_delete(path: &str, directory: Option<bool>) -> Self {
        OpenRequest {
            path: path.into(),
            desired_access: access::DELETE | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            file_attributes: 0,
            share_access: Self::SHARE_ALL,
            disposition: CreateDisposition::OPEN,
            options: match directory {
                Some(true) => create_options::DIRECTORY_FILE,
                Some(false) => create_options::NON_DIRECTORY_FILE,
                None => 0,
            },
            caching: Caching::None,
        }
    }

    /// Attributes only (e.g. to tell a directory from a file).
    pub fn stat(path: &str) -> Self {
        OpenRequest {
            path: path.into(),
            desired_access: access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            file_attributes: 0,
            share_access: Self::SHARE_ALL,
            disposition: CreateDisposition::OPEN,
            options: 0,
            caching: Caching::None,
        }
    }

    /// The same open, asking for `caching` (an oplock).
    pub fn with_caching(mut self, caching: Caching) -> Self {
        self.caching = caching;
        self
    }
}

impl ClientConnection {
    /// Queues NEGOTIATE with the configured dialects, SecurityMode and (3.1.1) contexts.
    pub fn negotiate(&mut self) -> Result<u64, ClientError> {
        self.check_alive()?;
        if !matches!(self.phase, Phase::Idle) {
            return Err(StateError::AlreadyNegotiated.into());
        }
        if self.config.dialects.is_empty() {
            return Err(StateError::NoDialect.into());
        }
        let offers_3x = self.config.dialects.iter().any(|d| d.is_smb3());
        let only_202 = self.config.dialects.iter().all(|d| *d == Dialect::SMB202);
        let offer = Offer {
            capabilities: if offers_3x {
                capabilities::LARGE_MTU
            } else {
                0
            },
            // MS-SMB2 3.2.4.2.2.2: ClientGuid is zero when only 2.0.2 is offered.
            guid: if only_202 {
                [0; 16]
            } else {
                self.config.client_guid
            },
        };
        let mut contexts = Vec::new();
        let mut preauth = None;
        if self.config.dialects.contains(&Dialect::SMB311) {
            // MS-SMB2 3.2.4.2.2.2: Connection.PreauthIntegrityHashValue starts as 64 zero bytes.
            preauth = Some(PreauthHash::new());
            let mut salt = [0u8; 32];
            self.config
                .random
                .fill(&mut salt)
                .map_err(ClientError::Random)?;
            contexts.push(NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HashAlgorithm::SHA512],
                salt: salt.to_vec(),
            });
            if !self.config.signing_algorithms.is_empty() {
                contexts.push(NegotiateContext::Signing {
                    algorithms: self
                        .config
                        .signing_algorithms
                        .iter()
                        .map(|a| a.id())
                        .collect(),
                });
            }
        }
        let body = NegotiateRequest {
            security_mode: self.config.signing.security_mode(),
            capabilities: offer.capabilities,
            client_guid: Guid(offer.guid),
            client_start_time: 0,
            dialects: self.config.dialects.clone(),
            contexts,
        };
        // The phase first: `send` adds the request to its preauth hash.
        self.phase = Phase::Negotiating { offer, preauth };
        let sent = self.send(Command::NEGOTIATE, 0, 0, 1, Kind::Negotiate, None, &body);
        if sent.is_err() {
            self.phase = Phase::Idle;
        }
        sent
    }

    /// Queues TREE_CONNECT to `\\server\share`.
    pub fn tree_connect(&mut self, unc_path: &str) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let body = TreeConnectRequest {
            flags: 0,
            path: unc_path.into(),
        };
        self.send(
            Command::TREE_CONNECT,
            sid,
            0,
            1,
            Kind::TreeConnect,
            None,
            &body,
        )
    }

    /// Queues TREE_DISCONNECT.
    pub fn tree_disconnect(&mut self, tree_id: u32) -> Result<u64, ClientError> {
        let sid = self.established()?;
        self.send(
            Command::TREE_DISCONNECT,
            sid,
            tree_id,
            1,
            Kind::Plain,
            None,
            &TreeDisconnectRequest,
        )
    }

    /// Queues ECHO (on the session if there is one).
    pub fn echo(&mut self) -> Result<u64, ClientError> {
        self.check_alive()?;
        if matches!(self.phase, Phase::Idle | Phase::Negotiating { .. }) {
            return Err(StateError::NotNegotiated(Command::ECHO).into());
        }
        let sid = self.session_id().unwrap_or(0);
        self.send(Command::ECHO, sid, 0, 1, Kind::Plain, None, &EchoRequest)
    }

    /// Queues LOGOFF.
    pub fn logoff(&mut self) -> Result<u64, ClientError> {
        let sid = self.established()?;
        self.send(
            Command::LOGOFF,
            sid,
            0,
            1,
            Kind::Plain,
            None,
            &LogoffRequest,
        )
    }

    /// Queues CREATE.
    pub fn create(&mut self, tree_id: u32, open: &OpenRequest) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let body = CreateRequest {
            security_flags: 0,
            requested_oplock_level: open.caching.requested_level(),
            impersonation_level: ImpersonationLevel::IMPERSONATION,
            smb_create_flags: 0,
            desired_access: open.desired_access,
            file_attributes: open.file_attributes,
            share_access: open.share_access,
            create_disposition: open.disposition,
            create_options: open.options,
            name: open.path.clone(),
            contexts: Vec::new(),
        };
        let dialect = self.negotiated().map_or(Dialect::SMB202, |n| n.dialect);
        let body = CreateRequest {
            contexts: open.caching.contexts(dialect)?,
            ..body
        };
        self.send(
            Command::CREATE,
            sid,
            tree_id,
            1,
            Kind::Create {
                tree_id,
                lease_key: open.caching.lease_key(),
            },
            None,
            &body,
        )
    }

    /// Queues CLOSE (asking for the final attributes).
    pub fn close(&mut self, tree_id: u32, file_id: FileId) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let body = CloseRequest {
            flags: close_flags::POSTQUERY_ATTRIB,
            file_id,
        };
        self.send(
            Command::CLOSE,
            sid,
            tree_id,
            1,
            Kind::Close { file_id },
            None,
            &body,
        )
    }

    /// Queues FLUSH.
    pub fn flush(&mut self, tree_id: u32, file_id: FileId) -> Result<u64, ClientError> {
        let sid = self.established()?;
        self.send(
            Command::FLUSH,
            sid,
            tree_id,
            1,
            Kind::Plain,
            None,
            &FlushRequest { file_id },
        )
    }

    /// Queues READ of up to `length` bytes (capped at [`max_read_size`](Self::max_read_size)).
    pub fn read(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        offset: u64,
        length: u32,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let length = length.min(self.max_read_size());
        let body = ReadRequest {
            padding: ReadResponse::DATA_OFFSET,
            flags: 0,
            length,
            offset,
            file_id,
            minimum_count: 0,
            channel: 0,
            remaining_bytes: 0,
            channel_info: Vec::new(),
        };
        let charge = credit_charge(length as usize);
        self.send(
            Command::READ,
            sid,
            tree_id,
            charge,
            Kind::Plain,
            None,
            &body,
        )
    }

    /// Queues WRITE of `data` at `offset`; `data` must fit in
    /// [`max_write_size`](Self::max_write_size).
    pub fn write(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        if data.len() > self.max_write_size() as usize {
            return Err(StateError::WriteTooLarge {
                len: data.len(),
                max: self.max_write_size(),
            }
            .into());
        }
        let charge = credit_charge(data.len());
        let body = WriteRequest {
            offset,
            file_id,
            channel: 0,
            remaining_bytes: 0,
            flags: 0,
            data,
        };
        self.send(
            Command::WRITE,
            sid,
            tree_id,
            charge,
            Kind::Plain,
            None,
            &body,
        )
    }

    /// Queues WRITE at `offset` of the data in `message[WRITE_DATA_AT..]`, without copying
    /// it: the header and the WRITE fixed part are written into the first
    /// [`WRITE_DATA_AT`] bytes (whatever they hold), then the message is signed in place.
    /// A transfer reads its source straight into such a buffer.
    pub fn write_in_place(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        offset: u64,
        message: Vec<u8>,
    ) -> Result<u64, ClientError> {
        self.write_in_place_digested(tree_id, file_id, offset, message, None)
    }

    /// [`write_in_place`](Self::write_in_place) with the data's part of the signature taken
    /// ahead: `digest` is [`SigningKey::tail_digest`] of `message[WRITE_DATA_AT..]` under
    /// [`request_signing_key`](Self::request_signing_key), for instance on the thread that
    /// read the data from a file. Only the header and WRITE's fixed part are hashed here; a
    /// digest that cannot serve (another key, or none is needed) is ignored.
    pub fn write_in_place_digested(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        offset: u64,
        mut message: Vec<u8>,
        digest: Option<&TailDigest>,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let len = message.len().saturating_sub(WRITE_DATA_AT);
        if message.len() < WRITE_DATA_AT || len > self.max_write_size() as usize {
            return Err(StateError::WriteTooLarge {
                len,
                max: self.max_write_size(),
            }
            .into());
        }
        let charge = credit_charge(len);
        let fixed = WriteRequest {
            offset,
            file_id,
            channel: 0,
            remaining_bytes: 0,
            flags: 0,
            data: Vec::new(),
        };
        self.send_with(
            Command::WRITE,
            sid,
            tree_id,
            charge,
            Kind::Plain,
            None,
            digest,
            move |header| {
                let mut head = Vec::with_capacity(WRITE_DATA_AT);
                header.encode(&mut head);
                fixed.encode_fixed(len, &mut head);
                message[..WRITE_DATA_AT].copy_from_slice(&head);
                message
            },
        )
    }

    /// The key this session's requests are signed with, when they are signed: what a
    /// caller digests WRITE data with ahead ([`write_in_place_digested`](Self::write_in_place_digested)).
    pub fn request_signing_key(&self) -> Option<&SigningKey> {
        self.phase
            .session()
            .filter(|s| s.signing_required)
            .and_then(|s| s.key.as_ref())
    }

    /// Queues QUERY_DIRECTORY (FileIdBothDirectoryInformation) on an open directory.
    /// `restart` starts the enumeration over; otherwise it continues where it stopped.
    pub fn query_directory(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        pattern: &str,
        restart: bool,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let class = FileInfoClass::ID_BOTH_DIRECTORY;
        let body = QueryDirectoryRequest {
            file_information_class: class,
            flags: if restart {
                query_directory_flags::RESTART_SCANS
            } else {
                0
            },
            file_index: 0,
            file_id,
            pattern: pattern.into(),
            output_buffer_length: self.transact_size(),
        };
        let charge = credit_charge(body.output_buffer_length as usize);
        self.send(
            Command::QUERY_DIRECTORY,
            sid,
            tree_id,
            charge,
            Kind::QueryDirectory(class),
            None,
            &body,
        )
    }

    /// Queues QUERY_INFO for `class` of `info_type`.
    pub fn query_info(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        info_type: InfoType,
        class: u8,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let body = QueryInfoRequest {
            info_type,
            file_info_class: class,
            output_buffer_length: self.transact_size().min(65_536),
            input_buffer: Vec::new(),
            additional_information: 0,
            flags: 0,
            file_id,
        };
        self.send(
            Command::QUERY_INFO,
            sid,
            tree_id,
            1,
            Kind::Plain,
            None,
            &body,
        )
    }

    /// Queues SET_INFO of a FILE class with an encoded `buffer`.
    pub fn set_info(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        class: FileInfoClass,
        buffer: Vec<u8>,
    ) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let body = SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: class.0,
            additional_information: 0,
            file_id,
            buffer,
        };
        self.send(Command::SET_INFO, sid, tree_id, 1, Kind::Plain, None, &body)
    }

    /// Queues SET_INFO FileDispositionInformation: delete the file when it is closed (the
    /// open must have DELETE access, see [`OpenRequest::for_delete`]).
    pub fn delete_on_close(&mut self, tree_id: u32, file_id: FileId) -> Result<u64, ClientError> {
        let mut buf = Vec::new();
        FileDispositionInformation {
            delete_pending: true,
        }
        .encode(&mut buf);
        self.set_info(tree_id, file_id, FileInfoClass::DISPOSITION, buf)
    }

    /// Queues SET_INFO FileRenameInformation: rename the open file to `new_path`
    /// (share-relative).
    pub fn rename(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        new_path: &str,
        replace_if_exists: bool,
    ) -> Result<u64, ClientError> {
        let mut buf = Vec::new();
        FileRenameInformation {
            replace_if_exists,
            root_directory: 0,
            file_name: new_path.into(),
        }
        .encode(&mut buf);
        self.set_info(tree_id, file_id, FileInfoClass::RENAME, buf)
    }

    /// Builds, signs when the session requires it, and queues one request; returns the id
    /// its answer will carry (`caller_id`, or the MessageId).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send<B: EncodeBody>(
        &mut self,
        command: Command,
        session_id: u64,
        tree_id: u32,
        credit_charge: u16,
        kind: Kind,
        caller_id: Option<u64>,
        body: &B,
    ) -> Result<u64, ClientError> {
        self.send_with(
            command,
            session_id,
            tree_id,
            credit_charge,
            kind,
            caller_id,
            None,
            |header| build(header, body),
        )
    }

    /// [`send`](Self::send) with the message built by `build` from the final header.
    #[allow(clippy::too_many_arguments)]
    fn send_with(
        &mut self,
        command: Command,
        session_id: u64,
        tree_id: u32,
        credit_charge: u16,
        kind: Kind,
        caller_id: Option<u64>,
        tail: Option<&TailDigest>,
        build: impl FnOnce(&Header) -> Vec<u8>,
    ) -> Result<u64, ClientError> {
        let charge = credit_charge.max(1);
        if self.credits < u32::from(charge) {
            return Err(ClientError::NoCredits {
                have: self.credits,
                need: charge,
            });
        }
        let message_id = self.next_message_id;
        let dialect = self.phase.negotiated().map(|n| n.info.dialect);
        let mut header = Header::request(command, message_id, session_id, tree_id);
        // MS-SMB2 3.2.4.1.5: CreditCharge is 0 on 2.0.2, which has no multi-credit requests.
        header.credit_charge = if dialect == Some(Dialect::SMB202) {
            0
        } else {
            charge
        };
        header.credits = CREDIT_REQUEST.max(charge);
        let mut message = build(&header);
        // Sign when the session requires it (MS-SMB2 3.2.4.1.1). Always signed when a key
        // exists: the validation IOCTL (3.2.5.5), and TREE_CONNECT on 3.1.1, which a server
        // must otherwise refuse (3.3.5.7; it replaces the validation on 3.1.1).
        let always = matches!(kind, Kind::ValidateNegotiate { .. })
            || (command == Command::TREE_CONNECT && dialect == Some(Dialect::SMB311));
        if let Some(s) = self.phase.session() {
            if session_id == s.id && session_id != 0 && (s.signing_required || always) {
                if let Some(key) = &s.key {
                    match tail {
                        Some(t) => key.sign_with_tail(&mut message, t),
                        None => key.sign(&mut message),
                    }
                    .map_err(ProtocolError::Sign)?;
                }
            }
        }
        // 3.1.1 preauth integrity (MS-SMB2 3.2.4.2.2.2, 3.2.4.2.3): the connection's hash
        // covers NEGOTIATE; each session's hash starts from it and covers that session's
        // SESSION_SETUP requests.
        match (&mut self.phase, command) {
            (
                Phase::Negotiating {
                    preauth: Some(h), ..
                },
                Command::NEGOTIATE,
            ) => h.update(&message),
            (Phase::Authenticating(_, auth), Command::SESSION_SETUP) => {
                if let Some(h) = &mut auth.preauth {
                    h.update(&message);
                }
            }
            _ => {}
        }
        self.credits -= u32::from(charge);
        self.next_message_id += u64::from(charge);
        let id = caller_id.unwrap_or(message_id);
        self.outstanding.insert(
            message_id,
            Outstanding {
                id,
                command,
                session_id,
                tree_id,
                async_id: None,
                kind,
            },
        );
        self.transmit.push_back(message);
        Ok(id)
    }
}
