//! Sans-IO SMB2/3 client connection: requests in, bytes out; bytes in, events out.
//!
//! # Call order (quinn-proto style)
//! 1. `ClientConnection::new(config)`.
//! 2. Queue a request: [`negotiate`](ClientConnection::negotiate), then
//!    [`session_setup`](ClientConnection::session_setup), then
//!    [`tree_connect`](ClientConnection::tree_connect), then file requests
//!    ([`create`](ClientConnection::create), [`read`](ClientConnection::read), ...).
//!    Each returns the request's MessageId; its answer comes back as a
//!    [`ClientEvent::Response`] with the same id.
//! 3. Drain [`poll_transmit`](ClientConnection::poll_transmit) and send every buffer
//!    (one SMB2 message each, without the 4-byte TCP prefix).
//! 4. Feed every received frame to [`handle_input`](ClientConnection::handle_input)
//!    (a single message or a compound chain, prefix stripped).
//! 5. Drain [`poll_event`](ClientConnection::poll_event); then go back to 3: handling a
//!    response may queue messages of its own (the next SESSION_SETUP leg, the
//!    FSCTL_VALIDATE_NEGOTIATE_INFO after a 3.0 TREE_CONNECT).
//!
//! A SESSION_SETUP exchange spans several messages but is one request: its
//! `Response` (and `SessionEstablished`) carry the id `session_setup` returned.
//! A TREE_CONNECT on 3.0/3.0.2 is answered only once the negotiation was validated.
//!
//! A connection that failed (bad signature, protocol violation, validation mismatch)
//! stays failed: every later call returns [`ClientError::Failed`] with the first reason.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use zeroize::Zeroizing;

pub use crate::auth::Credentials;
use crate::auth::{ClientAuth, ClientStep};
use crate::codec::DecodeError;
use crate::compound::split_chain;
use crate::header::{Command, Dialect, Header, NtStatus, OPLOCK_BREAK_MESSAGE_ID};
use crate::messages::close::{close_flags, CloseRequest, CloseResponse};
use crate::messages::create::{
    access, create_options, file_attributes, share_access, CreateAction, CreateDisposition,
    CreateRequest, CreateResponse, ImpersonationLevel, OplockLevel,
};
use crate::messages::echo::EchoRequest;
use crate::messages::flush::FlushRequest;
use crate::messages::info::{
    decode_directory_entries, FileDispositionInformation, FileInfoClass, FileRenameInformation,
};
use crate::messages::ioctl::{
    fsctl, ioctl_flags, IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
};
use crate::messages::logoff::LogoffRequest;
use crate::messages::negotiate::{
    capabilities, Guid, HashAlgorithm, NegotiateContext, NegotiateContextType, NegotiateRequest,
    NegotiateResponse,
};
use crate::messages::query_directory::{
    query_directory_flags, QueryDirectoryRequest, QueryDirectoryResponse,
};
use crate::messages::query_info::{InfoType, QueryInfoRequest, QueryInfoResponse};
use crate::messages::read::ReadRequest;
use crate::messages::read::ReadResponse;
use crate::messages::session_setup::{session_flags, SessionSetupRequest, SessionSetupResponse};
use crate::messages::set_info::SetInfoRequest;
use crate::messages::tree_connect::{TreeConnectRequest, TreeConnectResponse};
use crate::messages::tree_disconnect::TreeDisconnectRequest;
use crate::messages::write::{WriteRequest, WriteResponse};
use crate::messages::{build, EncodeBody, FileId};
use crate::policy::{SigningPolicy, SIGNING_REQUIRED};
use crate::signing::{Algorithm, PreauthHash, SigningKey};

/// Credits asked for in every request: enough for a few 1 MiB reads in flight.
const CREDIT_REQUEST: u16 = 64;
/// Largest READ/WRITE we issue, whatever the server allows (keeps frames well under the
/// 16 MiB Direct-TCP limit).
const MAX_IO: u32 = 8 * 1024 * 1024;
/// Without LARGE_MTU (and always on 2.0.2) one request moves at most 64 KiB.
const SMALL_MTU: u32 = 64 * 1024;

/// The client's settings (LanmanWorkstation, in Windows terms).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Dialects offered in NEGOTIATE, in any order (the server picks the highest it knows).
    pub dialects: Vec<Dialect>,
    /// RequireSecuritySignature / EnableSecuritySignature.
    pub signing: SigningPolicy,
    /// 3.1.1 SIGNING_CAPABILITIES, in preference order. Empty: the context is not sent and
    /// 3.1.1 signs with AES-CMAC.
    pub signing_algorithms: Vec<Algorithm>,
    pub credentials: Credentials,
    /// The server as the user named it (host or host:port): used in audit events.
    pub server_name: String,
    /// Connection.ClientGuid; a random one by default.
    pub client_guid: [u8; 16],
}

impl ClientConfig {
    /// Every dialect, signing required (the Windows 11 24H2 default), GMAC then CMAC then
    /// HMAC for 3.1.1, a random ClientGuid.
    pub fn new(server_name: &str, credentials: Credentials) -> Self {
        let mut client_guid = [0u8; 16];
        // A GUID needs no secrecy; an all-zero one still works if randomness fails.
        let _ = getrandom::getrandom(&mut client_guid);
        ClientConfig {
            dialects: Dialect::ALL.to_vec(),
            signing: SigningPolicy::REQUIRED,
            signing_algorithms: vec![
                Algorithm::AesGmac,
                Algorithm::AesCmac,
                Algorithm::HmacSha256,
            ],
            credentials,
            server_name: server_name.into(),
            client_guid,
        }
    }

    /// Offers every dialect up to and including `max`.
    pub fn max_dialect(mut self, max: Dialect) -> Self {
        self.dialects = Dialect::ALL.iter().copied().filter(|d| *d <= max).collect();
        self
    }

    /// Offers exactly one dialect.
    pub fn only_dialect(mut self, dialect: Dialect) -> Self {
        self.dialects = vec![dialect];
        self
    }
}

/// A GSS mechanism as the state machine drives it. The default one (NTLMv2 in SPNEGO, from
/// [`ClientConfig::credentials`]) is built by [`ClientConnection::session_setup`]; a relay
/// tool plugs in its own with [`ClientConnection::session_setup_with`].
pub trait Authenticator: fmt::Debug + Send {
    /// The first token, given the server's NEGOTIATE security buffer (may be empty).
    fn initial_token(&mut self, server_hint: &[u8]) -> Result<Vec<u8>, String>;
    /// Consumes a server token; `Some(token)` to send next, `None` when done.
    fn step(&mut self, server_token: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Once done: the session key (None for an anonymous session, or when unknown).
    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>>;
}

/// What went wrong. `Failed` connections stay failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The request is not valid in the connection's current state.
    State(&'static str),
    /// Not enough credits granted for this request yet.
    NoCredits { have: u32, need: u16 },
    /// A response whose signature is missing or wrong on a session that requires one.
    BadSignature {
        message_id: u64,
        command: Command,
        reason: String,
    },
    /// A response that does not follow the protocol (unknown MessageId, bad body, ...).
    Protocol(String),
    /// FSCTL_VALIDATE_NEGOTIATE_INFO showed the NEGOTIATE was tampered with.
    ValidateNegotiate(String),
    /// The server offered a guest or anonymous session and this client requires signing.
    UnsignableSessionRefused { guest: bool },
    /// The authentication mechanism failed locally.
    Auth(String),
    /// The connection failed earlier for this reason; nothing more is processed.
    Failed(Box<ClientError>),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::State(s) => write!(f, "invalid request in this state: {s}"),
            ClientError::NoCredits { have, need } => {
                write!(f, "not enough credits: have {have}, need {need}")
            }
            ClientError::BadSignature {
                message_id,
                command,
                reason,
            } => write!(
                f,
                "rejected {command} response (MessageId {message_id}): {reason}"
            ),
            ClientError::Protocol(s) => write!(f, "protocol error: {s}"),
            ClientError::ValidateNegotiate(s) => {
                write!(
                    f,
                    "negotiation validation failed (possible downgrade attack): {s}"
                )
            }
            ClientError::UnsignableSessionRefused { guest } => write!(
                f,
                "the server granted {} session, which cannot be signed, and this client \
                 requires signing (RequireSecuritySignature)",
                if *guest { "a guest" } else { "an anonymous" }
            ),
            ClientError::Auth(s) => write!(f, "authentication: {s}"),
            ClientError::Failed(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

/// What the NEGOTIATE settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateInfo {
    pub dialect: Dialect,
    /// The server's SecurityMode (SIGNING_ENABLED / SIGNING_REQUIRED).
    pub server_security_mode: u16,
    pub server_requires_signing: bool,
    pub server_guid: [u8; 16],
    pub server_capabilities: u32,
    /// The algorithm sessions will sign with (3.1.1: negotiated, or CMAC when none was).
    pub signing_algorithm: Algorithm,
    /// Whether the 3.1.1 server answered SIGNING_CAPABILITIES.
    pub signing_algorithm_negotiated: bool,
    pub max_read_size: u32,
    pub max_write_size: u32,
    pub max_transact_size: u32,
}

/// The decoded part of a response that a caller needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// An error status (or a command whose response carries nothing useful).
    None,
    Negotiate(NegotiateInfo),
    SessionSetup {
        session_id: u64,
        guest: bool,
        anonymous: bool,
        signed: bool,
    },
    TreeConnect {
        tree_id: u32,
        share_type: u8,
    },
    Create {
        file_id: FileId,
        create_action: CreateAction,
        file_attributes: u32,
        end_of_file: u64,
        last_write_time: u64,
    },
    Close {
        file_attributes: u32,
        end_of_file: u64,
        last_write_time: u64,
    },
    Read {
        data: Vec<u8>,
    },
    Write {
        count: u32,
    },
    /// QUERY_DIRECTORY entries (STATUS_NO_MORE_FILES ends a listing, with `None`).
    Directory {
        entries: Vec<DirEntry>,
    },
    /// A QUERY_INFO output buffer, to decode with `messages::info`.
    Info {
        buffer: Vec<u8>,
    },
}

/// One QUERY_DIRECTORY entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub attributes: u32,
    pub size: u64,
    pub creation_time: u64,
    pub last_write_time: u64,
}

/// The parameters of a CREATE, with constructors for what a file client does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// Share-relative path with backslashes, no leading separator ("" = the share root).
    pub path: String,
    pub desired_access: u32,
    pub file_attributes: u32,
    pub share_access: u32,
    pub disposition: CreateDisposition,
    pub options: u32,
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
        }
    }
}

/// Output of the state machine, read with [`ClientConnection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The answer to a request (its final response; interim STATUS_PENDING is absorbed).
    Response {
        id: u64,
        command: Command,
        status: NtStatus,
        body: ResponseBody,
    },
    /// Audit (client side of event 31998's spirit): the server's NEGOTIATE did not set
    /// SIGNING_REQUIRED. Sessions are then signed only if this client requires it.
    ServerDoesNotRequireSigning { server: String, dialect: Dialect },
    /// A session is up.
    SessionEstablished {
        dialect: Dialect,
        algorithm: Option<Algorithm>,
        signed: bool,
        guest: bool,
        anonymous: bool,
    },
    /// A response was rejected for its signature; the connection has failed.
    SignatureRejected {
        message_id: u64,
        command: Command,
        reason: String,
    },
}

/// The connection's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Negotiating,
    Negotiated,
    Authenticating,
    Established,
}

/// Everything a response needs from its request.
#[derive(Debug)]
struct Outstanding {
    /// The id the caller was given (differs from the MessageId for later SESSION_SETUP legs).
    id: u64,
    command: Command,
    session_id: u64,
    kind: Kind,
}

/// Per-request handling beyond "decode and report".
#[derive(Debug)]
enum Kind {
    Plain,
    QueryDirectory(FileInfoClass),
    Negotiate,
    SessionSetup,
    TreeConnect,
    /// The validation IOCTL; `tree` is the held TREE_CONNECT answer.
    ValidateNegotiate {
        tree_event: Box<ClientEvent>,
    },
}

/// The one session of this connection.
#[derive(Debug)]
struct Session {
    id: u64,
    /// Session.SigningRequired (MS-SMB2 3.2.5.3.1).
    signing_required: bool,
    /// None for guest and anonymous sessions, and until authentication completes.
    key: Option<SigningKey>,
    guest: bool,
    anonymous: bool,
}

/// The in-progress SESSION_SETUP exchange.
#[derive(Debug)]
struct Auth {
    mechanism: Box<dyn Authenticator>,
    /// The id returned to the caller.
    id: u64,
    /// Session.PreauthIntegrityHashValue (3.1.1 only).
    preauth: Option<PreauthHash>,
    session_id: u64,
}

/// The sans-IO client. See the module documentation for the call order.
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConfig,
    phase: Phase,
    failed: Option<ClientError>,
    next_message_id: u64,
    /// Credits granted and not yet spent.
    credits: u32,
    outstanding: HashMap<u64, Outstanding>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    negotiated: Option<NegotiateInfo>,
    /// What we sent in NEGOTIATE, for FSCTL_VALIDATE_NEGOTIATE_INFO.
    sent_capabilities: u32,
    sent_guid: [u8; 16],
    /// The server's NEGOTIATE security buffer (the SPNEGO hint).
    gss_hint: Vec<u8>,
    /// Connection.PreauthIntegrityHashValue (3.1.1 only).
    preauth: Option<PreauthHash>,
    auth: Option<Auth>,
    session: Option<Session>,
    negotiate_validated: bool,
}

impl ClientConnection {
    pub fn new(config: ClientConfig) -> Self {
        ClientConnection {
            config,
            phase: Phase::Idle,
            failed: None,
            next_message_id: 0,
            credits: 1,
            outstanding: HashMap::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            negotiated: None,
            sent_capabilities: 0,
            sent_guid: [0; 16],
            gss_hint: Vec::new(),
            preauth: None,
            auth: None,
            session: None,
            negotiate_validated: false,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// What NEGOTIATE settled, once it has.
    pub fn negotiated(&self) -> Option<&NegotiateInfo> {
        self.negotiated.as_ref()
    }

    /// The established session's id.
    pub fn session_id(&self) -> Option<u64> {
        self.session
            .as_ref()
            .filter(|_| self.phase == Phase::Established)
            .map(|s| s.id)
    }

    /// Whether requests and responses of the session are signed.
    pub fn session_signed(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.signing_required && s.key.is_some())
    }

    /// Whether the established session is a guest session (unsigned by nature).
    pub fn session_is_guest(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.guest)
    }

    /// Whether the established session is anonymous (null session).
    pub fn session_is_anonymous(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.anonymous)
    }

    /// Credits granted and not yet spent.
    pub fn credits(&self) -> u32 {
        self.credits
    }

    /// The first failure, if the connection has failed.
    pub fn failure(&self) -> Option<&ClientError> {
        self.failed.as_ref()
    }

    /// The largest READ length to ask for.
    pub fn max_read_size(&self) -> u32 {
        self.io_limit(
            self.negotiated
                .as_ref()
                .map_or(SMALL_MTU, |n| n.max_read_size),
        )
    }

    /// The largest WRITE length to send.
    pub fn max_write_size(&self) -> u32 {
        self.io_limit(
            self.negotiated
                .as_ref()
                .map_or(SMALL_MTU, |n| n.max_write_size),
        )
    }

    fn io_limit(&self, server_max: u32) -> u32 {
        let large = self.negotiated.as_ref().is_some_and(|n| {
            n.dialect != Dialect::SMB202 && n.server_capabilities & capabilities::LARGE_MTU != 0
        });
        let cap = if large { MAX_IO } else { SMALL_MTU };
        server_max.clamp(1, cap)
    }

    /// The next message to send (one SMB2 message, no TCP prefix).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn check_alive(&self) -> Result<(), ClientError> {
        match &self.failed {
            Some(e) => Err(ClientError::Failed(Box::new(e.clone()))),
            None => Ok(()),
        }
    }

    /// Records the first failure and returns it.
    fn fail(&mut self, e: ClientError) -> ClientError {
        if self.failed.is_none() {
            self.failed = Some(e.clone());
        }
        self.outstanding.clear();
        self.transmit.clear();
        e
    }

    // ----- requests -------------------------------------------------------------------

    /// Queues NEGOTIATE with the configured dialects, SecurityMode and (3.1.1) contexts.
    pub fn negotiate(&mut self) -> Result<u64, ClientError> {
        self.check_alive()?;
        if self.phase != Phase::Idle {
            return Err(ClientError::State("NEGOTIATE was already sent"));
        }
        if self.config.dialects.is_empty() {
            return Err(ClientError::State("no dialect to offer"));
        }
        let offers_3x = self.config.dialects.iter().any(|d| d.is_smb3());
        let only_202 = self.config.dialects.iter().all(|d| *d == Dialect::SMB202);
        self.sent_capabilities = if offers_3x {
            capabilities::LARGE_MTU
        } else {
            0
        };
        // MS-SMB2 3.2.4.2.2.2: ClientGuid is zero when only 2.0.2 is offered.
        self.sent_guid = if only_202 {
            [0; 16]
        } else {
            self.config.client_guid
        };
        let mut contexts = Vec::new();
        if self.config.dialects.contains(&Dialect::SMB311) {
            // MS-SMB2 3.2.4.2.2.2: Connection.PreauthIntegrityHashValue starts as 64 zero bytes.
            self.preauth = Some(PreauthHash::new());
            let mut salt = [0u8; 32];
            getrandom::getrandom(&mut salt)
                .map_err(|e| ClientError::Auth(format!("no randomness for the salt: {e}")))?;
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
            capabilities: self.sent_capabilities,
            client_guid: Guid(self.sent_guid),
            client_start_time: 0,
            dialects: self.config.dialects.clone(),
            contexts,
        };
        let id = self.send(Command::NEGOTIATE, 0, 0, 1, Kind::Negotiate, None, &body)?;
        self.phase = Phase::Negotiating;
        Ok(id)
    }

    /// Starts SESSION_SETUP with the configured credentials (NTLMv2 in SPNEGO).
    pub fn session_setup(&mut self) -> Result<u64, ClientError> {
        let mech = default_authenticator(&self.config.credentials).map_err(ClientError::Auth)?;
        self.session_setup_with(mech)
    }

    /// Starts SESSION_SETUP with any GSS mechanism (a relay tool passes one that forwards
    /// the victim's tokens).
    pub fn session_setup_with(
        &mut self,
        mut mechanism: Box<dyn Authenticator>,
    ) -> Result<u64, ClientError> {
        self.check_alive()?;
        if self.phase != Phase::Negotiated {
            return Err(ClientError::State(
                "SESSION_SETUP needs a negotiated connection",
            ));
        }
        let token = mechanism
            .initial_token(&self.gss_hint)
            .map_err(ClientError::Auth)?;
        self.auth = Some(Auth {
            mechanism,
            id: self.next_message_id,
            preauth: self.preauth.clone(),
            session_id: 0,
        });
        self.session = None;
        self.phase = Phase::Authenticating;
        let sent = self.send_session_setup(token);
        if sent.is_err() {
            // Nothing went out: back to where we were.
            self.auth = None;
            self.phase = Phase::Negotiated;
        }
        sent
    }

    fn send_session_setup(&mut self, token: Vec<u8>) -> Result<u64, ClientError> {
        let Some(auth) = &self.auth else {
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

    /// Queues ECHO.
    pub fn echo(&mut self) -> Result<u64, ClientError> {
        self.check_alive()?;
        if matches!(self.phase, Phase::Idle | Phase::Negotiating) {
            return Err(ClientError::State("ECHO needs a negotiated connection"));
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
            requested_oplock_level: OplockLevel::NONE,
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
        self.send(Command::CREATE, sid, tree_id, 1, Kind::Plain, None, &body)
    }

    /// Queues CLOSE (asking for the final attributes).
    pub fn close(&mut self, tree_id: u32, file_id: FileId) -> Result<u64, ClientError> {
        let sid = self.established()?;
        let body = CloseRequest {
            flags: close_flags::POSTQUERY_ATTRIB,
            file_id,
        };
        self.send(Command::CLOSE, sid, tree_id, 1, Kind::Plain, None, &body)
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
            return Err(ClientError::State(
                "WRITE larger than the negotiated MaxWriteSize",
            ));
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

    /// Output buffer size for QUERY_DIRECTORY / QUERY_INFO.
    fn transact_size(&self) -> u32 {
        self.io_limit(
            self.negotiated
                .as_ref()
                .map_or(SMALL_MTU, |n| n.max_transact_size),
        )
        .min(SMALL_MTU)
    }

    fn established(&self) -> Result<u64, ClientError> {
        self.check_alive()?;
        self.session_id()
            .ok_or(ClientError::State("no established session"))
    }

    /// Builds, signs when the session requires it, and queues one request.
    #[allow(clippy::too_many_arguments)]
    fn send<B: EncodeBody>(
        &mut self,
        command: Command,
        session_id: u64,
        tree_id: u32,
        credit_charge: u16,
        kind: Kind,
        caller_id: Option<u64>,
        body: &B,
    ) -> Result<u64, ClientError> {
        let charge = credit_charge.max(1);
        if self.credits < u32::from(charge) {
            return Err(ClientError::NoCredits {
                have: self.credits,
                need: charge,
            });
        }
        let message_id = self.next_message_id;
        let mut header = Header::request(command, message_id, session_id, tree_id);
        // MS-SMB2 3.2.4.1.5: CreditCharge is 0 on 2.0.2, which has no multi-credit requests.
        header.credit_charge = if self
            .negotiated
            .as_ref()
            .is_some_and(|n| n.dialect == Dialect::SMB202)
        {
            0
        } else {
            charge
        };
        header.credits = CREDIT_REQUEST.max(charge);
        let mut message = build(&header, body);
        // Sign when the session requires it (MS-SMB2 3.2.4.1.1). Always signed when a key
        // exists: the validation IOCTL (3.2.5.5), and TREE_CONNECT on 3.1.1, which a server
        // must otherwise refuse (3.3.5.7; it replaces the validation on 3.1.1).
        let is_311 = self
            .negotiated
            .as_ref()
            .is_some_and(|n| n.dialect == Dialect::SMB311);
        let always = matches!(kind, Kind::ValidateNegotiate { .. })
            || (command == Command::TREE_CONNECT && is_311);
        if let Some(s) = &self.session {
            if session_id == s.id && session_id != 0 && (s.signing_required || always) {
                if let Some(key) = &s.key {
                    key.sign(&mut message)
                        .map_err(|e| ClientError::Protocol(format!("cannot sign: {e}")))?;
                }
            }
        }
        // 3.1.1 preauth integrity (MS-SMB2 3.2.4.2.2.2, 3.2.4.2.3): the connection's hash
        // covers NEGOTIATE; each session's hash starts from it and covers that session's
        // SESSION_SETUP requests.
        if command == Command::NEGOTIATE {
            if let Some(h) = &mut self.preauth {
                h.update(&message);
            }
        } else if command == Command::SESSION_SETUP {
            if let Some(h) = self.auth.as_mut().and_then(|a| a.preauth.as_mut()) {
                h.update(&message);
            }
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
                kind,
            },
        );
        self.transmit.push_back(message);
        Ok(id)
    }

    // ----- responses ------------------------------------------------------------------

    /// Processes one received frame: a single response or a compound chain of them.
    pub fn handle_input(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        self.check_alive()?;
        let ranges = split_chain(frame).map_err(|e| self.fail(e.into()))?;
        for range in ranges {
            let message = frame.get(range).ok_or_else(|| {
                self.fail(ClientError::Protocol(
                    "chain range outside the frame".into(),
                ))
            })?;
            if let Err(e) = self.handle_message(message) {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn handle_message(&mut self, message: &[u8]) -> Result<(), ClientError> {
        let header = Header::parse(message)?;
        if !header.is_response() {
            return Err(ClientError::Protocol(format!(
                "received a request ({}) from the server",
                header.command
            )));
        }
        self.credits = self.credits.saturating_add(u32::from(header.credits));
        // Oplock/lease break notifications are never signed (MS-SMB2 3.2.5.1.3); we ask for
        // no oplocks, so there is nothing to acknowledge.
        if header.message_id == OPLOCK_BREAK_MESSAGE_ID {
            return Ok(());
        }
        // An interim response: the final one follows (MS-SMB2 3.2.5.1.5); never signed.
        if header.status == NtStatus::PENDING && header.async_id.is_some() {
            return Ok(());
        }
        let Some(out) = self.outstanding.remove(&header.message_id) else {
            return Err(ClientError::Protocol(format!(
                "response to MessageId {} which is not outstanding",
                header.message_id
            )));
        };
        if out.command != header.command {
            return Err(ClientError::Protocol(format!(
                "MessageId {} was {} but the response is {}",
                header.message_id, out.command, header.command
            )));
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
                self.push_response(out.id, &header, body);
                Ok(())
            }
            Kind::Plain => {
                let body = self.decode_plain(message, &header)?;
                if header.command == Command::LOGOFF && !header.status.is_error() {
                    // MS-SMB2 3.2.5.4: the session (and its key) is gone.
                    self.session = None;
                    self.phase = Phase::Negotiated;
                }
                self.push_response(out.id, &header, body);
                Ok(())
            }
        }
    }

    /// MS-SMB2 3.2.5.1.3: on a session with SigningRequired, every response must carry a
    /// valid signature, whether or not SMB2_FLAGS_SIGNED is set; a message claiming a
    /// signature is checked whenever a key exists. The final SESSION_SETUP response is
    /// checked in `on_session_setup`, once its key is derived.
    fn check_response_signature(
        &mut self,
        message: &[u8],
        header: &Header,
        out: &Outstanding,
    ) -> Result<(), ClientError> {
        if out.command == Command::SESSION_SETUP || out.session_id == 0 {
            return Ok(());
        }
        let Some(session) = &self.session else {
            return Ok(());
        };
        if session.id != out.session_id {
            return Ok(());
        }
        let must = session.signing_required || matches!(out.kind, Kind::ValidateNegotiate { .. });
        if !must && !header.is_signed() {
            return Ok(());
        }
        let result = match &session.key {
            Some(key) => key.verify(message).map_err(|e| e.to_string()),
            None if must => Err("no signing key for a session that must be signed".into()),
            None => Ok(()), // guest/anonymous: nothing to check a claimed signature with
        };
        match result {
            Ok(()) => Ok(()),
            Err(reason) => {
                let reason = if header.is_signed() {
                    reason
                } else {
                    format!("response is not signed on a session that requires signing ({reason})")
                };
                Err(self.reject_signature(header, reason))
            }
        }
    }

    /// Reports the answer to request `id` (`header` is the response's).
    fn push_response(&mut self, id: u64, header: &Header, body: ResponseBody) {
        self.events.push_back(ClientEvent::Response {
            id,
            command: header.command,
            status: header.status,
            body,
        });
    }

    fn reject_signature(&mut self, header: &Header, reason: String) -> ClientError {
        self.events.push_back(ClientEvent::SignatureRejected {
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

    fn on_negotiate(
        &mut self,
        message: &[u8],
        header: &Header,
        id: u64,
    ) -> Result<(), ClientError> {
        if header.status != NtStatus::SUCCESS {
            self.phase = Phase::Idle;
            self.push_response(id, header, ResponseBody::None);
            return Err(ClientError::Protocol(format!(
                "NEGOTIATE failed: {}",
                header.status
            )));
        }
        let resp = NegotiateResponse::read(message)?;
        let dialect = resp.dialect_revision;
        if !self.config.dialects.contains(&dialect) {
            return Err(ClientError::Protocol(format!(
                "server chose dialect {} which was not offered",
                dialect.dotted()
            )));
        }
        let mut negotiated_alg = None;
        if dialect == Dialect::SMB311 {
            // MS-SMB2 3.2.5.2: exactly one preauth hash algorithm, one we offered (SHA-512).
            match resp.context(NegotiateContextType::PREAUTH_INTEGRITY_CAPABILITIES) {
                Some(NegotiateContext::PreauthIntegrity {
                    hash_algorithms, ..
                }) if hash_algorithms.as_slice() == [HashAlgorithm::SHA512] => {}
                _ => {
                    return Err(ClientError::Protocol(
                        "3.1.1 NEGOTIATE response without a SHA-512 preauth integrity context"
                            .into(),
                    ))
                }
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
                        return Err(ClientError::Protocol(format!(
                            "server chose signing algorithm {algorithms:?}, which was not offered"
                        )))
                    }
                }
            }
            if let Some(h) = &mut self.preauth {
                h.update(message);
            }
        } else {
            // The preauth hash only exists on 3.1.1.
            self.preauth = None;
        }
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
        self.gss_hint = resp.security_buffer;
        self.negotiated = Some(info.clone());
        self.phase = Phase::Negotiated;
        self.push_response(id, header, ResponseBody::Negotiate(info));
        Ok(())
    }

    fn on_session_setup(&mut self, message: &[u8], header: &Header) -> Result<(), ClientError> {
        let Some(auth) = self.auth.as_mut() else {
            return Err(ClientError::Protocol(
                "SESSION_SETUP response without a request".into(),
            ));
        };
        let id = auth.id;
        let status = header.status;
        if status != NtStatus::SUCCESS && status != NtStatus::MORE_PROCESSING_REQUIRED {
            // MS-SMB2 3.2.5.3.1: return the error to the caller; the session is gone.
            self.auth = None;
            self.phase = Phase::Negotiated;
            self.push_response(id, header, ResponseBody::None);
            return Ok(());
        }
        let resp = SessionSetupResponse::read(message)?;
        if auth.session_id == 0 {
            auth.session_id = header.session_id;
        } else if auth.session_id != header.session_id {
            return Err(ClientError::Protocol(
                "SessionId changed during SESSION_SETUP".into(),
            ));
        }
        if status == NtStatus::MORE_PROCESSING_REQUIRED {
            // 3.1.1: every SESSION_SETUP response but the final one joins the hash.
            if let Some(h) = &mut auth.preauth {
                h.update(message);
            }
            let next = auth
                .mechanism
                .step(&resp.security_buffer)
                .map_err(ClientError::Auth)?;
            let Some(token) = next else {
                return Err(ClientError::Auth(
                    "the server wants more but the mechanism has nothing to send".into(),
                ));
            };
            self.send_session_setup(token)?;
            return Ok(());
        }
        // STATUS_SUCCESS: the mechanism may still have a final token to check (mechListMIC).
        if !resp.security_buffer.is_empty() {
            auth.mechanism
                .step(&resp.security_buffer)
                .map_err(ClientError::Auth)?;
        }
        let Some(auth) = self.auth.take() else {
            return Ok(());
        };
        let Some(info) = self.negotiated.clone() else {
            return Err(ClientError::State("SESSION_SETUP before NEGOTIATE"));
        };
        if resp.session_flags & session_flags::ENCRYPT_DATA != 0 {
            // We never offer encryption; a server that insists cannot be talked to.
            return Err(ClientError::Protocol(
                "the server requires encryption for this session (SMB2_SESSION_FLAG_ENCRYPT_DATA), \
                 which this client does not implement"
                    .into(),
            ));
        }
        let guest = resp.is_guest();
        let session_key = auth.mechanism.session_key();
        let anonymous = resp.is_null() || session_key.is_none();
        // MS-SMB2 3.2.5.3.1: Session.SigningRequired when the client requires signing or the
        // server's NEGOTIATE SecurityMode has SIGNING_REQUIRED.
        let required =
            self.config.signing.require_security_signature || info.server_requires_signing;
        if guest || anonymous {
            // A guest or anonymous session has no key to sign with. A client that requires
            // signing refuses it, as Windows 11 24H2 does.
            if self.config.signing.require_security_signature {
                self.phase = Phase::Negotiated;
                return Err(ClientError::UnsignableSessionRefused { guest });
            }
            self.session = Some(Session {
                id: auth.session_id,
                signing_required: false,
                key: None,
                guest,
                anonymous,
            });
        } else {
            let Some(session_key) = session_key else {
                return Err(ClientError::Auth("no session key".into()));
            };
            let preauth = auth.preauth.as_ref().map(PreauthHash::value);
            let key = super::session_signing_key(
                info.dialect,
                info.signing_algorithm,
                &session_key,
                preauth.as_ref(),
            )
            .map_err(|e| ClientError::Auth(format!("signing key: {e}")))?;
            // The final SESSION_SETUP response proves the server holds the same key (and, on
            // 3.1.1, saw the same NEGOTIATE: the key depends on the preauth hash).
            // MS-SMB2 3.2.5.3.1: on 3.1.1 it MUST be signed; otherwise it is checked when
            // signed, and must be signed when the session requires signing (3.2.5.1.3).
            let must = info.dialect == Dialect::SMB311 || required;
            if header.is_signed() || must {
                if let Err(e) = key.verify(message) {
                    let reason = if header.is_signed() {
                        e.to_string()
                    } else {
                        "final SESSION_SETUP response is not signed".into()
                    };
                    return Err(self.reject_signature(header, reason));
                }
            }
            self.session = Some(Session {
                id: auth.session_id,
                signing_required: required,
                key: Some(key),
                guest: false,
                anonymous: false,
            });
        }
        self.phase = Phase::Established;
        self.negotiate_validated = false;
        let signed = self.session_signed();
        self.events.push_back(ClientEvent::SessionEstablished {
            dialect: info.dialect,
            algorithm: signed.then_some(info.signing_algorithm),
            signed,
            guest,
            anonymous,
        });
        self.push_response(
            id,
            header,
            ResponseBody::SessionSetup {
                session_id: auth.session_id,
                guest,
                anonymous,
                signed,
            },
        );
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
            && !self.negotiate_validated
            && self
                .negotiated
                .as_ref()
                .is_some_and(|n| n.dialect == Dialect::SMB30 || n.dialect == Dialect::SMB302)
            && self.session.as_ref().is_some_and(|s| s.key.is_some());
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
        let mut input = Vec::new();
        ValidateNegotiateInfoRequest {
            capabilities: self.sent_capabilities,
            guid: Guid(self.sent_guid),
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
                "the server answered STATUS_ACCESS_DENIED".into(),
            ));
        }
        if header.status.is_error() {
            // A genuine (signed) refusal from a server without the FSCTL: nothing was shown
            // to be tampered with. Windows accepts this from servers that predate it.
            self.negotiate_validated = true;
            self.events.push_back(tree_event);
            return Ok(());
        }
        let resp = IoctlResponse::read(message)?;
        let v = ValidateNegotiateInfoResponse::read(&resp.output)?;
        let Some(n) = &self.negotiated else {
            return Err(ClientError::State("validation before NEGOTIATE"));
        };
        let mut mismatches = Vec::new();
        if v.capabilities != n.server_capabilities {
            mismatches.push(format!(
                "Capabilities 0x{:08x} (NEGOTIATE said 0x{:08x})",
                v.capabilities, n.server_capabilities
            ));
        }
        if v.guid.0 != n.server_guid {
            mismatches.push("ServerGuid differs".to_string());
        }
        if v.security_mode != n.server_security_mode {
            mismatches.push(format!(
                "SecurityMode 0x{:04x} (NEGOTIATE said 0x{:04x})",
                v.security_mode, n.server_security_mode
            ));
        }
        if v.dialect != n.dialect {
            mismatches.push(format!(
                "Dialect {} (NEGOTIATE said {})",
                v.dialect.dotted(),
                n.dialect.dotted()
            ));
        }
        if !mismatches.is_empty() {
            return Err(ClientError::ValidateNegotiate(mismatches.join(", ")));
        }
        self.negotiate_validated = true;
        self.events.push_back(tree_event);
        Ok(())
    }

    /// Decodes the body of a response that needs no further protocol step.
    fn decode_plain(&self, message: &[u8], header: &Header) -> Result<ResponseBody, ClientError> {
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
                data: ReadResponse::read(message)?.data,
            },
            Command::WRITE => ResponseBody::Write {
                count: WriteResponse::read(message)?.count,
            },
            // BUFFER_OVERFLOW (a warning, not an error) still carries the truncated buffer.
            Command::QUERY_INFO => ResponseBody::Info {
                buffer: QueryInfoResponse::read(message)?.buffer,
            },
            _ => ResponseBody::None,
        })
    }
}

/// MS-SMB2 3.2.4.1.5: one credit per 64 KiB of payload, at least one.
fn credit_charge(len: usize) -> u16 {
    super::credits_for_payload(len as u64)
}

/// NTLMv2 inside SPNEGO (or raw NTLMSSP), as [`ClientAuth`] implements it.
#[derive(Debug)]
pub struct NtlmAuthenticator(pub ClientAuth);

impl Authenticator for NtlmAuthenticator {
    fn initial_token(&mut self, _server_hint: &[u8]) -> Result<Vec<u8>, String> {
        // The hint only lists mechanisms; NTLMSSP is the one we speak either way.
        self.0.first_token().map_err(|e| e.to_string())
    }

    fn step(&mut self, server_token: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self.0.step(server_token) {
            Ok(ClientStep::Continue(token)) => Ok(Some(token)),
            Ok(ClientStep::Done) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn session_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        self.0
            .session_key()
            .map(|k| Zeroizing::new(k.as_bytes().to_vec()))
    }
}

/// The default mechanism: NTLMv2 inside SPNEGO, for the configured credentials.
fn default_authenticator(credentials: &Credentials) -> Result<Box<dyn Authenticator>, String> {
    Ok(Box::new(NtlmAuthenticator(ClientAuth::new(
        credentials.clone(),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::flags;
    use crate::messages::echo::EchoResponse;
    use crate::messages::error::ErrorResponse;

    fn error_body() -> ErrorResponse {
        ErrorResponse {
            error_context_count: 0,
            error_data: Vec::new(),
        }
    }

    fn config(dialects: &[Dialect]) -> ClientConfig {
        let mut c = ClientConfig::new("server", Credentials::password("alice", "", "pw"));
        c.dialects = dialects.to_vec();
        c
    }

    fn response_header(command: Command, message_id: u64, status: NtStatus) -> Header {
        let mut h = Header::request(command, message_id, 0, 0).response(status);
        h.credits = 8;
        h
    }

    fn negotiate_response(dialect: Dialect, contexts: Vec<NegotiateContext>) -> Vec<u8> {
        let body = NegotiateResponse {
            security_mode: SIGNING_REQUIRED | crate::policy::SIGNING_ENABLED,
            dialect_revision: dialect,
            server_guid: Guid([7; 16]),
            capabilities: capabilities::LARGE_MTU,
            max_transact_size: 1 << 20,
            max_read_size: 1 << 20,
            max_write_size: 1 << 20,
            contexts,
            ..Default::default()
        };
        build(
            &response_header(Command::NEGOTIATE, 0, NtStatus::SUCCESS),
            &body,
        )
    }

    fn preauth() -> NegotiateContext {
        NegotiateContext::PreauthIntegrity {
            hash_algorithms: vec![HashAlgorithm::SHA512],
            salt: vec![1; 32],
        }
    }

    fn negotiated(dialect: Dialect) -> ClientConnection {
        let mut c = ClientConnection::new(config(&Dialect::ALL));
        c.negotiate().unwrap();
        let contexts = if dialect == Dialect::SMB311 {
            vec![preauth()]
        } else {
            vec![]
        };
        c.handle_input(&negotiate_response(dialect, contexts))
            .unwrap();
        c
    }

    #[test]
    fn requests_out_of_order_are_refused() {
        let mut c = ClientConnection::new(config(&Dialect::ALL));
        assert!(matches!(c.session_setup(), Err(ClientError::State(_))));
        assert!(matches!(
            c.tree_connect(r"\\s\x"),
            Err(ClientError::State(_))
        ));
        assert!(matches!(c.echo(), Err(ClientError::State(_))));
        assert_eq!(c.negotiate(), Ok(0));
        assert!(matches!(c.negotiate(), Err(ClientError::State(_))));
        // One credit at the start, spent by NEGOTIATE.
        assert_eq!(c.credits(), 0);
        let sent = c.poll_transmit().unwrap();
        let h = Header::parse(&sent).unwrap();
        assert_eq!(
            (h.command, h.message_id, h.session_id),
            (Command::NEGOTIATE, 0, 0)
        );
        assert!(!h.is_signed());
        assert!(c.poll_transmit().is_none());
    }

    #[test]
    fn negotiate_settles_dialect_algorithm_and_reports_signing_policy() {
        let mut c = ClientConnection::new(config(&Dialect::ALL));
        c.negotiate().unwrap();
        let sent = c.poll_transmit().unwrap();
        let req = NegotiateRequest::read(&sent).unwrap();
        assert_eq!(req.dialects, Dialect::ALL.to_vec());
        assert_eq!(
            req.security_mode,
            SIGNING_REQUIRED | crate::policy::SIGNING_ENABLED
        );
        assert!(matches!(
            req.context(NegotiateContextType::SIGNING_CAPABILITIES),
            Some(NegotiateContext::Signing { algorithms }) if algorithms.len() == 3
        ));
        let resp = negotiate_response(
            Dialect::SMB311,
            vec![
                preauth(),
                NegotiateContext::Signing {
                    algorithms: vec![Algorithm::HmacSha256.id()],
                },
            ],
        );
        c.handle_input(&resp).unwrap();
        let info = c.negotiated().unwrap().clone();
        assert_eq!(info.dialect, Dialect::SMB311);
        assert_eq!(info.signing_algorithm, Algorithm::HmacSha256);
        assert!(info.server_requires_signing);
        assert_eq!(c.credits(), 8);
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::Response {
                id: 0,
                command: Command::NEGOTIATE,
                status: NtStatus::SUCCESS,
                body: ResponseBody::Negotiate(info),
            })
        );
        assert_eq!(
            c.poll_event(),
            None,
            "a server requiring signing raises no audit event"
        );
        // ECHO goes out with the next MessageId.
        assert_eq!(c.echo(), Ok(1));
    }

    #[test]
    fn server_not_requiring_signing_is_reported() {
        let mut c = ClientConnection::new(config(&[Dialect::SMB21]));
        c.negotiate().unwrap();
        let mut resp = negotiate_response(Dialect::SMB21, vec![]);
        resp[66] = crate::policy::SIGNING_ENABLED as u8; // SecurityMode
        c.handle_input(&resp).unwrap();
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::ServerDoesNotRequireSigning {
                server: "server".into(),
                dialect: Dialect::SMB21
            })
        );
    }

    #[test]
    fn bad_negotiate_answers_fail_the_connection() {
        let offered = [Dialect::SMB30, Dialect::SMB311];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "dialect not offered",
                negotiate_response(Dialect::SMB21, vec![]),
            ),
            (
                "3.1.1 without preauth",
                negotiate_response(Dialect::SMB311, vec![]),
            ),
            (
                "algorithm not offered",
                negotiate_response(
                    Dialect::SMB311,
                    vec![
                        preauth(),
                        NegotiateContext::Signing {
                            algorithms: vec![crate::signing::SigningAlgorithmId(9)],
                        },
                    ],
                ),
            ),
            (
                "truncated",
                negotiate_response(Dialect::SMB30, vec![])[..70].to_vec(),
            ),
        ];
        for (what, resp) in cases {
            let mut c = ClientConnection::new(config(&offered));
            c.negotiate().unwrap();
            assert!(
                matches!(c.handle_input(&resp), Err(ClientError::Protocol(_))),
                "{what}"
            );
            assert!(c.failure().is_some(), "{what}");
            assert!(matches!(c.echo(), Err(ClientError::Failed(_))), "{what}");
        }
    }

    #[test]
    fn unexpected_messages_fail_the_connection() {
        // A response to nothing outstanding.
        let mut c = negotiated(Dialect::SMB30);
        let stray = build(
            &response_header(Command::ECHO, 42, NtStatus::SUCCESS),
            &EchoResponse,
        );
        assert!(matches!(
            c.handle_input(&stray),
            Err(ClientError::Protocol(_))
        ));
        // A request coming from the server.
        let mut c = negotiated(Dialect::SMB30);
        let id = c.echo().unwrap();
        let mut h = response_header(Command::ECHO, id, NtStatus::SUCCESS);
        h.flags &= !flags::SERVER_TO_REDIR;
        assert!(c.handle_input(&build(&h, &EchoResponse)).is_err());
        // A response for another command under the right MessageId.
        let mut c = negotiated(Dialect::SMB30);
        let id = c.echo().unwrap();
        let wrong = build(
            &response_header(Command::CLOSE, id, NtStatus::SUCCESS),
            &error_body(),
        );
        assert!(c.handle_input(&wrong).is_err());
        // Garbage.
        let mut c = negotiated(Dialect::SMB30);
        assert!(c.handle_input(&[0xFE, b'S', b'M', b'B', 1, 2]).is_err());
    }

    #[test]
    fn interim_pending_is_absorbed_and_oplock_breaks_ignored() {
        let mut c = negotiated(Dialect::SMB30);
        let id = c.echo().unwrap();
        let mut interim = response_header(Command::ECHO, id, NtStatus::PENDING);
        interim.async_id = Some(5);
        c.handle_input(&build(&interim, &EchoResponse)).unwrap();
        let mut brk = response_header(Command::OPLOCK_BREAK, u64::MAX, NtStatus::SUCCESS);
        brk.credits = 0;
        c.handle_input(&build(&brk, &error_body())).unwrap();
        while let Some(ev) = c.poll_event() {
            assert!(
                !matches!(ev, ClientEvent::Response { id: i, .. } if i == id),
                "no answer yet"
            );
        }
        let fin = build(
            &response_header(Command::ECHO, id, NtStatus::SUCCESS),
            &EchoResponse,
        );
        c.handle_input(&fin).unwrap();
        assert!(matches!(
            c.poll_event(),
            Some(ClientEvent::Response { id: i, status: NtStatus::SUCCESS, .. }) if i == id
        ));
    }

    #[test]
    fn credit_charge_follows_payload_size() {
        assert_eq!(credit_charge(0), 1);
        assert_eq!(credit_charge(1), 1);
        assert_eq!(credit_charge(65_536), 1);
        assert_eq!(credit_charge(65_537), 2);
        assert_eq!(credit_charge(1 << 20), 16);
    }

    #[test]
    fn running_out_of_credits_is_an_error_not_a_hang() {
        let mut c = negotiated(Dialect::SMB30); // 8 credits granted
        for _ in 0..8 {
            c.echo().unwrap();
        }
        assert_eq!(c.echo(), Err(ClientError::NoCredits { have: 0, need: 1 }));
    }
}
