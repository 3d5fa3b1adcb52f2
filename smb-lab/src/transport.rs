//! Direct-TCP framing over tokio streams (MS-SMB2 2.1), on top of the pure functions in
//! `smb_core::framing`.

use std::io;

use smb_core::framing::{self, DEFAULT_MAX_FRAME, PREFIX_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StreamEnd {
    /// Orderly close (FIN) between frames.
    Closed,
    /// Connection reset (RST) or aborted.
    Reset,
    /// Closed in the middle of a frame, or a prefix that is not Direct-TCP.
    Broken,
}

/// Reads whole frames from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            max: DEFAULT_MAX_FRAME,
        }
    }

    /// The next frame's payload (an SMB2 message or compound chain), or how the stream ended.
    pub async fn next(&mut self) -> Result<Vec<u8>, StreamEnd> {
        loop {
            match framing::frame_len(&self.buf, self.max) {
                Ok(Some(len)) => {
                    let payload = self.buf[PREFIX_LEN..PREFIX_LEN + len].to_vec();
                    self.buf.drain(..PREFIX_LEN + len);
                    return Ok(payload);
                }
                Ok(None) => {}
                Err(_) => return Err(StreamEnd::Broken),
            }
            // frame_len checked the announced length against `max` before we buffer it.
            let mut chunk = [0u8; 16 * 1024];
            match self.inner.read(&mut chunk).await {
                Ok(0) if self.buf.is_empty() => return Err(StreamEnd::Closed),
                Ok(0) => return Err(StreamEnd::Broken),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(end_of(&e)),
            }
        }
    }
}

/// Classifies an I/O error as a reset or something else broken.
pub fn end_of(e: &io::Error) -> StreamEnd {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => StreamEnd::Reset,
        _ => StreamEnd::Broken,
    }
}

/// Writes one frame (prefix + payload).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let prefix = framing::frame_header(payload.len())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(payload);
    w.write_all(&out).await?;
    w.flush().await
}
