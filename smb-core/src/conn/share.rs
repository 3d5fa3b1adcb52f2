//! The server's view of a share: a small file-system trait ([`ShareBackend`]) and an
//! in-memory implementation ([`MemoryShare`]) for deterministic tests.
//!
//! Paths are share-relative components (`["dir", "file.txt"]`; the share root is `[]`),
//! already split and checked by [`split_path`]. Errors are the NTSTATUS the server sends,
//! so a backend decides the status a Windows client would expect. The directory-backed
//! share lives in `smb-server` (it needs `std::fs`, which a sans-IO core does not touch).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::header::NtStatus;
use crate::messages::create::file_attributes;

/// Result of a share operation: the NTSTATUS is what the client gets.
pub type ShareResult<T> = Result<T, NtStatus>;

/// FILETIME of 2024-01-01T00:00:00Z (100 ns ticks since 1601), the memory share's epoch.
pub const MEMORY_SHARE_EPOCH: u64 = 133_485_408_000_000_000;

/// What a stat returns: enough for every SMB2 file information class we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileInfo {
    /// A directory (FILE_ATTRIBUTE_DIRECTORY), else a file.
    pub is_dir: bool,
    /// EndOfFile: the size in bytes (0 for a directory).
    pub size: u64,
    /// AllocationSize: bytes the file occupies on disk.
    pub allocation_size: u64,
    /// CreationTime, as a FILETIME (100 ns since 1601-01-01 UTC), like the three below.
    pub created: u64,
    /// LastAccessTime.
    pub accessed: u64,
    /// LastWriteTime: the data last changed.
    pub written: u64,
    /// ChangeTime: the data or the metadata last changed.
    pub changed: u64,
    /// A stable per-file number (inode), for FileInternalInformation and id-based listings.
    pub file_id: u64,
    /// Not writable (FILE_ATTRIBUTE_READONLY).
    pub read_only: bool,
}

impl FileInfo {
    /// FILE_ATTRIBUTE_* bits (MS-FSCC 2.6): DIRECTORY, or ARCHIVE for files as Samba does.
    pub fn attributes(&self) -> u32 {
        let mut a = if self.is_dir {
            file_attributes::DIRECTORY
        } else {
            file_attributes::ARCHIVE
        };
        if self.read_only {
            a |= file_attributes::READONLY;
        }
        a
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name within its directory (no path).
    pub name: String,
    /// What a stat of it returns.
    pub info: FileInfo,
}

/// Volume information for the FileFs* classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsInfo {
    /// The volume's size in bytes.
    pub total_bytes: u64,
    /// Bytes free for the caller.
    pub free_bytes: u64,
    /// BytesPerSector (MS-FSCC 2.5.8).
    pub bytes_per_sector: u32,
    /// SectorsPerAllocationUnit (MS-FSCC 2.5.8).
    pub sectors_per_unit: u32,
    /// VolumeSerialNumber (MS-FSCC 2.5.9).
    pub serial_number: u32,
    /// VolumeCreationTime, as a FILETIME.
    pub created: u64,
}

/// CreateDisposition (MS-SMB2 2.2.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Replace if it exists, create if not.
    Supersede,
    /// Open if it exists, fail if not.
    Open,
    /// Fail if it exists, create if not.
    Create,
    /// Open if it exists, create if not.
    OpenIf,
    /// Truncate if it exists, fail if not.
    Overwrite,
    /// Truncate if it exists, create if not.
    OverwriteIf,
}

impl Disposition {
    /// From the wire value; `None` for values above 5.
    pub fn from_wire(v: u32) -> Option<Self> {
        Some(match v {
            0 => Disposition::Supersede,
            1 => Disposition::Open,
            2 => Disposition::Create,
            3 => Disposition::OpenIf,
            4 => Disposition::Overwrite,
            5 => Disposition::OverwriteIf,
            _ => return None,
        })
    }
}

/// What the CREATE did (CreateAction in the response, MS-SMB2 2.2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateAction {
    /// FILE_SUPERSEDED: an existing file was replaced.
    Superseded = 0,
    /// FILE_OPENED: an existing file was opened.
    Opened = 1,
    /// FILE_CREATED: a new file was created.
    Created = 2,
    /// FILE_OVERWRITTEN: an existing file was truncated.
    Overwritten = 3,
}

/// Whether the caller wants a directory, a non-directory, or either
/// (FILE_DIRECTORY_FILE / FILE_NON_DIRECTORY_FILE create options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Either (neither option set).
    Any,
    /// FILE_DIRECTORY_FILE: it must be a directory.
    Directory,
    /// FILE_NON_DIRECTORY_FILE: it must not be a directory.
    File,
}

/// One open object of a share, held from CREATE to CLOSE: READ, WRITE, the stat of
/// QUERY_INFO, SET_INFO end-of-file, FLUSH and QUERY_DIRECTORY go through it and never
/// resolve the name again, so a rename or a symlink swap in the tree after the open cannot
/// redirect the open's I/O (issue 12: each open holds its own file descriptor).
pub trait ShareHandle: Send + Sync + fmt::Debug {
    /// Stat of the open object.
    fn stat(&self) -> ShareResult<FileInfo>;
    /// Appends up to `len` bytes at `offset` to `out` (fewer at the end of the file).
    fn read_into(&self, offset: u64, len: u32, out: &mut Vec<u8>) -> ShareResult<()>;
    /// Writes all of `data` at `offset`, extending the file; returns the bytes written.
    fn write(&self, offset: u64, data: &[u8]) -> ShareResult<u32>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> ShareResult<()>;
    /// Makes written data durable.
    fn flush(&self) -> ShareResult<()>;
    /// One page of the open directory, as [`ShareBackend::list_page`].
    fn list_page(
        &self,
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>>;
}

/// An open object, shared between the open table and the request running on it.
pub type Handle = Arc<dyn ShareHandle>;

/// The primitive file operations a share provides. Every method is atomic on its own;
/// the disposition logic of CREATE is built on top in [`open_or_create`].
pub trait ShareBackend: Send + Sync + fmt::Debug {
    /// Opens an existing regular file or directory and holds it (a descriptor on disk):
    /// `write` asks for write access too, which a backend may drop when the object
    /// cannot be written (the WRITE then fails, as it would by name).
    fn open(&self, path: &[String], write: bool) -> ShareResult<Handle>;
    /// Stat; OBJECT_NAME_NOT_FOUND if missing, OBJECT_PATH_NOT_FOUND if a parent is missing.
    fn stat(&self, path: &[String]) -> ShareResult<FileInfo>;
    /// Creates an empty file; OBJECT_NAME_COLLISION if the name exists.
    fn create_file(&self, path: &[String]) -> ShareResult<FileInfo>;
    /// Creates a directory; OBJECT_NAME_COLLISION if the name exists.
    fn mkdir(&self, path: &[String]) -> ShareResult<FileInfo>;
    /// Up to `len` bytes at `offset` (fewer at the end of the file, none past it).
    fn read(&self, path: &[String], offset: u64, len: u32) -> ShareResult<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(path, offset, len, &mut out)?;
        Ok(out)
    }
    /// Writes all of `data` at `offset`, extending the file; returns the bytes written.
    fn write(&self, path: &[String], offset: u64, data: &[u8]) -> ShareResult<u32>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, path: &[String], len: u64) -> ShareResult<()>;
    /// Entries of a directory, without "." and "..", in a stable order.
    fn list(&self, path: &[String]) -> ShareResult<Vec<DirEntry>>;
    /// Appends up to `len` bytes at `offset` to `out` (fewer at the end of the file, none
    /// past it). The server passes the response buffer itself, so the data is read into
    /// its final place once.
    fn read_into(
        &self,
        path: &[String],
        offset: u64,
        len: u32,
        out: &mut Vec<u8>,
    ) -> ShareResult<()>;
    /// One page of a directory listing: at most `max` entries whose names match `pattern`
    /// ([`wildcard_match`]) and sort strictly after `after` (byte order of the names), in
    /// that order, without "." and "..". The server resumes from the last name it sent,
    /// so it never keeps a snapshot of the directory. The default filters [`ShareBackend::list`];
    /// a backend overrides it to stat only the entries it returns.
    fn list_page(
        &self,
        path: &[String],
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        let mut all: Vec<DirEntry> = self
            .list(path)?
            .into_iter()
            .filter(|e| {
                after.is_none_or(|a| e.name.as_str() > a) && wildcard_match(pattern, &e.name)
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.truncate(max);
        Ok(all)
    }
    /// Deletes a file or an empty directory (DIRECTORY_NOT_EMPTY otherwise).
    fn delete(&self, path: &[String]) -> ShareResult<()>;
    /// Renames within the share; OBJECT_NAME_COLLISION if `to` exists and `!replace`.
    fn rename(&self, from: &[String], to: &[String], replace: bool) -> ShareResult<()>;
    /// Makes written data durable.
    fn flush(&self, path: &[String]) -> ShareResult<()>;
    /// Volume sizes and identity.
    fn fs_info(&self) -> ShareResult<FsInfo>;
}

/// CREATE's disposition and directory rules (MS-SMB2 3.3.5.9, MS-FSA 2.1.5.1) on top of
/// the primitives. Returns the file's info after the operation and what was done.
pub fn open_or_create(
    share: &dyn ShareBackend,
    path: &[String],
    disposition: Disposition,
    kind: Kind,
) -> ShareResult<(FileInfo, CreateAction)> {
    let existing = match share.stat(path) {
        Ok(info) => Some(info),
        Err(NtStatus::OBJECT_NAME_NOT_FOUND) => None,
        Err(e) => return Err(e),
    };
    match existing {
        Some(info) => {
            if kind == Kind::Directory && !info.is_dir {
                return Err(NtStatus::NOT_A_DIRECTORY);
            }
            if kind == Kind::File && info.is_dir {
                return Err(NtStatus::FILE_IS_A_DIRECTORY);
            }
            match disposition {
                Disposition::Create => Err(NtStatus::OBJECT_NAME_COLLISION),
                Disposition::Open | Disposition::OpenIf => Ok((info, CreateAction::Opened)),
                Disposition::Overwrite | Disposition::OverwriteIf | Disposition::Supersede => {
                    if info.is_dir {
                        // Directories cannot be overwritten (MS-FSA 2.1.5.1.2).
                        return Err(NtStatus::INVALID_PARAMETER);
                    }
                    share.set_len(path, 0)?;
                    let action = if disposition == Disposition::Supersede {
                        CreateAction::Superseded
                    } else {
                        CreateAction::Overwritten
                    };
                    Ok((share.stat(path)?, action))
                }
            }
        }
        None => match disposition {
            Disposition::Open | Disposition::Overwrite => Err(NtStatus::OBJECT_NAME_NOT_FOUND),
            _ => {
                if path.is_empty() {
                    return Err(NtStatus::OBJECT_NAME_INVALID);
                }
                let info = if kind == Kind::Directory {
                    share.mkdir(path)?
                } else {
                    share.create_file(path)?
                };
                Ok((info, CreateAction::Created))
            }
        },
    }
}

/// [`open_or_create`], then the object opened and held ([`ShareBackend::open`]); the info
/// returned is the held object's, checked again against `kind` (the name may have been
/// swapped between the two steps: what the open holds is what counts).
pub fn open_or_create_handle(
    share: &dyn ShareBackend,
    path: &[String],
    disposition: Disposition,
    kind: Kind,
    write: bool,
) -> ShareResult<(FileInfo, CreateAction, Handle)> {
    let (_, action) = open_or_create(share, path, disposition, kind)?;
    let handle = share.open(path, write)?;
    let info = handle.stat()?;
    if kind == Kind::Directory && !info.is_dir {
        return Err(NtStatus::NOT_A_DIRECTORY);
    }
    if kind == Kind::File && info.is_dir {
        return Err(NtStatus::FILE_IS_A_DIRECTORY);
    }
    Ok((info, action, handle))
}

/// Splits an SMB2 path ("dir\\file.txt", separators `\` or `/`) into checked components.
/// Rejects what could leave the share or confuse a backend: `..`, `.`, NUL, `:` (drive
/// letters and NTFS streams), and names with wildcard or control characters.
pub fn split_path(name: &str) -> ShareResult<Vec<String>> {
    let mut out = Vec::new();
    for part in name.split(['\\', '/']) {
        if part.is_empty() {
            // Leading separator or doubled separators: harmless, skip.
            continue;
        }
        if part == "." || part == ".." {
            return Err(NtStatus::OBJECT_NAME_INVALID);
        }
        if part.chars().any(|c| {
            c == '\0'
                || c == ':'
                || c == '*'
                || c == '?'
                || c == '"'
                || c == '<'
                || c == '>'
                || c == '|'
                || (c as u32) < 0x20
        }) {
            return Err(NtStatus::OBJECT_NAME_INVALID);
        }
        if part.len() > 255 {
            return Err(NtStatus::OBJECT_NAME_INVALID);
        }
        out.push(part.to_string());
    }
    if out.len() > 64 {
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    Ok(out)
}

/// In-memory share for tests: deterministic times (a logical clock from
/// [`MEMORY_SHARE_EPOCH`]) and bounded size. Its handles name objects by id, so they follow
/// renames; a handle on a deleted object gets OBJECT_NAME_NOT_FOUND (nothing keeps the
/// data of an unlinked object alive, unlike a disk descriptor).
#[derive(Debug)]
pub struct MemoryShare {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug)]
struct MemoryInner {
    nodes: BTreeMap<Vec<String>, Node>,
    /// Where each object is now, by id (for handles).
    paths: HashMap<u64, Vec<String>>,
    clock: u64,
    next_id: u64,
    used: u64,
    /// Refuse to grow the share's total data past this many bytes (DISK_FULL).
    capacity: u64,
}

#[derive(Debug, Clone)]
struct Node {
    data: Option<Vec<u8>>, // None = directory
    created: u64,
    written: u64,
    id: u64,
}

impl Node {
    fn info(&self) -> FileInfo {
        let size = self.data.as_ref().map_or(0, |d| d.len() as u64);
        FileInfo {
            is_dir: self.data.is_none(),
            size,
            allocation_size: size.div_ceil(4096) * 4096,
            created: self.created,
            accessed: self.written,
            written: self.written,
            changed: self.written,
            file_id: self.id,
            read_only: false,
        }
    }
}

impl Default for MemoryShare {
    fn default() -> Self {
        MemoryShare::new()
    }
}

impl MemoryShare {
    /// An empty share with a 64 MiB capacity.
    pub fn new() -> Self {
        MemoryShare::with_capacity(64 << 20)
    }

    /// An empty share that holds at most `capacity` bytes of file data (writes past it
    /// fail with STATUS_DISK_FULL).
    pub fn with_capacity(capacity: u64) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            Vec::new(),
            Node {
                data: None,
                created: MEMORY_SHARE_EPOCH,
                written: MEMORY_SHARE_EPOCH,
                id: 1,
            },
        );
        MemoryShare {
            inner: Arc::new(Mutex::new(MemoryInner {
                nodes,
                paths: HashMap::from([(1, Vec::new())]),
                clock: MEMORY_SHARE_EPOCH,
                next_id: 2,
                used: 0,
                capacity,
            })),
        }
    }

    /// Test helper: the whole content of a file, if it exists.
    pub fn contents(&self, path: &str) -> Option<Vec<u8>> {
        let p = split_path(path).ok()?;
        self.lock().nodes.get(&p).and_then(|n| n.data.clone())
    }

    /// Test helper: whether a file or directory exists.
    pub fn exists(&self, path: &str) -> bool {
        split_path(path)
            .map(|p| self.lock().nodes.contains_key(&p))
            .unwrap_or(false)
    }

    /// Test helper: create or replace a file with `data` (parents must exist).
    pub fn put(&self, path: &str, data: &[u8]) -> ShareResult<()> {
        let p = split_path(path)?;
        if self.stat(&p).is_err() {
            self.create_file(&p)?;
        }
        self.set_len(&p, 0)?;
        self.write(&p, 0, data).map(|_| ())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        lock(&self.inner)
    }
}

fn lock(m: &Mutex<MemoryInner>) -> std::sync::MutexGuard<'_, MemoryInner> {
    // A poisoned lock only means another test thread panicked; the map is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryInner {
    fn tick(&mut self) -> u64 {
        self.clock += 10_000_000; // one second per operation
        self.clock
    }

    fn parent_is_dir(&self, path: &[String]) -> ShareResult<()> {
        let Some((_, parent)) = path.split_last() else {
            return Err(NtStatus::OBJECT_NAME_INVALID);
        };
        match self.nodes.get(parent) {
            Some(n) if n.data.is_none() => Ok(()),
            _ => Err(NtStatus::OBJECT_PATH_NOT_FOUND),
        }
    }

    fn missing(&self, path: &[String]) -> NtStatus {
        match path.split_last() {
            Some((_, parent)) if self.nodes.get(parent).is_none_or(|n| n.data.is_some()) => {
                NtStatus::OBJECT_PATH_NOT_FOUND
            }
            _ => NtStatus::OBJECT_NAME_NOT_FOUND,
        }
    }

    fn insert(&mut self, path: &[String], data: Option<Vec<u8>>) -> ShareResult<FileInfo> {
        self.parent_is_dir(path)?;
        if self.nodes.contains_key(path) {
            return Err(NtStatus::OBJECT_NAME_COLLISION);
        }
        let now = self.tick();
        let id = self.next_id;
        self.next_id += 1;
        let node = Node {
            data,
            created: now,
            written: now,
            id,
        };
        let info = node.info();
        self.nodes.insert(path.to_vec(), node);
        self.paths.insert(id, path.to_vec());
        Ok(info)
    }

    fn remove(&mut self, path: &[String]) -> Option<Node> {
        let n = self.nodes.remove(path)?;
        self.paths.remove(&n.id);
        self.used = self
            .used
            .saturating_sub(n.data.as_ref().map_or(0, |d| d.len() as u64));
        Some(n)
    }

    /// The current path of the object with this id (a handle's object).
    fn path_of(&self, id: u64) -> ShareResult<Vec<String>> {
        self.paths
            .get(&id)
            .cloned()
            .ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)
    }

    fn file_mut(&mut self, path: &[String]) -> ShareResult<&mut Node> {
        let missing = self.missing(path);
        match self.nodes.get_mut(path) {
            None => Err(missing),
            Some(n) if n.data.is_none() => Err(NtStatus::FILE_IS_A_DIRECTORY),
            Some(n) => Ok(n),
        }
    }

    fn stat(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.nodes
            .get(path)
            .map(Node::info)
            .ok_or_else(|| self.missing(path))
    }

    fn read_into(
        &mut self,
        path: &[String],
        offset: u64,
        len: u32,
        out: &mut Vec<u8>,
    ) -> ShareResult<()> {
        let data = self.file_mut(path)?.data.as_deref().unwrap_or_default();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len as usize).min(data.len());
        out.extend_from_slice(&data[start..end]);
        Ok(())
    }

    fn write(&mut self, path: &[String], offset: u64, bytes: &[u8]) -> ShareResult<u32> {
        let (capacity, used) = (self.capacity, self.used);
        let now = self.tick();
        let node = self.file_mut(path)?;
        let data = node.data.get_or_insert_with(Vec::new);
        let end = offset
            .checked_add(bytes.len() as u64)
            .ok_or(NtStatus::INVALID_PARAMETER)?;
        let grow = end.saturating_sub(data.len() as u64);
        if used.saturating_add(grow) > capacity {
            return Err(NtStatus::DISK_FULL);
        }
        let (start, end) = (offset as usize, end as usize); // both <= capacity + len
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        node.written = now;
        self.used += grow;
        Ok(bytes.len() as u32)
    }

    fn set_len(&mut self, path: &[String], len: u64) -> ShareResult<()> {
        let (capacity, used) = (self.capacity, self.used);
        let now = self.tick();
        let node = self.file_mut(path)?;
        let data = node.data.get_or_insert_with(Vec::new);
        let old = data.len() as u64;
        if len > old && used.saturating_add(len - old) > capacity {
            return Err(NtStatus::DISK_FULL);
        }
        data.resize(len as usize, 0);
        node.written = now;
        self.used = (used + len).saturating_sub(old);
        Ok(())
    }

    fn dir(&self, path: &[String]) -> ShareResult<()> {
        match self.nodes.get(path) {
            None => Err(self.missing(path)),
            Some(n) if n.data.is_some() => Err(NtStatus::NOT_A_DIRECTORY),
            Some(_) => Ok(()),
        }
    }

    fn list_page(
        &self,
        path: &[String],
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        self.dir(path)?;
        // Children sort by name right after their parent; resume after the cursor.
        let mut start = path.to_vec();
        start.push(after.unwrap_or_default().to_string());
        let bound = match after {
            Some(_) => std::ops::Bound::Excluded(start),
            None => std::ops::Bound::Included(start),
        };
        Ok(self
            .nodes
            .range((bound, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.len() > path.len() && k.starts_with(path))
            .filter(|(k, _)| k.len() == path.len() + 1)
            .filter_map(|(k, n)| {
                let name = k.last()?;
                wildcard_match(pattern, name).then(|| DirEntry {
                    name: name.clone(),
                    info: n.info(),
                })
            })
            .take(max)
            .collect())
    }
}

impl ShareBackend for MemoryShare {
    fn open(&self, path: &[String], _write: bool) -> ShareResult<Handle> {
        let id = {
            let g = self.lock();
            g.nodes.get(path).ok_or_else(|| g.missing(path))?.id
        };
        Ok(Arc::new(MemoryHandle {
            inner: self.inner.clone(),
            id,
        }))
    }

    fn stat(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.lock().stat(path)
    }

    fn create_file(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.lock().insert(path, Some(Vec::new()))
    }

    fn mkdir(&self, path: &[String]) -> ShareResult<FileInfo> {
        self.lock().insert(path, None)
    }

    fn read_into(
        &self,
        path: &[String],
        offset: u64,
        len: u32,
        out: &mut Vec<u8>,
    ) -> ShareResult<()> {
        self.lock().read_into(path, offset, len, out)
    }

    fn write(&self, path: &[String], offset: u64, bytes: &[u8]) -> ShareResult<u32> {
        self.lock().write(path, offset, bytes)
    }

    fn set_len(&self, path: &[String], len: u64) -> ShareResult<()> {
        self.lock().set_len(path, len)
    }

    fn list(&self, path: &[String]) -> ShareResult<Vec<DirEntry>> {
        self.lock().list_page(path, None, "*", usize::MAX)
    }

    fn list_page(
        &self,
        path: &[String],
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        self.lock().list_page(path, after, pattern, max)
    }

    fn delete(&self, path: &[String]) -> ShareResult<()> {
        let mut g = self.lock();
        if path.is_empty() {
            return Err(NtStatus::ACCESS_DENIED);
        }
        let node = g.nodes.get(path).ok_or_else(|| g.missing(path))?;
        if node.data.is_none()
            && g.nodes
                .keys()
                .any(|k| k.len() > path.len() && k.starts_with(path))
        {
            return Err(NtStatus::DIRECTORY_NOT_EMPTY);
        }
        g.remove(path);
        Ok(())
    }

    fn rename(&self, from: &[String], to: &[String], replace: bool) -> ShareResult<()> {
        let mut g = self.lock();
        if from.is_empty() || to.is_empty() {
            return Err(NtStatus::ACCESS_DENIED);
        }
        if from == to {
            return Ok(());
        }
        let src_is_dir = match g.nodes.get(from) {
            None => return Err(g.missing(from)),
            Some(n) => n.data.is_none(),
        };
        if src_is_dir && to.starts_with(from) {
            return Err(NtStatus::INVALID_PARAMETER); // into itself
        }
        g.parent_is_dir(to)?;
        if let Some(dst) = g.nodes.get(to) {
            if !replace {
                return Err(NtStatus::OBJECT_NAME_COLLISION);
            }
            if dst.data.is_none() {
                return Err(NtStatus::ACCESS_DENIED); // never replace a directory
            }
            g.remove(to);
        }
        // Move the node and, for a directory, everything under it.
        let moved: Vec<Vec<String>> = g
            .nodes
            .keys()
            .filter(|k| k.starts_with(from))
            .cloned()
            .collect();
        for old in moved {
            if let Some(node) = g.nodes.remove(&old) {
                let mut new = to.to_vec();
                new.extend_from_slice(&old[from.len()..]);
                g.paths.insert(node.id, new.clone());
                g.nodes.insert(new, node);
            }
        }
        Ok(())
    }

    fn flush(&self, path: &[String]) -> ShareResult<()> {
        self.stat(path).map(|_| ())
    }

    fn fs_info(&self) -> ShareResult<FsInfo> {
        let g = self.lock();
        Ok(FsInfo {
            total_bytes: g.capacity,
            free_bytes: g.capacity.saturating_sub(g.used),
            bytes_per_sector: 512,
            sectors_per_unit: 8,
            serial_number: 0x5342_4D32,
            created: MEMORY_SHARE_EPOCH,
        })
    }
}

/// An open object of a [`MemoryShare`]: its id, looked up at each use.
#[derive(Debug)]
struct MemoryHandle {
    inner: Arc<Mutex<MemoryInner>>,
    id: u64,
}

impl ShareHandle for MemoryHandle {
    fn stat(&self) -> ShareResult<FileInfo> {
        let g = lock(&self.inner);
        g.stat(&g.path_of(self.id)?)
    }

    fn read_into(&self, offset: u64, len: u32, out: &mut Vec<u8>) -> ShareResult<()> {
        let mut g = lock(&self.inner);
        let p = g.path_of(self.id)?;
        g.read_into(&p, offset, len, out)
    }

    fn write(&self, offset: u64, data: &[u8]) -> ShareResult<u32> {
        let mut g = lock(&self.inner);
        let p = g.path_of(self.id)?;
        g.write(&p, offset, data)
    }

    fn set_len(&self, len: u64) -> ShareResult<()> {
        let mut g = lock(&self.inner);
        let p = g.path_of(self.id)?;
        g.set_len(&p, len)
    }

    fn flush(&self) -> ShareResult<()> {
        self.stat().map(|_| ())
    }

    fn list_page(
        &self,
        after: Option<&str>,
        pattern: &str,
        max: usize,
    ) -> ShareResult<Vec<DirEntry>> {
        let g = lock(&self.inner);
        g.list_page(&g.path_of(self.id)?, after, pattern, max)
    }
}

/// Case-insensitive match of a name against a Windows wildcard pattern with `*` and `?`
/// (MS-FSA 2.1.4.4, without the DOS_* variants). "*" and "*.*" match everything.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    if pattern == "*" || pattern == "*.*" || pattern.is_empty() {
        return true;
    }
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let n: Vec<char> = name.chars().flat_map(char::to_lowercase).collect();
    // Iterative matcher with one backtrack point: O(len(p) * len(n)) worst case.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        split_path(s).unwrap()
    }

    #[test]
    fn split_path_rejects_escapes() {
        assert_eq!(p("a\\b/c"), ["a", "b", "c"]);
        assert_eq!(p(""), Vec::<String>::new());
        assert_eq!(p("\\a\\\\b"), ["a", "b"]);
        for bad in [
            "..",
            "a\\..\\b",
            ".",
            "c:\\x",
            "a\0b",
            "file:stream",
            "a*b",
            "x\x01",
        ] {
            assert_eq!(
                split_path(bad),
                Err(NtStatus::OBJECT_NAME_INVALID),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dispositions_follow_the_spec_table() {
        let s = MemoryShare::new();
        let f = p("f.txt");
        assert_eq!(
            open_or_create(&s, &f, Disposition::Open, Kind::Any),
            Err(NtStatus::OBJECT_NAME_NOT_FOUND)
        );
        assert_eq!(
            open_or_create(&s, &f, Disposition::Overwrite, Kind::Any),
            Err(NtStatus::OBJECT_NAME_NOT_FOUND)
        );
        assert_eq!(
            open_or_create(&s, &f, Disposition::Create, Kind::File)
                .unwrap()
                .1,
            CreateAction::Created
        );
        assert_eq!(
            open_or_create(&s, &f, Disposition::Create, Kind::File),
            Err(NtStatus::OBJECT_NAME_COLLISION)
        );
        s.write(&f, 0, b"hello").unwrap();
        assert_eq!(
            open_or_create(&s, &f, Disposition::OpenIf, Kind::Any)
                .unwrap()
                .0
                .size,
            5
        );
        let (info, action) = open_or_create(&s, &f, Disposition::OverwriteIf, Kind::Any).unwrap();
        assert_eq!((info.size, action), (0, CreateAction::Overwritten));
        assert_eq!(
            open_or_create(&s, &f, Disposition::Open, Kind::Directory),
            Err(NtStatus::NOT_A_DIRECTORY)
        );
        let d = p("d");
        assert!(
            open_or_create(&s, &d, Disposition::Create, Kind::Directory)
                .unwrap()
                .0
                .is_dir
        );
        assert_eq!(
            open_or_create(&s, &d, Disposition::Open, Kind::File),
            Err(NtStatus::FILE_IS_A_DIRECTORY)
        );
        assert_eq!(
            open_or_create(&s, &p("nope\\x"), Disposition::Create, Kind::File),
            Err(NtStatus::OBJECT_PATH_NOT_FOUND)
        );
    }

    #[test]
    fn read_write_delete_rename() {
        let s = MemoryShare::new();
        s.mkdir(&p("d")).unwrap();
        s.put("d\\a", b"0123456789").unwrap();
        assert_eq!(s.read(&p("d\\a"), 8, 100).unwrap(), b"89");
        assert_eq!(s.read(&p("d\\a"), 100, 1).unwrap(), b"");
        s.write(&p("d\\a"), 12, b"xy").unwrap();
        assert_eq!(s.contents("d\\a").unwrap(), b"0123456789\0\0xy");
        assert_eq!(s.delete(&p("d")), Err(NtStatus::DIRECTORY_NOT_EMPTY));
        s.put("b", b"B").unwrap();
        assert_eq!(
            s.rename(&p("b"), &p("d\\a"), false),
            Err(NtStatus::OBJECT_NAME_COLLISION)
        );
        s.rename(&p("b"), &p("d\\a"), true).unwrap();
        assert_eq!(s.contents("d\\a").unwrap(), b"B");
        s.rename(&p("d"), &p("e"), false).unwrap();
        assert_eq!(s.contents("e\\a").unwrap(), b"B");
        let names: Vec<_> = s.list(&[]).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["e"]);
        s.delete(&p("e\\a")).unwrap();
        s.delete(&p("e")).unwrap();
        assert!(!s.exists("e"));
    }

    #[test]
    fn memory_share_is_bounded() {
        let s = MemoryShare::with_capacity(1000);
        s.create_file(&p("f")).unwrap();
        assert_eq!(
            s.write(&p("f"), u64::MAX - 1, b"abc"),
            Err(NtStatus::INVALID_PARAMETER)
        );
        assert_eq!(s.write(&p("f"), 1 << 40, b"abc"), Err(NtStatus::DISK_FULL));
        assert_eq!(s.set_len(&p("f"), 1 << 40), Err(NtStatus::DISK_FULL));
        s.write(&p("f"), 0, &[1; 1000]).unwrap();
        assert_eq!(s.fs_info().unwrap().free_bytes, 0);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("*.TXT", "a.txt"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match("exact.txt", "Exact.txt"));
        assert!(!wildcard_match("exact.txt", "exact.txt2"));
    }

    #[test]
    fn memory_handles_follow_renames() {
        let s = MemoryShare::new();
        s.mkdir(&p("d")).unwrap();
        s.put("d\\a", b"one").unwrap();
        let h = s.open(&p("d\\a"), true).unwrap();
        s.rename(&p("d"), &p("e"), false).unwrap();
        s.put("d", b"other").unwrap();
        h.write(3, b"!").unwrap();
        assert_eq!(s.contents("e\\a").unwrap(), b"one!");
        assert_eq!(h.stat().unwrap().size, 4);
        s.delete(&p("e\\a")).unwrap();
        assert_eq!(h.stat(), Err(NtStatus::OBJECT_NAME_NOT_FOUND));
    }
}
