//! Durable file operations: atomic writes, directory fsync, the store lock, guarded removal.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync of the directory. Readers see the old or the new content, never a mix.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Puts the written, not fsynced, temp file `tmp` at `path`, atomically: readers see the old
/// content or the new, never a mix. When `path` exists the two are swapped
/// (RENAME_EXCHANGE) and the old content, now at `tmp`, is unlinked. A plain rename over
/// an existing file makes ext4 (auto_da_alloc, on by default) start writing the new file
/// out at once, a guard for programs that forget fsync; for files we rewrite on every state
/// change without fsync on purpose, that made each rewrite 200 µs instead of 35 here, and
/// wrote to disk files that a `--rm` run deletes a moment later. Falls back to rename where
/// the exchange is refused (no target yet, or a filesystem without RENAME_EXCHANGE).
pub fn replace_unsynced(tmp: &Path, path: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, tmp, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => {
            // Left behind only by a crash in between: the next write of this process id
            // removes it, the container's removal takes it with the directory.
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Err(_) => std::fs::rename(tmp, path),
    }
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive `flock` on the store's lock file, released on drop.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(FileLock { _file: file })
    }
}

/// Remove `path` (file or directory tree) only if it lies strictly inside `base`.
/// Everything runs as root: a path built from a bad variable must never reach rm -rf.
pub fn remove_inside(base: &Path, path: &Path) -> io::Result<()> {
    let ok = path.starts_with(base)
        && path != base
        && base.components().count() > 1
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if !ok {
        return Err(io::Error::other(format!(
            "refusing to remove {} (not inside {})",
            path.display(),
            base.display()
        )));
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A unique name for temporary files and directories of this process.
pub fn unique_name(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    PathBuf::from(format!("{prefix}-{}-{n}-{nanos:x}", std::process::id()))
}

/// Whether the process that made `name` (a [`unique_name`]: `prefix-<pid>-…`) still runs.
pub fn owner_alive(name: &str) -> bool {
    let Some(pid) = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return true;
    }
    // Signal 0 probes existence; EPERM still means the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Asks the filesystem to spread `dir`'s subdirectories over its allocation groups, as ext4
/// does for the children of `/` and of a directory marked `T` (`chattr +T`, FS_TOPDIR_FL).
/// Used on new state roots and on `<root>/containers`. On ext4 without a journal (common
/// on VM images), allocating an inode skips every inode of the same group freed in the last
/// minutes, one by one, so after `down` of a large stack each file the next `up` created
/// first walked past thousands of them (a fifth of `up -d`'s CPU at 100 services). Spread
/// over groups, each container's files share a group with few others. Best effort:
/// filesystems without the flag (xfs, tmpfs, overlay) refuse it, and nothing depends on it.
pub fn spread_subdirs(dir: &Path) {
    use std::os::fd::AsRawFd;
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let Ok(f) = std::fs::File::open(dir) else {
        return;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one int through the pointer given (the
    // kernel's filesystems use an int, whatever the ioctl number's declared size says).
    unsafe {
        if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) == 0
            && flags & FS_TOPDIR_FL == 0
        {
            flags |= FS_TOPDIR_FL;
            libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_unsynced_swaps_in_new_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let tmp = dir.path().join(".state.json.tmp");
        // No target yet: a plain rename.
        std::fs::write(&tmp, b"first").unwrap();
        replace_unsynced(&tmp, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert!(!tmp.exists());
        // A target: swapped, and the old content is gone with the temp name.
        std::fs::write(&tmp, b"second").unwrap();
        replace_unsynced(&tmp, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert!(!tmp.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn replace_unsynced_reports_a_missing_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"kept").unwrap();
        assert!(replace_unsynced(&dir.path().join("absent"), &path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    }
}
