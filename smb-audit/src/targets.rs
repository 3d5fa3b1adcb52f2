//! Scan targets: `host`, `host:port`, `[v6]:port`, IPv4/IPv6 literals, CIDR blocks
//! (`127.0.0.0/24`), ranges (`127.0.0.1-20`, `127.0.0.1-127.0.1.5`) and `@file` (one target a
//! line, `#` comments). Literal addresses are checked against the loopback fence here, before
//! anything connects; names are checked after they resolve (see [`crate::scan`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The most hosts one command expands to: a /12, far more than any scan here needs, and a
/// bound on memory when someone types /0.
pub const MAX_TARGETS: usize = 1 << 20;

/// One host to scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// An address literal or a name to resolve.
    pub host: Host,
    pub port: u16,
}

/// Where a target lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(a) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl Target {
    /// `host:port` (`[v6]:port`), the form every output uses.
    pub fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `host`, or `host:port` when the port is not 445 (NetExec's relay-list form).
    pub fn relay_label(&self) -> String {
        if self.port == 445 {
            self.host.to_string()
        } else {
            self.label()
        }
    }
}

/// An unusable target specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError(pub String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

fn err<T>(spec: &str, why: impl fmt::Display) -> Result<T, TargetError> {
    Err(TargetError(format!("{spec}: {why}")))
}

/// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

/// Expands every specification, in order, without duplicates. `default_port` applies where a
/// target names none. Non-loopback literals are refused unless `allow_non_loopback`. Fails on
/// the first bad specification; [`expand_lenient`] reports each and goes on.
pub fn expand(
    specs: &[String],
    default_port: u16,
    allow_non_loopback: bool,
) -> Result<Vec<Target>, TargetError> {
    let (targets, mut bad) = expand_lenient(specs, default_port, allow_non_loopback);
    match bad.is_empty() {
        true => Ok(targets),
        false => Err(bad.swap_remove(0).1),
    }
}

/// Like [`expand`], but a bad specification (or a bad line of an `@file`) is returned beside
/// the good targets, as `(spec, error)`, instead of stopping everything.
pub fn expand_lenient(
    specs: &[String],
    default_port: u16,
    allow_non_loopback: bool,
) -> (Vec<Target>, Vec<(String, TargetError)>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for spec in specs {
        let mut push = |t: Target| -> Result<(), TargetError> {
            if let Host::Ip(ip) = t.host {
                if !allow_non_loopback && !is_loopback(ip) {
                    return err(
                        spec,
                        format!(
                            "{ip} is not a loopback address (pass --allow-non-loopback to scan \
                             other networks)"
                        ),
                    );
                }
            }
            if seen.insert(t.clone()) {
                if out.len() >= MAX_TARGETS {
                    return err(spec, format!("more than {MAX_TARGETS} targets"));
                }
                out.push(t);
            }
            Ok(())
        };
        if let Some(file) = spec.strip_prefix('@') {
            match read_target_file(Path::new(file)) {
                Ok(lines) => {
                    for line in lines {
                        if let Err(e) = expand_one(&line, default_port, &mut push) {
                            bad.push((line, e));
                        }
                    }
                }
                Err(e) => bad.push((spec.clone(), e)),
            }
        } else if let Err(e) = expand_one(spec, default_port, &mut push) {
            bad.push((spec.clone(), e));
        }
    }
    (out, bad)
}

fn read_target_file(path: &Path) -> Result<Vec<String>, TargetError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TargetError(format!("@{}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Splits an optional `:port` off (`[v6]:port`, `v4:port`, `name:port`; a bare v6 literal
/// has no port).
fn split_port(spec: &str) -> Result<(&str, Option<u16>), TargetError> {
    let parse_port = |p: &str| -> Result<u16, TargetError> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => err(spec, format!("{p:?} is not a port (1-65535)")),
            Ok(n) => Ok(n),
        }
    };
    if let Some(rest) = spec.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return err(spec, "missing ]");
        };
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(parse_port(p)?))),
            None if after.is_empty() => Ok((host, None)),
            None => err(spec, "expected :PORT after ]"),
        };
    }
    if spec.matches(':').count() > 1 {
        return Ok((spec, None)); // an IPv6 literal or block without brackets
    }
    match spec.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(parse_port(p)?))),
        None => Ok((spec, None)),
    }
}

fn expand_one(
    spec: &str,
    default_port: u16,
    push: &mut dyn FnMut(Target) -> Result<(), TargetError>,
) -> Result<(), TargetError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return err(spec, "empty target");
    }
    let (host, port) = split_port(spec)?;
    let port = port.unwrap_or(default_port);
    if host.is_empty() {
        return err(spec, "no host");
    }
    let ip_target = |ip: IpAddr| Target {
        host: Host::Ip(ip),
        port,
    };
    if let Some((base, bits)) = host.split_once('/') {
        let bits: u32 = match bits.parse() {
            Ok(b) => b,
            Err(_) => return err(spec, format!("{bits:?} is not a prefix length")),
        };
        return match base.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if bits <= 32 => {
                let size = 1u64 << (32 - bits);
                if size > MAX_TARGETS as u64 {
                    return err(
                        spec,
                        format!("a /{bits} holds more than {MAX_TARGETS} hosts"),
                    );
                }
                let start = u32::from(a) & !((size - 1) as u32);
                for i in 0..size {
                    push(ip_target(IpAddr::V4(Ipv4Addr::from(start + i as u32))))?;
                }
                Ok(())
            }
            Ok(IpAddr::V6(a)) if bits <= 128 => {
                if 128 - bits > 20 {
                    return err(
                        spec,
                        format!("a /{bits} holds more than {MAX_TARGETS} hosts"),
                    );
                }
                let size = 1u128 << (128 - bits);
                let start = u128::from(a) & !(size - 1);
                for i in 0..size {
                    push(ip_target(IpAddr::V6(Ipv6Addr::from(start + i))))?;
                }
                Ok(())
            }
            Ok(_) => err(spec, format!("/{bits} is longer than the address")),
            Err(_) => err(spec, format!("{base:?} is not an IP address")),
        };
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return push(ip_target(ip));
    }
    if let Some((first, last)) = host.split_once('-') {
        let Ok(first) = first.parse::<Ipv4Addr>() else {
            return err(
                spec,
                format!("{first:?} is not an IPv4 address (ranges are IPv4)"),
            );
        };
        let last = match last.parse::<Ipv4Addr>() {
            Ok(l) => l,
            Err(_) => match last.parse::<u8>() {
                Ok(o) => {
                    let [a, b, c, _] = first.octets();
                    Ipv4Addr::new(a, b, c, o)
                }
                Err(_) => return err(spec, format!("{last:?} is neither an address nor 0-255")),
            },
        };
        let (s, e) = (u32::from(first), u32::from(last));
        if e < s {
            return err(spec, "the range ends before it starts");
        }
        if (e - s) as usize >= MAX_TARGETS {
            return err(spec, format!("more than {MAX_TARGETS} hosts"));
        }
        for n in s..=e {
            push(ip_target(IpAddr::V4(Ipv4Addr::from(n))))?;
        }
        return Ok(());
    }
    let valid_name = host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !valid_name {
        return err(spec, "not a host name, address, CIDR block or range");
    }
    push(Target {
        host: Host::Name(host.to_owned()),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(specs: &[&str]) -> Result<Vec<String>, TargetError> {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        Ok(expand(&specs, 445, false)?
            .iter()
            .map(Target::label)
            .collect())
    }

    #[test]
    fn hosts_ports_blocks_and_ranges() {
        assert_eq!(labels(&["127.0.0.1"]).unwrap(), ["127.0.0.1:445"]);
        assert_eq!(labels(&["127.0.0.1:4455"]).unwrap(), ["127.0.0.1:4455"]);
        assert_eq!(labels(&["[::1]:99"]).unwrap(), ["[::1]:99"]);
        assert_eq!(labels(&["::1"]).unwrap(), ["[::1]:445"]);
        assert_eq!(labels(&["localhost:1"]).unwrap(), ["localhost:1"]);
        assert_eq!(
            labels(&["127.0.0.1-3:10"]).unwrap(),
            ["127.0.0.1:10", "127.0.0.2:10", "127.0.0.3:10"]
        );
        assert_eq!(
            labels(&["127.0.0.254-127.0.1.1"]).unwrap(),
            [
                "127.0.0.254:445",
                "127.0.0.255:445",
                "127.0.1.0:445",
                "127.0.1.1:445"
            ]
        );
        let block = labels(&["127.1.2.3/30"]).unwrap();
        assert_eq!(
            block,
            [
                "127.1.2.0:445",
                "127.1.2.1:445",
                "127.1.2.2:445",
                "127.1.2.3:445"
            ]
        );
        assert_eq!(labels(&["127.0.0.0/22"]).unwrap().len(), 1024);
        // Duplicates collapse.
        assert_eq!(labels(&["127.0.0.1", "127.0.0.1-1"]).unwrap().len(), 1);
    }

    #[test]
    fn bad_specs_and_the_fence() {
        for bad in [
            "127.0.0.1:0",
            "127.0.0.1:x",
            "127.0.0.5-1",
            "127.0.0.1-300",
            "127.0.0.0/33",
            "127.0.0.0/x",
            "bad host!",
            "[::1",
            "",
            "127.0.0.0/8",
        ] {
            assert!(labels(&[bad]).is_err(), "{bad:?} accepted");
        }
        let e = labels(&["192.0.2.1"]).unwrap_err();
        assert!(e.0.contains("not a loopback address"), "{e}");
        let specs = vec!["192.0.2.0/30".to_string()];
        assert_eq!(expand(&specs, 445, true).unwrap().len(), 4);
    }

    #[test]
    fn target_files() {
        let dir = std::env::temp_dir().join(format!("smb-audit-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.txt");
        std::fs::write(&f, "# fleet\n127.0.0.1:1\n\n127.0.0.2 # second\n").unwrap();
        let got = labels(&[&format!("@{}", f.display())]).unwrap();
        assert_eq!(got, ["127.0.0.1:1", "127.0.0.2:445"]);
        assert!(labels(&["@/nonexistent/file"]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn relay_labels_drop_445() {
        let t = expand(&["127.0.0.1".into(), "127.0.0.2:4455".into()], 445, false).unwrap();
        assert_eq!(t[0].relay_label(), "127.0.0.1");
        assert_eq!(t[1].relay_label(), "127.0.0.2:4455");
    }
}
