//! The listener: a unix socket bound by us (0660, root's group) or handed over by systemd,
//! one thread per connection, and the idle exit of `--time`.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::Context;
use crate::http::serve_connection;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exists and is not a socket; remove it or choose another path")]
    NotASocket(PathBuf),
    #[error("invalid socket address {0:?}: use unix:///path/to/docker.sock")]
    Address(String),
}

/// `unix:///run/x.sock` (or a plain path) → the path.
pub fn socket_path(addr: &str) -> Result<PathBuf, ServeError> {
    let p = addr.strip_prefix("unix://").unwrap_or(addr);
    if !p.starts_with('/') || addr.contains("://") && !addr.starts_with("unix://") {
        return Err(ServeError::Address(addr.to_string()));
    }
    Ok(PathBuf::from(p))
}

/// Binds `path` with mode 0660: a stale socket left by an earlier server is replaced, any
/// other file is left alone.
pub fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    let io = |source| ServeError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(io)?,
        Ok(_) => return Err(ServeError::NotASocket(path.to_path_buf())),
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    Ok(listener)
}

/// The socket systemd passed (socket activation: `LISTEN_PID` is us, `LISTEN_FDS` ≥ 1, the
/// first descriptor is 3).
pub fn systemd_listener() -> Option<UnixListener> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let fds: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || fds < 1 {
        return None;
    }
    // SAFETY: systemd hands descriptor 3 to this process for it alone (LISTEN_PID checked).
    let fd = unsafe { OwnedFd::from_raw_fd(3) };
    Some(UnixListener::from(fd))
}

/// Tracks open connections and the last time one ended, for the idle exit.
struct Activity {
    open: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(self.last.lock().map(|l| l.elapsed()).unwrap_or_default())
    }
}

/// Serves until `idle` passes with no connection open (never when `idle` is `None`).
pub fn serve(
    ctx: Context,
    listener: UnixListener,
    idle: Option<Duration>,
) -> Result<(), ServeError> {
    let io = |source| ServeError::Io {
        path: PathBuf::from("<listener>"),
        source,
    };
    listener.set_nonblocking(true).map_err(io)?;
    let ctx = Arc::new(ctx);
    let activity = Arc::new(Activity {
        open: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    loop {
        if let (Some(limit), Some(idle_for)) = (idle, activity.idle_for())
            && idle_for >= limit
        {
            return Ok(());
        }
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&listener),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io(e.into())),
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        // Accepted sockets inherit O_NONBLOCK on some systems; handlers expect blocking I/O.
        if stream.set_nonblocking(false).is_err() {
            continue;
        }
        activity.open.fetch_add(1, Ordering::SeqCst);
        let (ctx, activity) = (ctx.clone(), activity.clone());
        std::thread::spawn(move || {
            let res = serve_connection(stream, &|req| crate::handle(&ctx, req));
            if let Err(e) = res {
                tracing::debug!("connection ended: {e}");
            }
            if let Ok(mut l) = activity.last.lock() {
                *l = Instant::now();
            }
            activity.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            socket_path("unix:///run/rcompose/docker.sock").unwrap(),
            PathBuf::from("/run/rcompose/docker.sock")
        );
        assert!(socket_path("tcp://0.0.0.0:2375").is_err());
        assert!(socket_path("relative.sock").is_err());
    }

    #[test]
    fn bind_replaces_a_stale_socket_but_not_a_file_and_sets_0660() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.sock");
        drop(bind(&p).unwrap());
        let l = bind(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(l);
        let f = dir.path().join("file");
        std::fs::write(&f, "keep").unwrap();
        assert!(matches!(bind(&f), Err(ServeError::NotASocket(_))));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "keep");
    }
}
