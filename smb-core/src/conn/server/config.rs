//! `ServerConfig`: everything a server connection needs to know, shared by all connections.

use std::sync::Arc;
use std::time::Duration;

use super::MemoryBudget;
use crate::auth::UserTable;
use crate::conn::share::ShareBackend;
use crate::env::{self, Clock, Random};
use crate::header::Dialect;
use crate::policy::SigningPolicy;
use crate::signing::Algorithm;

/// One exported disk share.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    /// The name clients connect to (`\\server\NAME`); compared case-insensitively.
    pub name: String,
    /// The file system behind it (a directory in `smb-server`, [`MemoryShare`] in tests).
    ///
    /// [`MemoryShare`]: crate::conn::share::MemoryShare
    pub backend: Arc<dyn ShareBackend>,
}

/// Resource limits. Every input that could make the server allocate is bounded by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest SMB2 message or compound chain accepted (the framing limit too).
    pub max_message_size: usize,
    /// MaxReadSize / MaxWriteSize / MaxTransactSize announced in NEGOTIATE.
    pub max_io_size: u32,
    /// Most credits a client may hold at once.
    pub max_credits: u16,
    /// Most open files per connection.
    pub max_open_files: usize,
    /// Most sessions per connection (authenticated or in progress).
    pub max_sessions: usize,
    /// Most tree connects per session.
    pub max_trees: usize,
    /// Bytes of responses (charged at their worst case before a request runs) and queued
    /// input one connection may hold; see [`MemoryBudget`]. Capped in effect by the
    /// largest Direct-TCP frame (16 MiB - 1): one chain never answers more.
    pub max_connection_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 8 * 1024 * 1024 + 64 * 1024,
            max_io_size: 8 * 1024 * 1024,
            max_credits: 512,
            max_open_files: 1024,
            max_sessions: 16,
            max_trees: 64,
            max_connection_buffer: 16 * 1024 * 1024,
        }
    }
}

/// The server's settings, shared (in an `Arc`) by every connection.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// ServerGuid, sent in every NEGOTIATE response (MS-SMB2 2.2.4).
    pub server_guid: [u8; 16],
    /// NetBIOS computer name, sent in the NTLM challenge's target info.
    pub server_name: String,
    /// NetBIOS domain (or workgroup) name.
    pub domain: String,
    /// Local accounts (name -> NT hash), shared with every session's `ServerAuth`.
    pub users: Arc<UserTable>,
    /// The disk shares; IPC$ is always there besides them.
    pub shares: Vec<ShareConfig>,
    /// RequireSecuritySignature / EnableSecuritySignature (LanmanServer).
    pub signing: SigningPolicy,
    /// Dialects the server accepts.
    pub dialects: Vec<Dialect>,
    /// 3.1.1 signing algorithms in preference order: the first one the client offers wins.
    pub signing_algorithms: Vec<Algorithm>,
    /// Guest and anonymous sessions (never signed; refused when signing is required).
    pub allow_guest: bool,
    /// The bounds on what one connection may make the server hold.
    pub limits: Limits,
    /// The server-wide memory budget every connection's responses are charged against
    /// too (shared by all connections that share this configuration).
    pub memory: Arc<MemoryBudget>,
    /// Carries share changes between the connections of this server, for CHANGE_NOTIFY.
    /// Connections that share this config see each other's changes.
    pub changes: Arc<super::ChangeHub>,
    /// Byte-range locks, shared by the connections of this server.
    pub locks: Arc<super::LockTable>,
    /// Sharing modes and delete-pending state of open files, shared by the connections.
    pub files: Arc<super::FileTable>,
    /// Oplocks and leases of open files, shared by the connections.
    pub oplocks: Arc<super::OplockTable>,
    /// How long a CREATE waits for the holder of an oplock or lease to acknowledge its
    /// break before the break is taken as done (Windows: 35 s).
    pub break_timeout: Duration,
    /// NEGOTIATE's SystemTime and the NTLM challenge's timestamp (the system clock by
    /// default; a [`FixedClock`](crate::env::FixedClock) in deterministic tests).
    pub clock: Arc<dyn Clock>,
    /// SessionIds, preauth salts and NTLM server challenges (the OS by default; a
    /// [`SeededRandom`](crate::env::SeededRandom) in deterministic tests).
    pub random: Arc<dyn Random>,
}

/// Default [`ServerConfig::break_timeout`]: 35 s, as on Windows.
pub const DEFAULT_BREAK_TIMEOUT: Duration = Duration::from_secs(35);

/// Default server-wide budget for responses and queued input: 1 GiB.
pub const DEFAULT_SERVER_BUFFER: usize = 1024 * 1024 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            server_guid: *b"smb-rs-server-01",
            server_name: "SMBRS".into(),
            domain: "WORKGROUP".into(),
            users: Arc::new(UserTable::new()),
            shares: Vec::new(),
            signing: SigningPolicy::REQUIRED,
            dialects: Dialect::ALL.to_vec(),
            signing_algorithms: vec![
                Algorithm::AesGmac,
                Algorithm::AesCmac,
                Algorithm::HmacSha256,
            ],
            allow_guest: false,
            limits: Limits::default(),
            memory: MemoryBudget::new(DEFAULT_SERVER_BUFFER),
            changes: Arc::default(),
            locks: Arc::default(),
            files: Arc::default(),
            oplocks: Arc::default(),
            break_timeout: DEFAULT_BREAK_TIMEOUT,
            clock: env::system_clock(),
            random: env::os_random(),
        }
    }
}

impl ServerConfig {
    /// Looks a share up by name, case-insensitively.
    pub fn share(&self, name: &str) -> Option<&ShareConfig> {
        self.shares
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The highest dialect both sides support.
    pub fn pick_dialect(&self, offered: &[Dialect]) -> Option<Dialect> {
        self.dialects
            .iter()
            .copied()
            .filter(|d| offered.contains(d))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_common_dialect() {
        let c = ServerConfig {
            dialects: vec![Dialect::SMB21, Dialect::SMB30],
            ..Default::default()
        };
        assert_eq!(c.pick_dialect(&Dialect::ALL), Some(Dialect::SMB30));
        assert_eq!(c.pick_dialect(&[Dialect::SMB311]), None);
    }
}
