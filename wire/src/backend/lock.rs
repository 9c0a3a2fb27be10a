//! The project lock: `<root>/compose/<project>.lock`, held (flock) for the whole of a command
//! that changes the project, so two `up`s at once never create duplicate containers.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("invalid project name {0:?} for the project lock")]
    InvalidName(String),
    /// `what` is `creating`, `opening` or `locking`.
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub struct ProjectLock(#[allow(dead_code)] File);

/// Waits for the lock of `project` under `root`.
pub fn lock_project(root: &Path, project: &str) -> Result<ProjectLock, LockError> {
    if project.is_empty() || project.contains('/') || project.starts_with('.') {
        return Err(LockError::InvalidName(project.to_string()));
    }
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LockError::Io { what, path, source }
    };
    let dir = root.join("compose");
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let path = dir.join(format!("{project}.lock"));
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("opening", &path))?;
    // SAFETY: flock on a descriptor we own; blocks until the other command is done.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(io("locking", &path)(std::io::Error::last_os_error()));
    }
    Ok(ProjectLock(f))
}
