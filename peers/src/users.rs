//! The Unix account Samba maps the test logins to.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::tools::{tool, PEERS_HINT};
use crate::{Error, Result};

/// True when `user` exists.
pub fn unix_user_exists(user: &str) -> bool {
    Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when this process runs with effective uid 0.
pub fn running_as_root() -> bool {
    // "Uid:\treal\teffective\t..." — the effective uid decides.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Creates the Unix account `user` (no home, no login shell) when missing. Parallel tests may
/// race on /etc/passwd's lock, so this retries; "already exists" (exit 9) counts as success.
pub fn ensure_unix_user(user: &str) -> Result<()> {
    if unix_user_exists(user) {
        return Ok(());
    }
    if !running_as_root() {
        return Err(Error::new(format!(
            "the Unix user `{user}` is missing and only root can create it; {PEERS_HINT}"
        )));
    }
    let useradd = tool("useradd")?;
    let mut last = String::new();
    for _ in 0..50 {
        if unix_user_exists(user) {
            return Ok(());
        }
        match Command::new(&useradd)
            .args(["-M", "-s", "/usr/sbin/nologin", user])
            .output()
        {
            Ok(out) if out.status.success() || out.status.code() == Some(9) => return Ok(()),
            Ok(out) => last = String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(Error::new(format!(
        "cannot create the Unix user `{user}` ({last}); {PEERS_HINT}"
    )))
}

/// `(uid, gid)` of `user`, read from `id`.
pub fn uid_gid(user: &str) -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id")
            .args([flag, user])
            .stderr(Stdio::null())
            .output()
            .map_err(|e| Error::new(format!("cannot run `id`: {e}")))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| Error::new(format!("no Unix user `{user}`; {PEERS_HINT}")))
    };
    Ok((id("-u")?, id("-g")?))
}
