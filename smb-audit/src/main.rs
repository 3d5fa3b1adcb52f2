//! `smb-audit`: signing posture of SMB servers, clients, captures and audit logs.
//!
//! ```text
//! smb-audit scan TARGET... [-p PORT] [-U [DOMAIN\]USER%PASS] [--json FILE|-] [--csv FILE]
//!                [--relay-list FILE] [--concurrency N] [--timeout SECS]
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Measure SMB signing posture: servers (scan), clients (probe-client), captures (pcap), logs.
#[derive(Debug, Parser)]
#[command(
    name = "smb-audit",
    version,
    after_help = "Exit status: 0 = every host/session SECURE, 1 = any VULNERABLE, 2 = errors only \
                  (or bad input)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Scan servers: dialects, SecurityMode, signing algorithms, SMB1, guest, enforcement.
    Scan(smb_audit::scan_cmd::ScanArgs),
    /// Listen for clients and report their signing posture.
    ProbeClient(smb_audit::probe_client::ProbeClientArgs),
    /// Unsigned messages and signature checks in pcap/pcapng captures.
    Pcap(smb_audit::pcap::PcapArgs),
    /// Roll up our server's and client's JSON-lines audit logs per host.
    Log(smb_audit::log::LogArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smb-audit: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Cmd::Scan(args) => runtime.block_on(smb_audit::scan_cmd::run(args)),
        Cmd::ProbeClient(args) => runtime.block_on(smb_audit::probe_client::run(args)),
        Cmd::Pcap(args) => smb_audit::pcap::run(args),
        Cmd::Log(args) => smb_audit::log::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smb-audit: {e:#}");
            ExitCode::from(2)
        }
    }
}
