//! The storage seam: every write, fsync, rename and delete the engine makes
//! goes through [`FileSystem`], so tests can inject faults and simulate
//! crashes. Reads of sealed segments use memory maps of real files
//! (`segment::reader`), which are immutable once sealed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A file opened for appending.
pub trait WritableFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// fdatasync: the written bytes (and the size) are durable.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The operations the engine performs on its data directory.
pub trait FileSystem: Send + Sync + 'static {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Like `create`, but readable by the owner only (mode 0600): keys.
    fn create_private(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Truncates a file to `len` bytes and makes the new size durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// fsync of a directory: makes creates, renames and deletes in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The entries of a directory (full paths), in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

/// Writes `bytes` to `path` atomically and durably: a temp file beside it
/// (`<path>.tmp`, mode 0600 when `private`), fdatasync, rename, fsync of
/// the directory. A crash leaves the old file or the new one, whole.
pub fn replace_file(fs: &dyn FileSystem, path: &Path, bytes: &[u8], private: bool) -> crate::Result<()> {
    use crate::Error;
    let dir = path.parent().unwrap_or(path);
    let tmp = path.with_extension("tmp");
    let mut f = if private { fs.create_private(&tmp) } else { fs.create(&tmp) }.map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
    drop(f);
    fs.rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
    fs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))
}

struct RealFile(File);

impl WritableFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let f = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        Ok(Box::new(RealFile(f)))
    }
    fn create_private(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        // The mode applies only when the file is created: enforce it.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(Box::new(RealFile(f)))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let f = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(RealFile(f)))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for e in fs::read_dir(path)? {
            out.push(e?.path());
        }
        Ok(out)
    }
}

/// Which operation a [`FaultyFs`] should fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Write,
    Sync,
}

/// Fault injection: wraps the real file system and fails the n-th write or
/// fsync (counting from 1) after it is armed, with an `EIO`-like error.
/// Used by tests to check that a failed write or fsync poisons the writer
/// and loses nothing already acknowledged.
#[derive(Clone, Default)]
pub struct FaultyFs {
    state: Arc<FaultState>,
}

#[derive(Default)]
struct FaultState {
    /// 0 = disarmed; otherwise the operation count at which to fail.
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
}

impl FaultyFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails the `n`-th operation of `kind` from now on (n >= 1).
    pub fn fail_after(&self, kind: FaultKind, n: u64) {
        let (count, at) = match kind {
            FaultKind::Write => (&self.state.writes, &self.state.fail_write_at),
            FaultKind::Sync => (&self.state.syncs, &self.state.fail_sync_at),
        };
        at.store(count.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    fn check(state: &FaultState, kind: FaultKind) -> io::Result<()> {
        let (count, at) = match kind {
            FaultKind::Write => (&state.writes, &state.fail_write_at),
            FaultKind::Sync => (&state.syncs, &state.fail_sync_at),
        };
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let target = at.load(Ordering::SeqCst);
        if target != 0 && n >= target {
            return Err(io::Error::other(format!("injected {kind:?} fault")));
        }
        Ok(())
    }
}

struct FaultyFile {
    inner: Box<dyn WritableFile>,
    state: Arc<FaultState>,
}

impl WritableFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        FaultyFs::check(&self.state, FaultKind::Write)?;
        self.inner.write_all(buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        FaultyFs::check(&self.state, FaultKind::Sync)?;
        self.inner.sync_data()
    }
}

impl FileSystem for FaultyFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        RealFs.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(FaultyFile { inner: RealFs.create(path)?, state: self.state.clone() }))
    }
    fn create_private(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(FaultyFile { inner: RealFs.create_private(path)?, state: self.state.clone() }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(FaultyFile { inner: RealFs.open_append(path)?, state: self.state.clone() }))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        RealFs.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        RealFs.truncate(path, len)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        FaultyFs::check(&self.state, FaultKind::Sync)?;
        RealFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        RealFs.list_dir(path)
    }
}
