//! The container's filesystem as its processes see it, for `cp`: the root filesystem with
//! the volumes and bind mounts on top, so a copy into or out of a mounted path lands in the
//! volume, as docker does.
//!
//! - A running (or paused) container is reached through `/proc/<pid>/root`: resolution from
//!   that directory walks the container's own mount table, volumes included, and
//!   `RESOLVE_IN_ROOT` keeps every symlink (and `..`) inside it.
//! - A stopped container has no mount namespace: its mounts are applied here, component by
//!   component. Symlinks are expanded as the container would (an absolute target restarts at
//!   the container's root), each step is opened with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`
//!   below the root or mount source that holds it, so nothing resolves outside them.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::container::{ContainerConfig, ContainerError};

/// Symlinks followed in one resolution before giving up, as the kernel (ELOOP).
const MAX_LINKS: usize = 40;

/// A bind mount or volume of a stopped container: `target` inside, `source` on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewMount {
    pub target: String,
    pub source: PathBuf,
    pub read_only: bool,
}

pub enum View {
    /// A running container's root directory (`/proc/<pid>/root`).
    Live { root: OwnedFd },
    /// A stopped container: its merged root filesystem plus its mounts.
    Mounted {
        rootfs: PathBuf,
        mounts: Vec<ViewMount>,
    },
}

/// A path opened in the container (an `O_PATH` descriptor).
pub struct Opened {
    pub fd: OwnedFd,
    pub kind: FileType,
    /// The file system holding it is read-only for the container (a `:ro` volume, the root
    /// of a `--read-only` container), as far as the view can tell.
    pub read_only: bool,
    /// Whether it resolved into a volume or bind mount (`Some(false)`: the root
    /// filesystem); `None` when the view cannot tell (a running container).
    pub in_mount: Option<bool>,
}

fn not_found(path: &str) -> ContainerError {
    ContainerError::Other(format!("Could not find the file {path} in container"))
}

fn io_err(path: &str, e: Errno) -> ContainerError {
    if e == Errno::NOENT {
        return not_found(path);
    }
    ContainerError::Other(format!(
        "{path} in the container: {}",
        std::io::Error::from(e)
    ))
}

/// `/a/./b/` → `["a", "b"]`; `..` is kept for the resolver (it never climbs above `/`).
fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect()
}

/// The container-side path of a mount target, cleaned (`/data/` → `/data`).
pub fn clean_target(target: &str) -> String {
    let mut out: Vec<String> = vec![];
    for c in components(target) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    format!("/{}", out.join("/"))
}

/// The mount holding container path `path` (clean, absolute) and the path relative to its
/// source: the longest matching target wins, as the later, deeper mount hides the earlier.
pub fn mount_for<'a>(mounts: &'a [ViewMount], path: &str) -> Option<(&'a ViewMount, String)> {
    mounts
        .iter()
        .filter_map(|m| {
            let rest = if m.target == "/" {
                Some(path.trim_start_matches('/'))
            } else {
                path.strip_prefix(m.target.as_str())
                    .filter(|r| r.is_empty() || r.starts_with('/'))
                    .map(|r| r.trim_start_matches('/'))
            }?;
            Some((m, rest.to_string()))
        })
        .max_by_key(|(m, _)| m.target.len())
}

impl View {
    /// The view of a stopped container whose root filesystem is mounted at `rootfs`.
    pub fn mounted(rootfs: &Path, cfg: &ContainerConfig, volumes_root: &Path) -> Self {
        let vols = crate::volume::Volumes::new(volumes_root);
        let mounts = cfg
            .host
            .mounts
            .iter()
            .filter_map(|m| {
                let source = match m.kind.as_str() {
                    "bind" => PathBuf::from(&m.source),
                    "volume" => vols.data_dir(&m.source).ok()?,
                    // A stopped container's tmpfs holds nothing; its path is the rootfs's.
                    _ => return None,
                };
                Some(ViewMount {
                    target: clean_target(&m.target),
                    source,
                    read_only: m.read_only,
                })
            })
            .collect();
        View::Mounted {
            rootfs: rootfs.to_path_buf(),
            mounts,
        }
    }

    /// Opens `path` in the container. The last component is followed only when
    /// `follow_last` (`cp -L`, a destination directory); every other symlink is resolved
    /// inside the container.
    pub fn open(&self, path: &str, follow_last: bool) -> Result<Opened, ContainerError> {
        match self {
            View::Live { root } => {
                let rel = path.trim_start_matches('/');
                let rel = if rel.is_empty() { "." } else { rel };
                let mut flags = OFlags::PATH | OFlags::CLOEXEC;
                if !follow_last {
                    flags |= OFlags::NOFOLLOW;
                }
                let fd = rustix::fs::openat2(
                    root,
                    rel,
                    flags,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                )
                .map_err(|e| io_err(path, e))?;
                let st = rustix::fs::fstat(&fd).map_err(|e| io_err(path, e))?;
                let read_only = rustix::fs::fstatvfs(&fd)
                    .map(|v| v.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
                    .unwrap_or(false);
                Ok(Opened {
                    fd,
                    kind: FileType::from_raw_mode(st.st_mode),
                    read_only,
                    in_mount: None,
                })
            }
            View::Mounted { rootfs, mounts } => {
                let canon = self.canonical(rootfs, mounts, path, follow_last)?;
                let (fd, read_only, in_mount) = open_mapped(rootfs, mounts, &canon, path)?;
                let st = rustix::fs::fstat(&fd).map_err(|e| io_err(path, e))?;
                Ok(Opened {
                    fd,
                    kind: FileType::from_raw_mode(st.st_mode),
                    read_only,
                    in_mount: Some(in_mount),
                })
            }
        }
    }

    /// The symlink-free container path of `path`, expanding links as the container would.
    fn canonical(
        &self,
        rootfs: &Path,
        mounts: &[ViewMount],
        path: &str,
        follow_last: bool,
    ) -> Result<String, ContainerError> {
        let mut todo: VecDeque<String> = components(path).into();
        let mut cur: Vec<String> = vec![];
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let last = todo.is_empty();
            let candidate = format!(
                "/{}",
                cur.iter()
                    .chain([&c])
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("/")
            );
            if last && !follow_last {
                cur.push(c);
                break;
            }
            let (fd, _, _) = match open_mapped(rootfs, mounts, &candidate, path) {
                Ok(v) => v,
                // Missing: the caller's final open reports it (or creates below it).
                Err(_) => {
                    cur.push(c);
                    continue;
                }
            };
            let st = rustix::fs::fstat(&fd).map_err(|e| io_err(path, e))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                cur.push(c);
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(ContainerError::Other(format!(
                    "{path} in the container: too many levels of symbolic links"
                )));
            }
            let target =
                rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| io_err(path, e))?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                cur.clear();
            }
            for t in components(&target).into_iter().rev() {
                todo.push_front(t);
            }
        }
        Ok(format!("/{}", cur.join("/")))
    }
}

/// Opens the clean, symlink-free container path `canon` (last component not followed)
/// below the root filesystem or the mount source that holds it; also says whether that is
/// a read-only mount, and whether it is a mount at all.
fn open_mapped(
    rootfs: &Path,
    mounts: &[ViewMount],
    canon: &str,
    shown: &str,
) -> Result<(OwnedFd, bool, bool), ContainerError> {
    let (base, rel, read_only, in_mount) = match mount_for(mounts, canon) {
        Some((m, rel)) => (m.source.as_path(), rel, m.read_only, true),
        None => (
            rootfs,
            canon.trim_start_matches('/').to_string(),
            false,
            false,
        ),
    };
    let host_err = |e: Errno| {
        if e == Errno::NOENT {
            not_found(shown)
        } else {
            ContainerError::io(base, e.into())
        }
    };
    if rel.is_empty() {
        // The mount point itself: a bind of a directory or of a single file.
        let fd = rustix::fs::open(
            base,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(host_err)?;
        return Ok((fd, read_only, in_mount));
    }
    let dir = rustix::fs::open(
        base,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(host_err)?;
    let fd = rustix::fs::openat2(
        &dir,
        rel.as_str(),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        // A symlink in the middle: only possible if the tree changed since `canonical`.
        Errno::LOOP | Errno::XDEV => ContainerError::Other(format!(
            "{shown} in the container changed while it was being resolved"
        )),
        e => io_err(shown, e),
    })?;
    Ok((fd, read_only, in_mount))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(target: &str, source: &Path) -> ViewMount {
        ViewMount {
            target: clean_target(target),
            source: source.to_path_buf(),
            read_only: false,
        }
    }

    #[test]
    fn longest_mount_target_wins() {
        let ms = vec![
            m("/data", Path::new("/v1")),
            m("/data/sub/", Path::new("/v2")),
        ];
        assert_eq!(mount_for(&ms, "/data/x").unwrap().1, "x");
        let (mm, rel) = mount_for(&ms, "/data/sub/y/z").unwrap();
        assert_eq!(
            (mm.source.as_path(), rel.as_str()),
            (Path::new("/v2"), "y/z")
        );
        assert_eq!(mount_for(&ms, "/data").unwrap().1, "");
        assert!(mount_for(&ms, "/database").is_none());
        assert!(mount_for(&ms, "/").is_none());
    }

    #[test]
    fn stopped_view_follows_links_into_volumes_but_never_out() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("rootfs");
        let vol = t.path().join("vol");
        let outside = t.path().join("outside");
        for d in [&root, &vol, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside\n").unwrap();
        std::fs::write(vol.join("f"), "vol\n").unwrap();
        std::fs::write(outside.join("secret"), "host\n").unwrap();
        // Links planted in the container: into the volume, and trying to climb out.
        std::os::unix::fs::symlink("/data/f", root.join("tovol")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("up")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("/etc", vol.join("etclink")).unwrap();
        let view = View::Mounted {
            rootfs: root.clone(),
            mounts: vec![m("/data", &vol)],
        };
        let read = |p: &str| -> String {
            let o = view.open(p, true).unwrap();
            std::fs::read_to_string(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&o.fd)
            ))
            .unwrap()
        };
        assert_eq!(read("/data/f"), "vol\n");
        assert_eq!(read("/tovol"), "vol\n");
        assert_eq!(read("/data/etclink/passwd"), "inside\n");
        // `..` stops at the container's root; absolute targets restart there.
        assert!(view.open("/up/secret", true).is_err());
        assert!(view.open("/abs/secret", true).is_err());
        assert!(view.open("/../../outside/secret", true).is_err());
        // Not following the last link gives the link itself.
        let l = view.open("/tovol", false).unwrap();
        assert_eq!(l.kind, FileType::Symlink);
    }
}
