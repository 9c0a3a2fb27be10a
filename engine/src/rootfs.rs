//! A container's root filesystem: an overlay of the image layers (read-only lower dirs) with a
//! per-container upper/work dir, mounted on `<container dir>/merged`.
//!
//! The mount options string is limited to one page, so (like docker's overlay2 `l/` links)
//! every lower dir is reached through a short relative symlink `l/<n>` and the mount is done
//! with the container directory as the working directory. This keeps 100+ layer images
//! mountable whatever the length of the store's paths. Callers must be single-threaded (the
//! CLI and the monitor are), since the working directory is process-wide.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("mounting the overlay root filesystem at {target}: {source}")]
    Mount { target: PathBuf, source: nix::Error },
    #[error("the image has no layers")]
    NoLayers,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.into(),
        source,
    }
}

/// The overlay paths of one container directory.
pub struct Rootfs {
    pub dir: PathBuf,
}

impl Rootfs {
    pub fn new(container_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: container_dir.into(),
        }
    }
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Creates upper/work/merged and the `l/<n>` links (lowest layer is `l/0`).
    pub fn prepare(&self, layer_dirs: &[PathBuf]) -> Result<(), RootfsError> {
        if layer_dirs.is_empty() {
            return Err(RootfsError::NoLayers);
        }
        // The directories above (a container's own, or its run directory for `--rm`) are
        // private (`store::perms`); upper, work and merged keep ordinary modes below them.
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(io_err(&self.dir))?;
        }
        for d in ["upper", "work", "merged", "l"] {
            let p = self.dir.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        for (i, layer) in layer_dirs.iter().enumerate() {
            let link = self.dir.join("l").join(i.to_string());
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(layer, &link).map_err(io_err(&link))?;
        }
        Ok(())
    }

    pub fn is_mounted(&self) -> bool {
        is_mountpoint(&self.merged())
    }

    /// Mounts the overlay unless it is mounted already. `volatile` skips the sync of the
    /// upper filesystem at unmount (tens of ms): only for containers removed when they stop,
    /// since a crash may leave a volatile upper dir unusable.
    pub fn mount(&self, layers: usize, volatile: bool) -> Result<(), RootfsError> {
        if self.is_mounted() {
            return Ok(());
        }
        let lower: Vec<String> = (0..layers).rev().map(|i| format!("l/{i}")).collect();
        let mut opts = format!(
            "lowerdir={},upperdir=upper,workdir=work,index=off",
            lower.join(":")
        );
        if volatile {
            opts.push_str(",volatile");
        }
        let prev = std::env::current_dir().ok();
        std::env::set_current_dir(&self.dir).map_err(io_err(&self.dir))?;
        let res = mount(
            Some("overlay"),
            "merged",
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        );
        if let Some(p) = prev {
            let _ = std::env::set_current_dir(p);
        }
        res.map_err(|source| RootfsError::Mount {
            target: self.merged(),
            source,
        })
    }

    /// Lazily unmounts the overlay (no error when it was not mounted).
    pub fn unmount(&self) -> Result<(), RootfsError> {
        let m = self.merged();
        while is_mountpoint(&m) {
            match umount2(&m, MntFlags::MNT_DETACH) {
                Ok(()) => {}
                Err(nix::Error::EINVAL) => break,
                Err(source) => return Err(RootfsError::Mount { target: m, source }),
            }
        }
        Ok(())
    }
}

/// True when `path` (symlinks followed) is the mount point of some mount, bind mounts of the
/// same filesystem included. One statx (STATX_ATTR_MOUNT_ROOT, Linux 5.8+); older kernels
/// scan /proc/self/mountinfo, which costs far more on a host with many mounts and is on
/// every start and stop path.
pub fn is_mountpoint(path: &Path) -> bool {
    use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags};
    match rustix::fs::statx(CWD, path, AtFlags::NO_AUTOMOUNT, StatxFlags::empty()) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        }
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => false,
        _ => is_mountpoint_by_mountinfo(path),
    }
}

fn is_mountpoint_by_mountinfo(path: &Path) -> bool {
    let Ok(canon) = fs::canonicalize(path) else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(|mp| unescape_mount_path(mp) == want)
            .unwrap_or(false)
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
pub(crate) fn unescape_mount_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(n as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statx_and_mountinfo_agree_on_mount_points() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        fs::create_dir(&plain).unwrap();
        for (p, want) in [
            (Path::new("/proc"), true),
            (plain.as_path(), false),
            (&tmp.path().join("missing"), false),
        ] {
            assert_eq!(is_mountpoint(p), want, "{}", p.display());
            assert_eq!(is_mountpoint_by_mountinfo(p), want, "{}", p.display());
        }
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }

    #[test]
    fn overlay_of_many_deep_layers_mounts() {
        if !nix::unistd::Uid::effective().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("x".repeat(100)).join("y".repeat(100));
        let mut layers = vec![];
        for i in 0..60 {
            let d = deep.join(format!("layer-{i:03}-{}", "z".repeat(40)));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(format!("f{i}")), "x").unwrap();
            layers.push(d);
        }
        let r = Rootfs::new(tmp.path().join("c"));
        r.prepare(&layers).unwrap();
        r.mount(layers.len(), false).unwrap();
        assert!(r.merged().join("f0").exists() && r.merged().join("f59").exists());
        fs::write(r.merged().join("new"), "y").unwrap();
        r.unmount().unwrap();
        assert!(!r.is_mounted());
        assert!(r.upper().join("new").exists());
    }
}
