//! Tokio SMB2/3 client library.
