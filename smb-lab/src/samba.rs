//! `smb-lab demo --target samba`: a private smbd as the relay's target, started by the one
//! peer harness (the `peers` crate, which the interop tests and xtask use too), with
//! `server signing = mandatory` or `auto`, pinned to one dialect. Its processes are stopped by
//! PID when it is dropped.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use peers::{SambaOptions, SambaServer, ServerSigning};
use smb_core::header::Dialect;

use crate::loopback;

/// The Unix account Samba maps the victim's logon to (the interop suite's).
pub const USER: &str = peers::SAMBA_USER;
/// Its Samba password, only ever used on loopback.
pub const PASSWORD: &str = peers::SAMBA_PASSWORD;
/// The read/write share.
pub const SHARE: &str = peers::SAMBA_SHARE;

/// A running private smbd.
#[derive(Debug)]
pub struct SambaTarget {
    pub addr: SocketAddr,
    server: SambaServer,
}

/// Samba's protocol name for `d` (anything newer than 3.0.2 is pinned to 3.1.1).
fn protocol_name(d: Dialect) -> &'static str {
    match d {
        Dialect::SMB202 => "SMB2_02",
        Dialect::SMB21 => "SMB2_10",
        Dialect::SMB30 => "SMB3_00",
        Dialect::SMB302 => "SMB3_02",
        _ => "SMB3_11",
    }
}

impl SambaTarget {
    /// Starts smbd on `ip` (loopback) with `server signing = mandatory|auto`, pinned to
    /// `dialect`, with `file` (name, content) in its share.
    pub fn start(
        ip: IpAddr,
        mandatory: bool,
        dialect: Dialect,
        file: (&str, &[u8]),
    ) -> anyhow::Result<Self> {
        loopback::check_listen("samba", SocketAddr::new(ip, 0))?;
        let protocol = protocol_name(dialect);
        let server = SambaServer::try_start(SambaOptions {
            ip,
            signing: if mandatory {
                ServerSigning::Mandatory
            } else {
                ServerSigning::Auto
            },
            min_protocol: protocol,
            max_protocol: protocol,
            ..SambaOptions::default()
        })
        .context("--target samba needs Samba (`cargo xtask peers` installs it)")?;
        server.put_file(file.0, file.1)?;
        Ok(SambaTarget {
            addr: server.addr(),
            server,
        })
    }

    /// Whether `name` exists in the share directory.
    pub fn has_file(&self, name: &str) -> bool {
        self.server.share_path().join(name).exists()
    }
}
