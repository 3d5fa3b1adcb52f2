//! `DiskShare`: a share backed by a local directory (std::fs), confined to its root.
//!
//! Every path is re-checked here even though the server already split it, because this is
//! the last line before the file system: no `..`, no `.`, no absolute paths or drive letters,
//! no NUL or separators inside a component. Symbolic links are followed only when they
//! resolve inside the root: the deepest existing ancestor is canonicalized and its prefix
//! checked before anything is opened or created.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use smb_core::conn::share::{
    wildcard_match, DirEntry, FileInfo, FsInfo, ShareBackend, ShareResult,
};
use smb_core::header::NtStatus;

/// Seconds between 1601-01-01 and 1970-01-01 (for ctime, which comes as seconds).
#[cfg(unix)]
const FILETIME_UNIX_OFFSET_SECS: u64 = 11_644_473_600;

/// A directory-backed share.
#[derive(Debug)]
pub struct DiskShare {
    /// Canonical absolute root.
    root: PathBuf,
}

impl DiskShare {
    /// Opens a share on `root`, which must be an existing directory.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = fs::canonicalize(root.as_ref())?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(DiskShare { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `components`, after checking each one and that no symbolic link on
    /// the way leads out of the root. The final component may not exist yet.
    fn resolve(&self, components: &[String]) -> ShareResult<PathBuf> {
        let mut path = self.root.clone();
        for c in components {
            check_component(c)?;
            path.push(c);
        }
        // Canonicalize the deepest existing ancestor (or the path itself) and check it is
        // under the root: this catches symlinks anywhere on the path, dangling or not.
        let mut probe = path.as_path();
        loop {
            match fs::symlink_metadata(probe) {
                Ok(_) => break,
                Err(_) => match probe.parent() {
                    Some(p) => probe = p,
                    None => return Err(NtStatus::OBJECT_PATH_NOT_FOUND),
                },
            }
        }
        match fs::canonicalize(probe) {
            Ok(real) if real.starts_with(&self.root) => Ok(path),
            Ok(_) => Err(NtStatus::ACCESS_DENIED),
            // A dangling symlink: its target does not exist; refuse rather than follow it.
            Err(_) => Err(NtStatus::ACCESS_DENIED),
        }
    }

    /// Resolves a path whose parent must exist as a directory (for create, mkdir, rename).
    fn resolve_new(&self, components: &[String]) -> ShareResult<PathBuf> {
        let path = self.resolve(components)?;
        match path.parent().map(fs::metadata) {
            Some(Ok(m)) if m.is_dir() => Ok(path),
            _ => Err(NtStatus::OBJECT_PATH_NOT_FOUND),
        }
    }

    fn open_file(&self, components: &[String], write: bool) -> ShareResult<File> {
        let path = self.resolve(components)?;
        let meta = fs::metadata(&path).map_err(io_status)?;
        if meta.is_dir() {
            return Err(NtStatus::FILE_IS_A_DIRECTORY);
        }
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(&path)
            .map_err(io_status)
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
    fn stat(&self, path: &[String]) -> ShareResult<FileInfo> {
        let p = self.resolve(path)?;
        match fs::metadata(&p) {
            Ok(m) => Ok(info_of(&m)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Tell a missing parent from a missing leaf, as Windows does.
                match p.parent().map(fs::metadata) {
                    Some(Ok(m)) if m.is_dir() => Err(NtStatus::OBJECT_NAME_NOT_FOUND),
                    _ => Err(NtStatus::OBJECT_PATH_NOT_FOUND),
                }
            }
            Err(e) => Err(io_status(e)),
        }
    }

    fn create_file(&self, path: &[String]) -> ShareResult<FileInfo> {
        let p = self.resolve_new(path)?;
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(io_status)?;
        f.metadata().map(|m| info_of(&m)).map_err(io_status)
    }

    fn mkdir(&self, path: &[String]) -> ShareResult<FileInfo> {
        let p = self.resolve_new(path)?;
        fs::create_dir(&p).map_err(io_status)?;
        fs::metadata(&p).map(|m| info_of(&m)).map_err(io_status)
    }

    fn read(&self, path: &[String], offset: u64, len: u32) -> ShareResult<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(path, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn read_into(
        &self,
        path: &[String],
        offset: u64,
        len: u32,
        out: &mut Vec<u8>,
    ) -> ShareResult<()> {
        let mut f = self.open_file(path, false)?;
        let size = f.metadata().map_err(io_status)?.len();
        if offset >= size {
            return Ok(());
        }
        let want = (size - offset).min(u64::from(len)) as usize;
        f.seek(SeekFrom::Start(offset)).map_err(io_status)?;
        // Straight into the caller's (response) buffer.
        out.reserve(want);
        f.take(want as u64).read_to_end(out).map_err(io_status)?;
        Ok(())
    }

    fn write(&self, path: &[String], offset: u64, data: &[u8]) -> ShareResult<u32> {
        let mut f = self.open_file(path, true)?;
        f.seek(SeekFrom::Start(offset)).map_err(io_status)?;
        f.write_all(data).map_err(io_status)?;
        Ok(u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    fn set_len(&self, path: &[String], len: u64) -> ShareResult<()> {
        let f = self.open_file(path, true)?;
        f.set_len(len).map_err(io_status)
    }

    fn list(&self, path: &[String]) -> ShareResult<Vec<DirEntry>> {
        self.list_page(path, None, "*", usize::MAX)
    }

    /// One pass over the directory per page keeps only the `max` smallest names after the
    /// cursor (a bounded heap), then stats just those: memory and stats per call are
    /// bounded by the page, whatever the size of the directory.
    fn list_page(
        &self,
        path: &[String],
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        let p = self.resolve(path)?;
        let meta = fs::metadata(&p).map_err(io_status)?;
        if !meta.is_dir() {
            return Err(NtStatus::NOT_A_DIRECTORY);
        }
        let mut cursor = after.map(str::to_owned);
        let mut out = Vec::new();
        while out.len() < max {
            let need = max - out.len();
            let mut heap = std::collections::BinaryHeap::new();
            for entry in fs::read_dir(&p).map_err(io_status)? {
                let Ok(entry) = entry else { continue };
                // Names that are not valid Unicode cannot be sent as UTF-16: skip them.
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if cursor.as_deref().is_some_and(|c| name.as_str() <= c)
                    || !wildcard_match(pattern, &name)
                {
                    continue;
                }
                heap.push(name);
                if heap.len() > need {
                    heap.pop();
                }
            }
            let exhausted = heap.len() < need;
            for name in heap.into_sorted_vec() {
                let full = p.join(&name);
                cursor = Some(name.clone());
                // Follow symlinks only when they stay inside the root; hide the others.
                let Ok(real) = fs::canonicalize(&full) else {
                    continue;
                };
                if !real.starts_with(&self.root) {
                    continue;
                }
                let Ok(m) = fs::metadata(&full) else { continue };
                out.push(DirEntry {
                    name,
                    info: info_of(&m),
                });
            }
            if exhausted {
                break;
            }
        }
        Ok(out)
    }

    fn delete(&self, path: &[String]) -> ShareResult<()> {
        if path.is_empty() {
            return Err(NtStatus::ACCESS_DENIED);
        }
        let p = self.resolve(path)?;
        let meta = fs::symlink_metadata(&p).map_err(io_status)?;
        if meta.is_dir() {
            fs::remove_dir(&p).map_err(io_status)
        } else {
            fs::remove_file(&p).map_err(io_status)
        }
    }

    fn rename(&self, from: &[String], to: &[String], replace: bool) -> ShareResult<()> {
        if from.is_empty() || to.is_empty() {
            return Err(NtStatus::ACCESS_DENIED);
        }
        let src = self.resolve(from)?;
        let dst = self.resolve_new(to)?;
        fs::symlink_metadata(&src).map_err(io_status)?;
        if src == dst {
            return Ok(());
        }
        if let Ok(m) = fs::symlink_metadata(&dst) {
            if !replace {
                return Err(NtStatus::OBJECT_NAME_COLLISION);
            }
            if m.is_dir() {
                return Err(NtStatus::ACCESS_DENIED);
            }
        }
        fs::rename(&src, &dst).map_err(io_status)
    }

    fn flush(&self, path: &[String]) -> ShareResult<()> {
        let p = self.resolve(path)?;
        match File::open(&p) {
            Ok(f) => f.sync_all().map_err(io_status),
            Err(e) => Err(io_status(e)),
        }
    }

    fn fs_info(&self) -> ShareResult<FsInfo> {
        let created = fs::metadata(&self.root)
            .map(|m| filetime(m.created()))
            .unwrap_or(0);
        let (total_bytes, free_bytes, bytes_per_sector, sectors_per_unit) = volume_size(&self.root);
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
#[cfg(unix)]
fn volume_size(root: &Path) -> (u64, u64, u32, u32) {
    match rustix::fs::statvfs(root) {
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

#[cfg(not(unix))]
fn volume_size(_root: &Path) -> (u64, u64, u32, u32) {
    (0, 0, 512, 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::conn::share::{open_or_create, split_path, CreateAction, Disposition, Kind};

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
            assert_eq!(s.create_file(&p("dangling")), Err(NtStatus::ACCESS_DENIED));
            assert!(!base.join("new").exists() && !base.join("missing").exists());
            assert_eq!(s.read(&p("link-in"), 0, 10).unwrap(), b"ok");
            let names: Vec<_> = s.list(&[]).unwrap().into_iter().map(|e| e.name).collect();
            assert_eq!(names, ["in.txt", "link-in"]);
            // Pages resume after a cursor; hidden entries never end a page early.
            let page = |after, max| -> Vec<String> {
                let entries = s.list_page(&[], after, "*", max).unwrap();
                entries.into_iter().map(|e| e.name).collect()
            };
            assert_eq!(page(None, 1), ["in.txt"]);
            assert_eq!(page(Some("in.txt"), 1), ["link-in"]);
            assert!(page(Some("link-in"), 5).is_empty());
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
}
