//! Running netlink work inside a network namespace.
//!
//! A netlink socket talks to the namespace it was created in, and a thread may switch its own
//! network namespace with setns(2) without touching the rest of the process. So each piece of
//! work runs on a short-lived thread that enters the namespace (or stays in the host's), opens
//! an rtnetlink connection there and drives it on a current-thread tokio runtime. This keeps
//! the library usable from synchronous callers and from inside another tokio runtime alike.

use std::fs::File;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use rtnetlink::Handle;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot open network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot enter network namespace {path}: {source}")]
    Enter {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("netlink: {0}")]
    Io(std::io::Error),
    #[error("netlink: {what}: {source}")]
    Netlink {
        what: String,
        source: rtnetlink::Error,
    },
    #[error("netlink worker thread panicked")]
    Panicked,
}

impl NetnsError {
    /// The errno of a netlink error reply, if it is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetnsError::Netlink {
                source: rtnetlink::Error::NetlinkError(m),
                ..
            } => Some(m.raw_code().abs()),
            _ => None,
        }
    }
}

/// Adds context to a netlink error.
pub fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetnsError {
    let what = what.into();
    move |source| NetnsError::Netlink { what, source }
}

/// Runs `work` with an rtnetlink handle in the namespace at `netns` (None: the caller's).
pub fn run_in<T, F, Fut>(netns: Option<&Path>, work: F) -> Result<T, NetnsError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, NetnsError>>,
{
    let ns = match netns {
        Some(p) => Some((
            File::open(p).map_err(|source| NetnsError::Open {
                path: p.to_path_buf(),
                source,
            })?,
            p.to_path_buf(),
        )),
        None => None,
    };
    let thread = std::thread::spawn(move || -> Result<T, NetnsError> {
        if let Some((file, path)) = &ns {
            // SAFETY: setns on a valid namespace fd; it only affects this thread, which exits
            // when the work is done, so no other code ever runs in the container's namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(NetnsError::Enter {
                    path: path.clone(),
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NetnsError::Io)?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(NetnsError::Io)?;
            tokio::spawn(conn);
            work(handle).await
        })
    });
    thread.join().map_err(|_| NetnsError::Panicked)?
}

/// Runs `work` with two rtnetlink handles, one in the caller's namespace and one in the
/// namespace at `netns`, on one worker thread: one thread (and one runtime) for work that
/// crosses from the host into a container (a veth pair), which matters on a busy host where
/// every thread hand-off waits for the scheduler. A netlink socket talks to the namespace it
/// was created in, whichever the thread is in later: the host's is opened first, then the
/// thread enters the container's and opens the other.
pub fn run_host_and_in<U, G, Gut>(netns: &Path, work: G) -> Result<U, NetnsError>
where
    U: Send + 'static,
    G: FnOnce(Handle, Handle) -> Gut + Send + 'static,
    Gut: Future<Output = Result<U, NetnsError>>,
{
    let path = netns.to_path_buf();
    let file = File::open(&path).map_err(|source| NetnsError::Open {
        path: path.clone(),
        source,
    })?;
    let thread = std::thread::spawn(move || -> Result<U, NetnsError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NetnsError::Io)?;
        rt.block_on(async move {
            let (host_conn, host, _) = rtnetlink::new_connection().map_err(NetnsError::Io)?;
            tokio::spawn(host_conn);
            // SAFETY: setns on a valid namespace fd; it only affects this thread, which exits
            // when the work is done.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(NetnsError::Enter {
                    path,
                    source: std::io::Error::last_os_error(),
                });
            }
            let (inside_conn, inside, _) = rtnetlink::new_connection().map_err(NetnsError::Io)?;
            tokio::spawn(inside_conn);
            work(host, inside).await
        })
    });
    thread.join().map_err(|_| NetnsError::Panicked)?
}

/// Index of a link by name, or None if there is no such link.
pub async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetnsError> {
    let mut links = handle.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == libc::ENODEV => Ok(None),
        Err(e) => Err(nl(format!("look up link {name}"))(e)),
    }
}

/// Names of every link in the handle's namespace.
pub async fn link_names(handle: &Handle) -> Result<Vec<String>, NetnsError> {
    use netlink_packet_route::link::LinkAttribute;
    let mut names = Vec::new();
    let mut links = handle.link().get().execute();
    while let Some(msg) = links.try_next().await.map_err(nl("list links"))? {
        for attr in msg.attributes {
            if let LinkAttribute::IfName(n) = attr {
                names.push(n);
            }
        }
    }
    Ok(names)
}

/// Whether `e` is the kernel saying "already exists".
pub fn is_exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == libc::EEXIST)
}
