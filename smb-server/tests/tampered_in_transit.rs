//! A bit flipped in transit in a large signed message is caught: by our server in a WRITE
//! request, by our client in a READ response (1 MiB messages, 3.1.1, AES-GMAC, several in
//! flight). Both were signed the fast way: the WRITE's data digested by the client's file
//! thread, the READ's by the server's blocking thread (`SigningKey::tail_digest`); the flip
//! happens after the signature, on the wire, as an attacker in the middle would make it.
//! Each test first runs the same transfer through the proxy without a flip.

mod in_process;

use std::net::SocketAddr;
use std::sync::Arc;

use in_process::InProcess;
use smb_client::client::Client;
use smb_client::error::Error;
use smb_core::conn::client::ClientConfig;
use smb_core::conn::share::MemoryShare;
use smb_core::signing::Algorithm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1024 * 1024;
/// Every byte of the files; the flipped one reads 0x5b.
const FILL: u8 = 0x5a;

/// Our server (signing required by default) over `share`.
async fn start(share: Arc<MemoryShare>) -> InProcess {
    InProcess::start(share, MIB + 1024, Vec::new()).await
}

/// Which frame the proxy alters: none, or the first one of at least 256 KiB going to the
/// server or to the client (one bit in its middle, well inside a READ's or WRITE's data).
#[derive(Clone, Copy, PartialEq)]
enum Flip {
    Nothing,
    ToServer,
    ToClient,
}

/// Forwards one connection to `upstream` frame by frame; returns its address and a task
/// that ends with whether it flipped a bit.
async fn proxy(upstream: SocketAddr, flip: Flip) -> (SocketAddr, tokio::task::JoinHandle<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(upstream).await.unwrap();
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let up = tokio::spawn(forward(cr, sw, flip == Flip::ToServer));
        let down = tokio::spawn(forward(sr, cw, flip == Flip::ToClient));
        let (up, down) = (up.await.unwrap(), down.await.unwrap());
        up || down
    });
    (addr, task)
}

/// Copies frames from `from` to `to` until either side closes, flipping a bit in the
/// first large one if `flip`; returns whether it did.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    flip: bool,
) -> bool {
    let mut flipped = false;
    loop {
        let mut prefix = [0u8; 4];
        if from.read_exact(&mut prefix).await.is_err() {
            return flipped;
        }
        let len = u32::from_be_bytes([0, prefix[1], prefix[2], prefix[3]]) as usize;
        let mut frame = vec![0u8; len];
        if from.read_exact(&mut frame).await.is_err() {
            return flipped;
        }
        if flip && !flipped && len >= 256 * 1024 {
            frame[len / 2] ^= 0x01;
            flipped = true;
        }
        if to.write_all(&prefix).await.is_err() || to.write_all(&frame).await.is_err() {
            return flipped;
        }
    }
}

/// A client that requires signing and offers AES-GMAC only, connected to `addr`, logged in,
/// with the share connected.
async fn client(addr: SocketAddr) -> (Client, u32) {
    let creds = smb_core::auth::Credentials::password("alice", "", "Passw0rd!");
    let mut cfg = ClientConfig::new(&addr.to_string(), creds);
    cfg.signing_algorithms = vec![Algorithm::AesGmac];
    let mut c = Client::connect(addr, cfg).await.unwrap();
    let session = c.login().await.unwrap();
    assert!(session.signed, "the session must be signed");
    assert_eq!(session.algorithm, Some(Algorithm::AesGmac));
    let tree = c.tree_connect(&format!("\\\\{addr}\\data")).await.unwrap();
    c.set_io_size(Some(MIB as u32));
    (c, tree)
}

/// A local file removed when the test ends, passed or not.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn assert_signature_refused(e: &Error, who: &str) {
    let text = e.to_string().to_lowercase();
    assert!(
        text.contains("signature") || text.contains("access_denied") || text.contains("closed"),
        "{who}: expected a refused signature, got {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bit_flipped_in_a_large_signed_write_is_refused_by_our_server() {
    let share = Arc::new(MemoryShare::new());
    let server = start(share).await;
    let addr = server.addr;
    let data = vec![FILL; 4 * MIB];
    // `put` from a local file: its thread digests each chunk as it reads it.
    let local =
        TempFile(std::env::temp_dir().join(format!("tampered-put-{}.bin", std::process::id())));
    std::fs::write(&local.0, &data).unwrap();
    let local = &local.0;

    let (via, proxied) = proxy(addr, Flip::Nothing).await;
    let (mut c, tree) = client(via).await;
    c.put(tree, local, "good.bin").await.unwrap();
    let back = c.read_file(tree, "good.bin").await.unwrap();
    assert!(back == data, "the untouched transfer must round-trip");
    drop(c);
    assert!(!proxied.await.unwrap());

    let (via, proxied) = proxy(addr, Flip::ToServer).await;
    let (mut c, tree) = client(via).await;
    let e = c
        .put(tree, local, "bad.bin")
        .await
        .expect_err("a WRITE with a flipped bit must not succeed");
    assert_signature_refused(&e, "our client writing through the proxy");
    drop(c);
    assert!(proxied.await.unwrap(), "the proxy flipped nothing");

    // The WRITEs that arrived intact may have run; the altered one must not have.
    let (mut c, tree) = client(addr).await;
    let written = c.read_file(tree, "bad.bin").await.unwrap_or_default();
    assert!(
        !written.contains(&(FILL ^ 0x01)),
        "the altered WRITE data reached the file"
    );
    drop(c);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bit_flipped_in_a_large_signed_read_response_is_refused_by_our_client() {
    let share = Arc::new(MemoryShare::new());
    let data = vec![FILL; 4 * MIB];
    share.put("file.bin", &data).unwrap();
    let server = start(share).await;
    let addr = server.addr;

    let (via, proxied) = proxy(addr, Flip::Nothing).await;
    let (mut c, tree) = client(via).await;
    let back = c.read_file(tree, "file.bin").await.unwrap();
    assert!(back == data, "the untouched transfer must arrive intact");
    drop(c);
    assert!(!proxied.await.unwrap());

    let (via, proxied) = proxy(addr, Flip::ToClient).await;
    let (mut c, tree) = client(via).await;
    let e = c
        .read_file(tree, "file.bin")
        .await
        .expect_err("a READ response with a flipped bit must be refused");
    assert!(
        matches!(e, Error::Connection(_)) && e.to_string().to_lowercase().contains("signature"),
        "expected the client to refuse the signature, got {e}"
    );
    drop(c);
    assert!(proxied.await.unwrap(), "the proxy flipped nothing");
    server.stop().await;
}
