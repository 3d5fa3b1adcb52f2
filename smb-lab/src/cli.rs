//! The lab subcommands (`relay`, `tamper`, `demo`): argument types and their entry points.
//! `main.rs` only dispatches to these.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use smb_core::header::Dialect;

use crate::loopback;
use crate::relay::{Relay, RelayAction, RelayAttempt, RelayOptions};
use crate::tamper::{TamperMode, TamperProxy, TamperTrace};

/// `smb-lab relay`: relay victims' NTLM authentication to a target.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Where victims connect (loopback only), e.g. 127.0.0.3:4455.
    #[arg(long)]
    pub listen: String,
    /// The server to relay to (loopback only), e.g. 127.0.0.4:4455.
    #[arg(long)]
    pub target: String,
    /// What to do with a relayed session: `ls`, `write:PATH` or `ls+write:PATH`.
    #[arg(long, default_value = "ls+write:RELAYED-BY-SMB-LAB.txt")]
    pub action: String,
    /// Share to connect to on the target.
    #[arg(long, default_value = "data")]
    pub share: String,
    /// Source address for the connection to the target (loopback only).
    #[arg(long)]
    pub source: Option<IpAddr>,
    /// Dialects offered to the target. 3.1.1 is left out by default: its TREE_CONNECT must be
    /// signed (MS-SMB2 3.3.5.7), which a relay cannot do.
    #[arg(long, value_delimiter = ',', default_value = "2.0.2,2.1,3.0,3.0.2", value_parser = parse_dialect)]
    pub dialects: Vec<Dialect>,
    /// Handle one victim, then exit (0 when the attempt ran to its end, 1 on an error).
    #[arg(long)]
    pub once: bool,
    /// Print each attempt as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `smb-lab tamper`: a man in the middle that alters one thing in a session.
#[derive(Debug, clap::Args)]
pub struct TamperArgs {
    /// Where the client connects (loopback only).
    #[arg(long)]
    pub listen: String,
    /// The real server (loopback only).
    #[arg(long)]
    pub target: String,
    /// `flip-read`, `strip-signing-required` or `observe` (change nothing).
    #[arg(long, value_parser = parse_mode)]
    pub mode: TamperMode,
    /// Proxy one connection, then exit.
    #[arg(long)]
    pub once: bool,
    /// Print each connection's trace as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_dialect(s: &str) -> Result<Dialect, String> {
    Dialect::parse(s)
        .ok_or_else(|| format!("unknown dialect {s:?} (2.0.2, 2.1, 3.0, 3.0.2, 3.1.1)"))
}

fn parse_mode(s: &str) -> Result<TamperMode, String> {
    TamperMode::parse(s)
        .ok_or_else(|| format!("unknown mode {s:?} (flip-read, strip-signing-required, observe)"))
}

/// `smb-lab demo`: every scenario, one process, a report.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory for lab-report.md and lab-report.json.
    #[arg(long, default_value = "target/lab")]
    pub out: PathBuf,
    /// `ours` (our server, in process) or `samba` (the local smbd of the interop suite).
    #[arg(long, default_value = "ours")]
    pub target: String,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// The exit code of a subcommand, or its error on one line (exit 1).
fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("smb-lab: {e:#}");
        ExitCode::FAILURE
    })
}

fn announce(addr: std::net::SocketAddr) {
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
}

/// Entry point of `smb-lab relay`.
pub fn relay(args: &RelayArgs) -> ExitCode {
    exit_code(run_relay(args))
}

fn run_relay(args: &RelayArgs) -> anyhow::Result<ExitCode> {
    let listen = loopback::parse_listen("listen", &args.listen)?;
    let target = loopback::parse_connect("target", &args.target)?;
    let action = RelayAction::parse(&args.action).ok_or_else(|| {
        anyhow::anyhow!(
            "bad --action {:?} (ls, write:PATH, ls+write:PATH)",
            args.action
        )
    })?;
    let mut options = RelayOptions::new(target, &args.share);
    options.action = action;
    options.source = args.source;
    options.dialects = args.dialects.clone();
    let (json, once) = (args.json, args.once);
    runtime()?.block_on(async move {
        let relay = Relay::bind(listen, options).await?;
        announce(relay.local_addr()?);
        if once {
            let attempt = relay.accept_one().await;
            print_attempt(&attempt, json);
            return Ok(if attempt.error.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        relay.serve(move |a| print_attempt(&a, json)).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_attempt(a: &RelayAttempt, json: bool) {
    if json {
        println!("{}", serde_json::to_string(a).unwrap_or_default());
    } else {
        println!("{}", a.summary());
        for s in &a.steps {
            let signed = if s.response_signed {
                " (response signed)"
            } else {
                ""
            };
            println!(
                "  {:<16} {:<40} -> {}{signed}",
                s.request, s.detail, s.status
            );
        }
        if let Some(names) = &a.listing {
            println!("  listing: {}", names.join(", "));
        }
    }
    let _ = std::io::stdout().flush();
}

/// Entry point of `smb-lab tamper`.
pub fn tamper(args: &TamperArgs) -> ExitCode {
    exit_code(run_tamper(args))
}

fn run_tamper(args: &TamperArgs) -> anyhow::Result<ExitCode> {
    let listen = loopback::parse_listen("listen", &args.listen)?;
    let target = loopback::parse_connect("target", &args.target)?;
    let (json, once, mode) = (args.json, args.once, args.mode);
    runtime()?.block_on(async move {
        let proxy = TamperProxy::bind(listen, target, mode).await?;
        announce(proxy.local_addr()?);
        if once {
            print_trace(&proxy.accept_one().await?, json);
            return Ok(ExitCode::SUCCESS);
        }
        proxy
            .serve(move |t| match t {
                Ok(t) => print_trace(&t, json),
                Err(e) => eprintln!("smb-lab: {e:#}"),
            })
            .await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_trace(t: &TamperTrace, json: bool) {
    if json {
        println!("{}", serde_json::to_string(t).unwrap_or_default());
    } else {
        println!(
            "connection from {} (mode {}, dialect {}):",
            t.client,
            t.mode,
            t.dialect.as_deref().unwrap_or("?")
        );
        if t.changes.is_empty() {
            println!("  changed: nothing");
        }
        for c in &t.changes {
            println!("  changed: {}", c.description);
        }
        let s = t.post_auth_signing();
        println!(
            "  after authentication: {} ({} of {} requests and {} of {} responses signed)",
            s.verdict(),
            s.signed_requests,
            s.requests,
            s.signed_responses,
            s.responses
        );
        println!("  client: {}", t.client_reaction());
    }
    let _ = std::io::stdout().flush();
}

/// Entry point of `smb-lab demo`: exit 0 when every scenario ended as expected, 1 otherwise.
pub fn demo(args: &DemoArgs) -> ExitCode {
    exit_code(run_demo(args))
}

fn run_demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let all_passed = runtime()?.block_on(crate::demo::run(&args.out, &args.target))?;
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
