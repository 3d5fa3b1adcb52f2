//! The `smb-client` command line: argument parsing and the command loop. (The server
//! signing audit that was `smb-client audit` is `smb-audit scan` now.)

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, Parser};
use smb_core::conn::client::{Caching, ClientConfig, Credentials};
use smb_core::header::Dialect;
use smb_core::messages::create::OplockLevel;
use smb_core::messages::lease::lease_state;
use smb_core::policy::SigningPolicy;
use smb_core::signing::Algorithm;

use crate::audit::AuditLog;
use crate::client::{Client, Error};
use crate::listing::format_entry;
use crate::script::{parse_script, resolve_remote, Command};
use crate::target::{check_loopback, Service, UserSpec, DEFAULT_PORT};

/// Connection options.
#[derive(Debug, Clone, ClapArgs)]
pub struct ConnOpts {
    /// Port (smbclient's -p); `//HOST:PORT` works too.
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Allow connecting to an address outside 127.0.0.0/8 and ::1 (lab safety is the default).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Seconds to wait for each response.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Append audit events as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

/// smbclient-like client for SMB2/3 with Windows signing semantics.
#[derive(Debug, Parser)]
#[command(
    name = "smb-client",
    version,
    after_help = "Commands: ls [MASK], get REMOTE [LOCAL], put LOCAL [REMOTE], mkdir DIR, rmdir DIR, \
                  rm FILE, rename OLD NEW, cd [DIR], pwd, lcd DIR, exit.\n\
                  Exit status: 0 on success; otherwise the NT status (NT_STATUS_...) or the reason \
                  is printed on stderr and the status is non-zero.\n\
                  Does a server require signing? smb-audit scan HOST[:PORT]\n\
                  What does signing cost a transfer? smb-client bench //HOST[:PORT]/SHARE -U USER"
)]
pub struct Args {
    /// //HOST[:PORT]/SHARE
    pub service: String,
    /// [DOMAIN\]USER[%PASSWORD] (the password may also come from $PASSWD)
    #[arg(short = 'U', long = "user")]
    pub user: Option<String>,
    /// Anonymous (null session): no user, no password.
    #[arg(short = 'N', long = "no-pass")]
    pub no_pass: bool,
    /// Domain (workgroup) for NTLM.
    #[arg(short = 'W', long = "workgroup")]
    pub workgroup: Option<String>,
    /// Offer exactly this dialect: 2.0.2, 2.1, 3.0, 3.0.2 or 3.1.1.
    #[arg(long, conflicts_with = "max_dialect")]
    pub dialect: Option<String>,
    /// Offer every dialect up to this one (smbclient's -m).
    #[arg(short = 'm', long = "max-dialect")]
    pub max_dialect: Option<String>,
    /// RequireSecuritySignature (LanmanWorkstation); default true as on Windows 11 24H2.
    #[arg(long, value_name = "true|false", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub require_signing: bool,
    /// 3.1.1 signing algorithm(s) to offer, in preference order (comma-separated).
    #[arg(long, value_name = "aes-gmac|aes-cmac|hmac-sha256")]
    pub signing_algorithm: Option<String>,
    /// Oplock to ask for when `get` and `put` open a file (none, ii, exclusive, batch);
    /// breaks are acknowledged automatically and listed on stderr.
    #[arg(long, value_name = "none|ii|exclusive|batch", value_parser = parse_caching)]
    pub oplock: Option<Caching>,
    /// Lease state to ask for when `get` and `put` open a file (R, RH, RW, RWH; 2.1 and
    /// later), with a fresh lease key per open; breaks are acknowledged automatically.
    #[arg(long, value_name = "R|RH|RW|RWH", value_parser = parse_lease, conflicts_with = "oplock")]
    pub lease: Option<Caching>,
    /// Commands separated by ';' (otherwise read from standard input, one per line).
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,
    #[command(flatten)]
    pub conn: ConnOpts,
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("{s}: expected true or false")),
    }
}

/// Parses `aes-gmac,aes-cmac`.
pub fn parse_algorithms(s: &str) -> Result<Vec<Algorithm>, String> {
    s.split(',')
        .map(|a| {
            Algorithm::parse(a.trim()).ok_or_else(|| format!("{a}: unknown signing algorithm"))
        })
        .collect()
}

/// Parses `--oplock`.
pub fn parse_caching(s: &str) -> Result<Caching, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "none" => Caching::None,
        "ii" | "level2" => Caching::Oplock(OplockLevel::II),
        "exclusive" => Caching::Oplock(OplockLevel::EXCLUSIVE),
        "batch" => Caching::Oplock(OplockLevel::BATCH),
        _ => return Err(format!("{s}: expected none, ii, exclusive or batch")),
    })
}

/// Parses `--lease RWH` (letters in any order, each at most once, R required).
pub fn parse_lease(s: &str) -> Result<Caching, String> {
    let mut state = 0u32;
    for c in s.to_ascii_uppercase().chars() {
        let bit = match c {
            'R' => lease_state::READ_CACHING,
            'W' => lease_state::WRITE_CACHING,
            'H' => lease_state::HANDLE_CACHING,
            _ => return Err(format!("{s}: a lease state is made of R, W and H")),
        };
        if state & bit != 0 {
            return Err(format!("{s}: {c} twice"));
        }
        state |= bit;
    }
    // Windows and Samba grant R, RH, RW and RWH only: every lease includes READ caching.
    if state & lease_state::READ_CACHING == 0 {
        return Err(format!(
            "{s}: a lease without R is not granted (R, RH, RW or RWH)"
        ));
    }
    Ok(Caching::Lease {
        key: [0; 16],
        state,
    })
}

fn parse_dialect(s: &str) -> Result<Dialect, String> {
    Dialect::parse(s).ok_or_else(|| format!("{s}: unknown dialect (2.0.2, 2.1, 3.0, 3.0.2, 3.1.1)"))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    init_tracing();
    let argv: Vec<String> = std::env::args().collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if argv.get(1).map(String::as_str) == Some("bench") {
        let args = crate::bench::BenchArgs::parse_from(
            std::iter::once("smb-client bench".to_string()).chain(argv.into_iter().skip(2)),
        );
        return runtime.block_on(crate::bench::run(args));
    }
    if argv.get(1).map(String::as_str) == Some("audit") {
        eprintln!("`smb-client audit` is now `smb-audit scan HOST[:PORT]` (crate smb-audit)");
        return ExitCode::from(2);
    }
    let args = Args::parse_from(argv);
    runtime.block_on(run(args))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves HOST:PORT and applies the loopback guard to every address it resolves to.
pub(crate) async fn resolve(host: &str, port: u16, opts: &ConnOpts) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let first = *addrs.first().ok_or_else(|| format!("{host}: no address"))?;
    for a in &addrs {
        check_loopback(a, opts.allow_non_loopback).map_err(|e| e.to_string())?;
    }
    Ok(first)
}

pub(crate) fn open_audit(opts: &ConnOpts) -> Result<Arc<AuditLog>, String> {
    match &opts.audit_log {
        Some(p) => AuditLog::open(p)
            .map(Arc::new)
            .map_err(|e| format!("cannot open the audit log {}: {e}", p.display())),
        None => Ok(Arc::new(AuditLog::disabled())),
    }
}

/// Builds the client configuration from the arguments.
pub fn build_config(args: &Args, server_name: &str) -> Result<ClientConfig, String> {
    let credentials = if args.no_pass {
        Credentials::anonymous()
    } else {
        let spec = UserSpec::parse(args.user.as_deref().unwrap_or(""));
        let password = spec
            .password
            .clone()
            .or_else(|| std::env::var("PASSWD").ok())
            .unwrap_or_default();
        let domain = args.workgroup.clone().unwrap_or(spec.domain);
        Credentials::password(&spec.user, &domain, &password)
    };
    let mut config = ClientConfig::new(server_name, credentials);
    if let Some(d) = &args.dialect {
        config = config.only_dialect(parse_dialect(d)?);
    } else if let Some(d) = &args.max_dialect {
        config = config.max_dialect(parse_dialect(d)?);
    }
    config.signing = SigningPolicy::new(args.require_signing);
    if let Some(a) = &args.signing_algorithm {
        config.signing_algorithms = parse_algorithms(a)?;
    }
    Ok(config)
}

async fn run(args: Args) -> ExitCode {
    match run_inner(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}

async fn run_inner(args: &Args) -> Result<(), String> {
    let service = Service::parse(&args.service, true).map_err(|e| e.to_string())?;
    let port = args.conn.port.or(service.port).unwrap_or(DEFAULT_PORT);
    let addr = resolve(&service.host, port, &args.conn).await?;
    let config = build_config(args, &format!("{}:{port}", service.host))?;
    let commands = match &args.command {
        Some(c) => parse_script(c).map_err(|e| e.to_string())?,
        None => {
            let mut all = String::new();
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|e| format!("reading commands: {e}"))?;
                all.push_str(&line);
                all.push('\n');
            }
            parse_script(&all).map_err(|e| e.to_string())?
        }
    };
    let audit = open_audit(&args.conn)?;
    let timeout = Duration::from_secs(args.conn.timeout.max(1));
    let mut client = Client::connect_with(addr, config, timeout, audit)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(caching) = args.oplock.or(args.lease) {
        client.set_caching(caching);
    }
    let session = client.login().await.map_err(|e| e.to_string())?;
    eprintln!("session: {session}");
    let tree = client
        .tree_connect(&service.unc())
        .await
        .map_err(|e| e.to_string())?;
    let mut shell = Shell {
        client: &mut client,
        tree,
        cwd: String::new(),
    };
    let result = shell.run(&commands).await;
    for b in client.breaks() {
        eprintln!("{b}");
    }
    // Best effort: a polite goodbye does not change the outcome.
    if result.is_ok() {
        let _ = client.tree_disconnect(tree).await;
        let _ = client.logoff().await;
    }
    result.map_err(|e| e.to_string())
}

/// Runs commands against one tree connect.
struct Shell<'a> {
    client: &'a mut Client,
    tree: u32,
    /// Remote current directory, share-relative, backslashes, no leading separator.
    cwd: String,
}

impl Shell<'_> {
    async fn run(&mut self, commands: &[Command]) -> Result<(), Error> {
        for cmd in commands {
            if *cmd == Command::Exit {
                break;
            }
            // smbclient stops at the first failing command of a -c script.
            self.one(cmd).await?;
        }
        Ok(())
    }

    async fn one(&mut self, cmd: &Command) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        match cmd {
            Command::Ls(mask) => {
                let (dir, pattern) = split_mask(&self.cwd, mask.as_deref());
                let entries = self.client.ls(self.tree, &dir, &pattern).await?;
                for e in &entries {
                    let _ = writeln!(
                        out,
                        "{}",
                        format_entry(&e.name, e.attributes, e.size, e.last_write_time)
                    );
                }
                let _ = writeln!(out);
                // smbclient's trailer. A server that cannot say (an error status) is not an
                // error for `ls`; a failed connection is.
                match self.client.disk_size(self.tree).await {
                    Ok(Some((total, unit, avail))) => {
                        let _ = writeln!(
                            out,
                            "\t\t{total} blocks of size {unit}. {avail} blocks available"
                        );
                    }
                    Ok(None) | Err(Error::Status { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Command::Get { remote, local } => {
                let path = resolve_remote(&self.cwd, remote);
                let start = Instant::now();
                let n = self.client.get(self.tree, &path, Path::new(local)).await?;
                let _ = writeln!(
                    out,
                    "getting file \\{path} of size {n} as {local} ({})",
                    rate(n, start)
                );
            }
            Command::Put { local, remote } => {
                let path = resolve_remote(&self.cwd, remote);
                let start = Instant::now();
                let n = self.client.put(self.tree, Path::new(local), &path).await?;
                let _ = writeln!(out, "putting file {local} as \\{path} ({})", rate(n, start));
            }
            Command::Mkdir(d) => {
                self.client
                    .mkdir(self.tree, &resolve_remote(&self.cwd, d))
                    .await?
            }
            Command::Rmdir(d) => {
                self.client
                    .rmdir(self.tree, &resolve_remote(&self.cwd, d))
                    .await?
            }
            Command::Rm(f) => {
                self.client
                    .rm(self.tree, &resolve_remote(&self.cwd, f))
                    .await?
            }
            Command::Rename { from, to } => {
                let (from, to) = (
                    resolve_remote(&self.cwd, from),
                    resolve_remote(&self.cwd, to),
                );
                self.client.rename(self.tree, &from, &to).await?
            }
            Command::Cd(None) | Command::Pwd => {
                let _ = writeln!(out, "Current directory is \\{}", self.cwd);
            }
            Command::Cd(Some(d)) => {
                let target = resolve_remote(&self.cwd, d);
                if !target.is_empty() && !self.client.is_dir(self.tree, &target).await? {
                    return Err(Error::Status {
                        status: smb_core::header::NtStatus::NOT_A_DIRECTORY,
                        context: format!("changing to \\{target}"),
                    });
                }
                self.cwd = target;
            }
            Command::Lcd(d) => {
                std::env::set_current_dir(d).map_err(|e| Error::Local(format!("lcd {d}: {e}")))?
            }
            Command::Echo => self.client.echo().await?,
            Command::Exit => {}
        }
        Ok(())
    }
}

/// `ls` argument to (directory, pattern): `dir\*.txt` lists `*.txt` in `dir`.
fn split_mask(cwd: &str, mask: Option<&str>) -> (String, String) {
    let Some(mask) = mask.filter(|m| !m.is_empty()) else {
        return (cwd.to_string(), "*".into());
    };
    let norm = mask.replace('/', "\\");
    match norm.rsplit_once('\\') {
        Some((dir, pat)) => {
            let d = if dir.is_empty() {
                "\\".to_string()
            } else {
                dir.to_string()
            };
            (
                resolve_remote(cwd, &d),
                if pat.is_empty() {
                    "*".into()
                } else {
                    pat.to_string()
                },
            )
        }
        None => (cwd.to_string(), norm),
    }
}

fn rate(bytes: u64, start: Instant) -> String {
    let secs = start.elapsed().as_secs_f64().max(1e-6);
    format!("{:.1} KiloBytes/sec", bytes as f64 / 1024.0 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oplock_and_lease_options_parse() {
        assert_eq!(
            parse_caching("Batch"),
            Ok(Caching::Oplock(OplockLevel::BATCH))
        );
        assert_eq!(parse_caching("ii"), Ok(Caching::Oplock(OplockLevel::II)));
        assert_eq!(parse_caching("none"), Ok(Caching::None));
        assert!(parse_caching("level3").is_err());
        assert_eq!(
            parse_lease("rwh"),
            Ok(Caching::Lease {
                key: [0; 16],
                state: lease_state::ALL
            })
        );
        assert!(parse_lease("WH").is_err(), "no R");
        assert!(parse_lease("RR").is_err());
        assert!(parse_lease("RX").is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(split_mask("", None), ("".into(), "*".into()));
        assert_eq!(split_mask("d", Some("*.txt")), ("d".into(), "*.txt".into()));
        assert_eq!(
            split_mask("", Some("sub/*.bin")),
            ("sub".into(), "*.bin".into())
        );
        assert_eq!(
            split_mask("d", Some("sub\\")),
            ("d\\sub".into(), "*".into())
        );
        assert_eq!(
            split_mask("d", Some("\\top\\x")),
            ("top".into(), "x".into())
        );
    }

    #[test]
    fn arguments_follow_the_issue() {
        let args = Args::try_parse_from([
            "smb-client",
            "//127.0.0.1:4455/data",
            "-U",
            "alice%Passw0rd!",
            "--max-dialect",
            "3.0.2",
            "--require-signing",
            "false",
            "--signing-algorithm",
            "aes-cmac",
            "-c",
            "ls",
        ])
        .unwrap();
        let config = build_config(&args, "127.0.0.1:4455").unwrap();
        assert_eq!(
            config.dialects,
            vec![
                Dialect::SMB202,
                Dialect::SMB21,
                Dialect::SMB30,
                Dialect::SMB302
            ]
        );
        assert!(!config.signing.require_security_signature);
        assert_eq!(config.signing_algorithms, vec![Algorithm::AesCmac]);
        assert_eq!(config.credentials.user, "alice");

        let args =
            Args::try_parse_from(["smb-client", "//h/s", "-U", "a%b", "--dialect", "2.1"]).unwrap();
        let config = build_config(&args, "h").unwrap();
        assert_eq!(config.dialects, vec![Dialect::SMB21]);
        assert!(
            config.signing.require_security_signature,
            "signing is required by default"
        );

        assert!(Args::try_parse_from([
            "smb-client",
            "//h/s",
            "--dialect",
            "2.1",
            "--max-dialect",
            "3.0"
        ])
        .is_err());
        assert!(
            Args::try_parse_from(["smb-client", "//h/s", "--require-signing", "maybe"]).is_err()
        );
        let bad =
            Args::try_parse_from(["smb-client", "//h/s", "--signing-algorithm", "md5"]).unwrap();
        assert!(build_config(&bad, "h").is_err());
    }
}
