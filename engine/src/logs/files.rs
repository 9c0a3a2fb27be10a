//! The files of one container's log: the current `<id>-json.log`, the rotated
//! `<id>-json.log.1` (newest) … `.N` (oldest), and a lock file so that readers never see
//! the set half-rotated.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use super::LogError;

/// More rotated files than anyone keeps: bounds the scan if the directory is odd.
pub(crate) const MAX_ROTATED: u32 = 10_000;

/// `<path>.<n>`: the n-th newest rotated file.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    suffixed(path, &n.to_string())
}

/// Held exclusively by the writer while it renames files, shared by readers while they
/// open theirs. Only a rotating writer creates it.
pub fn lock_path(path: &Path) -> PathBuf {
    suffixed(path, "lock")
}

/// The file a rotation fills in before it replaces the current one.
pub fn fresh_path(path: &Path) -> PathBuf {
    suffixed(path, "new")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

pub fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.into(),
        source,
    }
}

/// An flock held until drop (the file is closed, which releases it).
pub struct Held(#[allow(dead_code)] File);

/// Takes the rotation lock shared; `None` when the log never rotated (no lock file).
pub fn lock_shared(path: &Path) -> Result<Option<Held>, LogError> {
    let lock = lock_path(path);
    let f = match File::open(&lock) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&lock)(e)),
    };
    flock(&f, FlockOperation::LockShared).map_err(|e| io_err(&lock)(e.into()))?;
    Ok(Some(Held(f)))
}

/// The writer's handle on the lock file, created when rotation is configured.
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

impl WriterLock {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let lock = lock_path(path);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock)
            .map_err(io_err(&lock))?;
        Ok(Self { file, path: lock })
    }

    /// Exclusive until the guard drops.
    pub fn lock(&self) -> Result<WriterGuard<'_>, LogError> {
        flock(&self.file, FlockOperation::LockExclusive)
            .map_err(|e| io_err(&self.path)(e.into()))?;
        Ok(WriterGuard(&self.file))
    }
}

pub struct WriterGuard<'a>(&'a File);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        let _ = flock(self.0, FlockOperation::Unlock);
    }
}

/// One opened file of the log and its inode (how a follower recognises it after a rename).
pub struct LogFile {
    pub file: File,
    pub ino: u64,
    pub len: u64,
    pub path: PathBuf,
}

impl LogFile {
    /// A fingerprint of the file's first complete entry (0 while it has none). Inode
    /// numbers are reused once the oldest file is deleted; the first entry (with its
    /// nanosecond timestamp) tells a reused inode from the file a follower was reading.
    pub fn head(&self) -> Result<u64, LogError> {
        use std::hash::{Hash, Hasher};
        use std::os::unix::fs::FileExt;
        // An entry is at most 16 KiB of output, JSON-escaped (6 bytes per byte at worst).
        const MAX: usize = 128 * 1024;
        let mut buf = vec![0u8; 4096];
        let mut have = 0usize;
        loop {
            if have == buf.len() {
                if buf.len() >= MAX {
                    return Ok(0);
                }
                buf.resize(buf.len() * 2, 0);
            }
            let n = self
                .file
                .read_at(&mut buf[have..], have as u64)
                .map_err(io_err(&self.path))?;
            if n == 0 {
                return Ok(0);
            }
            let start = have;
            have += n;
            if let Some(nl) = buf[start..have].iter().position(|b| *b == b'\n') {
                let mut h = std::hash::DefaultHasher::new();
                buf[..start + nl].hash(&mut h);
                // Never 0, which means "no entry yet".
                return Ok(h.finish() | 1);
            }
        }
    }
}

/// The log's files as they are at one instant, oldest first, the current one last (absent
/// if it does not exist). Opened under the shared lock, so a rotation can neither hide a
/// file nor show one twice; once open, a file stays readable whatever is renamed.
pub fn snapshot(path: &Path) -> Result<Vec<LogFile>, LogError> {
    let _held = lock_shared(path)?;
    let mut files = vec![];
    for n in 1..=MAX_ROTATED {
        match open(&rotated(path, n))? {
            Some(f) => files.push(f),
            None => break,
        }
    }
    files.reverse();
    if let Some(f) = open(path)? {
        files.push(f);
    }
    Ok(files)
}

fn open(path: &Path) -> Result<Option<LogFile>, LogError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let meta = file.metadata().map_err(io_err(path))?;
    Ok(Some(LogFile {
        file,
        ino: meta.ino(),
        len: meta.len(),
        path: path.into(),
    }))
}

/// Docker's rotation, done while holding `lock`: `.{keep-1}` → `.{keep}` … `.1` → `.2`,
/// current → `.1`, then `fresh` (already created, so the files always exist under some
/// name and the fresh inode differs from every old one) becomes the current file. With
/// `keep` 0 the fresh file simply replaces the current one. The oldest file is dropped.
pub fn rotate(path: &Path, fresh: &Path, keep: u32) -> Result<(), LogError> {
    // Guard: only ever siblings of a named log file are removed or renamed.
    if path.file_name().is_none() || path.parent().is_none() {
        return Err(io_err(path)(io::Error::other("not a log file path")));
    }
    if keep > 0 {
        let oldest = rotated(path, keep);
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&oldest)(e)),
        }
        for n in (2..=keep).rev() {
            rename_if_present(&rotated(path, n - 1), &rotated(path, n))?;
        }
        rename_if_present(path, &rotated(path, 1))?;
    }
    std::fs::rename(fresh, path).map_err(io_err(path))
}

fn rename_if_present(from: &Path, to: &Path) -> Result<(), LogError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(from)(e)),
    }
}
