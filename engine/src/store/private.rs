//! State roots that nobody else can read. A container's config holds its environment
//! (database passwords), its logs hold whatever it prints, and both live under the state root
//! and the run root: Docker keeps /var/lib/docker at 0710. Ours are 0700 (nothing unprivileged
//! has to pass through them: containers see their files through mounts made as root), set when
//! rcompose creates them and tightened on the next start for roots made by older versions.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// What an rcompose state or run root holds; an existing directory is only tightened when it
/// is empty or holds some of these, never a directory someone pointed `--root` at by mistake
/// (say /tmp or a home directory).
const OUR_ENTRIES: &[&str] = &[
    "containers",
    "images",
    "layers",
    "blobs",
    "networks",
    "volumes",
    "dns",
    "firewall",
    "proxies",
    "locks",
    "build",
];

/// Creates `dir` 0700 if missing (its parents as usual), and tightens an existing rcompose
/// root whose mode lets group or others in. Returns whether the mode was changed.
pub fn ensure_private_root(dir: &Path) -> io::Result<bool> {
    if dir.as_os_str().is_empty() || dir == Path::new("/") {
        return Err(io::Error::other(format!(
            "refusing {:?} as a state root: give a directory of its own",
            dir
        )));
    }
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            // Its subdirectories (containers, networks, names…) each get a block group of
            // their own, so one's churn does not slow the others' file creation.
            super::fsutil::spread_subdirs(dir);
            // The umask may have taken bits away, never added them: 0700 or tighter.
            Ok(true)
        }
        Err(e) => Err(e),
        Ok(m) if !m.is_dir() => Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        ))),
        Ok(m) => {
            let mode = m.permissions().mode() & 0o7777;
            if mode & 0o077 == 0 || !is_ours(dir)? {
                return Ok(false);
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
            Ok(true)
        }
    }
}

fn is_ours(dir: &Path) -> io::Result<bool> {
    let mut entries = std::fs::read_dir(dir)?.peekable();
    if entries.peek().is_none() {
        return Ok(true);
    }
    Ok(entries
        .flatten()
        .any(|e| OUR_ENTRIES.contains(&e.file_name().to_string_lossy().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_roots_are_private_and_old_ones_tightened_but_foreign_dirs_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("a/b/root");
        assert!(ensure_private_root(&fresh).unwrap());
        assert_eq!(mode(&fresh) & 0o077, 0);
        assert!(!ensure_private_root(&fresh).unwrap(), "already private");

        let old = tmp.path().join("old");
        std::fs::create_dir_all(old.join("containers")).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ensure_private_root(&old).unwrap());
        assert_eq!(mode(&old), 0o700);

        let foreign = tmp.path().join("home");
        std::fs::create_dir_all(foreign.join("documents")).unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!ensure_private_root(&foreign).unwrap());
        assert_eq!(
            mode(&foreign),
            0o755,
            "a directory that is not ours keeps its mode"
        );

        assert!(ensure_private_root(Path::new("/")).is_err());
        assert!(ensure_private_root(Path::new("")).is_err());
    }
}
