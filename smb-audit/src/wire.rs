//! One TCP connection to a server: Direct-TCP frames in and out, every read under the scan's
//! deadline, and a small driver for smb-core's sans-IO [`ClientConnection`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use smb_core::conn::client::{ClientConnection, ClientError, ClientEvent};
use smb_core::framing::{encode_frame, frame_len};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// The largest answer a probe accepts: a NEGOTIATE or SESSION_SETUP response is a few KiB;
/// a server announcing more is answering garbage.
const MAX_PROBE_FRAME: usize = 1 << 20;

/// Why a probe stopped.
#[derive(Debug)]
pub enum WireError {
    Connect(io::Error),
    /// The peer closed the connection (cleanly or with a reset).
    Closed,
    Timeout,
    /// Not SMB, or a frame we cannot read.
    Garbage(String),
    Io(io::Error),
    Client(ClientError),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Connect(e) => write!(f, "cannot connect: {e}"),
            WireError::Closed => f.write_str("the server closed the connection"),
            WireError::Timeout => f.write_str("no answer before the timeout"),
            WireError::Garbage(s) => write!(f, "not an SMB answer: {s}"),
            WireError::Io(e) => write!(f, "{e}"),
            WireError::Client(e) => write!(f, "{e}"),
        }
    }
}

/// A framed connection whose every operation ends by `deadline`.
#[derive(Debug)]
pub struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
}

impl Wire {
    pub async fn connect(addr: SocketAddr, deadline: Instant) -> Result<Wire, WireError> {
        let stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(WireError::Timeout),
            Ok(Err(e)) => return Err(WireError::Connect(e)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(Wire {
            stream,
            buf: Vec::new(),
            deadline,
        })
    }

    /// Sends one message with its Direct-TCP prefix.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), WireError> {
        let mut out = Vec::with_capacity(message.len() + 4);
        encode_frame(message, &mut out);
        match timeout_at(self.deadline, self.stream.write_all(&out)).await {
            Err(_) => Err(WireError::Timeout),
            Ok(Err(e)) => Err(closed_or(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The next frame's payload.
    pub async fn recv(&mut self) -> Result<Vec<u8>, WireError> {
        loop {
            match frame_len(&self.buf, MAX_PROBE_FRAME) {
                Ok(Some(len)) => {
                    let frame = self.buf[4..4 + len].to_vec();
                    self.buf.drain(..4 + len);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(WireError::Garbage(e.to_string())),
            }
            let mut chunk = [0u8; 8192];
            let n = match timeout_at(self.deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(WireError::Timeout),
                Ok(Err(e)) => return Err(closed_or(e)),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Err(WireError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends what `conn` queued, then feeds it frames until the response to `id` arrives.
    /// Every message sent is also handed to `sent` (the caller tracks MessageIds from them).
    pub async fn drive(
        &mut self,
        conn: &mut ClientConnection,
        id: u64,
        sent: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<ClientEvent, WireError> {
        while let Some(m) = conn.poll_transmit() {
            sent(&m);
            self.send(&m).await?;
        }
        loop {
            while let Some(ev) = conn.poll_event() {
                if let ClientEvent::Response { id: got, .. } = &ev {
                    if *got == id {
                        return Ok(ev);
                    }
                }
            }
            let frame = self.recv().await?;
            if !frame.starts_with(&smb_core::header::PROTOCOL_ID) {
                return Err(WireError::Garbage(format!(
                    "a frame that starts {:02x?}",
                    &frame[..frame.len().min(4)]
                )));
            }
            conn.handle_input(&frame).map_err(WireError::Client)?;
            while let Some(m) = conn.poll_transmit() {
                sent(&m);
                self.send(&m).await?;
            }
        }
    }
}

fn closed_or(e: io::Error) -> WireError {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => WireError::Closed,
        _ => WireError::Io(e),
    }
}

/// A deadline `secs` from now.
pub fn deadline_in(d: Duration) -> Instant {
    Instant::now() + d
}
