//! Where the driver runs share requests. The WRITEs to one file run one after another
//! (`ShareOp::writes_to`) while READs keep running beside each other, and with
//! `Server::spread_over` each connection's requests run on its own runtime's threads. The
//! share is a `MemoryShare` behind a wrapper that makes every write and read take a few
//! milliseconds and records how many run at once and on which threads; our client keeps
//! several 64 KiB requests in flight, so without the lanes the writes would overlap.

mod in_process;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use in_process::InProcess;
use smb_core::conn::share::{
    DirEntry, FileInfo, FsInfo, Handle, MemoryShare, ShareBackend, ShareHandle, ShareResult,
};

/// How many calls run now, and the most that ever ran at once.
#[derive(Debug, Default)]
struct Overlap {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Overlap {
    /// Runs `f` after a pause, counted as running for the whole time.
    fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        let out = f();
        self.now.fetch_sub(1, Ordering::SeqCst);
        out
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Default)]
struct Counts {
    writes: Overlap,
    reads: Overlap,
    /// The names of the threads that ran reads and writes.
    threads: Mutex<BTreeSet<String>>,
}

impl Counts {
    fn seen_on_this_thread(&self) {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        self.threads.lock().unwrap().insert(name);
    }
}

#[derive(Debug)]
struct Slow {
    inner: MemoryShare,
    counts: Arc<Counts>,
}

struct SlowHandle {
    inner: Handle,
    counts: Arc<Counts>,
}

impl fmt::Debug for SlowHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl ShareHandle for SlowHandle {
    fn stat(&self) -> ShareResult<FileInfo> {
        self.inner.stat()
    }
    fn read_into(&self, offset: u64, len: u32, out: &mut Vec<u8>) -> ShareResult<()> {
        self.counts.seen_on_this_thread();
        self.counts
            .reads
            .time(|| self.inner.read_into(offset, len, out))
    }
    fn write(&self, offset: u64, data: &[u8]) -> ShareResult<u32> {
        self.counts.seen_on_this_thread();
        self.counts.writes.time(|| self.inner.write(offset, data))
    }
    fn set_len(&self, len: u64) -> ShareResult<()> {
        self.inner.set_len(len)
    }
    fn flush(&self) -> ShareResult<()> {
        self.inner.flush()
    }
    fn list_page(
        &self,
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        self.inner.list_page(after, pattern, max)
    }
}

impl ShareBackend for Slow {
    fn open(&self, path: &[String], write: bool) -> ShareResult<Handle> {
        Ok(Arc::new(SlowHandle {
            inner: self.inner.open(path, write)?,
            counts: self.counts.clone(),
        }))
    }
    fn stat(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.inner.stat(path)
    }
    fn create_file(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.inner.create_file(path)
    }
    fn mkdir(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.inner.mkdir(path)
    }
    fn write(&self, path: &[String], offset: u64, data: &[u8]) -> ShareResult<u32> {
        self.inner.write(path, offset, data)
    }
    fn set_len(&self, path: &[String], len: u64) -> ShareResult<()> {
        self.inner.set_len(path, len)
    }
    fn list(&self, path: &[String]) -> ShareResult<Vec<DirEntry>> {
        self.inner.list(path)
    }
    fn read_into(
        &self,
        path: &[String],
        offset: u64,
        len: u32,
        out: &mut Vec<u8>,
    ) -> ShareResult<()> {
        self.inner.read_into(path, offset, len, out)
    }
    fn delete(&self, path: &[String]) -> ShareResult<()> {
        self.inner.delete(path)
    }
    fn rename(&self, from: &[String], to: &[String], replace: bool) -> ShareResult<()> {
        self.inner.rename(from, to, replace)
    }
    fn flush(&self, path: &[String]) -> ShareResult<()> {
        self.inner.flush(path)
    }
    fn fs_info(&self) -> ShareResult<FsInfo> {
        self.inner.fs_info()
    }
}

/// A server over the slow share, on `runtimes` if any.
async fn start(counts: &Arc<Counts>, runtimes: Vec<tokio::runtime::Handle>) -> InProcess {
    let slow = Slow {
        inner: MemoryShare::new(),
        counts: counts.clone(),
    };
    // 64 KiB requests: a 2 MiB file takes 32 of them, several in flight at once.
    InProcess::start(Arc::new(slow), 64 * 1024 + 1024, runtimes).await
}

/// Logs in, writes a 2 MiB file named `name` and reads it back; checks the bytes.
async fn round_trip(addr: std::net::SocketAddr, name: &str) {
    let creds = smb_core::auth::Credentials::password("alice", "", "Passw0rd!");
    let cfg = smb_core::conn::client::ClientConfig::new(&addr.to_string(), creds);
    let mut c = smb_client::client::Client::connect(addr, cfg)
        .await
        .unwrap();
    c.login().await.unwrap();
    let tree = c.tree_connect(&format!("\\\\{addr}\\data")).await.unwrap();
    let data: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    c.write_file(tree, name, &data).await.unwrap();
    let back = c.read_file(tree, name).await.unwrap();
    assert!(
        back == data,
        "{name} read back differs from what was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_one_file_run_one_at_a_time_and_reads_overlap() {
    let counts = Arc::new(Counts::default());
    let server = start(&counts, Vec::new()).await;
    round_trip(server.addr, "f.bin").await;
    server.stop().await;
    assert_eq!(
        counts.writes.most(),
        1,
        "writes to one file ran at the same time"
    );
    assert!(
        counts.reads.most() > 1,
        "reads ran one at a time: the lanes must hold back writes only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_spread_over_the_given_runtimes_run_their_share_requests_there() {
    let counts = Arc::new(Counts::default());
    let runtimes = smb_server::connection_runtimes(2, 4).unwrap();
    let server = start(&counts, runtimes).await;
    let addr = server.addr;
    // Three clients at once over two runtimes.
    let clients: Vec<_> = ["a.bin", "b.bin", "c.bin"]
        .into_iter()
        .map(|name| tokio::spawn(round_trip(addr, name)))
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    server.stop().await;
    let threads = counts.threads.lock().unwrap().clone();
    assert!(
        !threads.is_empty() && threads.iter().all(|t| t.starts_with("smb-conn-")),
        "share requests ran on {threads:?}, not on the connection runtimes' threads"
    );
    // Each of the two runtimes served a connection.
    for rt in ["smb-conn-0", "smb-conn-1"] {
        assert!(
            threads.iter().any(|t| t.starts_with(rt)),
            "no request ran on {rt}: {threads:?}"
        );
    }
}
