//! The choice of target: our server in process, or a private Samba (the `peers` harness),
//! behind one type the scenario families share.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use smb_core::header::Dialect;

use crate::samba::{self, SambaTarget};
use crate::target::{self, TargetServer, TargetSetup};

use super::victim::VictimSetup;
use super::Lab;

/// Which server plays the target of the relay scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Our server, in process.
    Ours,
    /// A private smbd (`server signing = mandatory` when the target requires signing,
    /// `auto` when not).
    Samba,
}

/// A started target of either kind.
#[derive(Debug)]
pub(super) enum RunningTarget {
    Ours(TargetServer),
    Samba(SambaTarget),
}

impl RunningTarget {
    pub(super) async fn start(
        lab: &Lab,
        kind: TargetKind,
        dialect: Dialect,
        requires: bool,
    ) -> anyhow::Result<Self> {
        match kind {
            TargetKind::Ours => Ok(RunningTarget::Ours(
                TargetServer::start(&TargetSetup::new(lab.target, requires).dialect(dialect))
                    .await?,
            )),
            TargetKind::Samba => {
                // smbd binds only addresses of a configured interface, and `lo` carries
                // 127.0.0.1 only (127.0.0.4 is routed to it, not assigned to it).
                let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
                let samba = tokio::task::spawn_blocking(move || {
                    let content = target::secret_content();
                    SambaTarget::start(ip, requires, dialect, (target::SECRET_FILE, &content))
                })
                .await??;
                Ok(RunningTarget::Samba(samba))
            }
        }
    }

    /// Stops the target; smbd is stopped off the async workers (it waits for its processes).
    pub(super) async fn stop(self) {
        if let RunningTarget::Samba(samba) = self {
            let _ = tokio::task::spawn_blocking(move || drop(samba)).await;
        }
    }

    pub(super) fn addr(&self) -> SocketAddr {
        match self {
            RunningTarget::Ours(s) => s.addr,
            RunningTarget::Samba(s) => s.addr,
        }
    }

    pub(super) fn has_file(&self, name: &str) -> bool {
        match self {
            RunningTarget::Ours(s) => s.has_file(name),
            RunningTarget::Samba(s) => s.has_file(name),
        }
    }

    /// The victim's account on this target.
    pub(super) fn victim(&self, require_signing: bool) -> VictimSetup {
        let mut v = VictimSetup::new(require_signing);
        if let RunningTarget::Samba(_) = self {
            v.user = samba::USER.into();
            v.password = samba::PASSWORD.into();
        }
        v
    }

    pub(super) fn share(&self) -> &'static str {
        match self {
            RunningTarget::Ours(_) => target::SHARE,
            RunningTarget::Samba(_) => samba::SHARE,
        }
    }
}
