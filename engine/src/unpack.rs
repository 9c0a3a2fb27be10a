//! Safe layer extraction into overlay form.
//!
//! Each layer is unpacked into its own empty directory, which later serves as an overlayfs
//! lowerdir. Whiteouts therefore become what overlayfs understands: `.wh.NAME` turns into a
//! character device 0/0 called `NAME`, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on
//! its directory.
//!
//! Nothing is ever written outside the destination: every entry path is cleaned (absolute
//! paths and `..` are rejected), parent directories are walked one component at a time with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, and files are created relative to the
//! parent's descriptor with `O_NOFOLLOW | O_EXCL`, so a symlink planted by an earlier entry
//! can never redirect a later write. Hardlink targets are resolved the same way, so they can
//! only point at files already inside this layer.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use tar::EntryType;

/// Prefix of an overlay-style whiteout name in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Marker entry that makes its directory opaque.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer entry {path:?} rejected: {reason}")]
    Unsafe { path: String, reason: String },
    #[error("layer entry {path:?} has unsupported type {kind}")]
    Unsupported { path: String, kind: String },
    #[error("layer archive is corrupt or truncated: {0}")]
    Archive(#[source] io::Error),
    #[error("cannot write {path:?} in the layer directory: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    /// `cp` never replaces a directory by a file or a file by a directory (docker's
    /// NoOverwriteDirNonDir): in a container that would delete a whole tree.
    #[error("cannot overwrite {existing} {path:?} with {new}")]
    Overwrite {
        path: String,
        existing: &'static str,
        new: &'static str,
    },
    #[error("cannot open layer directory {path}: {source}")]
    Dest {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// What an unpack produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries written (including whiteouts).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

/// Unpack an uncompressed layer tar from `reader` into the existing directory `dest`.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, UnpackError> {
    unpack(reader, dest, false)
}

/// [`unpack_layer`] for `cp` into a container: the same safety, but an entry never replaces
/// a directory by a non-directory or the other way round (docker refuses both).
pub fn unpack_copy<R: Read>(reader: R, dest: &Path) -> Result<UnpackStats, UnpackError> {
    unpack(reader, dest, true)
}

fn unpack<R: Read>(
    reader: R,
    dest: &Path,
    no_overwrite_dir_non_dir: bool,
) -> Result<UnpackStats, UnpackError> {
    let root = rfs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Dest {
        path: dest.display().to_string(),
        source: e.into(),
    })?;
    let mut unpacker = Unpacker {
        root,
        stats: UnpackStats::default(),
        dir_times: Vec::new(),
        parent_cache: HashMap::new(),
        no_overwrite_dir_non_dir,
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(UnpackError::Archive)?;
    for entry in entries {
        let entry = entry.map_err(UnpackError::Archive)?;
        unpacker.entry(entry)?;
    }
    unpacker.finish()
}

struct Unpacker {
    root: OwnedFd,
    stats: UnpackStats,
    /// Directory mtimes are applied last: creating children would change them again.
    dir_times: Vec<(Vec<OsString>, u64)>,
    /// Parent directory descriptors by path, so deep trees are not re-walked per entry.
    parent_cache: HashMap<Vec<OsString>, OwnedFd>,
    /// `cp` mode: see [`unpack_copy`].
    no_overwrite_dir_non_dir: bool,
}

/// The cleaned components of a tar path. Rejects absolute paths and `..`.
pub fn clean_path(raw: &[u8]) -> Result<Vec<OsString>, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path".into());
    }
    if raw.contains(&0) {
        return Err("NUL byte in path".into());
    }
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("path contains `..`".into()),
            other => out.push(OsStr::from_bytes(other).to_os_string()),
        }
    }
    Ok(out)
}

fn display(comps: &[OsString]) -> String {
    let parts: Vec<_> = comps.iter().map(|c| c.to_string_lossy()).collect();
    parts.join("/")
}

fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

impl Unpacker {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_err = |reason: String| UnpackError::Unsafe {
            path: shown.clone(),
            reason,
        };
        let comps = clean_path(&raw).map_err(unsafe_err)?;
        let Some((name, parent_comps)) = comps.split_last() else {
            return Ok(()); // the layer root itself: nothing to create
        };
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
        ) {
            return Ok(());
        }
        let parent = self.parent(parent_comps, &shown)?;
        let name_bytes = name.as_bytes();

        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent, name_bytes, parent_comps, &shown);
        }

        let header = entry.header().clone();
        let old = header.as_old();
        let mode = numeric(header.mode().map(u64::from), &old.mode)? as u32 & 0o7777;
        let uid = numeric(header.uid(), &old.uid)? as u32;
        let gid = numeric(header.gid(), &old.gid)? as u32;
        let mtime = numeric(header.mtime(), &old.mtime)?;
        let xattrs = read_xattrs(&mut entry)?;
        let werr = |source: Errno| UnpackError::Write {
            path: shown.clone(),
            source: source.into(),
        };
        let pfd = parent.as_fd();

        match kind {
            // The tar crate expands GNU sparse entries to their full content on read.
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.check_overwrite(pfd, name, false, &shown)?;
                clear_slot(pfd, name, false).map_err(werr)?;
                let fd = rfs::openat(
                    pfd,
                    name.as_os_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(werr)?;
                let mut file = std::fs::File::from(fd);
                let n = io::copy(&mut entry, &mut file).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                        UnpackError::Archive(e)
                    }
                    _ => UnpackError::Write {
                        path: shown.clone(),
                        source: e,
                    },
                })?;
                self.stats.bytes += n;
                rfs::fchown(&file, Some(uid_of(uid)), Some(gid_of(gid))).map_err(werr)?;
                rfs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(werr)?;
                apply_xattrs(file.as_fd(), &xattrs, &shown)?;
                rfs::futimens(&file, &times(mtime)).map_err(werr)?;
            }
            EntryType::Directory => {
                self.check_overwrite(pfd, name, true, &shown)?;
                let existed = clear_slot(pfd, name, true).map_err(werr)?;
                if !existed {
                    rfs::mkdirat(pfd, name.as_os_str(), Mode::from_raw_mode(0o700))
                        .map_err(werr)?;
                }
                let fd = rfs::openat(
                    pfd,
                    name.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(werr)?;
                rfs::fchown(&fd, Some(uid_of(uid)), Some(gid_of(gid))).map_err(werr)?;
                rfs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(werr)?;
                apply_xattrs(fd.as_fd(), &xattrs, &shown)?;
                self.dir_times.push((comps.clone(), mtime));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| unsafe_err("symlink without a target".into()))?;
                self.check_overwrite(pfd, name, false, &shown)?;
                clear_slot(pfd, name, false).map_err(werr)?;
                rfs::symlinkat(OsStr::from_bytes(&target), pfd, name.as_os_str()).map_err(werr)?;
                rfs::chownat(
                    pfd,
                    name.as_os_str(),
                    Some(uid_of(uid)),
                    Some(gid_of(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(werr)?;
                rfs::utimensat(
                    pfd,
                    name.as_os_str(),
                    &times(mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(werr)?;
            }
            EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .ok_or_else(|| unsafe_err("hardlink without a target".into()))?;
                let target = clean_path(&target_raw)
                    .map_err(|r| unsafe_err(format!("hardlink target: {r}")))?;
                let Some((tname, tparent_comps)) = target.split_last() else {
                    return Err(unsafe_err("hardlink to the layer root".into()));
                };
                let tparent = self.walk(tparent_comps, false).map_err(|_| {
                    unsafe_err(format!(
                        "hardlink target {:?} is not inside this layer",
                        display(&target)
                    ))
                })?;
                let st = rfs::statat(&tparent, tname.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|_| {
                        unsafe_err(format!(
                            "hardlink target {:?} is not inside this layer",
                            display(&target)
                        ))
                    })?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(unsafe_err("hardlink to a directory".into()));
                }
                if target == comps {
                    return Ok(());
                }
                self.check_overwrite(pfd, name, false, &shown)?;
                clear_slot(pfd, name, false).map_err(werr)?;
                rfs::linkat(
                    &tparent,
                    tname.as_os_str(),
                    pfd,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(werr)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ftype = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.check_overwrite(pfd, name, false, &shown)?;
                clear_slot(pfd, name, false).map_err(werr)?;
                rfs::mknodat(
                    pfd,
                    name.as_os_str(),
                    ftype,
                    Mode::from_raw_mode(mode),
                    rfs::makedev(major, minor),
                )
                .map_err(werr)?;
                rfs::chownat(
                    pfd,
                    name.as_os_str(),
                    Some(uid_of(uid)),
                    Some(gid_of(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(werr)?;
                rfs::chmodat(
                    pfd,
                    name.as_os_str(),
                    Mode::from_raw_mode(mode),
                    AtFlags::empty(),
                )
                .map_err(werr)?;
                rfs::utimensat(
                    pfd,
                    name.as_os_str(),
                    &times(mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(werr)?;
            }
            other => {
                return Err(UnpackError::Unsupported {
                    path: shown,
                    kind: format!("{other:?}"),
                });
            }
        }
        self.stats.entries += 1;
        Ok(())
    }

    fn whiteout(
        &mut self,
        parent: &OwnedFd,
        name: &[u8],
        parent_comps: &[OsString],
        shown: &str,
    ) -> Result<(), UnpackError> {
        let werr = |source: Errno| UnpackError::Write {
            path: shown.to_string(),
            source: source.into(),
        };
        if name == OPAQUE_MARKER.as_bytes() {
            let dir = rfs::openat(
                parent,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(werr)?;
            rfs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty()).map_err(werr)?;
            let _ = parent_comps;
            self.stats.entries += 1;
            return Ok(());
        }
        if name.starts_with(b".wh..wh.") {
            return Ok(()); // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless here
        }
        let target = &name[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(UnpackError::Unsafe {
                path: shown.to_string(),
                reason: "whiteout without a valid name".into(),
            });
        }
        let target = OsStr::from_bytes(target);
        clear_slot(parent.as_fd(), target, false).map_err(werr)?;
        rfs::mknodat(
            parent,
            target,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(werr)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Descriptor of the parent directory `comps`, creating missing directories (0755).
    fn parent(&mut self, comps: &[OsString], shown: &str) -> Result<OwnedFd, UnpackError> {
        if let Some(fd) = self.parent_cache.get(comps) {
            return fd.try_clone().map_err(|e| UnpackError::Write {
                path: shown.to_string(),
                source: e,
            });
        }
        let fd = self.walk(comps, true).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR | Errno::XDEV => UnpackError::Unsafe {
                path: shown.to_string(),
                reason: "its parent path goes through a symlink or a non-directory".into(),
            },
            other => UnpackError::Write {
                path: shown.to_string(),
                source: other.into(),
            },
        })?;
        if self.parent_cache.len() > 4096 {
            self.parent_cache.clear();
        }
        let cached = fd.try_clone().map_err(|e| UnpackError::Write {
            path: shown.to_string(),
            source: e,
        })?;
        self.parent_cache.insert(comps.to_vec(), cached);
        Ok(fd)
    }

    /// Walk `comps` from the root, one component at a time, never following a symlink.
    fn walk(&self, comps: &[OsString], create: bool) -> Result<OwnedFd, Errno> {
        let mut cur = rfs::openat(
            &self.root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for comp in comps {
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            cur = match rfs::openat2(&cur, comp.as_os_str(), flags, Mode::empty(), beneath()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(&cur, comp.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    rfs::openat2(&cur, comp.as_os_str(), flags, Mode::empty(), beneath())?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }

    fn finish(mut self) -> Result<UnpackStats, UnpackError> {
        self.parent_cache.clear();
        // Deepest first, so setting a child's mtime never disturbs a parent's afterwards.
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.sort_by_key(|(comps, _)| std::cmp::Reverse(comps.len()));
        for (comps, mtime) in dirs {
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            if let Ok(pfd) = self.walk(parent, false) {
                let _ = rfs::utimensat(
                    &pfd,
                    name.as_os_str(),
                    &times(mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
        }
        Ok(self.stats)
    }
}

/// A numeric header field; like Go's archive/tar, an empty field (all NUL or spaces) is 0.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> Result<u64, UnpackError> {
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(UnpackError::Archive(e)),
    }
}

fn uid_of(uid: u32) -> rfs::Uid {
    rfs::Uid::from_raw(uid)
}

fn gid_of(gid: u32) -> rfs::Gid {
    rfs::Gid::from_raw(gid)
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn read_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Archive)? {
        for ext in exts {
            let ext = ext.map_err(UnpackError::Archive)?;
            if let Ok(key) = ext.key()
                && let Some(name) = key.strip_prefix("SCHILY.xattr.")
            {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn apply_xattrs(
    fd: BorrowedFd<'_>,
    xattrs: &[(String, Vec<u8>)],
    shown: &str,
) -> Result<(), UnpackError> {
    for (name, value) in xattrs {
        match rfs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty()) {
            Ok(()) => {}
            // A filesystem without that xattr namespace: the content is still correct.
            Err(Errno::NOTSUP) => {
                tracing::debug!("xattr {name} on {shown} not supported by the filesystem")
            }
            Err(e) => {
                return Err(UnpackError::Write {
                    path: format!("{shown} (xattr {name})"),
                    source: e.into(),
                });
            }
        }
    }
    Ok(())
}

impl Unpacker {
    /// In `cp` mode, refuses an entry that would replace a directory by a non-directory or
    /// the other way round.
    fn check_overwrite(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        new_is_dir: bool,
        shown: &str,
    ) -> Result<(), UnpackError> {
        if !self.no_overwrite_dir_non_dir {
            return Ok(());
        }
        let Ok(st) = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return Ok(());
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir == new_is_dir {
            return Ok(());
        }
        let (existing, new) = if is_dir {
            ("directory", "non-directory")
        } else {
            ("non-directory", "directory")
        };
        Err(UnpackError::Overwrite {
            path: shown.to_string(),
            existing,
            new,
        })
    }
}

/// Make room for a new entry `name` in `parent`. A directory is kept when `keep_dir` (tar
/// entries may repeat a directory); anything else is removed. Returns whether a directory
/// was kept.
fn clear_slot(parent: BorrowedFd<'_>, name: &OsStr, keep_dir: bool) -> Result<bool, Errno> {
    let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if keep_dir {
            return Ok(true);
        }
        remove_tree_at(parent, name)?;
    } else {
        rfs::unlinkat(parent, name, AtFlags::empty())?;
    }
    Ok(false)
}

/// Remove the directory `name` under `parent` and everything in it, never following symlinks.
pub(crate) fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let dir = rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut children = Vec::new();
    for ent in rfs::Dir::read_from(&dir)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        children.push((OsString::from_vec(n.to_vec()), ent.file_type()));
    }
    for (child, ftype) in children {
        if ftype == FileType::Directory {
            remove_tree_at(dir.as_fd(), &child)?;
        } else {
            rfs::unlinkat(&dir, child.as_os_str(), AtFlags::empty())?;
        }
    }
    rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests;
