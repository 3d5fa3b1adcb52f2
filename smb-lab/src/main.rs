//! `smb-lab`: the lab's command line. Each subcommand lives in its own module; this file
//! only parses the command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod engine_cli;

/// SMB2/3 signing lab: the signing engine on the command line, and the relay lab.
#[derive(Debug, Parser)]
#[command(name = "smb-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Derive a session's signing, application and encryption keys.
    Keys(engine_cli::KeysArgs),
    /// Compute the signature of a message (each message of a compound chain).
    Sign(engine_cli::SignArgs),
    /// Check a message's own signature: exit 0 when valid, 1 when not.
    Verify(engine_cli::SignArgs),
    /// The 3.1.1 preauth integrity hash after each message, from 64 zero bytes.
    Preauth(engine_cli::PreauthArgs),
    /// NTLM relay attacker: plays the server to victims, relays their logon to a target.
    Relay(smb_lab::cli::RelayArgs),
    /// Man in the middle: flip a READ bit or strip SIGNING_REQUIRED from NEGOTIATE.
    Tamper(smb_lab::cli::TamperArgs),
    /// Run every lab scenario in one process and write the report.
    Demo(smb_lab::cli::DemoArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Keys(args) => engine_cli::keys(&args),
        Command::Sign(args) => engine_cli::sign(&args),
        Command::Verify(args) => engine_cli::verify(&args),
        Command::Preauth(args) => engine_cli::preauth(&args),
        Command::Relay(args) => smb_lab::cli::relay(&args),
        Command::Tamper(args) => smb_lab::cli::tamper(&args),
        Command::Demo(args) => smb_lab::cli::demo(&args),
    }
}
