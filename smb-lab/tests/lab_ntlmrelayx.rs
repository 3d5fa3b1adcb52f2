//! An attacker no one here wrote: impacket's ntlmrelayx.py (from the interop venv,
//! `target/peers/venv`, or `$SMB_INTEROP_PYTHON`) relays our client's logon to our server.
//! The tamper proxy sits between ntlmrelayx and the target in observe mode, so the verdict
//! comes from the wire: against a target requiring signing the relayed session's first
//! request is refused with ACCESS_DENIED; against one that does not, it gets in.

use std::io::Read;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use smb_core::header::Dialect;
use smb_lab::samba::SambaTarget;
use smb_lab::tamper::{Direction, TamperMode, TamperProxy, TamperTrace};
use smb_lab::target::{TargetServer, TargetSetup};

const ATTACKER: &str = "127.0.0.3";

fn python() -> PathBuf {
    let p = std::env::var_os("SMB_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers/venv/bin/python")
        });
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask peers` (impacket venv)",
        p.display()
    );
    p
}

fn ntlmrelayx() -> PathBuf {
    let p = python().parent().expect("venv bin").join("ntlmrelayx.py");
    assert!(
        p.is_file(),
        "{} is missing: impacket is not installed in the venv",
        p.display()
    );
    p
}

/// Kills ntlmrelayx (by PID) when the test ends, however it ends.
struct Relayx(Child);

impl Drop for Relayx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port(ip: &str) -> u16 {
    StdListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts ntlmrelayx with only its SMB server, on ATTACKER:port, relaying to `target`.
fn start_relayx(target: SocketAddr) -> (Relayx, SocketAddr) {
    let port = free_port(ATTACKER);
    let child = Command::new(python())
        .arg(ntlmrelayx())
        .args(["-t", &format!("smb://{target}"), "-smb2support"])
        .args(["--smb-port", &port.to_string(), "-ip", ATTACKER])
        .args([
            "--no-http-server",
            "--no-wcf-server",
            "--no-raw-server",
            "--no-rpc-server",
            "--no-winrm-server",
            "--no-mssql-server",
            "--no-rdp-server",
        ])
        // ntlmrelayx exits when its standard input closes: keep it open.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ntlmrelayx.py");
    let mut relayx = Relayx(child);
    let addr: SocketAddr = format!("{ATTACKER}:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = relayx.0.try_wait() {
            let mut err = String::new();
            let _ = relayx.0.stderr.take().unwrap().read_to_string(&mut err);
            panic!("ntlmrelayx exited ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "ntlmrelayx did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (relayx, addr)
}

/// The status of the first request the relay made after authenticating, from the wire.
fn first_post_auth(trace: &TamperTrace) -> Option<(String, String)> {
    let start = trace.auth_done_at()?;
    let req = trace.records[start + 1..]
        .iter()
        .find(|r| r.direction == Direction::ClientToServer)?;
    let resp = trace.records[start + 1..]
        .iter()
        .find(|r| r.direction == Direction::ServerToClient && r.message_id == req.message_id);
    Some((
        req.command.clone(),
        resp.and_then(|r| r.status.clone())
            .unwrap_or_else(|| "none".into()),
    ))
}

/// The target: our server, or a private smbd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Ours,
    Samba,
}

async fn relay_with_ntlmrelayx(kind: Target, require_signing: bool) -> (TamperTrace, String) {
    // 2.0.2 to 3.0.2, what relay tools use (3.1.1 needs a signed TREE_CONNECT).
    let dialects = smb_lab::relay::RelayOptions::DEFAULT_DIALECTS;
    let (_ours, _samba, target_addr, user, password) = match kind {
        Target::Ours => {
            let mut setup = TargetSetup::new("127.0.0.4".parse().unwrap(), require_signing);
            setup.dialects = dialects.to_vec();
            let t = TargetServer::start(&setup).await.unwrap();
            let addr = t.addr;
            (
                Some(t),
                None,
                addr,
                smb_lab::target::USER,
                smb_lab::target::PASSWORD,
            )
        }
        Target::Samba => {
            let s = tokio::task::spawn_blocking(move || {
                SambaTarget::start(
                    "127.0.0.1".parse().unwrap(),
                    require_signing,
                    // impacket's relay client negotiates 2.0.2/2.1 only.
                    Dialect::SMB21,
                    ("hello.txt", b"hello"),
                )
            })
            .await
            .unwrap()
            .expect("smbd starts (install Samba with `cargo xtask peers`)");
            let addr = s.addr;
            (
                None,
                Some(s),
                addr,
                smb_lab::samba::USER,
                smb_lab::samba::PASSWORD,
            )
        }
    };
    let proxy = TamperProxy::bind(
        format!("{ATTACKER}:0").parse().unwrap(),
        target_addr,
        TamperMode::Observe,
    )
    .await
    .unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let (mut relayx, relay_addr) = tokio::task::spawn_blocking(move || start_relayx(proxy_addr))
        .await
        .unwrap();
    let observed = tokio::spawn(async move { proxy.accept_one().await });

    let creds = smb_core::auth::Credentials::password(user, "", password);
    let mut cfg = smb_core::conn::client::ClientConfig::new(&relay_addr.to_string(), creds);
    cfg.signing = smb_core::policy::SigningPolicy::new(false);
    let victim = async {
        let mut c = smb_client::client::Client::connect(relay_addr, cfg).await?;
        c.login().await
    };
    let victim = tokio::time::timeout(Duration::from_secs(30), victim).await;
    // ntlmrelayx keeps its connection to the target open; the proxy trace is complete once
    // ntlmrelayx is stopped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = relayx.0.kill();
    let _ = relayx.0.wait();
    let trace = tokio::time::timeout(Duration::from_secs(10), observed)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut out = String::new();
    let _ = relayx.0.stdout.take().unwrap().read_to_string(&mut out);
    let mut err = String::new();
    let _ = relayx.0.stderr.take().unwrap().read_to_string(&mut err);
    (
        trace,
        format!("victim: {victim:?}\n--- ntlmrelayx stdout ---\n{out}\n--- stderr ---\n{err}"),
    )
}

fn assert_blocked(trace: &TamperTrace, log: &str) {
    assert!(
        trace.authenticated(),
        "the relayed authentication is accepted\n{log}"
    );
    let first = first_post_auth(trace);
    assert_eq!(
        first.as_ref().map(|(_, s)| s.as_str()),
        Some("ACCESS_DENIED"),
        "first request after auth: {first:?}\n{:#?}\n{log}",
        trace.records
    );
    let s = trace.post_auth_signing();
    assert!(
        s.requests > 0 && s.signed_requests == 0,
        "ntlmrelayx cannot sign\n{log}"
    );
}

fn assert_got_in(trace: &TamperTrace, log: &str) {
    assert!(
        trace.authenticated(),
        "the relayed authentication is accepted\n{log}"
    );
    let first = first_post_auth(trace);
    assert_eq!(
        first.as_ref().map(|(_, s)| s.as_str()),
        Some("SUCCESS"),
        "first request after auth: {first:?}\n{:#?}\n{log}",
        trace.records
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlmrelayx_stopped_at_first_request_when_target_requires_signing() {
    let (trace, log) = relay_with_ntlmrelayx(Target::Ours, true).await;
    eprintln!("{log}");
    assert_blocked(&trace, &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlmrelayx_gets_in_when_target_does_not_require_signing() {
    let (trace, log) = relay_with_ntlmrelayx(Target::Ours, false).await;
    eprintln!("{log}");
    assert_got_in(&trace, &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlmrelayx_against_samba_mandatory_signing_is_stopped() {
    let (trace, log) = relay_with_ntlmrelayx(Target::Samba, true).await;
    eprintln!("{log}");
    assert_blocked(&trace, &log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntlmrelayx_against_samba_auto_signing_gets_in() {
    let (trace, log) = relay_with_ntlmrelayx(Target::Samba, false).await;
    eprintln!("{log}");
    assert_got_in(&trace, &log);
}
