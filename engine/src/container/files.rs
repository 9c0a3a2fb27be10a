//! The container's files from the host: `cp` in both directions, `diff`, `export`, and the
//! layer tar of its changes (for `commit`). Works on stopped containers too (the overlay is
//! mounted for the operation). Paths inside the container are resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink in the container can never lead outside it.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

mod archive;
mod view;

pub use archive::TarOptions;
pub use view::View;

use super::{ContainerConfig, ContainerError, Containers};
use crate::rootfs::Rootfs;

/// `cp`'s flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpOptions {
    /// `-L`: follow a symlink named as the source.
    pub follow_link: bool,
    /// `-a`: keep the files' owners (else root inside the container, the caller on the host).
    pub archive: bool,
}

/// Docker's refusals to write into a read-only place: a `:ro` mount, or the root of a
/// `--read-only` container (whatever the container's state).
fn refuse_read_only(
    cfg: &ContainerConfig,
    dir: &str,
    o: &view::Opened,
) -> Result<(), ContainerError> {
    let in_mount = o.in_mount.unwrap_or_else(|| {
        // A running container: judged by the path as given.
        let mounts: Vec<view::ViewMount> = cfg
            .host
            .mounts
            .iter()
            .map(|m| view::ViewMount {
                target: view::clean_target(&m.target),
                source: PathBuf::new(),
                read_only: m.read_only,
            })
            .collect();
        view::mount_for(&mounts, &view::clean_target(dir)).is_some()
    });
    let what = match (in_mount, o.read_only || (!in_mount && cfg.host.read_only)) {
        (_, false) => return Ok(()),
        (true, true) => "the mounted volume",
        (false, true) => "the container rootfs",
    };
    Err(ContainerError::Other(format!(
        "cannot copy to {dir} in container {}: {what} is marked read-only",
        cfg.name
    )))
}

/// Runs `produce` (writing a stream, in a thread) and `consume` (reading it, here) joined
/// by a pipe, so a copy never holds the whole archive in memory. When both fail, the one
/// that failed first is reported: a producer that only saw the pipe closed (`EPIPE`)
/// failed because the consumer had.
fn piped<T>(
    produce: impl FnOnce(fs::File) -> std::io::Result<()> + Send,
    consume: impl FnOnce(&mut fs::File) -> Result<T, ContainerError>,
) -> Result<T, ContainerError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(other)?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(fs::File::from(w)));
        let mut r = fs::File::from(r);
        let res = consume(&mut r);
        if res.is_ok() {
            // A tar reader stops at the end marker: take the padding the writer still
            // sends, so it never sees a closed pipe on success.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
        // Closing our end unblocks a producer stuck on a full pipe after a failure.
        drop(r);
        let made = producer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the archiving thread panicked")));
        match (res, made) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), Err(p)) if p.kind() == std::io::ErrorKind::BrokenPipe => Err(e),
            (_, Err(p)) => Err(producer_error(p)),
            (Err(e), Ok(())) => Err(e),
        }
    })
}

/// A producer's error as the engine's: its own `ContainerError` when it carried one.
fn producer_error(e: std::io::Error) -> ContainerError {
    if !e.get_ref().is_some_and(|i| i.is::<ContainerError>()) {
        return ContainerError::Other(format!("preparing the tar stream: {e}"));
    }
    match e.into_inner().map(|i| i.downcast::<ContainerError>()) {
        Some(Ok(c)) => *c,
        _ => ContainerError::Other("preparing the tar stream failed".into()),
    }
}

/// A change reported by `diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `A` added, `C` changed, `D` deleted.
    pub kind: char,
    pub path: String,
}

fn other(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Other(e.to_string())
}

/// Opens `path` inside `root` as if `root` were `/` (O_PATH; final symlink not followed).
pub fn open_in_root(root: &Path, path: &str) -> Result<OwnedFd, ContainerError> {
    let r = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::io(root, e.into()))?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        &r,
        rel,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT => {
            ContainerError::Other(format!("Could not find the file {path} in container"))
        }
        e => ContainerError::io(&root.join(rel), e.into()),
    })
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

impl Containers {
    /// Runs `f` with the container's merged root, mounting it for the call if needed.
    pub fn with_rootfs<T>(
        &self,
        id: &str,
        f: impl FnOnce(&Path) -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let cfg = self.store.load_config(id)?;
        let rootfs = Rootfs::new(self.store.rootfs_dir(&cfg));
        if rootfs.is_mounted() {
            return f(&rootfs.merged());
        }
        let _lock = self.store.lock(id)?;
        if !rootfs.merged().exists() {
            rootfs.prepare(&cfg.layer_dirs)?;
        }
        rootfs.mount(cfg.layer_dirs.len(), false)?;
        let res = f(&rootfs.merged());
        // The container may have started meanwhile and now shares this mount.
        if !matches!(
            self.observe(id).map(|s| s.status),
            Ok(super::Status::Running | super::Status::Paused | super::Status::Restarting)
        ) {
            rootfs.unmount()?;
        }
        res
    }

    /// Runs `f` with the container's filesystem as its processes see it (volumes and bind
    /// mounts included): through `/proc/<pid>/root` while it runs, else its root filesystem
    /// (mounted for the call) with the mounts applied by `View`.
    pub fn with_view<T>(
        &self,
        id: &str,
        f: impl FnOnce(&View, &ContainerConfig) -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let cfg = self.store.load_config(id)?;
        let st = self.observe(id)?;
        if matches!(st.status, super::Status::Running | super::Status::Paused) && st.pid > 0 {
            let root = rustix::fs::open(
                format!("/proc/{}/root", st.pid).as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            );
            // Checked after opening: the descriptor then surely is this container's root.
            if let Ok(root) = root
                && super::proc::alive(st.pid, st.pid_start_ticks)
            {
                return f(&View::Live { root }, &cfg);
            }
        }
        self.with_rootfs(id, |merged| {
            f(&View::mounted(merged, &cfg, &self.store.root), &cfg)
        })
    }

    /// Writes a tar of `path` (file, directory or symlink) from the container to `out`; the
    /// archive's top entry is named `name` (default: the path's last component; `.` for a
    /// path ending in `/.`, whose content is then copied). Entries keep their owners.
    pub fn copy_out(
        &self,
        id: &str,
        path: &str,
        name: Option<&str>,
        opts: CpOptions,
        out: &mut dyn Write,
    ) -> Result<(), ContainerError> {
        let contents = path.ends_with("/.") || path == ".";
        // A trailing `/` names the directory behind a link, as in docker.
        let follow = opts.follow_link || contents || path.ends_with('/');
        let base = name
            .map(String::from)
            .or_else(|| {
                (!contents)
                    .then(|| Path::new(path).file_name())
                    .flatten()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| ".".into());
        self.with_view(id, |view, _| {
            let o = view.open(path, follow)?;
            if contents && o.kind != rustix::fs::FileType::Directory {
                return Err(ContainerError::Other(format!(
                    "{path}: the source must be a directory to copy its content"
                )));
            }
            let mut b = tar::Builder::new(out);
            let io = |e: std::io::Error| ContainerError::io(Path::new(path), e);
            archive::append_tree(&mut b, o.fd, &base, TarOptions { owner_root: false })
                .map_err(io)?;
            b.finish().map_err(io)
        })
    }

    /// Extracts a tar stream into the directory `dir` inside the container (into the volume
    /// when `dir` is in one). Without `opts.archive` every entry is owned by root, as
    /// docker's cp without `-a`.
    pub fn copy_in(
        &self,
        id: &str,
        dir: &str,
        opts: CpOptions,
        tar: &mut (dyn Read + Send),
    ) -> Result<(), ContainerError> {
        self.with_view(id, |view, cfg| {
            let o = view.open(dir, true)?;
            if o.kind != rustix::fs::FileType::Directory {
                return Err(ContainerError::Other(format!(
                    "{dir} is not a directory in the container"
                )));
            }
            refuse_read_only(cfg, dir, &o)?;
            let dest = fd_path(&o.fd);
            // Checked (and re-owned) on the fly through a pipe: a large stream is never
            // held whole.
            let owner_root = !opts.archive;
            piped(
                move |w| archive::restream(tar, w, owner_root),
                |r| {
                    crate::unpack::unpack_copy(r, &dest)
                        .map(|_| ())
                        .map_err(other)
                },
            )
        })
    }

    /// Whether `path` exists in the container and is a directory, following symlinks
    /// (`None` if missing).
    pub fn path_kind(&self, id: &str, path: &str) -> Result<Option<bool>, ContainerError> {
        self.with_view(id, |view, _| match view.open(path, true) {
            Ok(o) => Ok(Some(o.kind == rustix::fs::FileType::Directory)),
            Err(ContainerError::Other(m)) if m.starts_with("Could not find") => Ok(None),
            Err(e) => Err(e),
        })
    }

    /// `cp CONTAINER:path dest`: into an existing directory the copy keeps its name,
    /// otherwise it is named `dest`; `path/.` copies the directory's content into `dest`
    /// (created if missing). With `opts.archive` the owners are kept, else the files are ours.
    pub fn copy_to_host(
        &self,
        id: &str,
        path: &str,
        dest: &Path,
        opts: CpOptions,
    ) -> Result<(), ContainerError> {
        let contents = path.ends_with("/.") || path == ".";
        if dest.to_string_lossy().ends_with('/')
            && !dest.exists()
            && self.path_kind(id, path)? != Some(true)
        {
            // Docker: only a directory may create the destination it is copied to.
            return Err(ContainerError::Other(format!(
                "destination directory {} does not exist",
                dest.display()
            )));
        }
        let (dir, name) = if dest.is_dir() {
            (dest.to_path_buf(), None)
        } else {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(ContainerError::Other(format!(
                    "destination directory {} does not exist",
                    parent.display()
                )));
            }
            if contents {
                // Checked first, so a failed copy leaves no empty directory behind.
                if self.path_kind(id, path)? != Some(true) {
                    return Err(ContainerError::Other(format!(
                        "{path}: the source must be an existing directory to copy its content"
                    )));
                }
                fs::create_dir(dest).map_err(|e| ContainerError::io(dest, e))?;
                (dest.to_path_buf(), None)
            } else {
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| other("destination has no file name"))?;
                (parent.to_path_buf(), Some(name))
            }
        };
        piped(
            |mut w| {
                self.copy_out(id, path, name.as_deref(), opts, &mut w)
                    .map_err(std::io::Error::other)
            },
            |r| {
                let mut ar = tar::Archive::new(r);
                ar.set_preserve_permissions(true);
                ar.set_preserve_ownerships(opts.archive);
                ar.set_overwrite(true);
                ar.unpack(&dir).map_err(|e| ContainerError::io(&dir, e))
            },
        )
    }

    /// `cp src CONTAINER:path`: into an existing directory the copy keeps its name,
    /// otherwise it is named `path`; `src/.` copies the directory's content. A symlink `src`
    /// is copied as a link unless `opts.follow_link`.
    pub fn copy_from_host(
        &self,
        id: &str,
        src: &Path,
        path: &str,
        opts: CpOptions,
    ) -> Result<(), ContainerError> {
        let src_str = src.to_string_lossy();
        let contents = src_str.ends_with("/.") || src_str == ".";
        let follow = opts.follow_link || contents || src_str.ends_with('/');
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let fd = rustix::fs::open(src, flags, Mode::empty())
            .map_err(|e| ContainerError::io(src, e.into()))?;
        let md = rustix::fs::fstat(&fd).map_err(|e| ContainerError::io(src, e.into()))?;
        let is_dir =
            rustix::fs::FileType::from_raw_mode(md.st_mode) == rustix::fs::FileType::Directory;
        if contents && !is_dir {
            return Err(ContainerError::Other(format!(
                "{}: the source must be a directory to copy its content",
                src.display()
            )));
        }
        let kind = self.path_kind(id, path)?;
        if path.ends_with('/') && kind != Some(true) && !(is_dir && kind.is_none()) {
            return Err(ContainerError::Other(format!(
                "destination directory {path} does not exist in the container"
            )));
        }
        let src_name = || {
            src.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into())
        };
        let (dir, name) = match kind {
            Some(true) if contents => (path.to_string(), ".".to_string()),
            Some(true) => (path.to_string(), src_name()),
            _ => {
                let p = Path::new(path.trim_end_matches('/'));
                let parent = p
                    .parent()
                    .map(|x| x.to_string_lossy().into_owned())
                    .filter(|x| !x.is_empty())
                    .unwrap_or_else(|| "/".into());
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| other("destination has no file name"))?;
                (parent, name)
            }
        };
        let t = TarOptions {
            owner_root: !opts.archive,
        };
        // Owners are decided while archiving.
        let in_opts = CpOptions {
            archive: true,
            ..opts
        };
        piped(
            move |w| {
                let mut b = tar::Builder::new(w);
                archive::append_tree(&mut b, fd, &name, t)?;
                b.into_inner()?.flush()
            },
            |r| self.copy_in(id, &dir, in_opts, r),
        )
        .map_err(|e| match e {
            ContainerError::Other(m) if m.starts_with("preparing the tar stream") => {
                ContainerError::Other(format!("{}: {m}", src.display()))
            }
            e => e,
        })
    }

    /// Bytes written by the container (its upper dir), docker's `SizeRw`.
    pub fn size_rw(&self, id: &str) -> Result<u64, ContainerError> {
        let cfg = self.store.load_config(id)?;
        let upper = Rootfs::new(self.store.rootfs_dir(&cfg)).upper();
        let mut total = 0u64;
        walk(&upper, "", &mut |_, md| {
            if md.is_file() {
                total += md.len();
            }
        })?;
        Ok(total)
    }

    /// Changes of the container's filesystem relative to its image (docker `diff`).
    pub fn diff(&self, id: &str) -> Result<Vec<Change>, ContainerError> {
        let cfg = self.store.load_config(id)?;
        let upper = Rootfs::new(self.store.rootfs_dir(&cfg)).upper();
        let mut out = vec![];
        walk(&upper, "", &mut |rel, md| {
            let full = upper.join(rel.trim_start_matches('/'));
            if is_runtime_mountpoint(rel, md, &cfg.layer_dirs, &full) {
                return;
            }
            let in_lower = cfg
                .layer_dirs
                .iter()
                .any(|l| fs::symlink_metadata(l.join(rel.trim_start_matches('/'))).is_ok());
            let kind = if md.file_type().is_char_device() && md.rdev() == 0 {
                'D'
            } else if in_lower {
                'C'
            } else {
                'A'
            };
            out.push(Change {
                kind,
                path: rel.to_string(),
            });
        })?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The container's whole filesystem as a tar stream (docker `export`).
    pub fn export(&self, id: &str, out: &mut dyn Write) -> Result<(), ContainerError> {
        self.with_rootfs(id, |root| {
            let mut b = tar::Builder::new(out);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            let io = |e| ContainerError::io(root, e);
            for ent in fs::read_dir(root).map_err(io)? {
                let ent = ent.map_err(io)?;
                let p = ent.path();
                let name = ent.file_name();
                if ent.file_type().map_err(io)?.is_dir() {
                    b.append_dir_all(&name, &p).map_err(io)?;
                } else {
                    b.append_path_with_name(&p, &name).map_err(io)?;
                }
            }
            b.finish().map_err(io)
        })
    }

    /// The container's changes as an OCI layer tar: overlay whiteouts (0/0 character devices)
    /// become `.wh.<name>` entries and opaque directories get `.wh..wh..opq`.
    pub fn changes_tar(&self, id: &str, out: &mut dyn Write) -> Result<(), ContainerError> {
        let cfg = self.store.load_config(id)?;
        let upper = Rootfs::new(self.store.rootfs_dir(&cfg)).upper();
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Complete);
        let mut err = None;
        walk(&upper, "", &mut |rel, md| {
            if err.is_some() {
                return;
            }
            let full = upper.join(rel.trim_start_matches('/'));
            if is_runtime_mountpoint(rel, md, &cfg.layer_dirs, &full) {
                return;
            }
            let name = rel.trim_start_matches('/');
            let res = if md.file_type().is_char_device() && md.rdev() == 0 {
                let p = Path::new(name);
                let wh = p.parent().unwrap_or(Path::new("")).join(format!(
                    ".wh.{}",
                    p.file_name().unwrap_or_default().to_string_lossy()
                ));
                let mut h = tar::Header::new_gnu();
                h.set_size(0);
                h.set_mode(0o600);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, wh, std::io::empty())
            } else if md.is_dir() {
                let r = b.append_path_with_name(&full, name);
                let opaque = xattr_is_opaque(&full);
                if r.is_ok() && opaque {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(0);
                    h.set_mode(0o600);
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(
                        &mut h,
                        Path::new(name).join(".wh..wh..opq"),
                        std::io::empty(),
                    )
                } else {
                    r
                }
            } else {
                b.append_path_with_name(&full, name)
            };
            if let Err(e) = res {
                err = Some(ContainerError::io(&full, e));
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        b.finish().map_err(|e| ContainerError::io(&upper, e))
    }
}

/// Mount points the runtime creates in the upper dir: not the user's changes when they are
/// new and empty (docker hides them from `diff` and `commit` too).
const RUNTIME_MOUNTPOINTS: [&str; 6] = [
    "/dev",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
];

fn is_runtime_mountpoint(rel: &str, md: &fs::Metadata, layers: &[PathBuf], full: &Path) -> bool {
    RUNTIME_MOUNTPOINTS.contains(&rel)
        && !layers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(rel.trim_start_matches('/'))).is_ok())
        && if md.is_dir() {
            fs::read_dir(full)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        } else {
            md.len() == 0
        }
}

fn xattr_is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    rustix::fs::lgetxattr(p, "trusted.overlay.opaque", &mut buf)
        .map(|n| n == 1 && buf[0] == b'y')
        .unwrap_or(false)
}

/// Depth-first walk (parents before children), never following symlinks.
fn walk(
    dir: &Path,
    rel: &str,
    f: &mut dyn FnMut(&str, &fs::Metadata),
) -> Result<(), ContainerError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ContainerError::io(dir, e)),
    };
    let mut ents: Vec<_> = rd.flatten().collect();
    ents.sort_by_key(|e| e.file_name());
    for e in ents {
        let md = fs::symlink_metadata(e.path()).map_err(|x| ContainerError::io(&e.path(), x))?;
        let r = format!("{rel}/{}", e.file_name().to_string_lossy());
        f(&r, &md);
        if md.is_dir() {
            walk(&e.path(), &r, f)?;
        }
    }
    Ok(())
}
