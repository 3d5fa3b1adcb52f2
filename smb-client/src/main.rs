//! `smb-client`: an smbclient-like command line over the sans-IO SMB2/3 client.
//!
//! ```text
//! smb-client //HOST[:PORT]/SHARE -U USER%PASSWORD [--dialect D | --max-dialect D]
//!            [--require-signing true|false] [--signing-algorithm aes-gmac|aes-cmac|hmac-sha256]
//!            -c 'ls; get REMOTE LOCAL; put LOCAL REMOTE; mkdir DIR; rm FILE; rename OLD NEW'
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    smb_client::cli::main()
}
