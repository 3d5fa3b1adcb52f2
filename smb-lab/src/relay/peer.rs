//! One side of the relay's framed connections (victim or target), every wait bounded.

use std::time::Duration;

use anyhow::{anyhow, Context};
use smb_core::compound::split_chain;
use smb_core::messages::smb1_negotiate::is_smb1;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::transport::{write_frame, FrameReader};

/// How long the relay waits for any single message.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A Direct-TCP framed connection.
#[derive(Debug)]
pub(crate) struct Peer {
    rx: FrameReader<OwnedReadHalf>,
    tx: OwnedWriteHalf,
}

impl Peer {
    pub(crate) fn new(stream: TcpStream) -> Self {
        let (rx, tx) = stream.into_split();
        Peer {
            rx: FrameReader::new(rx),
            tx,
        }
    }

    pub(crate) async fn send(&mut self, message: &[u8]) -> anyhow::Result<()> {
        tokio::time::timeout(IO_TIMEOUT, write_frame(&mut self.tx, message))
            .await
            .map_err(|_| anyhow!("timed out sending"))?
            .context("sending")
    }

    /// The next whole frame (one message or a compound chain).
    pub(crate) async fn recv_frame(&mut self) -> anyhow::Result<Vec<u8>> {
        tokio::time::timeout(IO_TIMEOUT, self.rx.next())
            .await
            .map_err(|_| anyhow!("timed out waiting for a message"))?
            .map_err(|end| anyhow!("connection ended ({end:?})"))
    }

    /// The first message of the next frame (the victim side never needs the rest of a
    /// chain), or an SMB1 message whole.
    pub(crate) async fn recv(&mut self) -> anyhow::Result<Vec<u8>> {
        let frame = self.recv_frame().await?;
        if is_smb1(&frame) {
            return Ok(frame);
        }
        let ranges = split_chain(&frame).context("bad message framing")?;
        let first = ranges
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("empty frame"))?;
        Ok(frame.get(first).map(<[u8]>::to_vec).unwrap_or_default())
    }
}
