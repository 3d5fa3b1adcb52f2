//! `smb-audit`: the SMB signing posture of servers, clients, captures and audit logs.
//!
//! - [`scan`]: servers, from the outside (`smb-audit scan`).
//! - [`targets`]: target specifications (hosts, CIDR blocks, ranges, files).
//! - [`wire`]: one framed TCP connection under a deadline.

pub mod log;
pub mod ntlmssp;
pub mod pcap;
pub mod probe_client;
pub mod report;
pub mod scan;
pub mod scan_cmd;
pub mod targets;
pub mod wire;
