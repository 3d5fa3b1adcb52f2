//! The lab's network fence: the attacker tools only ever listen and connect on loopback
//! (127.0.0.0/8 or ::1), and never listen on the real SMB ports.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// Ports a lab tool refuses to listen on: they belong to a real SMB server.
pub const RESERVED_PORTS: [u16; 2] = [139, 445];

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// Not of the form HOST:PORT, or the host does not resolve.
    Parse {
        role: &'static str,
        input: String,
        reason: String,
    },
    /// Resolves to an address outside 127.0.0.0/8 and ::1.
    NotLoopback {
        role: &'static str,
        addr: SocketAddr,
    },
    /// A listening port reserved for a real SMB server.
    ReservedPort { role: &'static str, port: u16 },
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::Parse { role, input, reason } => {
                write!(f, "{role} address {input:?}: {reason} (expected HOST:PORT)")
            }
            AddrError::NotLoopback { role, addr } => write!(
                f,
                "{role} address {addr} is not a loopback address: the lab tools only use \
                 127.0.0.0/8 or ::1"
            ),
            AddrError::ReservedPort { role, port } => write!(
                f,
                "{role} port {port} is reserved for a real SMB server; pick another (0 = any free port)"
            ),
        }
    }
}

impl std::error::Error for AddrError {}

/// True for 127.0.0.0/8 and ::1 (and ::ffff:127.x.y.z).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => a.ip().is_loopback(),
        SocketAddr::V6(a) => {
            a.ip().is_loopback() || a.ip().to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks an address the tool will connect to.
pub fn check_connect(role: &'static str, addr: SocketAddr) -> Result<SocketAddr, AddrError> {
    if !is_loopback(&addr) {
        return Err(AddrError::NotLoopback { role, addr });
    }
    Ok(addr)
}

/// Checks an address the tool will listen on (loopback, not 139/445; port 0 is fine).
pub fn check_listen(role: &'static str, addr: SocketAddr) -> Result<SocketAddr, AddrError> {
    let addr = check_connect(role, addr)?;
    if RESERVED_PORTS.contains(&addr.port()) {
        return Err(AddrError::ReservedPort {
            role,
            port: addr.port(),
        });
    }
    Ok(addr)
}

/// Parses HOST:PORT. Every address the name resolves to must be loopback, so a name that
/// resolves to both a loopback and a routable address is refused too.
pub fn parse(role: &'static str, input: &str) -> Result<SocketAddr, AddrError> {
    let parse_err = |reason: String| AddrError::Parse {
        role,
        input: input.to_string(),
        reason,
    };
    if let Ok(addr) = input.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // Names: only "localhost" is resolved, so no DNS query ever leaves the machine.
    let (host, port) = input
        .rsplit_once(':')
        .ok_or_else(|| parse_err("no port".into()))?;
    if !host.eq_ignore_ascii_case("localhost") {
        return Err(parse_err(
            "only IP addresses and \"localhost\" are accepted".into(),
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|e| parse_err(format!("bad port: {e}")))?;
    let addrs: Vec<SocketAddr> = ("localhost", port)
        .to_socket_addrs()
        .map_err(|e| parse_err(e.to_string()))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| parse_err("does not resolve".into()))?;
    if let Some(bad) = addrs.iter().find(|a| !is_loopback(a)) {
        return Err(AddrError::NotLoopback { role, addr: *bad });
    }
    Ok(first)
}

/// Parses and checks a listening address.
pub fn parse_listen(role: &'static str, input: &str) -> Result<SocketAddr, AddrError> {
    check_listen(role, parse(role, input)?)
}

/// Parses and checks an address to connect to.
pub fn parse_connect(role: &'static str, input: &str) -> Result<SocketAddr, AddrError> {
    check_connect(role, parse(role, input)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_accepted_everything_else_refused() {
        assert!(parse_listen("listen", "127.0.0.3:0").is_ok());
        assert!(parse_connect("target", "127.0.0.4:4455").is_ok());
        assert!(parse_connect("target", "[::1]:4455").is_ok());
        assert!(parse_connect("target", "localhost:4455").is_ok());
        for bad in [
            "10.0.0.1:445",
            "192.168.1.2:4455",
            "0.0.0.0:4455",
            "8.8.8.8:53",
            "[::]:1",
        ] {
            let err = parse_connect("target", bad).unwrap_err();
            assert!(matches!(err, AddrError::NotLoopback { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("not a loopback"), "{err}");
        }
        assert!(matches!(
            parse_connect("target", "example.com:445"),
            Err(AddrError::Parse { .. })
        ));
        assert!(matches!(
            parse_connect("target", "127.0.0.1"),
            Err(AddrError::Parse { .. })
        ));
    }

    #[test]
    fn smb_ports_refused_for_listening() {
        for port in RESERVED_PORTS {
            let err = parse_listen("listen", &format!("127.0.0.1:{port}")).unwrap_err();
            assert_eq!(
                err,
                AddrError::ReservedPort {
                    role: "listen",
                    port
                }
            );
        }
        // Connecting to them on loopback is allowed (someone else's lab server).
        assert!(parse_connect("target", "127.0.0.1:445").is_ok());
    }
}
