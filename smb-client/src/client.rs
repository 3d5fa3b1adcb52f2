//! The tokio driver: one TCP connection, one [`ClientConnection`], async methods.
//!
//! All socket code of the client lives here. Each method queues requests on the sans-IO
//! state machine, writes what it has to send, and reads frames until its answer arrives.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use smb_core::audit::AuditEvent;
use smb_core::conn::client::{
    ClientConfig, ClientConnection, ClientEvent, DirEntry, NegotiateInfo, OpenRequest,
    ResponseBody, WRITE_DATA_AT,
};
use smb_core::framing::{self, PREFIX_LEN};
use smb_core::header::{Dialect, NtStatus};
use smb_core::messages::create::OplockLevel;
use smb_core::messages::info::{FileFsSizeInformation, FsInfoClass};
use smb_core::messages::query_info::InfoType;
use smb_core::messages::FileId;
use smb_core::signing::Algorithm;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::audit::AuditLog;
use crate::breaks::Breaks;
use crate::local_io::{
    FileSink, FileSource, ReaderSource, Sink, Source, SpareBuffers, WriterSink, REUSED_SIZES,
};

/// Most READs/WRITEs in flight at once, and most bytes they may carry together: smbclient's
/// 16 MiB window. Sixteen 1 MiB requests keep a server that runs 8 at once (ours) busy
/// while the client reads the next answer.
const PIPELINE_DEPTH: usize = 16;
const PIPELINE_BYTES: usize = 16 * 1024 * 1024;
/// Length of the READ that checks for data past the size CREATE reported.
const TAIL_PROBE: u32 = 64 * 1024;
/// Bytes read at once while no frame length is known yet.
const SMALL_READ: usize = 64 * 1024;
/// Frames of `REUSED_SIZES` (1 MiB READs, not 8 MiB ones) are kept for their memory to be
/// reused (`Client::reuse_frame`) during a `get`, up to `REUSED_FRAMES` of them (about
/// 8 MiB): more than the file thread may still hold (the one it writes and `QUEUE` queued)
/// and the answers that came early (a server completes READs out of order).
const REUSED_FRAMES: usize = 8;
/// MS-SMB2 3.1.5.2: one credit per 64 KiB of payload.
const CREDIT_UNIT: u32 = 65_536;

/// Default time to wait for one response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::error::{status_name, Error, Result};

/// The session as established, for the `session:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub dialect: Dialect,
    pub algorithm: Option<Algorithm>,
    pub signed: bool,
    pub guest: bool,
    pub anonymous: bool,
}

impl fmt::Display for SessionInfo {
    /// `dialect=3.1.1 signing=aes-gmac signed=true guest=false`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dialect={} signing={} signed={} guest={}",
            self.dialect.dotted(),
            self.algorithm.map_or("none", Algorithm::name),
            self.signed,
            self.guest
        )
    }
}

/// An open remote file, as CREATE returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFile {
    pub file_id: FileId,
    pub attributes: u32,
    pub size: u64,
    pub last_write: u64,
    /// The oplock granted.
    pub oplock_level: OplockLevel,
}

/// How the last pipelined READ or WRITE transfer went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// READs or WRITEs sent.
    pub requests: u64,
    /// Most of them in flight at once.
    pub max_in_flight: usize,
    /// Largest length of one of them.
    pub max_request: u32,
    /// Buffers reused instead of fresh memory: received frames' for later frames (READ),
    /// sent messages' for later chunks of a local file (WRITE).
    pub reused_buffers: u64,
}

/// A connected client.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    pub(crate) conn: ClientConnection,
    rbuf: BytesMut,
    /// The last large frames handled, kept to take their memory back (see `reuse_frame`).
    recent_frames: VecDeque<Bytes>,
    /// Sent messages' buffers, for the next chunks of a `put`.
    spare_buffers: Arc<SpareBuffers>,
    pub(crate) timeout: Duration,
    audit: Arc<AuditLog>,
    peer: SocketAddr,
    session: Option<SessionInfo>,
    /// Responses that arrived before anyone awaited them (pipelined requests).
    answers: HashMap<u64, (NtStatus, ResponseBody)>,
    /// Largest READ/WRITE to issue, below the server's MaxReadSize/MaxWriteSize.
    io_cap: Option<u32>,
    last_transfer: TransferStats,
    /// Oplocks asked for, breaks received and their acknowledgements (`breaks.rs`).
    pub(crate) breaks: Breaks,
}

impl Client {
    /// Opens the TCP connection (no SMB traffic yet).
    pub async fn connect(addr: SocketAddr, config: ClientConfig) -> Result<Client> {
        Self::connect_with(
            addr,
            config,
            DEFAULT_TIMEOUT,
            Arc::new(AuditLog::disabled()),
        )
        .await
    }

    pub async fn connect_with(
        addr: SocketAddr,
        config: ClientConfig,
        timeout: Duration,
        audit: Arc<AuditLog>,
    ) -> Result<Client> {
        Self::connect_from(addr, None, config, timeout, audit).await
    }

    /// Like [`Client::connect_with`], from a chosen local address (the lab's victim
    /// connects from 127.0.0.2 so each actor has its own loopback address).
    pub async fn connect_from(
        addr: SocketAddr,
        local_ip: Option<IpAddr>,
        config: ClientConfig,
        timeout: Duration,
        audit: Arc<AuditLog>,
    ) -> Result<Client> {
        let connect = async {
            match local_ip {
                None => TcpStream::connect(addr).await,
                Some(ip) => {
                    let socket = if ip.is_ipv4() {
                        TcpSocket::new_v4()?
                    } else {
                        TcpSocket::new_v6()?
                    };
                    socket.bind(SocketAddr::new(ip, 0))?;
                    socket.connect(addr).await
                }
            }
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| Error::Timeout("the TCP connection"))??;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            conn: ClientConnection::new(config),
            rbuf: BytesMut::new(),
            recent_frames: VecDeque::new(),
            spare_buffers: Arc::default(),
            timeout,
            audit,
            peer: addr,
            session: None,
            answers: HashMap::new(),
            io_cap: None,
            last_transfer: TransferStats::default(),
            breaks: Breaks::default(),
        })
    }

    /// The state machine, for inspection.
    pub fn connection(&self) -> &ClientConnection {
        &self.conn
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The established session, once `login` succeeded.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// NEGOTIATE only.
    pub async fn negotiate(&mut self) -> Result<NegotiateInfo> {
        let id = self.conn.negotiate()?;
        let (status, body) = self.call(id, "NEGOTIATE").await?;
        match body {
            ResponseBody::Negotiate(info) if status == NtStatus::SUCCESS => Ok(info),
            _ => Err(Error::Status {
                status,
                context: "negotiating".into(),
            }),
        }
    }

    /// NEGOTIATE (if not done yet) and SESSION_SETUP.
    pub async fn login(&mut self) -> Result<SessionInfo> {
        if self.conn.negotiated().is_none() {
            self.negotiate().await?;
        }
        let id = self.conn.session_setup()?;
        let (status, _) = self.call(id, "SESSION_SETUP").await?;
        if status != NtStatus::SUCCESS {
            return Err(Error::Status {
                status,
                context: "in session setup".into(),
            });
        }
        self.session
            .clone()
            .ok_or_else(|| Error::Local("session established without its event".into()))
    }

    /// TREE_CONNECT to `\\server\share`; returns the TreeId.
    pub async fn tree_connect(&mut self, unc: &str) -> Result<u32> {
        let id = self.conn.tree_connect(unc)?;
        match self.call(id, "TREE_CONNECT").await? {
            (NtStatus::SUCCESS, ResponseBody::TreeConnect { tree_id, .. }) => Ok(tree_id),
            (status, _) => Err(Error::Status {
                status,
                context: format!("connecting to {unc}"),
            }),
        }
    }

    /// ECHO.
    pub async fn echo(&mut self) -> Result<()> {
        let id = self.conn.echo()?;
        self.expect_success(id, "ECHO", "").await
    }

    /// TREE_DISCONNECT.
    pub async fn tree_disconnect(&mut self, tree_id: u32) -> Result<()> {
        let id = self.conn.tree_disconnect(tree_id)?;
        self.expect_success(id, "TREE_DISCONNECT", "").await
    }

    /// LOGOFF.
    pub async fn logoff(&mut self) -> Result<()> {
        let id = self.conn.logoff()?;
        self.expect_success(id, "LOGOFF", "").await
    }

    /// CREATE; returns the open file's id, size and attributes.
    pub async fn open(
        &mut self,
        tree_id: u32,
        open: &OpenRequest,
        context: &str,
    ) -> Result<OpenFile> {
        let id = self.conn.create(tree_id, open)?;
        match self.call(id, "CREATE").await? {
            (
                status,
                ResponseBody::Create {
                    file_id,
                    file_attributes,
                    end_of_file,
                    last_write_time,
                    oplock_level,
                    ..
                },
            ) if !status.is_error() => Ok(OpenFile {
                file_id,
                attributes: file_attributes,
                size: end_of_file,
                last_write: last_write_time,
                oplock_level,
            }),
            (status, _) => Err(Error::Status {
                status,
                context: context.into(),
            }),
        }
    }

    /// CLOSE.
    pub async fn close(&mut self, tree_id: u32, file_id: FileId) -> Result<()> {
        let id = self.conn.close(tree_id, file_id)?;
        self.expect_success(id, "CLOSE", "closing a file").await
    }

    /// One READ; an empty result is the end of the file.
    pub async fn read_at(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        offset: u64,
        len: u32,
    ) -> Result<Bytes> {
        let id = self.conn.read(tree_id, file_id, offset, len)?;
        match self.call(id, "READ").await? {
            (NtStatus::END_OF_FILE, _) => Ok(Bytes::new()),
            (status, ResponseBody::Read { data }) if !status.is_error() => Ok(data),
            (status, _) => Err(Error::Status {
                status,
                context: "reading".into(),
            }),
        }
    }

    /// One WRITE (`data` at most `max_write_size`); returns the count written.
    pub async fn write_at(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<u32> {
        let id = self.conn.write(tree_id, file_id, offset, data)?;
        match self.call(id, "WRITE").await? {
            (status, ResponseBody::Write { count }) if !status.is_error() => Ok(count),
            (status, _) => Err(Error::Status {
                status,
                context: "writing".into(),
            }),
        }
    }

    /// Caps READ and WRITE lengths at `bytes` (rounded down to 64 KiB, at least 64 KiB)
    /// below the server's MaxReadSize/MaxWriteSize; `None` uses the server's sizes.
    pub fn set_io_size(&mut self, bytes: Option<u32>) {
        self.io_cap = bytes.map(|b| (b / CREDIT_UNIT).max(1) * CREDIT_UNIT);
    }

    /// Requests, concurrency and request size of the last `get`/`put`/`read_file`/`write_file`.
    pub fn last_transfer(&self) -> TransferStats {
        self.last_transfer
    }

    /// Counts one READ/WRITE sent with `in_flight` now outstanding.
    fn count_request(&mut self, len: u32, in_flight: usize) {
        let t = &mut self.last_transfer;
        t.requests += 1;
        t.max_in_flight = t.max_in_flight.max(in_flight);
        t.max_request = t.max_request.max(len);
    }

    fn log_transfer(&self, what: &str, bytes: u64) {
        let t = self.last_transfer;
        tracing::debug!(
            target: "smb_client::transfer",
            "{what} done: bytes={bytes} requests={} max_in_flight={} max_request={} \
             reused_buffers={}",
            t.requests,
            t.max_in_flight,
            t.max_request,
            t.reused_buffers
        );
    }

    /// The READ length this client issues: the server's MaxReadSize, capped.
    pub fn read_chunk(&self) -> u32 {
        let max = self.conn.max_read_size();
        self.io_cap.map_or(max, |cap| cap.min(max))
    }

    /// The WRITE length this client issues: the server's MaxWriteSize, capped.
    pub fn write_chunk(&self) -> u32 {
        let max = self.conn.max_write_size();
        self.io_cap.map_or(max, |cap| cap.min(max))
    }

    /// How many of `len` bytes one READ or WRITE may move now: all of them when the credits
    /// allow, else (nothing being in flight to bring more credits) what the credits cover.
    fn affordable(&self, len: usize, in_flight: usize) -> Option<usize> {
        let credits = self.conn.credits() as usize;
        let need = len.saturating_sub(1) / CREDIT_UNIT as usize + 1;
        if credits >= need {
            Some(len)
        } else if in_flight == 0 && credits > 0 {
            Some(credits * CREDIT_UNIT as usize)
        } else {
            // Wait for answers (and their credits); with nothing in flight, let the state
            // machine report NoCredits.
            (in_flight == 0).then_some(len)
        }
    }

    /// Reads a whole remote file into `sink`, with several READs in flight; returns the
    /// byte count.
    pub async fn read_to<W: tokio::io::AsyncWrite + Unpin>(
        &mut self,
        tree_id: u32,
        path: &str,
        sink: &mut W,
    ) -> Result<u64> {
        let n = self
            .read_into(tree_id, path, &mut WriterSink(&mut *sink))
            .await?;
        sink.flush().await?;
        Ok(n)
    }

    /// [`Client::read_to`] into any [`Sink`] (a local file's writer thread for `get`).
    async fn read_into(&mut self, tree_id: u32, path: &str, sink: &mut impl Sink) -> Result<u64> {
        let file = self
            .open(
                tree_id,
                &OpenRequest::read_file(path).with_caching(self.open_caching()),
                &format!("opening remote file \\{path}"),
            )
            .await?;
        let result = async {
            let done = self
                .read_pipelined(tree_id, file.file_id, file.size, sink)
                .await?;
            // Whatever is left (a file that grew, or a short read) is read one READ at a time,
            // until the server says END_OF_FILE.
            let mut offset = done;
            // The first READ past the reported size is usually an END_OF_FILE probe: a small
            // one, since a server charges a READ's Length against its memory budget before
            // it runs (500 clients probing with 8 MiB each exhausted a 1 GiB budget).
            let mut chunk = self.read_chunk().min(TAIL_PROBE);
            loop {
                let data = self.read_at(tree_id, file.file_id, offset, chunk).await?;
                chunk = self.read_chunk();
                if data.is_empty() {
                    break;
                }
                offset += data.len() as u64;
                sink.put(data).await?;
            }
            Ok::<u64, Error>(offset)
        }
        .await;
        let closed = self.close(tree_id, file.file_id).await;
        // The frames kept for reuse go back to the allocator between transfers.
        self.recent_frames.clear();
        let n = result?;
        closed?;
        self.log_transfer("read", n);
        Ok(n)
    }

    /// How many READs or WRITEs to keep in flight: up to 16, and up to 16 MiB of data.
    fn window(chunk: u32) -> usize {
        (PIPELINE_BYTES / chunk.max(1) as usize).clamp(1, PIPELINE_DEPTH)
    }

    /// Reads `size` bytes (the size CREATE reported) with several READs in flight, writing
    /// them to `sink` in order. Returns how many bytes it wrote; stops early, after
    /// collecting every READ in flight, at the first short or empty answer.
    async fn read_pipelined(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        size: u64,
        sink: &mut impl Sink,
    ) -> Result<u64> {
        let chunk = self.read_chunk();
        let window = Self::window(chunk);
        self.last_transfer = TransferStats::default();
        let mut in_flight: VecDeque<(u64, u32)> = VecDeque::new();
        let mut next = 0u64;
        let mut written = 0u64;
        let mut short = false;
        loop {
            while !short && in_flight.len() < window && next < size {
                let want = (size - next).min(u64::from(chunk)) as usize;
                let Some(len) = self.affordable(want, in_flight.len()) else {
                    break;
                };
                let len = u32::try_from(len).unwrap_or(chunk);
                let id = self.conn.read(tree_id, file_id, next, len)?;
                in_flight.push_back((id, len));
                self.count_request(len, in_flight.len());
                next += u64::from(len);
            }
            // Answers are matched by MessageId (`call` keeps the ones that arrive early), and
            // consumed in file order so the sink is written sequentially.
            let Some((id, len)) = in_flight.pop_front() else {
                return Ok(written);
            };
            let data = match self.call(id, "READ").await? {
                (NtStatus::END_OF_FILE, _) => Bytes::new(),
                (status, ResponseBody::Read { data }) if !status.is_error() => data,
                (status, _) => {
                    return Err(Error::Status {
                        status,
                        context: "reading".into(),
                    })
                }
            };
            if short {
                continue; // draining what is still in flight after a short read
            }
            if data.len() > len as usize {
                return Err(Error::Local(format!(
                    "the server returned {} bytes for a READ of {len}",
                    data.len()
                )));
            }
            written += data.len() as u64;
            short = data.len() < len as usize;
            sink.put(data).await?;
        }
    }

    /// `get`: copies a remote file to a local one; returns the byte count.
    pub async fn get(&mut self, tree_id: u32, remote: &str, local: &Path) -> Result<u64> {
        let file = tokio::fs::File::create(local).await.map_err(|e| {
            Error::Local(format!("cannot create local file {}: {e}", local.display()))
        })?;
        let mut sink = FileSink::new(file.into_std().await);
        let n = self.read_into(tree_id, remote, &mut sink).await?;
        sink.finish().await.map_err(|e| {
            Error::Local(format!("cannot write local file {}: {e}", local.display()))
        })?;
        Ok(n)
    }

    /// Reads a whole remote file into memory.
    pub async fn read_file(&mut self, tree_id: u32, remote: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to(tree_id, remote, &mut out).await?;
        Ok(out)
    }

    /// Creates or truncates a remote file and writes `data`, with several WRITEs in flight.
    pub async fn write_file(&mut self, tree_id: u32, remote: &str, mut data: &[u8]) -> Result<u64> {
        self.write_from(tree_id, remote, &mut data).await
    }

    /// Creates or truncates a remote file and writes everything `source` yields, with several
    /// WRITEs of at most MaxWriteSize in flight; holds at most one window of data in memory.
    /// Returns the byte count.
    pub async fn write_from<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        tree_id: u32,
        remote: &str,
        source: &mut R,
    ) -> Result<u64> {
        let mut source = ReaderSource {
            reader: source,
            headroom: WRITE_DATA_AT,
            chunk: self.write_chunk() as usize,
        };
        self.write_chunks(tree_id, remote, &mut source).await
    }

    /// Creates or truncates a remote file and writes the chunks of `source` (each behind
    /// WRITE_DATA_AT bytes of headroom, at most MaxWriteSize of data).
    async fn write_chunks(
        &mut self,
        tree_id: u32,
        remote: &str,
        source: &mut impl Source,
    ) -> Result<u64> {
        let file = self
            .open(
                tree_id,
                &OpenRequest::write_file(remote).with_caching(self.open_caching()),
                &format!("opening remote file \\{remote}"),
            )
            .await?;
        let reused_before = self.spare_buffers.reused();
        let result = self.write_pipelined(tree_id, file.file_id, source).await;
        self.last_transfer.reused_buffers = self.spare_buffers.reused() - reused_before;
        let closed = self.close(tree_id, file.file_id).await;
        let n = result?;
        closed?;
        self.log_transfer("write", n);
        Ok(n)
    }

    async fn write_pipelined(
        &mut self,
        tree_id: u32,
        file_id: FileId,
        source: &mut impl Source,
    ) -> Result<u64> {
        let chunk = self.write_chunk() as usize;
        let window = Self::window(chunk as u32);
        self.last_transfer = TransferStats::default();
        let mut in_flight: VecDeque<(u64, usize)> = VecDeque::new();
        // Bytes read from `source` but not sent yet (waiting for credits), behind room for
        // the WRITE header: the message is built and signed in this buffer.
        let mut pending: Vec<u8> = Vec::new();
        // The digest of `pending`'s data, if the source took one.
        let mut digest = None;
        let mut eof = false;
        let mut offset = 0u64;
        let mut written = 0u64;
        loop {
            while in_flight.len() < window {
                if pending.len() <= WRITE_DATA_AT {
                    if eof {
                        break;
                    }
                    let next = source.next_chunk().await?;
                    (pending, digest) = (next.buf, next.digest);
                    let got = pending.len() - WRITE_DATA_AT;
                    eof = got < chunk;
                    if got == 0 {
                        break;
                    }
                }
                let have = pending.len() - WRITE_DATA_AT;
                let Some(len) = self.affordable(have, in_flight.len()) else {
                    break;
                };
                let message = if len < have {
                    // Short of credits: send what they cover, keep the rest (copied behind
                    // new headroom; rare). The digest covered the whole chunk: dropped.
                    digest = None;
                    let mut rest = vec![0u8; WRITE_DATA_AT];
                    rest.extend_from_slice(&pending[WRITE_DATA_AT + len..]);
                    pending.truncate(WRITE_DATA_AT + len);
                    std::mem::replace(&mut pending, rest)
                } else {
                    std::mem::take(&mut pending)
                };
                let id = self.conn.write_in_place_digested(
                    tree_id,
                    file_id,
                    offset,
                    message,
                    digest.take().as_ref(),
                )?;
                in_flight.push_back((id, len));
                self.count_request(len as u32, in_flight.len());
                offset += len as u64;
            }
            let Some((id, len)) = in_flight.pop_front() else {
                return Ok(written);
            };
            match self.call(id, "WRITE").await? {
                (status, ResponseBody::Write { count }) if !status.is_error() => {
                    if count as usize != len {
                        return Err(Error::Local(format!(
                            "short write: the server took {count} of {len} bytes"
                        )));
                    }
                    written += len as u64;
                }
                (status, _) => {
                    return Err(Error::Status {
                        status,
                        context: "writing".into(),
                    })
                }
            }
        }
    }

    /// `put`: copies a local file to the share; returns the byte count.
    pub async fn put(&mut self, tree_id: u32, local: &Path, remote: &str) -> Result<u64> {
        let file = tokio::fs::File::open(local).await.map_err(|e| {
            Error::Local(format!("cannot read local file {}: {e}", local.display()))
        })?;
        let chunk = self.write_chunk() as usize;
        let key = self.conn.request_signing_key().cloned();
        let mut source = FileSource::new(
            file.into_std().await,
            WRITE_DATA_AT,
            chunk,
            key,
            self.spare_buffers.clone(),
        );
        self.write_chunks(tree_id, remote, &mut source).await
    }

    /// `mkdir`.
    pub async fn mkdir(&mut self, tree_id: u32, path: &str) -> Result<()> {
        let dir = self
            .open(
                tree_id,
                &OpenRequest::mkdir(path),
                &format!("making remote directory \\{path}"),
            )
            .await?;
        self.close(tree_id, dir.file_id).await
    }

    /// Whether `path` names a directory.
    pub async fn is_dir(&mut self, tree_id: u32, path: &str) -> Result<bool> {
        let f = self
            .open(
                tree_id,
                &OpenRequest::stat(path),
                &format!("opening \\{path}"),
            )
            .await?;
        self.close(tree_id, f.file_id).await?;
        Ok(f.attributes & smb_core::messages::create::file_attributes::DIRECTORY != 0)
    }

    /// Lists `dir` (share-relative) entries matching `pattern`, in the server's order.
    pub async fn ls(&mut self, tree_id: u32, dir: &str, pattern: &str) -> Result<Vec<DirEntry>> {
        let d = self
            .open(
                tree_id,
                &OpenRequest::directory(dir),
                &format!("listing \\{dir}"),
            )
            .await?;
        let result = async {
            let mut all = Vec::new();
            let mut first = true;
            loop {
                let id = self
                    .conn
                    .query_directory(tree_id, d.file_id, pattern, first)?;
                first = false;
                match self.call(id, "QUERY_DIRECTORY").await? {
                    (NtStatus::NO_MORE_FILES, _) => break,
                    // The first call finding nothing is NO_SUCH_FILE: an empty match.
                    (NtStatus::NO_SUCH_FILE, _) if all.is_empty() => break,
                    (status, ResponseBody::Directory { entries }) if !status.is_error() => {
                        if entries.is_empty() {
                            break;
                        }
                        all.extend(entries);
                    }
                    (status, _) => {
                        return Err(Error::Status {
                            status,
                            context: format!("listing \\{dir}"),
                        })
                    }
                }
            }
            Ok(all)
        }
        .await;
        let closed = self.close(tree_id, d.file_id).await;
        let all = result?;
        closed?;
        Ok(all)
    }

    /// The share's size as smbclient shows it after `ls`: (total units, bytes per unit,
    /// available units), from FileFsSizeInformation. `None` when the server does not say.
    pub async fn disk_size(&mut self, tree_id: u32) -> Result<Option<(u64, u64, u64)>> {
        let root = self
            .open(
                tree_id,
                &OpenRequest::directory(""),
                "opening the share root",
            )
            .await?;
        let id = self.conn.query_info(
            tree_id,
            root.file_id,
            InfoType::FILESYSTEM,
            FsInfoClass::SIZE.0,
        )?;
        let answer = self.call(id, "QUERY_INFO").await;
        let closed = self.close(tree_id, root.file_id).await;
        let size = match answer? {
            (status, ResponseBody::Info { buffer }) if !status.is_error() => {
                FileFsSizeInformation::read(&buffer).ok().map(|fs| {
                    let unit =
                        u64::from(fs.sectors_per_allocation_unit) * u64::from(fs.bytes_per_sector);
                    (
                        fs.total_allocation_units,
                        unit,
                        fs.available_allocation_units,
                    )
                })
            }
            _ => None,
        };
        closed?;
        Ok(size)
    }

    /// Opens `path` for DELETE, marks it delete-on-close, closes it.
    async fn delete(&mut self, tree_id: u32, path: &str, directory: bool) -> Result<()> {
        let what = if directory { "directory" } else { "file" };
        let context = format!("deleting remote {what} \\{path}");
        let f = self
            .open(
                tree_id,
                &OpenRequest::for_delete(path, Some(directory)),
                &context,
            )
            .await?;
        let id = self.conn.delete_on_close(tree_id, f.file_id)?;
        let set = self.expect_success(id, "SET_INFO", &context).await;
        let closed = self.close(tree_id, f.file_id).await;
        set?;
        closed
    }

    /// `rm FILE`.
    pub async fn rm(&mut self, tree_id: u32, path: &str) -> Result<()> {
        self.delete(tree_id, path, false).await
    }

    /// `rmdir DIR` (the directory must be empty).
    pub async fn rmdir(&mut self, tree_id: u32, path: &str) -> Result<()> {
        self.delete(tree_id, path, true).await
    }

    /// `rename OLD NEW` (fails if NEW exists, as smbclient's does).
    pub async fn rename(&mut self, tree_id: u32, from: &str, to: &str) -> Result<()> {
        let context = format!("renaming files \\{from} -> \\{to}");
        let f = self
            .open(tree_id, &OpenRequest::for_delete(from, None), &context)
            .await?;
        let id = self.conn.rename(tree_id, f.file_id, to, false)?;
        let set = self.expect_success(id, "SET_INFO", &context).await;
        let closed = self.close(tree_id, f.file_id).await;
        set?;
        closed
    }

    async fn expect_success(&mut self, id: u64, what: &'static str, context: &str) -> Result<()> {
        let (status, _) = self.call(id, what).await?;
        if status.is_error() {
            return Err(Error::Status {
                status,
                context: context.into(),
            });
        }
        Ok(())
    }

    /// Sends what is queued, then reads until the response to `id` arrives. Answers to
    /// other requests that arrive meanwhile are kept for their own `call`.
    pub(crate) async fn call(
        &mut self,
        id: u64,
        what: &'static str,
    ) -> Result<(NtStatus, ResponseBody)> {
        self.flush().await?;
        loop {
            self.drain_events();
            if let Some(answer) = self.answers.remove(&id) {
                return Ok(answer);
            }
            let len = self.next_frame(what).await?;
            self.handle_frame(len)?;
            // A response may have queued a follow-up (the next SESSION_SETUP leg, a break's
            // acknowledgement...).
            self.flush().await?;
        }
    }

    /// Hands the frame that starts the receive buffer (`len` bytes after the prefix) to the
    /// state machine and drops it from the buffer.
    pub(crate) fn handle_frame(&mut self, len: usize) -> Result<()> {
        // The frame is split off the receive buffer, not copied: a READ's data is handed on
        // as a slice of it.
        let frame = self.rbuf.split_to(PREFIX_LEN + len).freeze();
        if REUSED_SIZES.contains(&frame.len()) {
            if self.recent_frames.len() == REUSED_FRAMES {
                self.recent_frames.pop_front();
            }
            self.recent_frames.push_back(frame.clone());
        }
        let handled = self.conn.handle_frame(frame.slice(PREFIX_LEN..));
        // Events first (a SignatureRejected must reach the audit log), then the error.
        self.drain_events();
        handled?;
        Ok(())
    }

    /// Takes back the memory of a recent large frame that nothing holds any more (its READ
    /// data written out by the sink) as the receive buffer, moving over what it holds (the
    /// start of the next frame, one small read at most), as growing it would. A fresh
    /// allocation for each 1 MiB frame costs a page fault and a zeroed page every 4 KiB
    /// once the allocator has given the last one back to the system: 5 to 20 % of a `get`'s
    /// CPU.
    fn reuse_frame(&mut self) {
        let Some(i) = self.recent_frames.iter().position(Bytes::is_unique) else {
            return;
        };
        if let Some(Ok(mut buf)) = self.recent_frames.remove(i).map(Bytes::try_into_mut) {
            buf.clear();
            buf.extend_from_slice(&self.rbuf);
            self.rbuf = buf;
            self.last_transfer.reused_buffers += 1;
        }
    }

    /// Whether the answer to `id` arrived and waits for its `call`.
    pub(crate) fn has_answer(&self, id: u64) -> bool {
        self.answers.contains_key(&id)
    }

    pub(crate) fn drain_events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            if let Some((id, answer)) = self.on_event(ev) {
                self.answers.insert(id, answer);
            }
        }
    }

    /// Handles one event; returns a response as (request id, answer). Audit events go to the
    /// audit log in the shared vocabulary (`smb_core::audit`), with the addresses and user.
    fn on_event(&mut self, ev: ClientEvent) -> Option<(u64, (NtStatus, ResponseBody))> {
        if let Some(mut record) = AuditEvent::from_client(&ev) {
            record = record.server_address(self.peer);
            if let Ok(local) = self.stream.local_addr() {
                record = record.client_address(local);
            }
            if let ClientEvent::SessionEstablished { .. } = ev {
                record.user = Some(self.conn.config().credentials.user.clone());
                record.session_id = self.conn.session_id();
            }
            if let ClientEvent::SignatureRejected { .. } = ev {
                record.session_id = self.conn.session_id();
            }
            self.audit.record(&record);
        }
        match ev {
            ClientEvent::Response {
                id, status, body, ..
            } => {
                if self.on_ack_answer(id, status, &body) {
                    return None;
                }
                Some((id, (status, body)))
            }
            ClientEvent::OplockBreak { .. } | ClientEvent::LeaseBreak { .. } => {
                self.on_break(&ev);
                None
            }
            ClientEvent::SessionEstablished {
                dialect,
                algorithm,
                signed,
                guest,
                anonymous,
            } => {
                let info = SessionInfo {
                    dialect,
                    algorithm,
                    signed,
                    guest,
                    anonymous,
                };
                tracing::info!(%info, "session established");
                self.session = Some(info);
                None
            }
            ClientEvent::ServerDoesNotRequireSigning { .. }
            | ClientEvent::SignatureRejected { .. } => None,
        }
    }

    pub(crate) async fn flush(&mut self) -> Result<()> {
        while let Some(msg) = self.conn.poll_transmit() {
            // Prefix and message go out in one vectored write: the message (up to 8 MiB
            // for a WRITE) is not copied into a frame buffer.
            let prefix = framing::frame_header(msg.len())?;
            let mut frame = Buf::chain(&prefix[..], msg.as_slice());
            tokio::time::timeout(self.timeout, self.stream.write_all_buf(&mut frame))
                .await
                .map_err(|_| Error::Timeout("the send buffer"))??;
            self.spare_buffers.give_back(msg);
        }
        Ok(())
    }

    /// Reads until a whole non-empty frame starts the receive buffer and returns its
    /// payload length (the payload is `rbuf[PREFIX_LEN..PREFIX_LEN + len]`); zero-length
    /// frames are skipped.
    pub(crate) async fn next_frame(&mut self, what: &'static str) -> Result<usize> {
        loop {
            match framing::frame_len(&self.rbuf, framing::DEFAULT_MAX_FRAME)? {
                Some(0) => {
                    self.rbuf.advance(PREFIX_LEN);
                    continue;
                }
                Some(len) => return Ok(len),
                None => {}
            }
            // Once a frame's length is known, read no further than its end: the frame is then
            // handled in place and dropped without moving any bytes of the next one (a READ
            // response of 8 MiB would otherwise shift up to a read's worth of data each time).
            let want = match self.rbuf.get(1..PREFIX_LEN) {
                Some(l) => {
                    let declared = u32::from_be_bytes([0, l[0], l[1], l[2]]) as usize;
                    (PREFIX_LEN + declared)
                        .saturating_sub(self.rbuf.len())
                        .max(1)
                }
                None => SMALL_READ,
            };
            if self.rbuf.capacity() < want {
                self.reuse_frame();
            }
            self.rbuf.reserve(want);
            let mut limited = (&mut self.stream).take(want as u64);
            let read = limited.read_buf(&mut self.rbuf);
            let n = tokio::time::timeout(self.timeout, read)
                .await
                .map_err(|_| Error::Timeout(what))??;
            if n == 0 {
                return Err(Error::Closed);
            }
        }
    }
}
