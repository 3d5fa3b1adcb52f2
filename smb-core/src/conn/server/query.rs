//! QUERY_DIRECTORY, QUERY_INFO, SET_INFO and IOCTL.

use super::files::{DirectoryThen, Listing, Open, Then, DELETE_ACCESS};
use super::io::Op;
use super::{Ctx, HandlerResult, Reply, ServerConnection, State, Step, StepResult, Tree};
use crate::codec::Writer;
use crate::conn::share::{split_path, FileInfo, FsInfo};
use crate::header::{Command, Dialect, NtStatus};
use crate::messages::create::access;
use crate::messages::error::ErrorResponse;
use crate::messages::info::{
    security_information, DirectoryEntry, FileAccessInformation, FileAlignmentInformation,
    FileAllInformation, FileAttributeTagInformation, FileBasicInformation,
    FileDispositionInformation, FileEaInformation, FileEndOfFileInformation,
    FileFsAttributeInformation, FileFsDeviceInformation, FileFsFullSizeInformation,
    FileFsSectorSizeInformation, FileFsSizeInformation, FileFsVolumeInformation, FileInfoClass,
    FileInternalInformation, FileModeInformation, FileNameInformation, FileNetworkOpenInformation,
    FilePositionInformation, FileRenameInformation, FileStandardInformation, FileStreamInformation,
    FsInfoClass, SecurityDescriptor, Sid,
};
use crate::messages::ioctl::{
    fsctl, ioctl_flags, IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
};
use crate::messages::query_directory::{query_directory_flags, QueryDirectoryRequest};
use crate::messages::query_info::{InfoType, QueryInfoRequest, QueryInfoResponse};
use crate::messages::set_info::{SetInfoRequest, SetInfoResponse};
use crate::messages::FileId;

/// STATUS_NOT_FOUND: no DFS referral (what Samba answers without msdfs).
const NOT_FOUND: NtStatus = NtStatus(0xC000_0225);
/// STATUS_FS_DRIVER_REQUIRED: DFS is not offered on this share.
const FS_DRIVER_REQUIRED: NtStatus = NtStatus(0xC000_019C);
/// FILE_CASE_SENSITIVE_SEARCH | FILE_CASE_PRESERVED_NAMES | FILE_UNICODE_ON_DISK.
const FS_ATTRIBUTES: u32 = 0x0000_0007;
/// FILE_DEVICE_DISK.
const FILE_DEVICE_DISK: u32 = 0x0000_0007;

impl ServerConnection {
    pub(super) fn file_command_more(&mut self, ctx: &mut Ctx, tree: &Tree) -> StepResult {
        match ctx.hdr.command {
            Command::QUERY_DIRECTORY => self.query_directory(ctx),
            Command::QUERY_INFO => self.query_info(ctx, tree),
            Command::SET_INFO => self.set_info(ctx),
            Command::IOCTL => self.ioctl(ctx, tree).map(Step::Reply),
            // Unknown command codes (MS-SMB2 3.3.5.2: "an invalid Command").
            _ => Err(NtStatus::INVALID_PARAMETER),
        }
    }

    /// MS-SMB2 3.3.5.18: asks the share for the next page after the open's cursor, then
    /// [`Self::directory_done`]. Nothing of the directory is kept between calls but the
    /// cursor.
    fn query_directory(&mut self, ctx: &mut Ctx) -> StepResult {
        let req = QueryDirectoryRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let class = req.file_information_class;
        let Some(fixed) = crate::messages::info::directory_entry_fixed_len(class) else {
            return Err(NtStatus::INVALID_INFO_CLASS);
        };
        let max_out = self.max_io() as usize;
        let output_len = req.output_buffer_length as usize;
        if output_len == 0 || output_len > max_out {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        let id = self.open_id(ctx, req.file_id)?;
        let open = self.opens.get_mut(id).ok_or(NtStatus::FILE_CLOSED)?;
        if !open.is_dir {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        let restart =
            req.flags & (query_directory_flags::RESTART_SCANS | query_directory_flags::REOPEN) != 0;
        let first = open.listing.is_none() || restart;
        if first {
            let pattern = if req.pattern.is_empty() {
                "*".to_string()
            } else {
                req.pattern.clone()
            };
            open.listing = Some(Listing {
                pattern,
                dots: 0,
                after: None,
            });
        }
        let Some(listing) = open.listing.as_ref() else {
            return Err(NtStatus::INTERNAL_ERROR);
        };
        let single = req.flags & query_directory_flags::RETURN_SINGLE_ENTRY != 0;
        // No more entries than could fit (each takes its fixed part and a name of at
        // least one UTF-16 character, 8-byte aligned), and a bounded page.
        let max = if single {
            1
        } else {
            (output_len / (fixed + 2).next_multiple_of(8)).clamp(1, MAX_PAGE)
        };
        let op = Op::List {
            share: open.share.clone(),
            path: open.path.clone(),
            file: open.handle.clone(),
            dots: listing.dots < 2,
            after: listing.after.clone(),
            pattern: listing.pattern.clone(),
            max,
        };
        let then = DirectoryThen {
            id,
            class,
            output_len,
            first,
            single,
        };
        Ok(Step::Io(op, Then::Directory(Box::new(then))))
    }

    /// MS-SMB2 3.3.5.20: FILE and FILESYSTEM classes ask the share (stat, volume), then
    /// [`Self::file_info_done`] / [`fs_info_done`]; SECURITY is answered here.
    fn query_info(&mut self, ctx: &mut Ctx, tree: &Tree) -> StepResult {
        let req = QueryInfoRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let max_out = (req.output_buffer_length as usize).min(self.max_io() as usize);
        let id = self.open_id(ctx, req.file_id)?;
        let open = self.opens.get(id).ok_or(NtStatus::FILE_CLOSED)?;
        let class = req.file_info_class;
        match req.info_type {
            InfoType::FILE => {
                let op = Op::Stat {
                    file: open.handle.clone(),
                };
                Ok(Step::Io(op, Then::FileInfo { id, class, max_out }))
            }
            InfoType::FILESYSTEM => {
                let op = Op::FsInfo {
                    share: open.share.clone(),
                };
                // The share name labels the volume, as Samba labels its volumes.
                let label = tree
                    .share
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let then = Then::FsInfo {
                    class,
                    max_out,
                    label,
                };
                Ok(Step::Io(op, then))
            }
            InfoType::SECURITY => {
                // A fixed descriptor: Administrators own it, Everyone has full access.
                let sd = SecurityDescriptor::everyone_full_access(
                    Sid::builtin_administrators(),
                    Sid::local_system(),
                    req.additional_information
                        & (security_information::OWNER
                            | security_information::GROUP
                            | security_information::DACL),
                );
                let mut buf = Vec::new();
                sd.encode(&mut buf);
                if buf.len() > max_out {
                    // MS-SMB2 3.3.5.20.3: BUFFER_TOO_SMALL with the needed size as ErrorData.
                    let mut needed = Vec::new();
                    needed.put_u32(buf.len() as u32);
                    let body = ErrorResponse {
                        error_context_count: 0,
                        error_data: needed,
                    };
                    return Ok(Step::Reply(Reply::with_status(
                        ctx.hdr,
                        NtStatus::BUFFER_TOO_SMALL,
                        &body,
                    )));
                }
                info_reply(ctx, buf, false, max_out).map(Step::Reply)
            }
            _ => Err(NtStatus::NOT_SUPPORTED),
        }
    }

    /// A FILE-class QUERY_INFO answer from the stat.
    pub(super) fn file_info_done(
        &mut self,
        ctx: &Ctx,
        id: u64,
        class: u8,
        max_out: usize,
        info: FileInfo,
    ) -> HandlerResult {
        let open = self.opens.get(id).ok_or(NtStatus::FILE_CLOSED)?;
        let mut buf = Vec::new();
        let variable = file_info(FileInfoClass(class), open, &info, &mut buf)?;
        info_reply(ctx, buf, variable, max_out)
    }

    /// MS-SMB2 3.3.5.21: as far as delete, rename and truncate need.
    fn set_info(&mut self, ctx: &mut Ctx) -> StepResult {
        let req = SetInfoRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        let id = self.open_id(ctx, req.file_id)?;
        if req.info_type != InfoType::FILE {
            return Err(NtStatus::NOT_SUPPORTED);
        }
        let bad = |_| NtStatus::INFO_LENGTH_MISMATCH;
        let done = |ctx: &Ctx| Ok(Step::Reply(Reply::new(ctx.hdr, &SetInfoResponse)));
        match FileInfoClass(req.file_info_class) {
            FileInfoClass::BASIC => {
                // Times and attributes are accepted and not stored: the share keeps its own.
                FileBasicInformation::read(&req.buffer).map_err(bad)?;
                done(ctx)
            }
            FileInfoClass::DISPOSITION | FileInfoClass::DISPOSITION_EX => {
                let delete = if req.file_info_class == FileInfoClass::DISPOSITION.0 {
                    FileDispositionInformation::read(&req.buffer)
                        .map_err(bad)?
                        .delete_pending
                } else {
                    // FILE_DISPOSITION_INFORMATION_EX: Flags, bit 0 = DELETE.
                    let flags = req.buffer.get(..4).ok_or(NtStatus::INFO_LENGTH_MISMATCH)?;
                    flags[0] & 1 != 0
                };
                let open = self.opens.get_mut(id).ok_or(NtStatus::FILE_CLOSED)?;
                if delete {
                    if !open.can(DELETE_ACCESS) {
                        return Err(NtStatus::ACCESS_DENIED);
                    }
                    if open.path.is_empty() {
                        return Err(NtStatus::ACCESS_DENIED);
                    }
                    if open.is_dir {
                        // MS-FSA 2.1.5.14.3: only an empty directory can be marked for
                        // deletion; the share is asked first.
                        let op = Op::IsEmpty {
                            file: open.handle.clone(),
                        };
                        return Ok(Step::Io(op, Then::DeleteDirectory { id }));
                    }
                }
                open.delete_on_close = delete;
                // MS-FSA 2.1.5.14.3: DeletePending is the file's, seen by every open.
                self.opens.set_delete_pending(id, delete);
                done(ctx)
            }
            FileInfoClass::RENAME => {
                let info = FileRenameInformation::read(&req.buffer).map_err(bad)?;
                if info.root_directory != 0 {
                    return Err(NtStatus::INVALID_PARAMETER);
                }
                let to = split_path(&info.file_name)?;
                let open = self.opens.get(id).ok_or(NtStatus::FILE_CLOSED)?;
                if !open.can(DELETE_ACCESS) {
                    return Err(NtStatus::ACCESS_DENIED);
                }
                let (from, share, is_dir) = (open.path.clone(), open.share.clone(), open.is_dir);
                if to.is_empty() || from.is_empty() {
                    return Err(NtStatus::ACCESS_DENIED);
                }
                let op = Op::Rename {
                    share: share.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    replace: info.replace_if_exists,
                };
                Ok(Step::Io(
                    op,
                    Then::Renamed {
                        share,
                        from,
                        to,
                        is_dir,
                    },
                ))
            }
            FileInfoClass::END_OF_FILE => {
                let eof = FileEndOfFileInformation::read(&req.buffer).map_err(bad)?;
                let open = self.opens.get(id).ok_or(NtStatus::FILE_CLOSED)?;
                if open.is_dir {
                    return Err(NtStatus::INVALID_PARAMETER);
                }
                if open.access
                    & (access::FILE_WRITE_DATA
                        | access::GENERIC_WRITE
                        | access::GENERIC_ALL
                        | access::MAXIMUM_ALLOWED)
                    == 0
                {
                    return Err(NtStatus::ACCESS_DENIED);
                }
                let op = Op::SetLen {
                    file: open.handle.clone(),
                    len: eof.end_of_file,
                };
                let then = Then::Resized {
                    share: open.share.clone(),
                    path: open.path.clone(),
                };
                Ok(Step::Io(op, then))
            }
            // Allocation size is a hint; nothing to do.
            FileInfoClass::ALLOCATION => done(ctx),
            _ => Err(NtStatus::INVALID_INFO_CLASS),
        }
    }

    /// MS-SMB2 3.3.5.15.
    fn ioctl(&mut self, ctx: &mut Ctx, tree: &Tree) -> HandlerResult {
        let req = IoctlRequest::read(ctx.msg).map_err(|_| NtStatus::INVALID_PARAMETER)?;
        if req.flags & ioctl_flags::IS_FSCTL == 0 {
            return Err(NtStatus::NOT_SUPPORTED);
        }
        match req.ctl_code {
            fsctl::VALIDATE_NEGOTIATE_INFO => self.validate_negotiate(ctx, &req),
            fsctl::PIPE_TRANSCEIVE => {
                // One RPC request in, its answer out (MS-SMB2 3.3.5.15.1).
                let open = self.open_mut(ctx, req.file_id)?;
                let pipe = open.pipe.as_mut().ok_or(NtStatus::INVALID_DEVICE_REQUEST)?;
                pipe.write(&req.input)
                    .map_err(|_| NtStatus::INVALID_PARAMETER)?;
                let (status, output) =
                    super::files::drain_pipe(pipe, req.max_output_response as usize)?;
                let body = IoctlResponse {
                    ctl_code: req.ctl_code,
                    file_id: req.file_id,
                    input: Vec::new(),
                    output,
                    flags: 0,
                };
                Ok(Reply::with_status(ctx.hdr, status, &body))
            }
            fsctl::DFS_GET_REFERRALS | fsctl::DFS_GET_REFERRALS_EX => {
                // No DFS: IPC$ has no referral to give, disk shares are not DFS roots.
                Err(if tree.share.is_none() {
                    NOT_FOUND
                } else {
                    FS_DRIVER_REQUIRED
                })
            }
            _ => Err(NtStatus::NOT_SUPPORTED),
        }
    }

    /// MS-SMB2 3.3.5.15.12: every mismatch with what NEGOTIATE saw ends the connection (a
    /// downgrade was attempted); a match is answered with the server's view, signed.
    fn validate_negotiate(&mut self, ctx: &mut Ctx, req: &IoctlRequest) -> HandlerResult {
        let State::Negotiated(n) = &self.state else {
            return Err(NtStatus::INVALID_PARAMETER);
        };
        let mismatch = |reason: &str| format!("VALIDATE_NEGOTIATE_INFO: {reason}");
        let check = || -> Result<ValidateNegotiateInfoResponse, String> {
            // "If Connection.Dialect is "3.1.1", the server MUST terminate the transport
            // connection": 3.1.1 is protected by the preauth integrity hash instead.
            if n.dialect == Dialect::SMB311 {
                return Err(mismatch("sent on a 3.1.1 connection"));
            }
            if (req.max_output_response as usize) < ValidateNegotiateInfoResponse::LEN {
                return Err(mismatch("MaxOutputResponse too small"));
            }
            let v = ValidateNegotiateInfoRequest::read(&req.input)
                .map_err(|e| mismatch(&format!("malformed: {e}")))?;
            // We implement 3.1.1, so the list must equal Connection.ClientDialects, and the
            // greatest common dialect must be the one negotiated.
            if v.dialects != n.client_dialects
                || self.config.pick_dialect(&v.dialects) != Some(n.dialect)
            {
                return Err(mismatch("dialects differ from NEGOTIATE"));
            }
            if v.guid != n.client_guid {
                return Err(mismatch("ClientGuid differs from NEGOTIATE"));
            }
            if v.security_mode != n.client_security_mode {
                return Err(mismatch("SecurityMode differs from NEGOTIATE"));
            }
            if v.capabilities != n.client_capabilities {
                return Err(mismatch("Capabilities differ from NEGOTIATE"));
            }
            Ok(ValidateNegotiateInfoResponse {
                capabilities: n.server_capabilities,
                guid: crate::messages::negotiate::Guid(self.config.server_guid),
                security_mode: n.server_security_mode,
                dialect: n.dialect,
            })
        };
        match check() {
            Ok(resp) => {
                let mut output = Vec::new();
                resp.encode(&mut output);
                let body = IoctlResponse {
                    ctl_code: fsctl::VALIDATE_NEGOTIATE_INFO,
                    file_id: FileId::RELATED,
                    input: Vec::new(),
                    output,
                    flags: 0,
                };
                let mut reply = Reply::new(ctx.hdr, &body);
                // "The server MUST sign the response" (3.3.5.15.12), whatever the request.
                reply.key = Some(self.session_key(ctx.session_id));
                Ok(reply)
            }
            Err(reason) => {
                self.fail(reason);
                Err(NtStatus::ACCESS_DENIED)
            }
        }
    }
}

/// Most entries the share is asked for in one QUERY_DIRECTORY page.
const MAX_PAGE: usize = 1024;

/// A QUERY_INFO answer: truncated with BUFFER_OVERFLOW when a variable-length class does
/// not fit, INFO_LENGTH_MISMATCH when a fixed one does not (MS-SMB2 3.3.5.20).
fn info_reply(ctx: &Ctx, mut buf: Vec<u8>, variable: bool, max_out: usize) -> HandlerResult {
    if buf.len() > max_out {
        if !variable {
            return Err(NtStatus::INFO_LENGTH_MISMATCH);
        }
        buf.truncate(max_out);
        let body = QueryInfoResponse { buffer: buf };
        return Ok(Reply::with_status(
            ctx.hdr,
            NtStatus::BUFFER_OVERFLOW,
            &body,
        ));
    }
    Ok(Reply::new(ctx.hdr, &QueryInfoResponse { buffer: buf }))
}

/// A FILESYSTEM-class QUERY_INFO answer from the volume information.
pub(super) fn fs_info_done(
    ctx: &Ctx,
    class: u8,
    max_out: usize,
    label: String,
    fs: FsInfo,
) -> HandlerResult {
    let mut buf = Vec::new();
    let mut variable = false;
    let unit = u64::from(fs.bytes_per_sector) * u64::from(fs.sectors_per_unit);
    let unit = unit.max(1);
    match FsInfoClass(class) {
        FsInfoClass::VOLUME => {
            variable = true;
            FileFsVolumeInformation {
                volume_creation_time: fs.created,
                volume_serial_number: fs.serial_number,
                supports_objects: false,
                volume_label: label,
            }
            .encode(&mut buf)
        }
        FsInfoClass::SIZE => FileFsSizeInformation {
            total_allocation_units: fs.total_bytes / unit,
            available_allocation_units: fs.free_bytes / unit,
            sectors_per_allocation_unit: fs.sectors_per_unit,
            bytes_per_sector: fs.bytes_per_sector,
        }
        .encode(&mut buf),
        FsInfoClass::FULL_SIZE => FileFsFullSizeInformation {
            total_allocation_units: fs.total_bytes / unit,
            caller_available_allocation_units: fs.free_bytes / unit,
            actual_available_allocation_units: fs.free_bytes / unit,
            sectors_per_allocation_unit: fs.sectors_per_unit,
            bytes_per_sector: fs.bytes_per_sector,
        }
        .encode(&mut buf),
        FsInfoClass::DEVICE => FileFsDeviceInformation {
            device_type: FILE_DEVICE_DISK,
            characteristics: 0,
        }
        .encode(&mut buf),
        FsInfoClass::ATTRIBUTE => {
            variable = true;
            FileFsAttributeInformation {
                file_system_attributes: FS_ATTRIBUTES,
                maximum_component_name_length: 255,
                file_system_name: "NTFS".into(),
            }
            .encode(&mut buf)
        }
        FsInfoClass::SECTOR_SIZE => FileFsSectorSizeInformation {
            logical_bytes_per_sector: fs.bytes_per_sector,
            physical_bytes_per_sector_for_atomicity: fs.bytes_per_sector,
            physical_bytes_per_sector_for_performance: fs.bytes_per_sector,
            effective_physical_bytes_per_sector_for_atomicity: fs.bytes_per_sector,
            flags: 0,
            byte_offset_for_sector_alignment: 0,
            byte_offset_for_partition_alignment: 0,
        }
        .encode(&mut buf),
        _ => return Err(NtStatus::INVALID_INFO_CLASS),
    }
    info_reply(ctx, buf, variable, max_out)
}

pub(super) fn dir_entry(name: &str, info: &FileInfo) -> DirectoryEntry {
    DirectoryEntry {
        file_index: 0,
        creation_time: info.created,
        last_access_time: info.accessed,
        last_write_time: info.written,
        change_time: info.changed,
        end_of_file: info.size,
        allocation_size: info.allocation_size,
        file_attributes: info.attributes(),
        ea_size: 0,
        short_name: String::new(),
        file_id: info.file_id,
        file_name: name.to_string(),
    }
}

/// Encodes a FILE-class answer; returns whether the class is variable-length.
fn file_info(
    class: FileInfoClass,
    open: &Open,
    info: &FileInfo,
    buf: &mut Vec<u8>,
) -> Result<bool, NtStatus> {
    let basic = FileBasicInformation {
        creation_time: info.created,
        last_access_time: info.accessed,
        last_write_time: info.written,
        change_time: info.changed,
        file_attributes: info.attributes(),
    };
    let standard = FileStandardInformation {
        allocation_size: info.allocation_size,
        end_of_file: info.size,
        number_of_links: 1,
        delete_pending: open.delete_on_close,
        directory: info.is_dir,
    };
    let name = format!("\\{}", open.path.join("\\"));
    match class {
        FileInfoClass::BASIC => basic.encode(buf),
        FileInfoClass::STANDARD => standard.encode(buf),
        FileInfoClass::INTERNAL => FileInternalInformation {
            index_number: info.file_id,
        }
        .encode(buf),
        FileInfoClass::EA => FileEaInformation { ea_size: 0 }.encode(buf),
        FileInfoClass::ACCESS => FileAccessInformation {
            access_flags: open.access,
        }
        .encode(buf),
        FileInfoClass::POSITION => FilePositionInformation {
            current_byte_offset: 0,
        }
        .encode(buf),
        FileInfoClass::MODE => FileModeInformation { mode: 0 }.encode(buf),
        FileInfoClass::ALIGNMENT => FileAlignmentInformation {
            alignment_requirement: 0,
        }
        .encode(buf),
        FileInfoClass::NETWORK_OPEN => FileNetworkOpenInformation {
            creation_time: info.created,
            last_access_time: info.accessed,
            last_write_time: info.written,
            change_time: info.changed,
            allocation_size: info.allocation_size,
            end_of_file: info.size,
            file_attributes: info.attributes(),
        }
        .encode(buf),
        FileInfoClass::ATTRIBUTE_TAG => FileAttributeTagInformation {
            file_attributes: info.attributes(),
            reparse_tag: 0,
        }
        .encode(buf),
        FileInfoClass::ALL => {
            FileAllInformation {
                basic,
                standard,
                internal: FileInternalInformation {
                    index_number: info.file_id,
                },
                ea: FileEaInformation { ea_size: 0 },
                access: FileAccessInformation {
                    access_flags: open.access,
                },
                position: FilePositionInformation {
                    current_byte_offset: 0,
                },
                mode: FileModeInformation { mode: 0 },
                alignment: FileAlignmentInformation {
                    alignment_requirement: 0,
                },
                name: FileNameInformation { file_name: name },
            }
            .encode(buf);
            return Ok(true);
        }
        FileInfoClass::NAME | FileInfoClass::NORMALIZED_NAME => {
            FileNameInformation { file_name: name }.encode(buf);
            return Ok(true);
        }
        FileInfoClass::STREAM => {
            // Files have their one unnamed data stream; directories have none.
            if !info.is_dir {
                FileStreamInformation::encode_list(
                    &[FileStreamInformation {
                        stream_size: info.size,
                        stream_allocation_size: info.allocation_size,
                        stream_name: "::$DATA".into(),
                    }],
                    buf,
                );
            }
            return Ok(true);
        }
        // No 8.3 names are generated. NOT_SUPPORTED (rather than MS-FSA's
        // OBJECT_NAME_NOT_FOUND for "no short name") lets smbclient's allinfo go on.
        FileInfoClass::ALTERNATE_NAME => return Err(NtStatus::NOT_SUPPORTED),
        _ => return Err(NtStatus::INVALID_INFO_CLASS),
    }
    Ok(false)
}
