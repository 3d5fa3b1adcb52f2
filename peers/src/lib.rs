//! The one harness for the real SMB peers (not published): used by the interop tests
//! (`tests`), the lab (`smb-lab demo --target samba`) and the task runner (`cargo xtask
//! peers [--stop]`), so Samba is started, configured and stopped in exactly one place.
//!
//! - [`samba`]: [`SambaServer`], a private smbd on a loopback address and a free port, with
//!   its own smb.conf and passdb under `target/peers/samba-PORT/` and its share in a private,
//!   world-traversable directory under the system temporary directory (smbd reaches the share
//!   as the test user, who could not enter a checkout that lives under a 0700 directory).
//!   Dropping it stops every process it spawned (smbd's children, samba-dcerpcd, rpcd_*), by
//!   PID.
//! - [`docker`] and [`docker_samba`]: Samba 4.22 (Debian 13) in Docker, through the compose
//!   file in `docker/`: [`DockerEngine`] (the suite's own dockerd, started by its first user and
//!   stopped by PID by its last), [`DockerSamba`] (the `samba` service on a free loopback port,
//!   on the host network) and [`DockerSmbclient`] (the image's smbclient); [`docker::build_image`]
//!   builds the image with debootstrap (`cargo xtask peers`).
//! - [`process`]: free ports, waiting for a listener, finding processes by command line and
//!   stopping them by PID.
//! - [`users`]: the Unix account Samba maps logins to.
//! - [`tools`]: finding installed programs, with the Debian package to install when missing.
//!
//! Everything listens on 127.0.0.0/8 only, never on ports 445 or 139. Errors are values
//! ([`Error`]) that say what to install or fix; the tests turn them into failures.

pub mod docker;
pub mod docker_samba;
pub mod process;
pub mod samba;
pub mod tools;
pub mod users;

use std::fmt;
use std::path::{Path, PathBuf};

pub use docker::{DockerEngine, SAMBA_IMAGE};
pub use docker_samba::{DockerSamba, DockerSmbclient};
pub use process::{free_port, pids_with_cmdline, stop_processes_naming, wait_for_port};
pub use samba::{
    SambaOptions, SambaServer, ServerSigning, SAMBA_PASSWORD, SAMBA_SHARE, SAMBA_USER,
};
pub use tools::{find_program, tool, PEERS_HINT};
pub use users::ensure_unix_user;

/// What went wrong starting or stopping a peer, in words that say what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the peers crate lives inside the workspace")
        .to_path_buf()
}

/// Where the peers keep their state: `$SMB_PEERS_DIR` when set (`cargo xtask test` exports
/// it), else `target/peers` in the workspace.
pub fn peers_dir() -> PathBuf {
    match std::env::var_os("SMB_PEERS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target").join("peers"),
    }
}

/// The prefix of every harness Samba's directory under `peers` (`peers/samba-PORT`): the
/// needle `cargo xtask peers --stop` looks for on command lines.
pub fn samba_dir_prefix(peers: &Path) -> PathBuf {
    peers.join("samba-")
}
