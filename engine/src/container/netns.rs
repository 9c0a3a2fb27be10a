//! Persistent network namespaces: `<run_root>/netns/<id>` is an nsfs bind mount (as
//! `ip netns add` makes), created before the container starts so the network layer can
//! configure it (`net::attach(netns_path, ...)`) and so it survives restarts of the
//! container's process. The loopback interface is brought up here.
//! Callers must be single-threaded (unshare/setns act on the calling thread).

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

#[derive(Debug, thiserror::Error)]
#[error("network namespace {path}: {what}: {source}")]
pub struct NetnsError {
    pub path: PathBuf,
    pub what: &'static str,
    pub source: io::Error,
}

fn err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError {
        path: path.into(),
        what,
        source,
    }
}

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Creates the namespace at `path` unless it exists already.
pub fn ensure(path: &Path) -> Result<(), NetnsError> {
    if crate::rootfs::is_mountpoint(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err(path, "creating the directory"))?;
    }
    File::create(path).map_err(err(path, "creating the mount point"))?;
    let host =
        File::open("/proc/thread-self/ns/net").map_err(err(path, "opening the host netns"))?;
    unshare(CloneFlags::CLONE_NEWNET)
        .map_err(nix_io)
        .map_err(err(path, "unshare"))?;
    let res = mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(nix_io)
    .map_err(err(path, "bind mount"))
    .and_then(|()| loopback_up().map_err(err(path, "bringing lo up")));
    // Always go back to the host namespace, even on failure.
    setns(&host, CloneFlags::CLONE_NEWNET)
        .map_err(nix_io)
        .map_err(err(path, "returning to the host netns"))?;
    if res.is_err() {
        let _ = umount2(path, MntFlags::MNT_DETACH);
        let _ = fs::remove_file(path);
    }
    res
}

/// Unmounts and deletes the namespace file (no error when it does not exist).
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    if !path.exists() {
        return Ok(());
    }
    while crate::rootfs::is_mountpoint(path) {
        if umount2(path, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    fs::remove_file(path).map_err(err(path, "removing"))
}

fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(s);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(io::Error::last_os_error());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
