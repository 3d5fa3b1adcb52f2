//! CHANGE_NOTIFY and CANCEL in the driver: a watch goes asynchronous on the server (an
//! interim STATUS_PENDING response, unsigned by design, gives its AsyncId), completes when
//! something changes, or with STATUS_CANCELLED once cancelled (the CANCEL is signed).

use std::time::{Duration, Instant};

use smb_core::conn::client::ResponseBody;
use smb_core::header::NtStatus;
use smb_core::messages::FileId;

use crate::client::{Client, Error, Result};

impl Client {
    /// Sends CHANGE_NOTIFY on the open directory `dir` and waits until the server has gone
    /// asynchronous with it (its interim response arrived) or answered it. Returns the
    /// request's id, for [`wait_notify`](Client::wait_notify) or [`cancel`](Client::cancel).
    pub async fn start_notify(
        &mut self,
        tree_id: u32,
        dir: FileId,
        filter: u32,
        watch_tree: bool,
    ) -> Result<u64> {
        let id = self.conn.change_notify(tree_id, dir, filter, watch_tree)?;
        self.flush().await?;
        let deadline = Instant::now() + self.timeout;
        while self.conn.async_id(id).is_none() && !self.has_answer(id) {
            if Instant::now() >= deadline {
                return Err(Error::Timeout("the interim response to CHANGE_NOTIFY"));
            }
            let len = self
                .next_frame("the interim response to CHANGE_NOTIFY")
                .await?;
            self.handle_frame(len)?;
            self.flush().await?;
        }
        Ok(id)
    }

    /// Waits for the answer to a CHANGE_NOTIFY: its status and the raw
    /// FILE_NOTIFY_INFORMATION entries.
    pub async fn wait_notify(&mut self, id: u64, timeout: Duration) -> Result<(NtStatus, Vec<u8>)> {
        let answer = tokio::time::timeout(timeout, self.call(id, "CHANGE_NOTIFY"))
            .await
            .map_err(|_| Error::Timeout("CHANGE_NOTIFY"))??;
        Ok(match answer {
            (status, ResponseBody::ChangeNotify { buffer }) => (status, buffer),
            (status, _) => (status, Vec::new()),
        })
    }

    /// CANCELs an outstanding request (signed when the session is) and returns the status
    /// it then completes with (STATUS_CANCELLED, unless it had completed already).
    pub async fn cancel(&mut self, id: u64) -> Result<NtStatus> {
        self.conn.cancel(id)?;
        let (status, _) = self.call(id, "the cancelled request").await?;
        Ok(status)
    }
}
