//! Sharing modes and delete-pending across connections (issue 9), in memory: a CREATE that
//! the ShareAccess of another open does not allow fails with STATUS_SHARING_VIOLATION before
//! anything is overwritten; a delete-pending file refuses new opens (STATUS_DELETE_PENDING)
//! and goes away when its last open, on any connection, closes (MS-FSA 2.1.5.1.2, 2.1.5.4,
//! 2.1.5.14.3).

mod server_util;

use std::sync::Arc;

use server_util::{config, Client};
use smb_core::conn::server::ServerConfig;
use smb_core::conn::share::MemoryShare;
use smb_core::header::{Command, Dialect, NtStatus};
use smb_core::messages::close::CloseRequest;
use smb_core::messages::create::{
    access, create_options, share_access, CreateDisposition, CreateRequest, CreateResponse,
};
use smb_core::messages::info::FileInfoClass;
use smb_core::messages::query_info::InfoType;
use smb_core::messages::set_info::SetInfoRequest;
use smb_core::messages::FileId;

const R: u32 = share_access::READ;
const W: u32 = share_access::WRITE;
const D: u32 = share_access::DELETE;

fn setup() -> (Arc<ServerConfig>, Arc<MemoryShare>, Client, Client) {
    let (cfg, share) = config(true);
    share.put("f.txt", b"contents").unwrap();
    let a = Client::connected(cfg.clone(), Dialect::SMB311);
    let b = Client::connected(cfg.clone(), Dialect::SMB302);
    (cfg, share, a, b)
}

fn create(
    c: &mut Client,
    name: &str,
    desired_access: u32,
    share: u32,
    disposition: CreateDisposition,
    options: u32,
) -> Result<FileId, NtStatus> {
    let r = c.call(
        Command::CREATE,
        &CreateRequest {
            desired_access,
            share_access: share,
            create_disposition: disposition,
            create_options: options,
            name: name.into(),
            ..Default::default()
        },
    );
    match r.hdr.status {
        NtStatus::SUCCESS => Ok(CreateResponse::read(&r.msg).unwrap().file_id),
        other => Err(other),
    }
}

fn open(c: &mut Client, desired: u32, share: u32) -> Result<FileId, NtStatus> {
    create(c, "f.txt", desired, share, CreateDisposition::OPEN, 0)
}

fn close(c: &mut Client, f: FileId) {
    let r = c.call(
        Command::CLOSE,
        &CloseRequest {
            flags: 0,
            file_id: f,
        },
    );
    assert_eq!(r.hdr.status, NtStatus::SUCCESS);
}

fn set_delete(c: &mut Client, f: FileId, delete: bool) -> NtStatus {
    c.call(
        Command::SET_INFO,
        &SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: FileInfoClass::DISPOSITION.0,
            additional_information: 0,
            file_id: f,
            buffer: vec![u8::from(delete)],
        },
    )
    .hdr
    .status
}

#[test]
fn share_access_is_enforced_both_ways_across_connections() {
    let (_, share, mut a, mut b) = setup();
    let read = access::FILE_READ_DATA;
    let write = access::FILE_WRITE_DATA;
    let fa = open(&mut a, read, R).unwrap();
    // a shares only READ: no writer may come, and a new reader must share READ too.
    assert_eq!(
        open(&mut b, write, R | W | D),
        Err(NtStatus::SHARING_VIOLATION)
    );
    assert_eq!(open(&mut b, read, W), Err(NtStatus::SHARING_VIOLATION));
    assert_eq!(
        open(&mut b, access::DELETE, R | W | D),
        Err(NtStatus::SHARING_VIOLATION)
    );
    let fb = open(&mut b, read, R | W).unwrap();
    // Attributes-only opens take no part in sharing.
    let fattr = open(&mut b, access::FILE_READ_ATTRIBUTES, 0).unwrap();
    // An overwrite refused for sharing leaves the file as it was.
    assert_eq!(
        create(
            &mut b,
            "f.txt",
            access::GENERIC_WRITE,
            R | W | D,
            CreateDisposition::OVERWRITE_IF,
            0
        ),
        Err(NtStatus::SHARING_VIOLATION)
    );
    assert_eq!(share.contents("f.txt").unwrap(), b"contents");
    // Once every reader is gone, a writer may open it.
    close(&mut a, fa);
    close(&mut b, fb);
    close(&mut b, fattr);
    let fw = open(&mut b, write, 0).unwrap();
    assert_eq!(
        open(&mut a, read, R | W | D),
        Err(NtStatus::SHARING_VIOLATION)
    );
    // A connection that goes away closes its opens.
    drop(b);
    assert!(open(&mut a, read, R | W | D).is_ok());
    let _ = fw;
}

#[test]
fn a_delete_pending_file_refuses_opens_and_goes_with_its_last_close() {
    let (cfg, share, mut a, mut b) = setup();
    let all = R | W | D;
    let fa = open(&mut a, access::GENERIC_READ | access::DELETE, all).unwrap();
    let fb = open(&mut b, access::GENERIC_READ, all).unwrap();
    assert_eq!(set_delete(&mut a, fa, true), NtStatus::SUCCESS);
    let mut c = Client::connected(cfg.clone(), Dialect::SMB21);
    assert_eq!(
        open(&mut c, access::GENERIC_READ, all),
        Err(NtStatus::DELETE_PENDING)
    );
    // The marker's close does not delete while b still has it open.
    close(&mut a, fa);
    assert!(share.exists("f.txt"));
    assert_eq!(
        open(&mut c, access::GENERIC_READ, all),
        Err(NtStatus::DELETE_PENDING)
    );
    close(&mut b, fb);
    assert!(!share.exists("f.txt"), "deleted at the last close");
    assert_eq!(
        open(&mut c, access::GENERIC_READ, all),
        Err(NtStatus::OBJECT_NAME_NOT_FOUND)
    );
    // Clearing the disposition before closing keeps the file.
    share.put("g.txt", b"g").unwrap();
    let g = create(
        &mut c,
        "g.txt",
        access::DELETE,
        all,
        CreateDisposition::OPEN,
        0,
    )
    .unwrap();
    assert_eq!(set_delete(&mut c, g, true), NtStatus::SUCCESS);
    assert_eq!(set_delete(&mut c, g, false), NtStatus::SUCCESS);
    close(&mut c, g);
    assert!(share.exists("g.txt"));
}

#[test]
fn delete_on_close_marks_the_file_pending_at_its_close() {
    let (cfg, share, mut a, mut b) = setup();
    let all = R | W | D;
    let fa = create(
        &mut a,
        "f.txt",
        access::DELETE | access::GENERIC_READ,
        all,
        CreateDisposition::OPEN,
        create_options::DELETE_ON_CLOSE,
    )
    .unwrap();
    // Not pending yet: another connection may still open it.
    let fb = open(&mut b, access::GENERIC_READ, all).unwrap();
    close(&mut a, fa);
    assert!(share.exists("f.txt"), "b still has it open");
    let mut c = Client::connected(cfg, Dialect::SMB30);
    assert_eq!(
        open(&mut c, access::GENERIC_READ, all),
        Err(NtStatus::DELETE_PENDING)
    );
    close(&mut b, fb);
    assert!(!share.exists("f.txt"));
}
