//! The file-level disk the log is written to, with sync semantics spelled out, and two disks:
//! [`FsDisk`] (a real directory) and [`MemDisk`] (memory, with crashes that lose what was not
//! synced, for tests and the simulator).
//!
//! The contract every implementation keeps, and the log relies on:
//!
//! - Writes (`append`, `write_at`, `write_new`, `truncate`) change a file's contents at once for
//!   readers, but survive a crash only after `sync(name)` of that file.
//! - Directory changes (`write_new` creating a name, `rename`, `remove`) survive a crash only
//!   after `sync_dir()`. Until then a crash may undo any suffix of them.
//! - After a crash, the writes to a file since its last sync may be partly kept: a prefix of
//!   them in the order they were made, the last one kept cut anywhere (a torn write). Bytes
//!   never written read as zeros, so an overwrite of zero-filled (preallocated) space that a
//!   crash tears leaves the new bytes' prefix followed by the old zeros.
//! - Names are plain file names: no path separators, not `.` or `..`, not empty.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rand::Rng;

/// Zeros written per call by the default [`Disk::write_zeros`].
const ZERO_PIECE_LEN: u64 = 1 << 20;
use thiserror::Error;

/// A disk operation that failed, naming the operation and the file.
#[derive(Debug, Error)]
#[error("disk {op} of {name:?} failed: {source}")]
pub struct DiskError {
    pub op: &'static str,
    pub name: String,
    #[source]
    pub source: io::Error,
}

impl DiskError {
    fn new(op: &'static str, name: &str, source: io::Error) -> Self {
        DiskError { op, name: name.to_owned(), source }
    }

    /// Whether the failure was that the file does not exist.
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }
}

/// A flat directory of files with explicit durability. See the module docs for the contract.
pub trait Disk {
    /// Names of all files, sorted.
    fn list(&self) -> Result<Vec<String>, DiskError>;
    /// The whole current contents of a file.
    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError>;
    /// Appends to an existing file.
    fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// Writes `bytes` at `offset` of an existing file, over what is there; past the end it
    /// extends the file (a gap reads as zeros).
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError>;
    /// Writes `len` zero bytes at `offset`, as [`Disk::write_at`] would: written, not a hole,
    /// so that the file's blocks are allocated (the log fills space ahead of its records).
    fn write_zeros(&mut self, name: &str, offset: u64, len: u64) -> Result<(), DiskError> {
        let zeros = vec![0; len.min(ZERO_PIECE_LEN) as usize];
        let end = offset.saturating_add(len);
        let mut at = offset;
        while at < end {
            let piece = &zeros[..(end - at).min(zeros.len() as u64) as usize];
            self.write_at(name, at, piece)?;
            at += piece.len() as u64;
        }
        Ok(())
    }
    /// Makes the file's contents durable (not its name: see [`Disk::sync_dir`]).
    fn sync(&mut self, name: &str) -> Result<(), DiskError>;
    /// Creates a file that must not exist yet, with these contents.
    fn write_new(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;
    /// Makes every create, rename and remove so far durable.
    fn sync_dir(&mut self) -> Result<(), DiskError>;
    /// Removes a file.
    fn remove(&mut self, name: &str) -> Result<(), DiskError>;
    /// Sets a file's length to `len` bytes: cuts it, or extends it with zeros.
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError>;
    /// A file's length in bytes (by reading it, unless the disk knows better).
    fn len(&self, name: &str) -> Result<u64, DiskError> {
        Ok(self.read(name)?.len() as u64)
    }
    /// A handle that makes `name`'s contents durable from another thread, as [`Disk::sync`]
    /// would, while this disk goes on appending (the group-commit writer syncs one batch on
    /// it while it appends the next). `None`, the default, when the disk cannot: then the
    /// writer syncs on its own thread.
    fn sync_handle(&mut self, _name: &str) -> Result<Option<SyncHandle>, DiskError> {
        Ok(None)
    }
}

/// Makes one file's contents durable, from any thread: see [`Disk::sync_handle`].
pub trait SyncFile: Send {
    /// Everything written to the file before the call is durable once it returns `Ok`.
    fn sync(&self) -> Result<(), DiskError>;
}

/// A [`SyncFile`] handed to another thread.
pub type SyncHandle = Box<dyn SyncFile>;

/// Lets a caller lend a disk to a [`super::Wal`] and keep it, for instance to crash it after a
/// recovery that failed half-way.
impl<D: Disk + ?Sized> Disk for &mut D {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        (**self).list()
    }
    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        (**self).read(name)
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        (**self).append(name, bytes)
    }
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        (**self).write_at(name, offset, bytes)
    }
    fn write_zeros(&mut self, name: &str, offset: u64, len: u64) -> Result<(), DiskError> {
        (**self).write_zeros(name, offset, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        (**self).sync(name)
    }
    fn write_new(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        (**self).write_new(name, bytes)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        (**self).rename(from, to)
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        (**self).sync_dir()
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        (**self).remove(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        (**self).truncate(name, len)
    }
    fn sync_handle(&mut self, name: &str) -> Result<Option<SyncHandle>, DiskError> {
        (**self).sync_handle(name)
    }
}

/// Takes the exclusive lock on `dir`'s lock file without waiting.
fn lock_dir(dir: &std::path::Path) -> io::Result<File> {
    let file = private(OpenOptions::new().create(true).truncate(false).write(true))
        .open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the data directory is in use (another chatroom server holds its LOCK file)",
        )),
        Err(fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Writes all of `bytes` at `offset` (a positioned write: the descriptor's position stays).
#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
fn write_all_at(mut file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Files the disk creates are readable by their owner only (0600): they hold message texts and
/// password hashes.
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Creates `dir` (and missing parents) readable by its owner only (0700).
fn create_private_dir(dir: &std::path::Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Checks an existing data directory: refuses one that others can write (they could replace
/// the log), and takes read access away from others on it and its files (an older server
/// created them 0755 and 0644 under a usual umask).
#[cfg(unix)]
fn secure_existing_dir(dir: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the data directory is group- or world-writable (mode {mode:03o}), so other \
                 local users could replace its log; make it private (chmod 700) and start again"
            ),
        ));
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_file() && metadata.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn secure_existing_dir(_dir: &std::path::Path) -> io::Result<()> {
    Ok(())
}

/// Why a lookup of `name` found no file: not a plain name at all, or no such file.
fn missing(op: &'static str, name: &str) -> DiskError {
    check_name(op, name)
        .err()
        .unwrap_or_else(|| DiskError::new(op, name, io::ErrorKind::NotFound.into()))
}

fn check_name(op: &'static str, name: &str) -> Result<(), DiskError> {
    // Bytes, not a `char` pattern: this runs on every append and sync.
    let separator = name.bytes().any(|b| matches!(b, b'/' | b'\\' | 0));
    let plain = !name.is_empty() && name != "." && name != ".." && !separator;
    if plain {
        Ok(())
    } else {
        let source = io::Error::new(io::ErrorKind::InvalidInput, "not a plain file name");
        Err(DiskError::new(op, name, source))
    }
}

/// The file in a data directory whose lock its owner holds; not one of the disk's files.
pub const LOCK_FILE: &str = "LOCK";

/// A real directory. Files are synced with `fdatasync`, the directory itself with `fsync`.
/// The directory is locked while the disk is open: two servers appending to one log would
/// corrupt it.
#[derive(Debug)]
pub struct FsDisk {
    dir: PathBuf,
    /// Files opened for writing, kept open so a batch costs one `pwrite` and one `fdatasync`.
    /// Not in append mode: on Linux a positioned write to an `O_APPEND` file appends.
    handles: BTreeMap<String, File>,
    /// Holds the exclusive lock on [`LOCK_FILE`] (released when the disk is dropped, or by the
    /// kernel when the process dies).
    _lock: File,
}

impl FsDisk {
    /// Opens (creating it if needed) the directory `dir` and locks it; fails if another disk,
    /// in this process or another, has it open. The directory is created 0700 and its files
    /// 0600; an existing directory that is group- or world-writable is refused, and one that
    /// others can read is made private, with its files.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, DiskError> {
        let dir = dir.into();
        let shown = dir.display().to_string();
        if dir.is_dir() {
            secure_existing_dir(&dir).map_err(|e| DiskError::new("open", &shown, e))?;
        } else {
            create_private_dir(&dir).map_err(|e| DiskError::new("create_dir", &shown, e))?;
            // A new directory's own name is durable only once its parent is synced.
            let parent = match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => std::path::Path::new("."),
            };
            let parent_file =
                File::open(parent).map_err(|e| DiskError::new("sync_dir", &shown, e))?;
            parent_file.sync_all().map_err(|e| DiskError::new("sync_dir", &shown, e))?;
        }
        let lock = lock_dir(&dir).map_err(|e| DiskError::new("lock", &shown, e))?;
        Ok(FsDisk { dir, handles: BTreeMap::new(), _lock: lock })
    }

    /// The directory this disk lives in.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn handle(&mut self, op: &'static str, name: &str) -> Result<&mut File, DiskError> {
        check_name(op, name)?;
        if !self.handles.contains_key(name) {
            let file = OpenOptions::new()
                .write(true)
                .open(self.dir.join(name))
                .map_err(|e| DiskError::new(op, name, e))?;
            self.handles.insert(name.to_owned(), file);
        }
        Ok(self.handles.get_mut(name).expect("inserted above"))
    }
}

impl Disk for FsDisk {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        let shown = self.dir.display().to_string();
        let entries = fs::read_dir(&self.dir).map_err(|e| DiskError::new("list", &shown, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DiskError::new("list", &shown, e))?;
            let file_type = entry.file_type().map_err(|e| DiskError::new("list", &shown, e))?;
            // Names that are not UTF-8 cannot be ours; skip rather than fail.
            if let (true, Ok(name)) = (file_type.is_file(), entry.file_name().into_string()) {
                if name != LOCK_FILE {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        check_name("read", name)?;
        fs::read(self.dir.join(name)).map_err(|e| DiskError::new("read", name, e))
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        check_name("len", name)?;
        let metadata = fs::metadata(self.dir.join(name));
        Ok(metadata.map_err(|e| DiskError::new("len", name, e))?.len())
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let file = self.handle("append", name)?;
        file.seek(SeekFrom::End(0))
            .and_then(|_| file.write_all(bytes))
            .map_err(|e| DiskError::new("append", name, e))
    }

    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        let file = self.handle("write_at", name)?;
        write_all_at(file, bytes, offset).map_err(|e| DiskError::new("write_at", name, e))
    }

    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        self.handle("sync", name)?.sync_data().map_err(|e| DiskError::new("sync", name, e))
    }

    fn write_new(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        check_name("write_new", name)?;
        let mut file = private(OpenOptions::new().write(true).create_new(true))
            .open(self.dir.join(name))
            .map_err(|e| DiskError::new("write_new", name, e))?;
        file.write_all(bytes).map_err(|e| DiskError::new("write_new", name, e))?;
        self.handles.insert(name.to_owned(), file);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        check_name("rename", from)?;
        check_name("rename", to)?;
        self.handles.remove(from);
        self.handles.remove(to);
        fs::rename(self.dir.join(from), self.dir.join(to))
            .map_err(|e| DiskError::new("rename", from, e))
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        let shown = self.dir.display().to_string();
        let dir = File::open(&self.dir).map_err(|e| DiskError::new("sync_dir", &shown, e))?;
        dir.sync_all().map_err(|e| DiskError::new("sync_dir", &shown, e))
    }

    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        check_name("remove", name)?;
        self.handles.remove(name);
        fs::remove_file(self.dir.join(name)).map_err(|e| DiskError::new("remove", name, e))
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        self.handle("truncate", name)?.set_len(len).map_err(|e| DiskError::new("truncate", name, e))
    }

    /// A second descriptor of the file: `fdatasync` on it covers every write made through
    /// this disk's descriptor before the call.
    fn sync_handle(&mut self, name: &str) -> Result<Option<SyncHandle>, DiskError> {
        let file = self.handle("sync", name)?.try_clone();
        let file = file.map_err(|e| DiskError::new("sync", name, e))?;
        Ok(Some(Box::new(FsSyncFile { name: name.to_owned(), file })))
    }
}

/// An [`FsDisk`] file's second descriptor, synced with `fdatasync`.
struct FsSyncFile {
    name: String,
    file: File,
}

impl SyncFile for FsSyncFile {
    fn sync(&self) -> Result<(), DiskError> {
        self.file.sync_data().map_err(|e| DiskError::new("sync", &self.name, e))
    }
}

type FileId = u64;

/// A disk's namespace: file by name.
type Names = BTreeMap<String, FileId>;

/// A file of a [`MemDisk`]: its synced contents and the changes made since, kept as a list
/// rather than applied to a second copy of the contents, so that a write copies its bytes once
/// (into `pending_bytes`, a buffer reused across syncs) and copying the disk copies no file's
/// contents (the model checker copies the disk with every state that writes).
#[derive(Clone, Debug, Default)]
struct MemFile {
    /// The contents as of the last `sync` of this file: what a crash falls back to. Shared
    /// between copies of the disk until a sync changes it.
    durable: Arc<Vec<u8>>,
    /// Every change since the last sync, oldest first: a crash keeps a prefix of them.
    pending: Vec<Pending>,
    /// The bytes of the pending writes, one after the other.
    pending_bytes: Vec<u8>,
    /// The current length: the durable contents with every pending change applied.
    len: usize,
    /// Changes made durable so far, by syncs of any kind: a sync handle counts the changes it
    /// covers from the file's first.
    synced_changes: u64,
}

/// A change to a file not synced yet.
#[derive(Clone, Copy, Debug)]
enum Pending {
    /// Writes `len` bytes at `offset`: the file's pending bytes from `at`.
    Write {
        offset: usize,
        at: usize,
        len: usize,
    },
    /// [`Disk::write_zeros`]: a write of `len` zeros, kept as its length (the simulated log
    /// fills space ahead every few records; copying the zeros cost the simulator 4%).
    Zeros {
        offset: usize,
        len: usize,
    },
    SetLen(usize),
}

impl Pending {
    /// Applies the change, or with `kept` only the first `kept` bytes of a write; `bytes` are
    /// the file's pending bytes.
    fn apply(self, data: &mut Vec<u8>, bytes: &[u8], kept: usize) {
        match self {
            Pending::Write { offset, at, len } => {
                let bytes = &bytes[at..at + kept.min(len)];
                if bytes.is_empty() {
                    return;
                }
                let end = offset + bytes.len();
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[offset..end].copy_from_slice(bytes);
            }
            Pending::Zeros { offset, len } => {
                let end = offset + kept.min(len);
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[offset..end].fill(0);
            }
            Pending::SetLen(len) => data.resize(len, 0),
        }
    }

    /// What a crash's count of kept bytes counts for the change: every byte written, and one
    /// for a length change.
    fn weight(self) -> usize {
        match self {
            Pending::Write { len, .. } | Pending::Zeros { len, .. } => len,
            Pending::SetLen(_) => 1,
        }
    }

    /// The file's length after the change, from `len` before it.
    fn len_after(self, len: usize) -> usize {
        match self {
            // An empty write does not extend the file; empty zeros do, to their offset (as
            // `apply` does).
            Pending::Write { len: 0, .. } => len,
            Pending::Write { offset, len: written, .. }
            | Pending::Zeros { offset, len: written } => len.max(offset + written),
            Pending::SetLen(new_len) => new_len,
        }
    }
}

impl MemFile {
    /// A file whose every byte is durable.
    fn durable(data: Vec<u8>) -> Self {
        MemFile { len: data.len(), durable: Arc::new(data), ..MemFile::default() }
    }

    /// Records a change made now.
    fn push(&mut self, change: Pending) {
        self.len = change.len_after(self.len);
        self.pending.push(change);
    }

    /// Records a write of `bytes` at `offset`.
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        let at = self.pending_bytes.len();
        self.pending_bytes.extend_from_slice(bytes);
        self.push(Pending::Write { offset, at, len: bytes.len() });
    }

    /// The current contents.
    fn data(&self) -> Vec<u8> {
        self.kept(usize::MAX)
    }

    /// The durable contents plus a prefix of the pending changes: whole changes while
    /// `keep_bytes` (counting each written byte, and one per length change) lasts, then the
    /// start of the write it runs out in.
    fn kept(&self, mut keep_bytes: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.len.max(self.durable.len()));
        data.extend_from_slice(&self.durable);
        for &change in &self.pending {
            let weight = change.weight();
            if weight > keep_bytes {
                if !matches!(change, Pending::SetLen(_)) {
                    change.apply(&mut data, &self.pending_bytes, keep_bytes);
                }
                break;
            }
            change.apply(&mut data, &self.pending_bytes, weight);
            keep_bytes -= weight;
        }
        data
    }

    /// Makes the changes durable up to the `changes`th made to the file (counted from its
    /// first), those not durable yet, oldest first.
    fn sync_through(&mut self, changes: u64) {
        let len = changes.saturating_sub(self.synced_changes).min(self.pending.len() as u64);
        if len == 0 {
            return;
        }
        // Replay the changes rather than copy the file: the simulator syncs after every group
        // commit, and a change is usually one batch of records. The durable contents are
        // copied only if a copy of the disk shares them.
        let durable = Arc::make_mut(&mut self.durable);
        for change in self.pending.drain(..len as usize) {
            change.apply(durable, &self.pending_bytes, usize::MAX);
        }
        // Cleared, not dropped, once nothing refers to them: the list and the bytes keep their
        // capacity for the next batch.
        if self.pending.is_empty() {
            self.pending_bytes.clear();
        }
        self.synced_changes += len;
    }

    /// What [`MemFile::kept`] counts: every pending byte written, and one per length change.
    fn pending_weight(&self) -> usize {
        self.pending.iter().map(|change| change.weight()).sum()
    }
}

/// An in-memory disk that knows what is synced, for tests and the simulator.
///
/// [`MemDisk::crash`] keeps exactly what the [`Disk`] contract promises and, chosen by the
/// caller's generator, some of what it does not: a prefix of the directory changes since the
/// last `sync_dir`, and for each file a prefix (possibly empty, possibly cut mid-record) of the
/// bytes appended since its last `sync`. Everything is ordered (`BTreeMap`), so the same
/// operations and the same generator give the same disk.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    files: BTreeMap<FileId, MemFile>,
    // Namespaces are shared (between copies of the disk, and between `names` and the pending
    // and durable ones) until a directory change copies the current one.
    names: Arc<Names>,
    names_durable: Arc<Names>,
    /// The namespace after each directory change since the last `sync_dir`, oldest first.
    names_pending: Vec<Arc<Names>>,
    file_id_next: FileId,
    /// Syncs made through handles ([`MemDisk::with_sync_handles`]) and not yet applied; `None`
    /// when the disk hands out no handle.
    handle_syncs: Option<HandleSyncs>,
}

/// Syncs made through a [`MemDisk`]'s handles, as (file, changes it covers), shared by the disk
/// and its handles (and by copies of the disk: only a disk that is never copied should hand
/// out handles, as the simulator's).
type HandleSyncs = Arc<Mutex<Vec<(FileId, u64)>>>;

/// A [`MemDisk`] file's sync handle. It makes durable what was written to the file before it
/// was made, which is all the [`SyncFile`] contract promises (what was written before its
/// `sync`) when nothing is written between the two, as the log's writer does:
/// [`super::Wal::flush_for_sync`] makes the handle after its flush.
struct MemSyncHandle {
    file: FileId,
    changes: u64,
    syncs: HandleSyncs,
}

impl SyncFile for MemSyncHandle {
    fn sync(&self) -> Result<(), DiskError> {
        let mut syncs = self.syncs.lock().unwrap_or_else(PoisonError::into_inner);
        syncs.push((self.file, self.changes));
        Ok(())
    }
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk that hands out sync handles ([`Disk::sync_handle`]), so that the log's writer
    /// syncs through a sync thread as it does on a real disk. A handle's sync takes effect
    /// when it is called, and is lost with handles made before a crash.
    pub fn with_sync_handles(mut self) -> Self {
        self.handle_syncs = Some(HandleSyncs::default());
        self
    }

    /// Applies the syncs made through handles since the last look, oldest first.
    fn apply_handle_syncs(&mut self) {
        let Some(syncs) = &self.handle_syncs else { return };
        let syncs = std::mem::take(&mut *syncs.lock().unwrap_or_else(PoisonError::into_inner));
        for (id, changes) in syncs {
            if let Some(file) = self.files.get_mut(&id) {
                file.sync_through(changes);
            }
        }
    }

    /// After a crash: the handles made before it sync nothing any more.
    fn forget_handles(&mut self) {
        if let Some(syncs) = &mut self.handle_syncs {
            *syncs = HandleSyncs::default();
        }
    }

    /// Simulates a power loss, then a reboot: see the type's docs for what survives.
    pub fn crash<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.crash_with(rng, true);
    }

    /// [`MemDisk::crash`], but if not `keep_unsynced` every file keeps only its synced bytes
    /// (the directory changes kept are still drawn).
    pub fn crash_with<R: Rng + ?Sized>(&mut self, rng: &mut R, keep_unsynced: bool) {
        self.apply_handle_syncs();
        self.forget_handles();
        let kept = rng.gen_range(0..=self.names_pending.len());
        let names = match kept {
            0 => self.names_durable.clone(),
            k => self.names_pending[k - 1].clone(),
        };
        let mut files = BTreeMap::new();
        for (&id, file) in &self.files {
            if names.values().any(|&named| named == id) {
                let contents = match keep_unsynced {
                    true => Self::crash_contents(file, rng),
                    false => Vec::clone(&file.durable),
                };
                files.insert(id, MemFile::durable(contents));
            }
        }
        self.files = files;
        self.names_durable = names.clone();
        self.names = names;
        self.names_pending.clear();
    }

    /// A power loss chosen by the caller rather than drawn: every directory change since the
    /// last `sync_dir` is lost, and each file keeps its synced bytes plus the first
    /// `keep(name, unsynced)` bytes of what was written since, `unsynced` being those writes'
    /// bytes in the order they were made (for appends, the unsynced tail); a length change
    /// is kept if every write before it is. The model checker enumerates these choices
    /// instead of sampling them.
    pub fn crash_keeping(&mut self, mut keep: impl FnMut(&str, &[u8]) -> usize) {
        self.apply_handle_syncs();
        self.forget_handles();
        let names = self.names_durable.clone();
        let mut files = BTreeMap::new();
        for (name, &id) in names.iter() {
            let Some(file) = self.files.get(&id) else { continue };
            let mut written = Vec::new();
            for &change in &file.pending {
                match change {
                    Pending::Write { at, len, .. } => {
                        written.extend_from_slice(&file.pending_bytes[at..at + len])
                    }
                    Pending::Zeros { len, .. } => written.resize(written.len() + len, 0),
                    Pending::SetLen(_) => {}
                }
            }
            let mut kept_len = keep(name, &written).min(written.len());
            let mut data = Vec::clone(&file.durable);
            for &change in &file.pending {
                match change {
                    Pending::SetLen(_) => change.apply(&mut data, &file.pending_bytes, 0),
                    _ => {
                        change.apply(&mut data, &file.pending_bytes, kept_len);
                        if kept_len < change.weight() {
                            break;
                        }
                        kept_len -= change.weight();
                    }
                }
            }
            files.insert(id, MemFile::durable(data));
        }
        self.files = files;
        self.names = names;
        self.names_pending.clear();
    }

    /// Bytes of `name` that a crash now would certainly keep, if its name survives.
    pub fn synced_len(&self, name: &str) -> Option<usize> {
        let id = self.names.get(name)?;
        self.files.get(id).map(|file| file.durable.len())
    }

    /// Overwrites one byte in place, as a failing disk would; for corruption tests.
    pub fn corrupt(&mut self, name: &str, offset: usize, byte: u8) -> Result<(), DiskError> {
        self.apply_handle_syncs();
        let file = self.file_mut("corrupt", name)?;
        let mut data = file.data();
        match data.get_mut(offset) {
            Some(b) => {
                *b = byte;
                *file = MemFile::durable(data);
                Ok(())
            }
            None => Err(DiskError::new("corrupt", name, io::ErrorKind::UnexpectedEof.into())),
        }
    }

    fn crash_contents<R: Rng + ?Sized>(file: &MemFile, rng: &mut R) -> Vec<u8> {
        // Half the time nothing unsynced survives; otherwise a random prefix of it does.
        let weight = file.pending_weight();
        if weight > 0 && rng.gen_bool(0.5) {
            file.kept(rng.gen_range(0..=weight))
        } else {
            Vec::clone(&file.durable)
        }
    }

    // A name that is not plain is never stored, so it is only checked when a lookup misses
    // (this runs on every append and sync), and still reports the same error.
    fn file(&self, op: &'static str, name: &str) -> Result<&MemFile, DiskError> {
        let id = self.names.get(name);
        id.and_then(|id| self.files.get(id)).ok_or_else(|| missing(op, name))
    }

    fn file_mut(&mut self, op: &'static str, name: &str) -> Result<&mut MemFile, DiskError> {
        let id = self.names.get(name);
        id.and_then(|id| self.files.get_mut(id)).ok_or_else(|| missing(op, name))
    }

    fn names_changed(&mut self) {
        self.names_pending.push(self.names.clone());
    }
}

impl Disk for MemDisk {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        Ok(self.names.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        Ok(self.file("read", name)?.data())
    }

    fn len(&self, name: &str) -> Result<u64, DiskError> {
        Ok(self.file("len", name)?.len as u64)
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let file = self.file_mut("append", name)?;
        file.write(file.len, bytes);
        Ok(())
    }

    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        let file = self.file_mut("write_at", name)?;
        let offset = usize::try_from(offset)
            .map_err(|_| DiskError::new("write_at", name, io::ErrorKind::InvalidInput.into()))?;
        file.write(offset, bytes);
        Ok(())
    }

    fn write_zeros(&mut self, name: &str, offset: u64, len: u64) -> Result<(), DiskError> {
        let file = self.file_mut("write_zeros", name)?;
        let invalid = || DiskError::new("write_zeros", name, io::ErrorKind::InvalidInput.into());
        let offset = usize::try_from(offset).map_err(|_| invalid())?;
        let len = usize::try_from(len).map_err(|_| invalid())?;
        file.push(Pending::Zeros { offset, len });
        Ok(())
    }

    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        let file = self.file_mut("sync", name)?;
        file.sync_through(u64::MAX);
        debug_assert_eq!(file.durable.len(), file.len);
        Ok(())
    }

    fn write_new(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        check_name("write_new", name)?;
        if self.names.contains_key(name) {
            return Err(DiskError::new("write_new", name, io::ErrorKind::AlreadyExists.into()));
        }
        let id = self.file_id_next;
        self.file_id_next += 1;
        let mut file = MemFile::default();
        file.write(0, bytes);
        self.files.insert(id, file);
        Arc::make_mut(&mut self.names).insert(name.to_owned(), id);
        self.names_changed();
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        check_name("rename", to)?;
        self.file("rename", from)?;
        let names = Arc::make_mut(&mut self.names);
        let id = names.remove(from).expect("checked above");
        names.insert(to.to_owned(), id);
        self.names_changed();
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.names_durable = self.names.clone();
        self.names_pending.clear();
        let names = &self.names;
        self.files.retain(|id, _| names.values().any(|named| named == id));
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.file("remove", name)?;
        Arc::make_mut(&mut self.names).remove(name);
        self.names_changed();
        Ok(())
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        let file = self.file_mut("truncate", name)?;
        let len = usize::try_from(len)
            .map_err(|_| DiskError::new("truncate", name, io::ErrorKind::InvalidInput.into()))?;
        // Like set_len: a longer length extends the file with zeros.
        file.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_handle(&mut self, name: &str) -> Result<Option<SyncHandle>, DiskError> {
        let Some(syncs) = &self.handle_syncs else { return Ok(None) };
        let id = *self.names.get(name).ok_or_else(|| missing("sync_handle", name))?;
        let file = self.files.get(&id).ok_or_else(|| missing("sync_handle", name))?;
        let changes = file.synced_changes + file.pending.len() as u64;
        Ok(Some(Box::new(MemSyncHandle { file: id, changes, syncs: Arc::clone(syncs) })))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A fresh directory under the system temp dir, removed when dropped.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(label: &str) -> Self {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("chatroom-store-{label}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn exercise(disk: &mut impl Disk) {
        disk.write_new("a", b"hello").expect("write_new");
        assert!(disk.write_new("a", b"again").is_err(), "write_new must refuse an existing name");
        disk.append("a", b" world").expect("append");
        disk.sync("a").expect("sync");
        assert_eq!(disk.read("a").expect("read"), b"hello world");
        disk.truncate("a", 5).expect("truncate");
        disk.append("a", b"!").expect("append after truncate");
        assert_eq!(disk.read("a").expect("read"), b"hello!");
        disk.write_new("b", b"").expect("write_new empty");
        disk.rename("a", "b").expect("rename over");
        disk.sync_dir().expect("sync_dir");
        assert_eq!(disk.list().expect("list"), vec!["b".to_owned()]);
        assert_eq!(disk.read("b").expect("read"), b"hello!");
        assert!(disk.read("a").expect_err("gone").is_not_found());
        assert!(disk.append("a", b"x").expect_err("gone").is_not_found());
        disk.remove("b").expect("remove");
        assert!(disk.list().expect("list").is_empty());
        assert!(disk.read("../etc").is_err(), "path names must be refused");
    }

    #[test]
    fn fs_disk_keeps_the_contract() {
        let dir = TempDir::new("disk");
        exercise(&mut FsDisk::open(&dir.0).expect("open"));
    }

    #[test]
    fn a_data_directory_is_open_in_one_disk_at_a_time() {
        let dir = TempDir::new("lock");
        let first = FsDisk::open(&dir.0).expect("open");
        let error = FsDisk::open(&dir.0).expect_err("a second open must fail");
        assert_eq!(error.op, "lock");
        assert!(error.to_string().contains("in use"), "{error}");
        assert!(first.list().expect("list").is_empty(), "the lock file is not listed");
        drop(first);
        FsDisk::open(&dir.0).expect("the lock goes with the disk");
    }

    #[test]
    fn mem_disk_keeps_the_contract() {
        exercise(&mut MemDisk::new());
    }

    #[test]
    fn mem_disk_crash_keeps_synced_bytes_and_a_prefix_of_the_rest() {
        let mut torn = 0;
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk = MemDisk::new();
            disk.write_new("log", b"synced").expect("write_new");
            disk.sync("log").expect("sync");
            disk.sync_dir().expect("sync_dir");
            disk.append("log", b"-unsynced").expect("append");
            disk.crash(&mut rng);
            let data = disk.read("log").expect("synced file survives");
            assert!(b"synced-unsynced".starts_with(&data), "seed {seed}: {data:?}");
            assert!(data.starts_with(b"synced"), "seed {seed}: synced bytes lost");
            torn += usize::from(data.len() > 6 && data.len() < 15);
        }
        assert!(torn > 0, "no seed produced a torn tail");
    }

    #[test]
    fn a_crash_tears_an_overwrite_of_filled_space_leaving_the_old_zeros_after_it() {
        let (mut torn, mut lost_fill) = (0, 0);
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk = MemDisk::new();
            disk.write_new("log", b"ab").expect("write_new");
            disk.write_at("log", 2, &[0; 10]).expect("fill");
            disk.sync("log").expect("sync");
            disk.sync_dir().expect("sync_dir");
            disk.write_at("log", 2, b"cdef").expect("overwrite");
            disk.write_at("log", 6, b"gh").expect("overwrite");
            disk.write_at("log", 12, &[0; 4]).expect("fill unsynced");
            disk.crash(&mut rng);
            let data = disk.read("log").expect("read");
            let whole = b"abcdefgh\0\0\0\0\0\0\0\0";
            assert!((12..=16).contains(&data.len()), "seed {seed}: {data:?}");
            // A prefix of the overwrites, then the zeros they were overwriting.
            let written = data[2..].iter().take_while(|&&b| b != 0).count();
            assert_eq!(data[..2 + written], whole[..2 + written], "seed {seed}");
            assert!(data[2 + written..].iter().all(|&b| b == 0), "seed {seed}: {data:?}");
            torn += usize::from(written > 0 && written < 6);
            lost_fill += usize::from(data.len() == 12);
        }
        assert!(torn > 0 && lost_fill > 0, "torn {torn}, fill lost {lost_fill}");
    }

    /// `write_zeros` is kept as a length, not bytes: it must survive (or tear in) every crash
    /// exactly as writing the zeros would, over old bytes and past the end alike.
    #[test]
    fn mem_disk_write_zeros_crashes_like_writing_the_zeros() {
        let run = |zeros_as_length: bool, seed: u64, keep: Option<usize>| {
            let mut disk = MemDisk::new();
            disk.write_new("log", b"abcdef").expect("write_new");
            disk.sync("log").expect("sync");
            disk.sync_dir().expect("sync_dir");
            disk.write_at("log", 1, b"XY").expect("overwrite");
            if zeros_as_length {
                disk.write_zeros("log", 2, 7).expect("zeros");
            } else {
                disk.write_at("log", 2, &[0; 7]).expect("zeros");
            }
            disk.append("log", b"z").expect("append");
            let before = disk.read("log").expect("read");
            match keep {
                Some(kept) => disk.crash_keeping(|_, tail| {
                    assert_eq!(tail, b"XY\0\0\0\0\0\0\0z");
                    kept
                }),
                None => disk.crash(&mut ChaCha8Rng::seed_from_u64(seed)),
            }
            (before, disk.read("log").expect("read"))
        };
        for seed in 0..100 {
            assert_eq!(run(true, seed, None), run(false, seed, None), "seed {seed}");
        }
        for kept in 0..=10 {
            assert_eq!(run(true, 0, Some(kept)), run(false, 0, Some(kept)), "kept {kept}");
        }
        assert_eq!(run(true, 0, None).0, b"aX\0\0\0\0\0\0\0z");
        assert_eq!(run(true, 0, Some(4)).1, b"aX\0\0ef", "torn inside the zeros");
    }

    #[test]
    fn fs_disk_writes_at_an_offset_over_and_past_the_end() {
        let dir = TempDir::new("write-at");
        let mut disk = FsDisk::open(&dir.0).expect("open");
        disk.write_new("f", b"abc").expect("write_new");
        disk.write_at("f", 5, b"xy").expect("past the end");
        disk.write_at("f", 1, b"B").expect("over");
        disk.append("f", b"!").expect("append");
        disk.sync("f").expect("sync");
        assert_eq!(disk.read("f").expect("read"), b"aBc\0\0xy!");
        assert_eq!(disk.len("f").expect("len"), 8);
    }

    #[test]
    fn mem_disk_crash_may_lose_an_unsynced_create_or_rename() {
        let (mut lost_create, mut lost_rename) = (false, false);
        for seed in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk = MemDisk::new();
            disk.write_new("tmp", b"x").expect("write_new");
            disk.sync("tmp").expect("sync");
            disk.rename("tmp", "final").expect("rename");
            disk.crash(&mut rng);
            match disk.list().expect("list").as_slice() {
                [] => lost_create = true,
                [only] if only == "tmp" => lost_rename = true,
                [only] => assert_eq!(only, "final"),
                other => panic!("seed {seed}: impossible namespace {other:?}"),
            }
        }
        assert!(lost_create && lost_rename);
    }

    #[test]
    fn mem_disk_crash_is_deterministic() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk = MemDisk::new();
            for i in 0..5u8 {
                let name = format!("f{i}");
                disk.write_new(&name, &[i; 3]).expect("write_new");
                disk.append(&name, &[i; 40]).expect("append");
            }
            disk.crash(&mut rng);
            let names = disk.list().expect("list");
            names.iter().map(|n| (n.clone(), disk.read(n).expect("read"))).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
    }

    #[test]
    fn mem_disk_crash_keeping_keeps_the_chosen_prefix_and_loses_unsynced_names() {
        let mut disk = MemDisk::new();
        disk.write_new("log", b"abc").expect("write_new");
        disk.sync("log").expect("sync");
        disk.sync_dir().expect("sync_dir");
        disk.append("log", b"defgh").expect("append");
        disk.write_new("new", b"x").expect("write_new");
        disk.crash_keeping(|name, tail| {
            assert_eq!((name, tail), ("log", &b"defgh"[..]));
            2
        });
        assert_eq!(disk.list().expect("list"), vec!["log".to_owned()]);
        assert_eq!(disk.read("log").expect("read"), b"abcde");
        assert_eq!(disk.synced_len("log"), Some(5), "what survived is durable");
    }

    #[test]
    fn mem_disk_hands_out_sync_handles_only_when_asked() {
        let mut disk = MemDisk::new();
        disk.write_new("log", b"").expect("write_new");
        assert!(disk.sync_handle("log").expect("the file exists").is_none());
        let mut disk = MemDisk::new().with_sync_handles();
        let missing = disk.sync_handle("log").err().expect("no such file");
        assert!(missing.is_not_found());
    }

    /// A handle syncs what was written before it was made, once its `sync` is called, and
    /// nothing after a crash that came first.
    #[test]
    fn a_sync_handle_makes_durable_what_was_written_before_it_was_made() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let setup = || {
            let mut disk = MemDisk::new().with_sync_handles();
            disk.write_new("log", b"").expect("write_new");
            disk.sync("log").expect("sync");
            disk.sync_dir().expect("sync_dir");
            disk.append("log", b"abc").expect("append");
            let handle = disk.sync_handle("log").expect("a handle").expect("handles on");
            disk.append("log", b"def").expect("append");
            (disk, handle)
        };
        let lost_after_the_handle = |disk: &mut MemDisk, rng: &mut ChaCha8Rng| {
            disk.crash_with(rng, false);
            disk.read("log").expect("read")
        };
        let (mut disk, handle) = setup();
        handle.sync().expect("sync");
        assert_eq!(lost_after_the_handle(&mut disk, &mut rng), b"abc");
        let (mut disk, handle) = setup();
        assert_eq!(lost_after_the_handle(&mut disk, &mut rng), b"", "not synced until called");
        handle.sync().expect("a late sync is harmless");
        disk.append("log", b"ghi").expect("append");
        assert_eq!(lost_after_the_handle(&mut disk, &mut rng), b"", "a handle from before a crash");
        // A whole-file sync first leaves the handle nothing to do.
        let (mut disk, handle) = setup();
        disk.sync("log").expect("sync");
        handle.sync().expect("sync");
        assert_eq!(lost_after_the_handle(&mut disk, &mut rng), b"abcdef");
    }
}
