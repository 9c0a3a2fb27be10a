//! Local volumes: `<root>/volumes/<name>/_data` plus `meta.json` (docker's `volume inspect`
//! shape). A new volume is populated from the image's content at the mount point on first
//! use, as docker does; removal refuses volumes that containers still reference.
//!
//! A volume exists when its `meta.json` does. A `create` killed before writing it leaves a
//! directory that is not a volume (the next `create` of the name completes it, an `rm` of the
//! name removes it); a removal renames the directory to `.rm-<name>` before deleting it, so a
//! killed `rm` never leaves half a volume, and the next create or rm finishes the deletion.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("no such volume: {name}{}", suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default())]
    NotFound {
        name: String,
        suggestion: Option<String>,
    },
    #[error("invalid volume name \"{0}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("remove {name}: volume is in use by container(s) {}; remove them first", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("volume metadata {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.into(),
        source,
    }
}

/// Docker's `volume inspect` object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: PathBuf,
    pub name: String,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    /// rcompose: made for one container (`-v /path` or image VOLUME), removed by `rm -v`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
    /// rcompose: set once the volume has been populated from an image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub populated: bool,
}

pub struct Volumes {
    dir: PathBuf,
}

/// Prefix of a volume directory being removed; no volume name starts with a dot.
const TOMB: &str = ".rm-";

impl Volumes {
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join("volumes"),
        }
    }

    fn meta(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("meta.json")
    }

    /// Names of the volumes on disk: directories with a valid name and their metadata. Reads
    /// no metadata, so [`Self::get`] can use it for its suggestion (it once called `list`,
    /// which calls `get`: a directory without metadata recursed until the stack overflowed).
    fn names(&self) -> Result<Vec<String>, VolumeError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        Ok(rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter(|n| crate::container::validate_name(n).is_ok())
            .filter(|n| self.meta(n).exists())
            .collect())
    }

    /// Finishes the deletions that killed removals left (`.rm-<name>` directories).
    fn sweep(&self) {
        for e in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let is_tomb = e.file_name().to_str().is_some_and(|n| n.starts_with(TOMB));
            if is_tomb && e.path().parent() == Some(self.dir.as_path()) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    /// Creates the volume, or returns the existing one (docker's `volume create` is idempotent).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, VolumeError> {
        crate::container::validate_name(name).map_err(|_| VolumeError::InvalidName(name.into()))?;
        if let Ok(v) = self.get(name) {
            return Ok(v);
        }
        self.sweep();
        let data = self.dir.join(name).join("_data");
        fs::create_dir_all(&data).map_err(io_err(&data))?;
        let v = Volume {
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            driver: "local".into(),
            labels,
            mountpoint: data,
            name: name.into(),
            options: BTreeMap::new(),
            scope: "local".into(),
            anonymous,
            populated: false,
        };
        self.save(&v)?;
        Ok(v)
    }

    fn save(&self, v: &Volume) -> Result<(), VolumeError> {
        let p = self.meta(&v.name);
        crate::container::store::write_json_atomic(&p, v).map_err(|e| VolumeError::Corrupt {
            path: p.clone(),
            reason: e.to_string(),
        })
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        let p = self.meta(name);
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let suggestion = self
                    .names()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| (strsim::damerau_levenshtein(name, &n), n))
                    .filter(|(d, n)| *d <= (n.len() / 3).max(1))
                    .min_by_key(|(d, _)| *d)
                    .map(|(_, n)| n);
                return Err(VolumeError::NotFound {
                    name: name.into(),
                    suggestion,
                });
            }
            Err(e) => return Err(io_err(&p)(e)),
        };
        serde_json::from_slice(&data).map_err(|e| VolumeError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    pub fn data_dir(&self, name: &str) -> Result<PathBuf, VolumeError> {
        Ok(self.get(name)?.mountpoint)
    }

    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let mut out: Vec<Volume> = self
            .names()?
            .into_iter()
            .filter_map(|n| self.get(&n).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Copies `image_dir` (the image's content at the mount point) into a fresh volume, once.
    pub fn populate(&self, name: &str, image_dir: &Path) -> Result<(), VolumeError> {
        let mut v = self.get(name)?;
        if v.populated {
            return Ok(());
        }
        let empty = fs::read_dir(&v.mountpoint)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if empty && image_dir.is_dir() {
            copy_tree(image_dir, &v.mountpoint)?;
        }
        v.populated = true;
        self.save(&v)
    }

    /// Removes the volume unless `users` (containers referencing it) is non-empty.
    /// A directory of the name without metadata (a killed create) is removed as well.
    pub fn remove(&self, name: &str, users: Vec<String>) -> Result<(), VolumeError> {
        let dir = self.dir.join(name);
        // Guard: only ever a direct child of <root>/volumes.
        if crate::container::validate_name(name).is_err()
            || dir.parent() != Some(self.dir.as_path())
        {
            return Err(VolumeError::InvalidName(name.into()));
        }
        // First, so that `rm -f` of a name whose removal was killed after its rename (no
        // volume any more) still finishes that removal.
        self.sweep();
        match self.get(name) {
            Ok(_) => {}
            Err(VolumeError::NotFound { .. }) if dir.is_dir() => {}
            Err(e) => return Err(e),
        }
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.into(),
                users,
            });
        }
        let tomb = self.dir.join(format!("{TOMB}{name}"));
        if tomb.exists() {
            fs::remove_dir_all(&tomb).map_err(io_err(&tomb))?;
        }
        match fs::rename(&dir, &tomb) {
            Ok(()) => {}
            // Removed by another command since the check above.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound {
                    name: name.into(),
                    suggestion: None,
                });
            }
            Err(e) => return Err(io_err(&dir)(e)),
        }
        // Another command's sweep may be deleting the same tomb: gone is done.
        match fs::remove_dir_all(&tomb) {
            Err(e) if tomb.exists() => Err(io_err(&tomb)(e)),
            _ => Ok(()),
        }
    }
}

/// Recursive copy preserving modes, ownership and symlinks (never following them).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), VolumeError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for ent in fs::read_dir(src).map_err(io_err(src))? {
        let ent = ent.map_err(io_err(src))?;
        let from = ent.path();
        let to = dst.join(ent.file_name());
        let md = fs::symlink_metadata(&from).map_err(io_err(&from))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(io_err(&from))?;
            std::os::unix::fs::symlink(target, &to).map_err(io_err(&to))?;
        } else if ft.is_dir() {
            fs::create_dir_all(&to).map_err(io_err(&to))?;
            copy_tree(&from, &to)?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(io_err(&to))?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()));
        if !ft.is_symlink() {
            let _ = fs::set_permissions(&to, fs::Permissions::from_mode(md.mode() & 0o7777));
        }
    }
    let md = fs::metadata(src).map_err(io_err(src))?;
    let _ = std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()));
    let _ = fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_populate_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        let v = vols.create("data", BTreeMap::new(), false).unwrap();
        let img = tmp.path().join("img");
        fs::create_dir_all(img.join("sub")).unwrap();
        fs::write(img.join("sub/f"), "x").unwrap();
        vols.populate("data", &img).unwrap();
        assert_eq!(fs::read_to_string(v.mountpoint.join("sub/f")).unwrap(), "x");
        assert!(matches!(
            vols.remove("data", vec!["c1".into()]),
            Err(VolumeError::InUse { .. })
        ));
        assert!(matches!(
            vols.get("dta"),
            Err(VolumeError::NotFound {
                suggestion: Some(_),
                ..
            })
        ));
        vols.remove("data", vec![]).unwrap();
        assert!(vols.list().unwrap().is_empty());
    }

    /// What a `create` killed before its metadata, or an `rm` killed inside the deletion (as
    /// it was before the rename), leaves: a directory without `meta.json`. `get` of another
    /// name once recursed through `list` until the stack overflowed (crash suite, seed
    /// 1796386632271338963).
    #[test]
    fn a_directory_without_metadata_is_no_volume_and_breaks_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        vols.create("keep", BTreeMap::new(), false).unwrap();
        vols.create("half", BTreeMap::new(), false).unwrap();
        fs::remove_file(vols.meta("half")).unwrap();
        assert!(matches!(
            vols.get("other"),
            Err(VolumeError::NotFound {
                suggestion: None,
                ..
            })
        ));
        assert!(matches!(
            vols.get("kep"),
            Err(VolumeError::NotFound { suggestion: Some(s), .. }) if s == "keep"
        ));
        let names: Vec<String> = vols.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["keep"]);
        vols.create("other", BTreeMap::new(), false).unwrap();
        // The next rm of the name removes the leftover; a create of it completes it instead.
        vols.remove("half", vec![]).unwrap();
        assert!(!tmp.path().join("volumes/half").exists());
        vols.create("half2", BTreeMap::new(), false).unwrap();
        fs::remove_file(vols.meta("half2")).unwrap();
        let v = vols.create("half2", BTreeMap::new(), false).unwrap();
        assert!(v.mountpoint.is_dir());
        assert_eq!(vols.list().unwrap().len(), 3);
    }

    /// A removal killed after its rename leaves `.rm-<name>`: not listed, finished by the
    /// next create or rm, and the name is free at once.
    #[test]
    fn a_removal_killed_after_its_rename_is_invisible_and_finished_later() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::new(tmp.path());
        vols.create("gone", BTreeMap::new(), false).unwrap();
        fs::write(tmp.path().join("volumes/gone/_data/f"), "x").unwrap();
        let tomb = tmp.path().join("volumes/.rm-gone");
        fs::rename(tmp.path().join("volumes/gone"), &tomb).unwrap();
        assert!(vols.list().unwrap().is_empty());
        assert!(matches!(
            vols.get("gone"),
            Err(VolumeError::NotFound { .. })
        ));
        // `rm` of the name (no volume now) finishes the deletion too, as `rm -f` relies on.
        assert!(matches!(
            vols.remove("gone", vec![]),
            Err(VolumeError::NotFound { .. })
        ));
        assert!(!tomb.exists());
        fs::create_dir_all(tomb.join("_data")).unwrap();
        vols.create("gone", BTreeMap::new(), false).unwrap();
        assert!(!tomb.exists());
        assert_eq!(vols.list().unwrap().len(), 1);
        // The tomb of a name that is being removed again does not block its removal.
        fs::create_dir_all(tomb.join("_data")).unwrap();
        vols.remove("gone", vec![]).unwrap();
        assert!(!tomb.exists());
        assert!(vols.list().unwrap().is_empty());
        assert!(matches!(
            vols.remove("../x", vec![]),
            Err(VolumeError::InvalidName(_))
        ));
    }
}
