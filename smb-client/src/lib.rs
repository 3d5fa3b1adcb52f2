//! Tokio SMB2/3 client: a thin driver around `smb_core::conn::client::ClientConnection`,
//! plus the pieces of the `smb-client` command line (service and user parsing, the
//! smbclient command language, `ls` formatting, the audit log). `local_io` moves a
//! transfer's data between the connection and a local file on a thread of its own.

pub mod audit;
pub mod bench;
pub mod breaks;
pub mod cli;
pub mod client;
pub mod error;
pub mod listing;
mod local_io;
pub mod notify;
pub mod script;
pub mod target;
