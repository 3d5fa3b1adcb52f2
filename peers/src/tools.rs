//! Finding the installed peer programs, with the Debian package that provides each.

use std::path::PathBuf;

use crate::{Error, Result};

/// What to run when a peer is missing.
pub const PEERS_HINT: &str = "run `cargo xtask peers` (as root) to install the interop peers";

/// Full path of an installed program, searched on PATH and in the system directories
/// (sbin ones included: smbd lives in /usr/sbin).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The Debian package that provides `program`.
pub fn debian_package_of(program: &str) -> &'static str {
    match program {
        "smbd" | "smbpasswd" | "testparm" => "samba",
        "smbclient" => "smbclient",
        "tshark" | "dumpcap" => "tshark",
        "useradd" => "passwd",
        _ => "the package that provides it",
    }
}

/// [`find_program`], or an error naming the package to install.
pub fn tool(name: &str) -> Result<PathBuf> {
    find_program(name).ok_or_else(|| {
        Error::new(format!(
            "`{name}` is not installed (Debian package `{}`); {PEERS_HINT}",
            debian_package_of(name)
        ))
    })
}
