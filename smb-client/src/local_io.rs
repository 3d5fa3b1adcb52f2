//! Where the data of a transfer comes from and goes to: any tokio reader or writer, or a
//! local file served by a blocking thread.
//!
//! For `get` and `put` a thread of its own does the file I/O, so it overlaps the network
//! and never blocks the runtime, and no byte is copied on the way: each READ's data (a
//! slice of the received frame) is written to the file as it is, and the file is read
//! straight into the buffer each WRITE is then built and signed in. (`tokio::fs` copies
//! every chunk through a buffer of its own: a tenth of the client's CPU in a profile of a
//! 1 GiB `get`.) On a signed session with AES-GMAC that thread also takes the data's part
//! of each WRITE's signature, while the data it just read is in its core's cache. Memory is
//! reused rather than allocated per chunk (fresh pages cost a page fault and a zeroed page
//! every 4 KiB): a `put` reads into the buffers of WRITEs already sent ([`SpareBuffers`]),
//! and a `get`'s frames, once written out, are taken back by the client for later ones.

use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use smb_core::signing::{SigningKey, TailDigest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Chunks queued between the connection and a file thread: how far a `put` reads ahead,
/// and how much of a `get` may wait for the disk.
const QUEUE: usize = 2;

/// Where the data of the READs of a transfer goes, in file order.
pub(crate) trait Sink {
    async fn put(&mut self, data: Bytes) -> io::Result<()>;
}

/// Where the data of the WRITEs of a transfer comes from: each chunk is `headroom` bytes
/// (room for the WRITE header) and then up to `chunk` bytes of data; a shorter one is the
/// last.
pub(crate) trait Source {
    async fn next_chunk(&mut self) -> io::Result<Chunk>;
}

/// One chunk of a [`Source`], and the digest of its data when the source took one
/// (`SigningKey::tail_digest` of `buf[headroom..]`).
pub(crate) struct Chunk {
    pub buf: Vec<u8>,
    pub digest: Option<TailDigest>,
}

/// Any tokio writer as a [`Sink`] (each chunk is copied into it).
pub(crate) struct WriterSink<'a, W>(pub &'a mut W);

impl<W: AsyncWrite + Unpin> Sink for WriterSink<'_, W> {
    async fn put(&mut self, data: Bytes) -> io::Result<()> {
        self.0.write_all(&data).await
    }
}

/// Any tokio reader as a [`Source`].
pub(crate) struct ReaderSource<'a, R> {
    pub reader: &'a mut R,
    pub headroom: usize,
    pub chunk: usize,
}

impl<R: AsyncRead + Unpin> Source for ReaderSource<'_, R> {
    async fn next_chunk(&mut self) -> io::Result<Chunk> {
        let want = self.headroom + self.chunk;
        let mut buf = Vec::with_capacity(want);
        buf.resize(self.headroom, 0);
        while buf.len() < want {
            let limit = (want - buf.len()) as u64;
            if (&mut *self.reader).take(limit).read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        Ok(Chunk { buf, digest: None })
    }
}

/// A local file written by a blocking thread, in the order chunks are handed over.
pub(crate) struct FileSink {
    queue: Option<mpsc::Sender<Bytes>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl FileSink {
    pub fn new(mut file: File) -> Self {
        let (queue, mut chunks) = mpsc::channel::<Bytes>(QUEUE);
        let thread = tokio::task::spawn_blocking(move || {
            while let Some(data) = chunks.blocking_recv() {
                file.write_all(&data)?;
            }
            Ok(())
        });
        FileSink {
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// Waits until every chunk handed over is written; the thread's error if it failed.
    pub async fn finish(mut self) -> io::Result<()> {
        self.queue = None; // the thread stops once the queue is drained
        self.join().await
    }

    async fn join(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(thread) => thread.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Sink for FileSink {
    async fn put(&mut self, data: Bytes) -> io::Result<()> {
        let sent = match &self.queue {
            Some(queue) => queue.send(data).await.is_ok(),
            None => false,
        };
        if !sent {
            // The thread only stops early on an error: report it.
            self.queue = None;
            self.join().await?;
            return Err(io::Error::other("the local file's writer has stopped"));
        }
        Ok(())
    }
}

/// Sizes of the buffers worth keeping for reuse, frames and chunks of 256 KiB to 2 MiB and
/// their headers: small messages cost no fresh pages, and 8 MiB ones are not held on to.
pub(crate) const REUSED_SIZES: RangeInclusive<usize> = (256 << 10)..=(2 << 20) + 4096;

/// Buffers of sent WRITEs, given back for the next chunks of a [`FileSource`]: reusing one
/// spares the fresh pages a new 1 MiB allocation costs (a page fault and a zeroed page
/// every 4 KiB). Holds [`SpareBuffers::MAX`] at most.
#[derive(Debug, Default)]
pub(crate) struct SpareBuffers {
    buffers: Mutex<Vec<Vec<u8>>>,
    /// How many were taken back into use.
    reused: AtomicU64,
}

impl SpareBuffers {
    const MAX: usize = 3;

    /// Keeps `buf` for reuse if there is room and it is worth keeping.
    pub fn give_back(&self, buf: Vec<u8>) {
        if REUSED_SIZES.contains(&buf.capacity()) {
            let mut spare = lock(&self.buffers);
            if spare.len() < Self::MAX {
                spare.push(buf);
            }
        }
    }

    /// How many buffers were taken back into use so far.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// An empty buffer of at least `capacity` bytes: a spare one if there is one.
    fn take(&self, capacity: usize) -> Vec<u8> {
        let mut spare = lock(&self.buffers);
        match spare.iter().position(|b| b.capacity() >= capacity) {
            Some(i) => {
                let mut buf = spare.swap_remove(i);
                buf.clear();
                self.reused.fetch_add(1, Ordering::Relaxed);
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Holding only plain buffers, a lock poisoned by a panic is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A local file read ahead by a blocking thread, [`QUEUE`] chunks at most; with `digest`,
/// the thread also digests each chunk's data under that key. Chunks are read into buffers
/// from `spare` when it has some.
pub(crate) struct FileSource {
    chunks: mpsc::Receiver<io::Result<Chunk>>,
    headroom: usize,
}

impl FileSource {
    pub fn new(
        mut file: File,
        headroom: usize,
        chunk: usize,
        digest: Option<SigningKey>,
        spare: Arc<SpareBuffers>,
    ) -> Self {
        let (queue, chunks) = mpsc::channel(QUEUE);
        tokio::task::spawn_blocking(move || loop {
            let buf = spare.take(headroom + chunk);
            let read = read_chunk(&mut file, buf, headroom, chunk).map(|buf| {
                let data = buf.get(headroom..).unwrap_or_default();
                let digest = digest
                    .as_ref()
                    .filter(|_| !data.is_empty())
                    .and_then(|k| k.tail_digest(data));
                Chunk { buf, digest }
            });
            let last = !matches!(&read, Ok(c) if c.buf.len() == headroom + chunk);
            if queue.blocking_send(read).is_err() || last {
                break;
            }
        });
        FileSource { chunks, headroom }
    }
}

/// `headroom` zero bytes, then up to `chunk` bytes of `file` read into the same buffer
/// (empty, with room for both).
fn read_chunk(
    file: &mut File,
    mut buf: Vec<u8>,
    headroom: usize,
    chunk: usize,
) -> io::Result<Vec<u8>> {
    buf.resize(headroom, 0);
    // `take` ends the read at `chunk` bytes, so the buffer is never grown (no copy), and
    // `read_to_end` reads into its spare capacity without zeroing it first.
    file.take(chunk as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

impl Source for FileSource {
    async fn next_chunk(&mut self) -> io::Result<Chunk> {
        match self.chunks.recv().await {
            Some(read) => read,
            // The thread stops after the last (short) chunk.
            None => Ok(Chunk {
                buf: vec![0; self.headroom],
                digest: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, data: &[u8]) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("smb-client-local-io-{}-{name}", std::process::id()));
        std::fs::write(&path, data).unwrap();
        path
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn spare_buffers_keep_a_few_large_ones_and_hand_them_back() {
        let spare = SpareBuffers::default();
        let big = Vec::<u8>::with_capacity(1 << 20);
        let at = big.as_ptr();
        spare.give_back(big);
        spare.give_back(Vec::with_capacity(1024)); // small: not kept
        spare.give_back(Vec::with_capacity((8 << 20) + 112)); // an 8 MiB WRITE: not kept
        let again = spare.take(900 << 10);
        assert_eq!(again.as_ptr(), at, "the large buffer comes back");
        assert!(again.is_empty());
        assert_eq!(spare.reused(), 1);
        let _fresh = spare.take(900 << 10);
        assert_eq!(spare.reused(), 1, "nothing else was kept to hand back");
        for _ in 0..10 {
            spare.give_back(Vec::with_capacity(1 << 20));
        }
        assert_eq!(lock(&spare.buffers).len(), SpareBuffers::MAX);
    }

    #[tokio::test]
    async fn file_source_reads_into_buffers_given_back() {
        const CHUNK: usize = 300 << 10;
        let data = pattern(3 * CHUNK + 5);
        let path = scratch("spare", &data);
        let spare = Arc::new(SpareBuffers::default());
        // A WRITE already sent, its buffer given back: with some of it dirty.
        let mut sent = vec![0xee; 8 + CHUNK];
        sent.truncate(20);
        let at = sent.as_ptr();
        spare.give_back(sent);
        let mut source = FileSource::new(File::open(&path).unwrap(), 8, CHUNK, None, spare.clone());
        let first = source.next_chunk().await.unwrap().buf;
        assert_eq!(
            first.as_ptr(),
            at,
            "the first chunk is read into the buffer given back"
        );
        assert!(first[..8].iter().all(|&b| b == 0), "headroom is zeroed");
        assert_eq!(&first[8..], &data[..CHUNK]);
        assert_eq!(spare.reused(), 1);
        let mut got = first[8..].to_vec();
        spare.give_back(first);
        loop {
            let buf = source.next_chunk().await.unwrap().buf;
            got.extend_from_slice(&buf[8..]);
            if buf.len() < 8 + CHUNK {
                break;
            }
        }
        assert!(got == data, "the file comes through whole and in order");
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn file_source_gives_headroom_then_the_file_in_chunks() {
        let gmac = SigningKey::new(smb_core::signing::Algorithm::AesGmac, &[7; 16]).unwrap();
        for key in [None, Some(gmac)] {
            for len in [0, 1, 99, 100, 101, 1000] {
                let data = pattern(len);
                let path = scratch(&format!("src{len}"), &data);
                let spare = Arc::new(SpareBuffers::default());
                let mut source =
                    FileSource::new(File::open(&path).unwrap(), 8, 100, key.clone(), spare);
                let mut got = Vec::new();
                loop {
                    let Chunk { buf, digest } = source.next_chunk().await.unwrap();
                    assert!(buf[..8].iter().all(|&b| b == 0), "headroom is zeroed");
                    assert!(buf.len() <= 108);
                    // With a key, every chunk with data comes with the digest of that data.
                    let want = key.is_some() && buf.len() > 8;
                    assert_eq!(
                        digest.as_ref().map(|d| d.len()),
                        want.then(|| buf.len() - 8)
                    );
                    got.extend_from_slice(&buf[8..]);
                    if buf.len() < 108 {
                        break;
                    }
                }
                assert_eq!(got, data, "length {len}");
                // Past the end: the headroom only, as often as asked.
                assert_eq!(source.next_chunk().await.unwrap().buf, vec![0; 8]);
                std::fs::remove_file(path).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn file_sink_writes_every_chunk_in_order() {
        let path = scratch("sink", b"old contents, longer than what is written");
        let mut sink = FileSink::new(File::create(&path).unwrap());
        let data = pattern(10_000);
        for piece in data.chunks(999) {
            sink.put(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn file_sink_reports_a_write_error() {
        // /dev/full fails every write with ENOSPC.
        let mut sink = FileSink::new(File::options().write(true).open("/dev/full").unwrap());
        let mut failed = None;
        for _ in 0..10 {
            if let Err(e) = sink.put(Bytes::from_static(b"data")).await {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => sink.finish().await.unwrap_err(),
        };
        assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected, got {e}");
    }
}
