//! Tokio SMB2/3 server library.
