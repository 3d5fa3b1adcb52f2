//! Server settings from the command line and an optional TOML file (flags win), turned into
//! the sans-IO core's [`ServerConfig`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use smb_core::auth::{Secret, UserTable};
use smb_core::conn::server::{Limits, ServerConfig, ShareConfig};
use smb_core::header::Dialect;
use smb_core::policy::SigningPolicy;
use smb_core::signing::Algorithm;

use crate::disk::DiskShare;

/// The settings, as flags or as TOML keys (same names, kebab-case).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// `ADDR:PORT` to listen on (port 0 = any free port).
    pub listen: Option<String>,
    /// `NAME=DIR` entries; in TOML also a table `[share] data = "/srv/data"`.
    #[serde(default, deserialize_with = "de_shares")]
    pub share: Vec<String>,
    /// `NAME:PASSWORD` or `NAME:nthash:HEX` entries.
    #[serde(default)]
    pub user: Vec<String>,
    /// RequireSecuritySignature (default true, as on Windows 11 24H2).
    pub require_signing: Option<bool>,
    /// EnableSecuritySignature: accepted, no effect on SMB2+.
    pub enable_signing: Option<bool>,
    /// Comma-separated dialects, e.g. "2.0.2,2.1,3.0,3.0.2,3.1.1".
    pub dialects: Option<String>,
    /// Comma-separated 3.1.1 signing algorithms in preference order.
    pub signing_algorithms: Option<String>,
    /// Allow guest and anonymous sessions (never when signing is required).
    pub guest: Option<bool>,
    /// JSON-lines audit file.
    pub audit_log: Option<PathBuf>,
    /// Lab safety: listening outside 127.0.0.0/8 / ::1 needs this.
    pub allow_non_loopback: Option<bool>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub max_failed_logons: Option<u32>,
    pub max_message_size: Option<usize>,
    pub max_credits: Option<u16>,
    pub max_open_files: Option<usize>,
    /// MiB of frame buffers the whole server may hold at once (default 1024).
    pub max_buffered_mib: Option<usize>,
    /// Seconds a connection has to authenticate a session (default 30).
    pub auth_timeout_secs: Option<u64>,
    /// Seconds a transport frame has, from its first byte to its last (default 30).
    pub frame_timeout_secs: Option<u64>,
    /// Seconds an authenticated connection may stay silent (default 900).
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a response may take to drain to a client that stopped reading (default 30).
    pub write_timeout_secs: Option<u64>,
    /// Milliseconds a CREATE waits for an oplock or lease break to be acknowledged
    /// (default 35000, as on Windows).
    pub break_timeout_ms: Option<u64>,
    pub server_name: Option<String>,
    pub domain: Option<String>,
}

fn de_shares<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shares {
        List(Vec<String>),
        Table(BTreeMap<String, String>),
    }
    Ok(match Shares::deserialize(d)? {
        Shares::List(l) => l,
        Shares::Table(t) => t.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
    })
}

impl Settings {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// `self` (the flags) over `file`: a flag that was given wins; lists given as flags
    /// replace the file's.
    pub fn over(self, file: Settings) -> Settings {
        Settings {
            listen: self.listen.or(file.listen),
            share: if self.share.is_empty() {
                file.share
            } else {
                self.share
            },
            user: if self.user.is_empty() {
                file.user
            } else {
                self.user
            },
            require_signing: self.require_signing.or(file.require_signing),
            enable_signing: self.enable_signing.or(file.enable_signing),
            dialects: self.dialects.or(file.dialects),
            signing_algorithms: self.signing_algorithms.or(file.signing_algorithms),
            guest: self.guest.or(file.guest),
            audit_log: self.audit_log.or(file.audit_log),
            allow_non_loopback: self.allow_non_loopback.or(file.allow_non_loopback),
            max_connections: self.max_connections.or(file.max_connections),
            max_connections_per_address: self
                .max_connections_per_address
                .or(file.max_connections_per_address),
            max_failed_logons: self.max_failed_logons.or(file.max_failed_logons),
            max_message_size: self.max_message_size.or(file.max_message_size),
            max_credits: self.max_credits.or(file.max_credits),
            max_open_files: self.max_open_files.or(file.max_open_files),
            max_buffered_mib: self.max_buffered_mib.or(file.max_buffered_mib),
            auth_timeout_secs: self.auth_timeout_secs.or(file.auth_timeout_secs),
            frame_timeout_secs: self.frame_timeout_secs.or(file.frame_timeout_secs),
            idle_timeout_secs: self.idle_timeout_secs.or(file.idle_timeout_secs),
            write_timeout_secs: self.write_timeout_secs.or(file.write_timeout_secs),
            break_timeout_ms: self.break_timeout_ms.or(file.break_timeout_ms),
            server_name: self.server_name.or(file.server_name),
            domain: self.domain.or(file.domain),
        }
    }

    /// Checks everything and builds the runtime configuration.
    pub fn resolve(&self) -> Result<Resolved> {
        let listen_text = self.listen.as_deref().unwrap_or("127.0.0.1:4455");
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            anyhow!("--listen {listen_text:?}: expected ADDR:PORT, e.g. 127.0.0.1:4455")
        })?;
        if !listen.ip().is_loopback() && !self.allow_non_loopback.unwrap_or(false) {
            bail!(
                "refusing to listen on {listen}: not a loopback address (this is a lab tool; \
                 pass --allow-non-loopback true to override)"
            );
        }
        if self.share.is_empty() {
            bail!("no share configured: pass --share NAME=DIR");
        }
        let mut shares = Vec::new();
        for s in &self.share {
            let (name, dir) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("--share {s:?}: expected NAME=DIR"))?;
            if name.is_empty()
                || name.eq_ignore_ascii_case("IPC$")
                || name
                    .chars()
                    .any(|c| "\\/:*?\"<>|".contains(c) || c.is_control())
            {
                bail!("--share {s:?}: invalid share name {name:?}");
            }
            if shares
                .iter()
                .any(|x: &ShareConfig| x.name.eq_ignore_ascii_case(name))
            {
                bail!("--share {s:?}: share {name:?} given twice");
            }
            let disk = DiskShare::new(dir)
                .with_context(|| format!("--share {s:?}: {dir} is not an accessible directory"))?;
            shares.push(ShareConfig {
                name: name.to_string(),
                backend: Arc::new(disk),
            });
        }
        let mut users = UserTable::new();
        for u in &self.user {
            let (name, secret) = parse_user(u)?;
            users.add(&name, &secret);
        }
        let guest = self.guest.unwrap_or(false);
        if users.is_empty() && !guest {
            bail!("no user configured: pass --user NAME:PASSWORD (or --guest true)");
        }
        // What the flags and the file leave unset comes from the core's defaults.
        let defaults = ServerConfig::default();
        let dialects = match &self.dialects {
            None => defaults.dialects,
            Some(list) => parse_list(list, "--dialects", Dialect::parse)?,
        };
        let signing_algorithms = match &self.signing_algorithms {
            None => defaults.signing_algorithms,
            Some(list) => parse_list(list, "--signing-algorithms", Algorithm::parse)?,
        };
        let mut limits = Limits::default();
        if let Some(n) = self.max_message_size {
            if !(64 * 1024..=smb_core::framing::MAX_STREAM_LEN).contains(&n) {
                bail!(
                    "max-message-size {n}: must be between 65536 and {}",
                    smb_core::framing::MAX_STREAM_LEN
                );
            }
            limits.max_message_size = n;
            limits.max_io_size = limits.max_io_size.min((n - 1024) as u32);
        }
        if let Some(n) = self.max_credits {
            if n == 0 {
                bail!("max-credits must be at least 1");
            }
            limits.max_credits = n;
        }
        if let Some(n) = self.max_open_files {
            limits.max_open_files = n;
        }
        // A random server GUID per run; the default one if the OS has no randomness to give.
        let mut guid = [0u8; 16];
        if getrandom::getrandom(&mut guid).is_err() {
            guid = defaults.server_guid;
        }
        let d = Timeouts::default();
        let config = ServerConfig {
            server_guid: guid,
            server_name: self.server_name.clone().unwrap_or(defaults.server_name),
            domain: self.domain.clone().unwrap_or(defaults.domain),
            users: Arc::new(users),
            shares,
            signing: SigningPolicy {
                require_security_signature: self.require_signing.unwrap_or(true),
                enable_security_signature: self.enable_signing.unwrap_or(true),
            },
            dialects,
            signing_algorithms,
            allow_guest: guest,
            limits,
            memory: defaults.memory,
            changes: Default::default(),
            locks: Default::default(),
            files: Default::default(),
            oplocks: Default::default(),
            break_timeout: self
                .break_timeout_ms
                .map_or(defaults.break_timeout, Duration::from_millis),
            // The driver runs on a real machine: the system clock and the OS generator.
            clock: smb_core::env::system_clock(),
            random: smb_core::env::os_random(),
        };
        Ok(Resolved {
            listen,
            config: Arc::new(config),
            audit_log: self.audit_log.clone(),
            max_connections: self
                .max_connections
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                .max(1),
            max_connections_per_address: self
                .max_connections_per_address
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)
                .max(1),
            max_failed_logons: self.max_failed_logons.unwrap_or(10).max(1),
            max_buffered: self
                .max_buffered_mib
                .map_or(DEFAULT_MAX_BUFFERED, |m| m.saturating_mul(1024 * 1024)),
            timeouts: Timeouts {
                auth: secs(self.auth_timeout_secs, d.auth, "auth-timeout-secs")?,
                frame: secs(self.frame_timeout_secs, d.frame, "frame-timeout-secs")?,
                idle: secs(self.idle_timeout_secs, d.idle, "idle-timeout-secs")?,
                write: secs(self.write_timeout_secs, d.write, "write-timeout-secs")?,
            },
        })
    }
}

/// `NAME:PASSWORD` or `NAME:nthash:HEX` (32 hex digits).
pub fn parse_user(s: &str) -> Result<(String, Secret)> {
    let (name, rest) = s
        .split_once(':')
        .ok_or_else(|| anyhow!("--user {s:?}: expected NAME:PASSWORD or NAME:nthash:HEX"))?;
    if name.is_empty() {
        bail!("--user {s:?}: empty user name");
    }
    if let Some(hexhash) = rest.strip_prefix("nthash:") {
        let bytes = hex::decode(hexhash.trim())
            .map_err(|_| anyhow!("--user {name}:nthash:...: the NT hash must be 32 hex digits"))?;
        let hash: [u8; 16] = bytes
            .try_into()
            .map_err(|_| anyhow!("--user {name}:nthash:...: the NT hash must be 32 hex digits"))?;
        return Ok((name.to_string(), Secret::NtHash(hash)));
    }
    Ok((name.to_string(), Secret::Password(rest.to_string())))
}

fn parse_list<T: PartialEq>(
    list: &str,
    flag: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let v = parse(item).ok_or_else(|| anyhow!("{flag}: unknown value {item:?}"))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        bail!("{flag}: empty list");
    }
    Ok(out)
}

/// Default total connection limit: an idle connection costs a few KiB (no buffer is held
/// while it is silent), so thousands are cheap; the file-descriptor limit is raised to fit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default per-address limit. Unauthenticated connections over either limit are evicted,
/// oldest first, before a new one is refused.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 512;

/// Default server-wide budget of frame buffers (`max-buffered-mib`).
pub const DEFAULT_MAX_BUFFERED: usize = 1024 * 1024 * 1024;

/// Deadlines of a connection (see the `*-timeout-secs` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept until a session has authenticated.
    pub auth: Duration,
    /// From the first byte of a transport frame to its last.
    pub frame: Duration,
    /// Silence allowed to an authenticated connection between frames.
    pub idle: Duration,
    /// For each response to be taken by the client.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            auth: Duration::from_secs(30),
            frame: Duration::from_secs(30),
            idle: Duration::from_secs(900),
            write: Duration::from_secs(30),
        }
    }
}

fn secs(v: Option<u64>, default: Duration, name: &str) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(0) => bail!("{name} must be at least 1"),
        Some(n) if n > 86_400 => bail!("{name} {n}: at most 86400 (one day)"),
        Some(n) => Ok(Duration::from_secs(n)),
    }
}

/// Settings checked and turned into runtime objects.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub listen: SocketAddr,
    pub config: Arc<ServerConfig>,
    pub audit_log: Option<PathBuf>,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Failed logons from one address before it is locked out for a while.
    pub max_failed_logons: u32,
    /// Bytes of frame buffers the whole server may hold at once (never less than one
    /// largest frame).
    pub max_buffered: usize,
    pub timeouts: Timeouts,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        Settings {
            share: vec![format!("data={}", std::env::temp_dir().display())],
            user: vec!["alice:Passw0rd!".into()],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_the_windows_11_ones() {
        let r = base().resolve().unwrap();
        assert_eq!(r.listen.to_string(), "127.0.0.1:4455");
        assert!(r.config.signing.require_security_signature);
        assert_eq!(r.config.dialects, Dialect::ALL.to_vec());
        assert!(!r.config.allow_guest);
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let cases: Vec<(Settings, &str)> = vec![
            (
                Settings {
                    listen: Some("0.0.0.0:445".into()),
                    ..base()
                },
                "not a loopback",
            ),
            (
                Settings {
                    listen: Some("nonsense".into()),
                    ..base()
                },
                "expected ADDR:PORT",
            ),
            (
                Settings {
                    share: vec!["nodir".into()],
                    ..base()
                },
                "expected NAME=DIR",
            ),
            (
                Settings {
                    share: vec!["x=/does/not/exist".into()],
                    ..base()
                },
                "not an accessible directory",
            ),
            (
                Settings {
                    user: vec!["bob".into()],
                    ..base()
                },
                "NAME:PASSWORD",
            ),
            (
                Settings {
                    user: vec!["bob:nthash:12".into()],
                    ..base()
                },
                "32 hex digits",
            ),
            (
                Settings {
                    user: vec![],
                    ..base()
                },
                "no user",
            ),
            (
                Settings {
                    dialects: Some("3.1.1,9.9".into()),
                    ..base()
                },
                "unknown value",
            ),
            (
                Settings {
                    signing_algorithms: Some("md5".into()),
                    ..base()
                },
                "unknown value",
            ),
        ];
        for (s, want) in cases {
            let e = format!("{:#}", s.resolve().unwrap_err());
            assert!(e.contains(want), "{e:?} should mention {want:?}");
        }
    }

    #[test]
    fn toml_file_with_flags_winning() {
        let text = r#"
            listen = "127.0.0.1:0"
            user = ["bob:nthash:a4f49c406510bdcab6824ee7c30fd852"]
            require-signing = false
            dialects = "3.0,3.1.1"
            [share]
            docs = "/tmp"
        "#;
        let file: Settings = toml::from_str(text).unwrap();
        assert_eq!(file.share, ["docs=/tmp"]);
        let flags = Settings {
            require_signing: Some(true),
            ..Default::default()
        };
        let merged = flags.over(file);
        assert_eq!(merged.require_signing, Some(true));
        assert_eq!(merged.listen.as_deref(), Some("127.0.0.1:0"));
        let r = merged.resolve().unwrap();
        assert_eq!(r.config.dialects, vec![Dialect::SMB30, Dialect::SMB311]);
        assert!(toml::from_str::<Settings>("bogus = 1").is_err());
    }
}
