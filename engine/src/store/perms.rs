//! File-level privacy inside the state and run roots. The roots themselves are 0700
//! (`private.rs`); this is the second wall, for a root someone opened by hand (or one shared
//! through a bind mount): a container's config (its environment), state, logs, OCI bundle
//! and exec specs are 0600 in 0700 directories, its attach socket 0600, and a project's
//! materialised secrets and configs sit in a 0700 directory. Secret files keep the mode the
//! compose file asks for (0444 by default): they are bind-mounted into containers whose user
//! may not be root, so it is their directory that shuts others out.
//!
//! `loose` lists what is more open than that; `tighten` closes it (`rcompose system
//! migrate-perms`, and the first command on a root that had to be closed again).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Files of a container's run directory that are bind-mounted into it and must stay readable
/// by its (possibly unprivileged) user; their directory is 0700.
const PUBLIC_RUN_FILES: &[&str] = &["hosts", "hostname", "resolv.conf"];

/// One entry more open than it should be: its path, its mode and the mode it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loose {
    pub path: PathBuf,
    pub mode: u32,
    pub want: u32,
}

/// Every entry under `root` and `run_root` that lets group or others read what they must not.
pub fn loose(root: &Path, run_root: &Path) -> Vec<Loose> {
    let mut out = vec![];
    for dir in entries(&root.join("containers")) {
        check_dir(&dir, &mut out);
        for f in entries(&dir) {
            // Only the container's own files: its rootfs dirs (upper, work, merged) carry
            // the image's modes, which the container itself relies on.
            if is_file_or_socket(&f) {
                check(&f, 0o600, &mut out);
            }
        }
    }
    let compose = root.join("compose");
    for project in entries(&compose) {
        check_dir(&project, &mut out);
    }
    for dir in entries(&run_root.join("containers")) {
        check_dir(&dir, &mut out);
        for f in entries(&dir) {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            if name
                .as_deref()
                .is_some_and(|n| PUBLIC_RUN_FILES.contains(&n))
            {
                continue;
            }
            if f.is_dir() && name.as_deref() == Some("bundle") {
                check_dir(&f, &mut out);
                for b in entries(&f) {
                    if is_file_or_socket(&b) {
                        check(&b, 0o600, &mut out);
                    }
                }
            } else if is_file_or_socket(&f) {
                check(&f, 0o600, &mut out);
            }
        }
    }
    let runtime = run_root.join("runtime");
    if runtime.is_dir() {
        check_dir(&runtime, &mut out);
    }
    out
}

/// Closes everything [`loose`] finds; returns how many entries changed.
pub fn tighten(root: &Path, run_root: &Path) -> io::Result<usize> {
    let found = loose(root, run_root);
    for l in &found {
        match std::fs::set_permissions(&l.path, std::fs::Permissions::from_mode(l.want)) {
            Ok(()) => {}
            // Removed meanwhile (a container that stopped): nothing left to close.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found.len())
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(_) => vec![],
    }
}

fn is_file_or_socket(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file() || m.file_type().is_socket())
}

fn check_dir(dir: &Path, out: &mut Vec<Loose>) {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        check(dir, 0o700, out);
    }
}

/// `want` is the most a path may allow; bits beyond it are reported (the owner's own bits are
/// kept: a 0400 file stays 0400).
fn check(path: &Path, want: u32, out: &mut Vec<Loose>) {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return;
    };
    let mode = m.permissions().mode() & 0o7777;
    if mode & !want & 0o077 != 0 {
        out.push(Loose {
            path: path.to_path_buf(),
            mode,
            want: mode & want,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn set(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }
    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn an_old_root_is_found_loose_and_tightened_without_touching_rootfs_or_etc_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, run) = (tmp.path().join("root"), tmp.path().join("run"));
        let c = root.join("containers/abc");
        fs::create_dir_all(c.join("upper/etc")).unwrap();
        for f in [
            "config.json",
            "state.json",
            "abc-json.log",
            "abc-json.log.1",
        ] {
            fs::write(c.join(f), "PASSWORD=x").unwrap();
            set(&c.join(f), 0o644);
        }
        set(&c, 0o755);
        set(&c.join("upper"), 0o755);
        let secrets = root.join("compose/proj/secrets/web");
        fs::create_dir_all(&secrets).unwrap();
        fs::write(secrets.join("pw"), "PASSWORD=y").unwrap();
        set(&secrets.join("pw"), 0o444);
        set(&root.join("compose/proj"), 0o755);
        let r = run.join("containers/abc");
        fs::create_dir_all(r.join("bundle")).unwrap();
        fs::write(r.join("bundle/config.json"), "PASSWORD=x").unwrap();
        fs::write(r.join("hosts"), "127.0.0.1 localhost").unwrap();
        fs::write(r.join("exec-1.json"), "PASSWORD=z").unwrap();
        for p in ["bundle/config.json", "hosts", "exec-1.json", "bundle"] {
            set(&r.join(p), if p == "bundle" { 0o755 } else { 0o644 });
        }
        set(&r, 0o755);

        let found: Vec<PathBuf> = loose(&root, &run).into_iter().map(|l| l.path).collect();
        assert_eq!(found.len(), 10, "{found:#?}");
        assert!(!found.contains(&r.join("hosts")));
        assert!(!found.contains(&c.join("upper")));
        assert_eq!(tighten(&root, &run).unwrap(), 10);
        assert!(loose(&root, &run).is_empty());
        assert_eq!(mode(&c), 0o700);
        assert_eq!(mode(&c.join("config.json")), 0o600);
        assert_eq!(mode(&c.join("abc-json.log.1")), 0o600);
        assert_eq!(mode(&r.join("bundle/config.json")), 0o600);
        assert_eq!(mode(&root.join("compose/proj")), 0o700);
        assert_eq!(
            mode(&secrets.join("pw")),
            0o444,
            "mounted for the container"
        );
        assert_eq!(mode(&r.join("hosts")), 0o644, "mounted for the container");
        assert_eq!(
            mode(&c.join("upper")),
            0o755,
            "the container's own filesystem"
        );
        assert_eq!(tighten(&root, &run).unwrap(), 0);
    }
}
