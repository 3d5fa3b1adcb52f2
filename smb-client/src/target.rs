//! Parsing of what the command line names: the `//HOST[:PORT]/SHARE` service and the
//! `[DOMAIN\]USER[%PASSWORD]` credentials, in smbclient's habits; and the loopback guard.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// smbclient's default port; `-p PORT` and `//HOST:PORT` override it.
pub const DEFAULT_PORT: u16 = 445;

/// `//HOST[:PORT]/SHARE[/DIR]` (or with backslashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub host: String,
    pub port: Option<u16>,
    /// Empty when parsed without `share_required`.
    pub share: String,
}

/// A command-line value that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

impl Service {
    /// Parses `//HOST[:PORT]/SHARE`; `share_required` false accepts `//HOST[:PORT]` alone.
    /// IPv6 hosts go in brackets: `//[::1]:4455/data`.
    pub fn parse(s: &str, share_required: bool) -> Result<Service, ArgError> {
        let bad = || ArgError(format!("{s}: expected //HOST[:PORT]/SHARE"));
        let norm = s.replace('\\', "/");
        let rest = norm.strip_prefix("//").ok_or_else(bad)?;
        let (hostport, share) = match rest.split_once('/') {
            Some((h, sh)) => (h, sh.trim_end_matches('/')),
            None => (rest, ""),
        };
        if share.contains('/') {
            return Err(ArgError(format!("{s}: a share name cannot contain '/'")));
        }
        if share_required && share.is_empty() {
            return Err(bad());
        }
        let (host, port) = split_host_port(hostport).ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Service {
            host,
            port,
            share: share.to_string(),
        })
    }

    /// `\\HOST\SHARE`, the UNC path a TREE_CONNECT carries.
    pub fn unc(&self) -> String {
        format!("\\\\{}\\{}", self.host, self.share)
    }
}

fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), Some(p.parse().ok()?))),
        Some(_) => Some((s.to_string(), None)), // bare IPv6 without a port
        None => Some((s.to_string(), None)),
    }
}

/// `-U [DOMAIN\]USER[%PASSWORD]` (also `DOMAIN/USER`).
#[derive(Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub domain: String,
    pub user: String,
    pub password: Option<String>,
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl UserSpec {
    pub fn parse(s: &str) -> UserSpec {
        let (who, password) = match s.split_once('%') {
            Some((w, p)) => (w, Some(p.to_string())),
            None => (s, None),
        };
        let (domain, user) = match who.split_once(['\\', '/']) {
            Some((d, u)) => (d.to_string(), u.to_string()),
            None => (String::new(), who.to_string()),
        };
        UserSpec {
            domain,
            user,
            password,
        }
    }
}

/// Lab safety: refuse anything but loopback unless explicitly allowed.
pub fn check_loopback(addr: &SocketAddr, allow_non_loopback: bool) -> Result<(), ArgError> {
    let loopback = match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    };
    if loopback || allow_non_loopback {
        Ok(())
    } else {
        Err(ArgError(format!(
            "{addr} is not a loopback address; this lab client only connects to 127.0.0.0/8 \
             or ::1 unless --allow-non-loopback is given"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services() {
        assert_eq!(
            Service::parse("//127.0.0.1:4455/data", true).unwrap(),
            Service {
                host: "127.0.0.1".into(),
                port: Some(4455),
                share: "data".into()
            }
        );
        assert_eq!(
            Service::parse(r"\\localhost\IPC$", true).unwrap(),
            Service {
                host: "localhost".into(),
                port: None,
                share: "IPC$".into()
            }
        );
        assert_eq!(
            Service::parse("//[::1]:99/s", true).unwrap(),
            Service {
                host: "::1".into(),
                port: Some(99),
                share: "s".into()
            }
        );
        assert_eq!(Service::parse("//h:1", false).unwrap().share, "");
        assert!(Service::parse("//h:1", true).is_err());
        assert!(Service::parse("h/s", true).is_err());
        assert!(Service::parse("//h:notaport/s", true).is_err());
        assert!(Service::parse("//h/s/x", true).is_err());
        assert_eq!(
            Service::parse("//h:1/data", true).unwrap().unc(),
            r"\\h\data"
        );
    }

    #[test]
    fn users() {
        let u = UserSpec::parse(r"CORP\alice%Pass%w0rd");
        assert_eq!((u.domain.as_str(), u.user.as_str()), ("CORP", "alice"));
        assert_eq!(u.password.as_deref(), Some("Pass%w0rd"));
        let u = UserSpec::parse("bob");
        assert_eq!(
            (u.domain.as_str(), u.user.as_str(), u.password),
            ("", "bob", None)
        );
        assert!(!format!("{:?}", UserSpec::parse("a%secret")).contains("secret"));
    }

    #[test]
    fn loopback_guard() {
        assert!(check_loopback(&"127.0.0.4:445".parse().unwrap(), false).is_ok());
        assert!(check_loopback(&"[::1]:445".parse().unwrap(), false).is_ok());
        assert!(check_loopback(&"10.0.0.1:445".parse().unwrap(), false).is_err());
        assert!(check_loopback(&"10.0.0.1:445".parse().unwrap(), true).is_ok());
    }
}
