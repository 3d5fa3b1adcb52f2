//! Our server inside the test process, on `127.0.0.1:0`, over a share backend the test
//! supplies (user `alice`, password `Passw0rd!`, share `data`): for tests that watch or
//! shape what the share does.

use std::net::SocketAddr;
use std::sync::Arc;

use smb_core::conn::server::ShareConfig;
use smb_core::conn::share::ShareBackend;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; [`InProcess::stop`] ends it and checks it ended cleanly.
pub struct InProcess {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Serves `backend` as `data`, with messages of up to `max_message_size` bytes, its
    /// connections on `runtimes` if any (`Server::spread_over`).
    pub async fn start(
        backend: Arc<dyn ShareBackend>,
        max_message_size: usize,
        runtimes: Vec<tokio::runtime::Handle>,
    ) -> InProcess {
        let settings = smb_server::settings::Settings {
            listen: Some("127.0.0.1:0".into()),
            share: vec![format!("data={}", std::env::temp_dir().display())],
            user: vec!["alice:Passw0rd!".into()],
            max_message_size: Some(max_message_size),
            ..Default::default()
        };
        let mut resolved = settings.resolve().unwrap();
        let mut config = (*resolved.config).clone();
        config.shares = vec![ShareConfig {
            name: "data".into(),
            backend,
        }];
        resolved.config = Arc::new(config);
        let server = smb_server::Server::bind(resolved)
            .await
            .unwrap()
            .spread_over(runtimes);
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        InProcess { addr, stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}
