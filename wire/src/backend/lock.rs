//! The project lock: `<root>/compose/<project>.lock`, held (flock) for the whole of a command
//! that changes the project, so two `up`s at once never create duplicate containers.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result, bail};

pub struct ProjectLock(#[allow(dead_code)] File);

/// Waits for the lock of `project` under `root`.
pub fn lock_project(root: &Path, project: &str) -> Result<ProjectLock> {
    if project.is_empty() || project.contains('/') || project.starts_with('.') {
        bail!("invalid project name {project:?} for the project lock");
    }
    let dir = root.join("compose");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{project}.lock"));
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; blocks until the other command is done.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("locking {}", path.display()));
    }
    Ok(ProjectLock(f))
}
