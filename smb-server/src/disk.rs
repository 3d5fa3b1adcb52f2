//! `DiskShare`: a share backed by a local directory, confined to its root by the kernel.
//!
//! Every access starts from a descriptor of the root opened once, and resolves the rest with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: the kernel
//! refuses any symbolic link and any `..` on the way *during* the walk, so no swap of a
//! directory for a symlink (renameat2 RENAME_EXCHANGE) between a check and a use can lead
//! out of the share (issue 12, attack 3). Nothing is resolved twice: each operation opens
//! its object once and then works on that descriptor (stat, pread, pwrite, ftruncate,
//! fsync, getdents). Files that are neither regular files nor directories (FIFOs, device
//! nodes, sockets) are refused: the object is first opened `O_PATH` (which never blocks
//! and has no side effect), checked, and only then reopened for I/O `O_NONBLOCK`, with the
//! reopened descriptor checked to be the same inode. Symbolic links in the share are not
//! followed at all (ACCESS_DENIED) and are left out of listings.
//!
//! The components are still checked here (no `..`, `.`, separators, NUL, drive letters):
//! a clear OBJECT_NAME_INVALID rather than a kernel refusal.
//!
//! Each open holds its own descriptor ([`ShareBackend::open`] returns a [`DiskHandle`]):
//! READ, WRITE, stat, set-info, FLUSH and QUERY_DIRECTORY of an open work on it and never
//! resolve the name again, so a rename or a symlink swap of the tree after CREATE cannot
//! redirect the open's I/O. A file handle is a regular descriptor (read-write when the open
//! may write and the file allows it, read-only otherwise); a directory handle is an
//! `O_RDONLY | O_DIRECTORY` descriptor that each listing page reopens as ".".
//!
//! Held descriptors are counted process-wide and capped ([`set_max_held_handles`]; the
//! server binary sets the cap so that connections and held opens fit its descriptor limit):
//! a CREATE beyond the cap, or one that meets EMFILE/ENFILE, gets
//! STATUS_INSUFFICIENT_RESOURCES instead of taking the descriptors connections need.
//!
//! `openat2` is Linux 5.6+; elsewhere (or on an older kernel) a share refuses to open.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use rustix::fs::{openat2, AtFlags, Dir, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

use smb_core::conn::share::{
    wildcard_match, DirEntry, FileInfo, FsInfo, Handle, ShareBackend, ShareHandle, ShareResult,
};
use smb_core::header::NtStatus;

/// Seconds between 1601-01-01 and 1970-01-01 (for ctime, which comes as seconds).
#[cfg(unix)]
const FILETIME_UNIX_OFFSET_SECS: u64 = 11_644_473_600;

/// Default cap on descriptors held by opens, all shares of the process together.
pub const DEFAULT_MAX_HELD_HANDLES: usize = 4096;

/// Descriptors held by opens, and the most they may be.
#[derive(Debug)]
struct HeldLimit {
    held: AtomicUsize,
    max: AtomicUsize,
}

/// The process's limit, shared by every share.
static HELD: HeldLimit = HeldLimit {
    held: AtomicUsize::new(0),
    max: AtomicUsize::new(DEFAULT_MAX_HELD_HANDLES),
};

/// Sets the most descriptors all open files of all disk shares may hold at once (at least 1).
pub fn set_max_held_handles(n: usize) {
    HELD.max.store(n.max(1), Ordering::Relaxed);
}

/// Descriptors held by opens right now.
pub fn held_handles() -> usize {
    HELD.held.load(Ordering::Relaxed)
}

/// One held descriptor counted against its limit until dropped.
#[derive(Debug)]
struct HeldSlot(&'static HeldLimit);

impl HeldLimit {
    fn take(&'static self) -> ShareResult<HeldSlot> {
        let max = self.max.load(Ordering::Relaxed);
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| HeldSlot(self))
            .map_err(|_| NtStatus::INSUFFICIENT_RESOURCES)
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A directory-backed share.
#[derive(Debug)]
pub struct DiskShare {
    /// Canonical absolute root (for messages and statvfs only: nothing is opened by it).
    root: PathBuf,
    /// `O_PATH` descriptor of the root: every access resolves beneath it.
    root_fd: OwnedFd,
    /// Where held descriptors are counted (the process's, except in tests).
    limit: &'static HeldLimit,
}

impl DiskShare {
    /// Opens a share on `root`, which must be an existing directory.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = fs::canonicalize(root.as_ref())?;
        let root_fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            std::io::Error::new(
                std::io::Error::from(e).kind(),
                format!("{} is not a directory", root.display()),
            )
        })?;
        let share = DiskShare {
            root,
            root_fd,
            limit: &HELD,
        };
        // Refuse to serve at all where the kernel cannot confine (no openat2).
        share
            .at(&[], OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| {
                std::io::Error::new(
                    std::io::Error::from(e).kind(),
                    "openat2 with RESOLVE_BENEATH is needed to confine a share (Linux 5.6+)",
                )
            })?;
        Ok(share)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens `components` beneath the root, refusing symlinks and `..` anywhere on the way.
    fn at(&self, components: &[String], flags: OFlags) -> Result<OwnedFd, Errno> {
        self.at_mode(components, flags, Mode::empty())
    }

    fn at_mode(&self, components: &[String], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
        // O_PATH takes no other flags in openat2 (EINVAL); O_NOCTTY matters for the others.
        let extra = if flags.contains(OFlags::PATH) {
            OFlags::CLOEXEC
        } else {
            OFlags::CLOEXEC | OFlags::NOCTTY
        };
        let rel = if components.is_empty() {
            ".".to_string()
        } else {
            components.join("/")
        };
        openat2(
            &self.root_fd,
            rel.as_str(),
            flags | extra,
            mode,
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Checks every component (clear errors for names the host must never see).
    fn check(components: &[String]) -> ShareResult<()> {
        components.iter().try_for_each(|c| check_component(c))
    }

    /// The parent directory (`O_PATH`) and the last name of a non-empty path.
    fn parent<'a>(&self, components: &'a [String]) -> ShareResult<(OwnedFd, &'a str)> {
        Self::check(components)?;
        let (name, dir) = components.split_last().ok_or(NtStatus::ACCESS_DENIED)?;
        let fd = self
            .at(dir, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| match e {
                Errno::NOENT | Errno::NOTDIR => NtStatus::OBJECT_PATH_NOT_FOUND,
                e => errno_status(e),
            })?;
        Ok((fd, name))
    }

    /// `O_PATH` descriptor and metadata of an existing object, which must be a regular file
    /// or a directory.
    fn object(&self, components: &[String]) -> ShareResult<(OwnedFd, fs::Metadata)> {
        Self::check(components)?;
        let fd = match self.at(components, OFlags::PATH) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                // Tell a missing parent from a missing leaf, as Windows does.
                return Err(match components.split_last() {
                    Some((_, dir)) if self.at(dir, OFlags::PATH | OFlags::DIRECTORY).is_ok() => {
                        NtStatus::OBJECT_NAME_NOT_FOUND
                    }
                    _ => NtStatus::OBJECT_PATH_NOT_FOUND,
                });
            }
            Err(Errno::NOTDIR) => return Err(NtStatus::OBJECT_PATH_NOT_FOUND),
            Err(e) => return Err(errno_status(e)),
        };
        let meta = metadata(&fd)?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(NtStatus::ACCESS_DENIED);
        }
        Ok((fd, meta))
    }

    /// The object opened for I/O and held: checked through `O_PATH` first, then reopened
    /// (never blocking) and checked to be the same inode, so a FIFO or device swapped in
    /// between is refused too. A file asked for `write` is opened read-write, or read-only
    /// when it cannot be written (the WRITE then fails with ACCESS_DENIED).
    fn handle(&self, components: &[String], write: bool) -> ShareResult<DiskHandle> {
        let (_, meta) = self.object(components)?;
        let is_dir = meta.is_dir();
        let fd = if is_dir {
            self.at(components, OFlags::RDONLY | OFlags::DIRECTORY)
        } else if write {
            match self.at(components, OFlags::RDWR | OFlags::NONBLOCK) {
                Err(Errno::ACCESS | Errno::PERM | Errno::ROFS | Errno::TXTBSY) => {
                    self.at(components, OFlags::RDONLY | OFlags::NONBLOCK)
                }
                r => r,
            }
        } else {
            self.at(components, OFlags::RDONLY | OFlags::NONBLOCK)
        }
        .map_err(errno_status)?;
        let file = File::from(fd);
        let now = file.metadata().map_err(io_status)?;
        if now.is_dir() != is_dir || !(now.is_file() || now.is_dir()) || !same_inode(&meta, &now) {
            return Err(NtStatus::ACCESS_DENIED);
        }
        Ok(DiskHandle {
            file,
            is_dir,
            _slot: None,
        })
    }

    /// The regular file at `components`, opened for one operation by name.
    fn open_file(&self, components: &[String], write: bool) -> ShareResult<DiskHandle> {
        let h = self.handle(components, write)?;
        if h.is_dir {
            return Err(NtStatus::FILE_IS_A_DIRECTORY);
        }
        Ok(h)
    }
}

/// An open file or directory of a [`DiskShare`]: its own descriptor, held until the last
/// request on the open is done with it.
#[derive(Debug)]
pub struct DiskHandle {
    file: File,
    is_dir: bool,
    /// Set for a handle an open holds (not for one operation by name).
    _slot: Option<HeldSlot>,
}

impl ShareHandle for DiskHandle {
    fn stat(&self) -> ShareResult<FileInfo> {
        self.file.metadata().map(|m| info_of(&m)).map_err(io_status)
    }

    fn read_into(&self, offset: u64, len: u32, out: &mut Vec<u8>) -> ShareResult<()> {
        if self.is_dir {
            return Err(NtStatus::FILE_IS_A_DIRECTORY);
        }
        let f = &self.file;
        let size = f.metadata().map_err(io_status)?.len();
        if offset >= size {
            return Ok(());
        }
        let want = (size - offset).min(u64::from(len)) as usize;
        // Straight into the spare capacity of the caller's (response) buffer, not zeroed
        // first: zeroing cost 7 % of the server's CPU in a profile of a 1 GiB `get`.
        let start = out.len();
        out.reserve(want);
        while out.len() < start + want {
            let at = offset + (out.len() - start) as u64;
            match rustix::io::pread(f, rustix::buffer::spare_capacity(out), at) {
                Ok(0) => break,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    out.truncate(start);
                    return Err(io_status(e.into()));
                }
            }
        }
        // The spare capacity may exceed `want` (the file grew meanwhile): keep `want` bytes.
        out.truncate(start + want);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> ShareResult<u32> {
        if self.is_dir {
            return Err(NtStatus::FILE_IS_A_DIRECTORY);
        }
        self.file.write_all_at(data, offset).map_err(io_status)?;
        Ok(u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    fn set_len(&self, len: u64) -> ShareResult<()> {
        if self.is_dir {
            return Err(NtStatus::FILE_IS_A_DIRECTORY);
        }
        self.file.set_len(len).map_err(io_status)
    }

    fn flush(&self) -> ShareResult<()> {
        self.file.sync_all().map_err(io_status)
    }

    /// One pass over the directory per page keeps only the `max` smallest names after the
    /// cursor (a bounded heap), then stats just those: memory and stats per call are
    /// bounded by the page, whatever the size of the directory.
    fn list_page(
        &self,
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        if !self.is_dir {
            return Err(NtStatus::NOT_A_DIRECTORY);
        }
        let dirfd = &self.file;
        let mut cursor = after.map(str::to_owned);
        let mut out = Vec::new();
        while out.len() < max {
            let need = max - out.len();
            let mut heap = std::collections::BinaryHeap::new();
            // A fresh reading position each time (the descriptor is reopened as ".").
            for entry in Dir::read_from(dirfd).map_err(errno_status)? {
                let Ok(entry) = entry else { continue };
                let bytes = entry.file_name().to_bytes();
                if bytes == b"." || bytes == b".." {
                    continue;
                }
                // Names that are not valid Unicode cannot be sent as UTF-16: skip them.
                let Ok(name) = std::str::from_utf8(bytes) else {
                    continue;
                };
                if cursor.as_deref().is_some_and(|c| name <= c) || !wildcard_match(pattern, name) {
                    continue;
                }
                heap.push(name.to_string());
                if heap.len() > need {
                    heap.pop();
                }
            }
            let exhausted = heap.len() < need;
            for name in heap.into_sorted_vec() {
                // Only regular files and directories, never through a symlink.
                let fd = rustix::fs::openat(
                    dirfd,
                    name.as_str(),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                );
                let m = fd.ok().and_then(|fd| metadata(&fd).ok());
                let visible = m.filter(|m| m.is_file() || m.is_dir());
                cursor = Some(name.clone());
                if let Some(m) = visible {
                    out.push(DirEntry {
                        name,
                        info: info_of(&m),
                    });
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }
}

fn metadata(fd: &OwnedFd) -> ShareResult<fs::Metadata> {
    // statx(fd, "", AT_EMPTY_PATH): works on an O_PATH descriptor.
    let f = File::from(fd.try_clone().map_err(io_status)?);
    f.metadata().map_err(io_status)
}

fn same_inode(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Errors of the confined resolution: a symlink, an escape or a non-blocking open of a
/// FIFO or device are all "access denied".
fn errno_status(e: Errno) -> NtStatus {
    match e {
        Errno::LOOP | Errno::XDEV | Errno::NXIO | Errno::AGAIN | Errno::NODEV => {
            NtStatus::ACCESS_DENIED
        }
        // Out of descriptors: a resource problem, not the client's fault.
        Errno::MFILE | Errno::NFILE => NtStatus::INSUFFICIENT_RESOURCES,
        e => io_status(e.into()),
    }
}

/// One path component, as the host will see it.
fn check_component(c: &str) -> ShareResult<()> {
    let bad = c.is_empty()
        || c == "."
        || c == ".."
        || c.len() > 255
        || c.chars()
            .any(|ch| matches!(ch, '\0' | '/' | '\\' | ':') || (ch as u32) < 0x20);
    let mut comps = Path::new(c).components();
    let single_normal =
        matches!(comps.next(), Some(Component::Normal(_))) && comps.next().is_none();
    if bad || !single_normal {
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    Ok(())
}

/// Maps an I/O error to the status a Windows client expects.
fn io_status(e: std::io::Error) -> NtStatus {
    if e.raw_os_error() == Some(Errno::BADF.raw_os_error()) {
        // A write through a handle the file could only be opened read-only for.
        return NtStatus::ACCESS_DENIED;
    }
    match e.kind() {
        ErrorKind::NotFound => NtStatus::OBJECT_NAME_NOT_FOUND,
        ErrorKind::PermissionDenied => NtStatus::ACCESS_DENIED,
        ErrorKind::AlreadyExists => NtStatus::OBJECT_NAME_COLLISION,
        ErrorKind::DirectoryNotEmpty => NtStatus::DIRECTORY_NOT_EMPTY,
        ErrorKind::NotADirectory => NtStatus::OBJECT_PATH_NOT_FOUND,
        ErrorKind::IsADirectory => NtStatus::FILE_IS_A_DIRECTORY,
        ErrorKind::StorageFull => NtStatus::DISK_FULL,
        ErrorKind::InvalidInput | ErrorKind::InvalidFilename => NtStatus::OBJECT_NAME_INVALID,
        _ => NtStatus::UNSUCCESSFUL,
    }
}

/// A file time as a FILETIME; 0 when the file system does not record it.
fn filetime(t: std::io::Result<SystemTime>) -> u64 {
    t.map_or(0, smb_core::codec::filetime)
}

fn info_of(meta: &fs::Metadata) -> FileInfo {
    #[cfg(unix)]
    let (file_id, changed, blocks) = {
        use std::os::unix::fs::MetadataExt;
        let ctime = (meta.ctime().max(0) as u64 + FILETIME_UNIX_OFFSET_SECS) * 10_000_000
            + (meta.ctime_nsec().max(0) as u64) / 100;
        (meta.ino(), ctime, meta.blocks() * 512)
    };
    #[cfg(not(unix))]
    let (file_id, changed, blocks) = (0, filetime(meta.modified()), meta.len());
    let written = filetime(meta.modified());
    let size = if meta.is_dir() { 0 } else { meta.len() };
    FileInfo {
        is_dir: meta.is_dir(),
        size,
        allocation_size: if meta.is_dir() {
            0
        } else {
            blocks.max(size.div_ceil(4096) * 4096)
        },
        // Not every file system records a birth time; fall back to the write time.
        created: match filetime(meta.created()) {
            0 => written,
            t => t,
        },
        accessed: filetime(meta.accessed()),
        written,
        changed,
        file_id,
        read_only: meta.permissions().readonly(),
    }
}

impl ShareBackend for DiskShare {
    fn open(&self, path: &[String], write: bool) -> ShareResult<Handle> {
        let slot = self.limit.take()?;
        let mut h = self.handle(path, write)?;
        h._slot = Some(slot);
        Ok(std::sync::Arc::new(h))
    }

    fn stat(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.object(path).map(|(_, m)| info_of(&m))
    }

    fn create_file(&self, path: &[String]) -> ShareResult<FileInfo> {
        let (dir, name) = self.parent(path)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| match e {
            // O_EXCL on an existing name, symlinks included.
            Errno::EXIST => NtStatus::OBJECT_NAME_COLLISION,
            e => errno_status(e),
        })?;
        File::from(fd)
            .metadata()
            .map(|m| info_of(&m))
            .map_err(io_status)
    }

    fn mkdir(&self, path: &[String]) -> ShareResult<FileInfo> {
        let (dir, name) = self.parent(path)?;
        rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)).map_err(errno_status)?;
        self.stat(path)
    }

    fn read_into(
        &self,
        path: &[String],
        offset: u64,
        len: u32,
        out: &mut Vec<u8>,
    ) -> ShareResult<()> {
        self.open_file(path, false)?.read_into(offset, len, out)
    }

    fn write(&self, path: &[String], offset: u64, data: &[u8]) -> ShareResult<u32> {
        self.open_file(path, true)?.write(offset, data)
    }

    fn set_len(&self, path: &[String], len: u64) -> ShareResult<()> {
        self.open_file(path, true)?.set_len(len)
    }

    fn list(&self, path: &[String]) -> ShareResult<Vec<DirEntry>> {
        self.list_page(path, None, "*", usize::MAX)
    }

    fn list_page(
        &self,
        path: &[String],
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        self.handle(path, false)?.list_page(after, pattern, max)
    }

    fn delete(&self, path: &[String]) -> ShareResult<()> {
        let (dir, name) = self.parent(path)?;
        let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno_status)?;
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let flags = if is_dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        rustix::fs::unlinkat(&dir, name, flags).map_err(|e| match e {
            Errno::NOTEMPTY | Errno::EXIST => NtStatus::DIRECTORY_NOT_EMPTY,
            e => errno_status(e),
        })
    }

    fn rename(&self, from: &[String], to: &[String], replace: bool) -> ShareResult<()> {
        let (src_dir, src) = self.parent(from)?;
        let (dst_dir, dst) = self.parent(to)?;
        rustix::fs::statat(&src_dir, src, AtFlags::SYMLINK_NOFOLLOW).map_err(errno_status)?;
        if from == to {
            return Ok(());
        }
        let flags = if replace {
            if let Ok(st) = rustix::fs::statat(&dst_dir, dst, AtFlags::SYMLINK_NOFOLLOW) {
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(NtStatus::ACCESS_DENIED);
                }
            }
            RenameFlags::empty()
        } else {
            // Atomic: no window between a check and the rename.
            RenameFlags::NOREPLACE
        };
        rustix::fs::renameat_with(&src_dir, src, &dst_dir, dst, flags).map_err(|e| match e {
            Errno::EXIST => NtStatus::OBJECT_NAME_COLLISION,
            e => errno_status(e),
        })
    }

    fn flush(&self, path: &[String]) -> ShareResult<()> {
        self.handle(path, false)?.flush()
    }

    fn fs_info(&self) -> ShareResult<FsInfo> {
        let created = metadata(&self.root_fd)
            .map(|m| filetime(m.created()))
            .unwrap_or(0);
        let (total_bytes, free_bytes, bytes_per_sector, sectors_per_unit) =
            volume_size(&self.root_fd);
        Ok(FsInfo {
            total_bytes,
            free_bytes,
            bytes_per_sector,
            sectors_per_unit,
            serial_number: 0x5342_4D32,
            created,
        })
    }
}

/// (total bytes, bytes available to unprivileged users, bytes per sector, sectors per
/// allocation unit) of the file system holding `root`.
fn volume_size(root: &OwnedFd) -> (u64, u64, u32, u32) {
    match rustix::fs::fstatvfs(root) {
        Ok(v) => {
            let unit = v.f_frsize.max(512);
            // Report 512-byte sectors and as many per unit as the fragment size needs.
            let sectors = u32::try_from(unit / 512).unwrap_or(8).max(1);
            (
                v.f_blocks.saturating_mul(unit),
                v.f_bavail.saturating_mul(unit),
                512,
                sectors,
            )
        }
        Err(_) => (0, 0, 512, 8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::conn::share::{open_or_create, split_path, CreateAction, Disposition, Kind};
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("smb-disk-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn p(s: &str) -> Vec<String> {
        s.split('\\')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn confined_to_root() {
        let base = tmp("confine");
        let root = base.join("share");
        fs::create_dir(&root).unwrap();
        fs::write(base.join("secret"), b"s").unwrap();
        let s = DiskShare::new(&root).unwrap();
        for bad in ["..", ".", "a/b", "/etc", "c:", "x\0y"] {
            assert_eq!(
                s.stat(&[bad.to_string()]),
                Err(NtStatus::OBJECT_NAME_INVALID),
                "{bad:?}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(base.join("secret"), root.join("out")).unwrap();
            std::os::unix::fs::symlink(&base, root.join("updir")).unwrap();
            std::os::unix::fs::symlink(base.join("missing"), root.join("dangling")).unwrap();
            fs::write(root.join("in.txt"), b"ok").unwrap();
            std::os::unix::fs::symlink(root.join("in.txt"), root.join("link-in")).unwrap();
            assert_eq!(s.read(&p("out"), 0, 10), Err(NtStatus::ACCESS_DENIED));
            assert_eq!(s.stat(&p("updir\\secret")), Err(NtStatus::ACCESS_DENIED));
            assert_eq!(
                s.create_file(&p("updir\\new")),
                Err(NtStatus::ACCESS_DENIED)
            );
            // The name exists (as a link): O_EXCL refuses it without following it.
            assert_eq!(
                s.create_file(&p("dangling")),
                Err(NtStatus::OBJECT_NAME_COLLISION)
            );
            assert!(!base.join("new").exists() && !base.join("missing").exists());
            // No symlink is followed, even one that stays inside, and none is listed.
            assert_eq!(s.read(&p("link-in"), 0, 10), Err(NtStatus::ACCESS_DENIED));
            assert_eq!(s.read(&p("in.txt"), 0, 10).unwrap(), b"ok");
            let names: Vec<_> = s.list(&[]).unwrap().into_iter().map(|e| e.name).collect();
            assert_eq!(names, ["in.txt"]);
            // Pages resume after a cursor; hidden entries (sorting before and after) never
            // end a page early.
            fs::write(root.join("z.txt"), b"z").unwrap();
            let page = |after, max| -> Vec<String> {
                let entries = s.list_page(&[], after, "*", max).unwrap();
                entries.into_iter().map(|e| e.name).collect()
            };
            assert_eq!(page(None, 1), ["in.txt"]);
            assert_eq!(page(Some("in.txt"), 1), ["z.txt"]);
            assert!(page(Some("z.txt"), 5).is_empty());
        }
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn file_operations() {
        let root = tmp("ops");
        let s = DiskShare::new(&root).unwrap();
        let f = split_path("dir\\a.txt").unwrap();
        assert_eq!(
            open_or_create(&s, &f, Disposition::Create, Kind::File),
            Err(NtStatus::OBJECT_PATH_NOT_FOUND)
        );
        s.mkdir(&p("dir")).unwrap();
        let (_, action) = open_or_create(&s, &f, Disposition::Create, Kind::File).unwrap();
        assert_eq!(action, CreateAction::Created);
        s.write(&f, 3, b"abc").unwrap();
        assert_eq!(s.read(&f, 0, 100).unwrap(), b"\0\0\0abc");
        assert_eq!(s.stat(&f).unwrap().size, 6);
        s.set_len(&f, 4).unwrap();
        assert_eq!(s.read(&f, 2, 100).unwrap(), b"\0a");
        assert_eq!(s.delete(&p("dir")), Err(NtStatus::DIRECTORY_NOT_EMPTY));
        s.create_file(&p("b")).unwrap();
        assert_eq!(
            s.rename(&p("b"), &f, false),
            Err(NtStatus::OBJECT_NAME_COLLISION)
        );
        s.rename(&p("b"), &f, true).unwrap();
        assert_eq!(s.stat(&f).unwrap().size, 0);
        assert_eq!(s.stat(&p("nodir\\x")), Err(NtStatus::OBJECT_PATH_NOT_FOUND));
        assert_eq!(s.stat(&p("dir\\x")), Err(NtStatus::OBJECT_NAME_NOT_FOUND));
        s.delete(&f).unwrap();
        s.delete(&p("dir")).unwrap();
        assert!(s.list(&[]).unwrap().is_empty());
        fs::remove_dir_all(&root).unwrap();
    }

    /// A FIFO or a device node in the share is refused at once, never opened blocking.
    #[test]
    fn non_regular_files_are_refused_without_blocking() {
        let root = tmp("fifo");
        let s = DiskShare::new(&root).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
        let t = std::time::Instant::now();
        assert_eq!(s.read(&p("fifo"), 0, 10), Err(NtStatus::ACCESS_DENIED));
        assert_eq!(s.write(&p("fifo"), 0, b"x"), Err(NtStatus::ACCESS_DENIED));
        assert_eq!(s.stat(&p("fifo")), Err(NtStatus::ACCESS_DENIED));
        assert_eq!(s.flush(&p("fifo")), Err(NtStatus::ACCESS_DENIED));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert!(s.list(&[]).unwrap().is_empty(), "not listed");
        fs::remove_dir_all(&root).unwrap();
    }

    /// Issue 12, attack 3: a directory swapped with a symlink to an outside one
    /// (renameat2 RENAME_EXCHANGE) while reads go on. Not one byte from outside comes back.
    #[test]
    fn symlink_swap_race_never_leaks_outside_bytes() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let base = tmp("swap");
        let root = base.join("share");
        let outside = base.join("outside");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(root.join("d").join("f"), b"inside").unwrap();
        fs::write(outside.join("f"), b"SECRET").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("l")).unwrap();
        let s = DiskShare::new(&root).unwrap();
        let stop = AtomicBool::new(false);
        let (mut inside, mut refused) = (0, 0);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        root.join("d"),
                        rustix::fs::CWD,
                        root.join("l"),
                        RenameFlags::EXCHANGE,
                    );
                }
            });
            for _ in 0..20_000 {
                match s.read(&p("d\\f"), 0, 16) {
                    Ok(b) => {
                        assert_eq!(b, b"inside", "bytes from outside the share");
                        inside += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert!(
            inside > 0 && refused > 0,
            "the race ran: {inside} {refused}"
        );
        fs::remove_dir_all(&base).unwrap();
    }

    /// A handle keeps its object: a rename or a symlink swap of the tree after the open
    /// changes nothing for it, and a read-only file opened for writing refuses the WRITE.
    #[test]
    fn handles_keep_their_object() {
        let base = tmp("handle");
        let root = base.join("share");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(root.join("d").join("f"), b"inside").unwrap();
        fs::write(base.join("outside").join("f"), b"SECRET").unwrap();
        std::os::unix::fs::symlink(base.join("outside"), root.join("l")).unwrap();
        let s = DiskShare::new(&root).unwrap();
        let f = s.open(&p("d\\f"), true).unwrap();
        let d = s.open(&p("d"), false).unwrap();
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            root.join("d"),
            rustix::fs::CWD,
            root.join("l"),
            RenameFlags::EXCHANGE,
        )
        .unwrap();
        assert_eq!(s.read(&p("d\\f"), 0, 16), Err(NtStatus::ACCESS_DENIED));
        let mut out = Vec::new();
        f.read_into(0, 16, &mut out).unwrap();
        assert_eq!(out, b"inside");
        f.write(6, b"!").unwrap();
        fs::rename(root.join("l").join("f"), root.join("l").join("g")).unwrap();
        assert_eq!(f.stat().unwrap().size, 7);
        let names: Vec<_> = d.list_page(None, "*", 10).unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].name, "g");
        assert_eq!(fs::read(root.join("l").join("g")).unwrap(), b"inside!");
        assert_eq!(fs::read(base.join("outside").join("f")).unwrap(), b"SECRET");
        // Read-only on disk: the open succeeds, its WRITE is refused.
        fs::write(root.join("ro"), b"r").unwrap();
        fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o444)).unwrap();
        let ro = s.open(&p("ro"), true).unwrap();
        // Root writes anyway (CAP_DAC_OVERRIDE, the file owned by uid 0): nothing to check.
        if std::os::unix::fs::MetadataExt::uid(&fs::metadata(&root).unwrap()) != 0 {
            assert_eq!(ro.write(0, b"x"), Err(NtStatus::ACCESS_DENIED));
        }
        fs::remove_dir_all(&base).unwrap();
    }

    /// Held descriptors are capped: beyond the cap, INSUFFICIENT_RESOURCES; a dropped
    /// handle gives its slot back. (A private limit: other tests run in parallel.)
    #[test]
    fn held_descriptors_are_capped() {
        let root = tmp("cap");
        fs::write(root.join("a"), b"a").unwrap();
        let limit: &'static HeldLimit = Box::leak(Box::new(HeldLimit {
            held: AtomicUsize::new(0),
            max: AtomicUsize::new(2),
        }));
        let s = DiskShare {
            limit,
            ..DiskShare::new(&root).unwrap()
        };
        let a = s.open(&p("a"), false).unwrap();
        let b = s.open(&[], false).unwrap();
        assert_eq!(
            s.open(&p("a"), false).map(|_| ()),
            Err(NtStatus::INSUFFICIENT_RESOURCES)
        );
        // Operations by name hold nothing.
        assert_eq!(s.read(&p("a"), 0, 1).unwrap(), b"a");
        drop(a);
        let _c = s.open(&p("a"), true).unwrap();
        assert_eq!(limit.held.load(Ordering::Relaxed), 2);
        drop(b);
        assert_eq!(limit.held.load(Ordering::Relaxed), 1);
        fs::remove_dir_all(&root).unwrap();
    }
}
