//! File commands: CREATE, CLOSE, READ, WRITE, FLUSH, QUERY_DIRECTORY, QUERY_INFO,
//! SET_INFO, IOCTL, on disk shares and IPC$.

use std::collections::HashMap;

use super::{Ctx, HandlerResult, ServerConnection, Tree};
use crate::header::NtStatus;
use crate::messages::FileId;

/// The connection's open files, by volatile FileId.
#[derive(Debug, Default)]
pub(crate) struct OpenTable {
    opens: HashMap<u64, Open>,
}

#[derive(Debug)]
pub(crate) struct Open {
    session_id: u64,
    tree_id: u32,
}

impl OpenTable {
    pub(crate) fn close_session(&mut self, session_id: u64) {
        self.opens.retain(|_, o| o.session_id != session_id);
    }

    pub(crate) fn close_tree(&mut self, session_id: u64, tree_id: u32) {
        self.opens
            .retain(|_, o| !(o.session_id == session_id && o.tree_id == tree_id));
    }
}

/// The FileId in a successful CREATE response (for related operations).
pub(crate) fn created_file_id(_msg: &[u8]) -> Option<FileId> {
    None
}

impl ServerConnection {
    pub(super) fn file_command(&mut self, _ctx: &mut Ctx, _tree: &Tree) -> HandlerResult {
        Err(NtStatus::NOT_SUPPORTED)
    }
}
