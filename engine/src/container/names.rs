//! Container names → ids: `<root>/container-names/<name>` holds the id of the container that
//! has the name. Finding a name (every create checks its name is free) used to read every
//! container's config, which made creating n containers cost O(n²) config reads (seconds at
//! a few hundred). The index is a cache of the configs, never the truth: an entry counts only
//! when the config it points to has that name, so entries left by a crash are harmless.
//!
//! Entries are written and removed under the container-set lock (`lock_all`) by create,
//! rename and remove; an entry is written before the config that claims the name, so a
//! crash can leave a stale entry but never a name missing from a complete index. The index is
//! complete once `.complete` exists: the first create on a root made by an older version
//! builds it with one scan. Until then lookups scan, as before.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use super::ContainerError;
use super::model::ContainerConfig;
use super::store::ContainerStore;

const COMPLETE: &str = ".complete";

impl ContainerStore {
    fn names_dir(&self) -> PathBuf {
        self.root.join("container-names")
    }

    /// The index file of `name`, if `name` can be one (a name a container can have).
    fn name_entry(&self, name: &str) -> Option<PathBuf> {
        let ok = !name.is_empty()
            && name.len() <= 255
            && !name.starts_with('.')
            && !name.contains(['/', '\0']);
        ok.then(|| self.names_dir().join(name))
    }

    fn index_complete(&self) -> bool {
        self.names_dir().join(COMPLETE).exists()
    }

    /// Makes the index complete (one scan of every config, the first time). Call with the
    /// container-set lock held.
    pub(crate) fn ensure_name_index(&self) -> Result<(), ContainerError> {
        if self.index_complete() {
            return Ok(());
        }
        let dir = self.names_dir();
        fs::create_dir_all(&dir).map_err(|e| ContainerError::io(&dir, e))?;
        for cfg in self.list()? {
            self.index_name(&cfg.name, &cfg.id)?;
        }
        let marker = dir.join(COMPLETE);
        fs::write(&marker, b"").map_err(|e| ContainerError::io(&marker, e))
    }

    /// Records that `name` is `id`'s. Call with the container-set lock held, before the
    /// config naming it is written.
    pub(crate) fn index_name(&self, name: &str, id: &str) -> Result<(), ContainerError> {
        let Some(path) = self.name_entry(name) else {
            return Ok(());
        };
        let dir = self.names_dir();
        fs::create_dir_all(&dir).map_err(|e| ContainerError::io(&dir, e))?;
        super::store::write_file(&path, id.as_bytes(), false)
    }

    /// Forgets `name` if it is still `id`'s. Call with the container-set lock held, after the
    /// config is gone or renamed.
    pub(crate) fn unindex_name(&self, name: &str, id: &str) {
        if let Some(path) = self.name_entry(name)
            && fs::read_to_string(&path).is_ok_and(|held| held == id)
        {
            let _ = fs::remove_file(path);
        }
    }

    /// The container called `name`, if any.
    pub fn by_name(&self, name: &str) -> Result<Option<ContainerConfig>, ContainerError> {
        if self.index_complete()
            && let Some(path) = self.name_entry(name)
        {
            let id = match fs::read_to_string(&path) {
                Ok(id) => id,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(ContainerError::io(&path, e)),
            };
            let valid = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            return Ok(valid
                .then(|| self.load_config(&id).ok())
                .flatten()
                .filter(|c| c.name == name));
        }
        Ok(self.list()?.into_iter().find(|c| c.name == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(id: &str, name: &str) -> ContainerConfig {
        ContainerConfig {
            id: id.into(),
            name: name.into(),
            ..crate::container::lifecycle::empty_config()
        }
    }

    #[test]
    fn names_are_found_through_the_index_and_stale_entries_do_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(tmp.path().join("root"), tmp.path().join("run"));
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        // A root from before the index: found by scanning, then indexed.
        fs::create_dir_all(store.dir(&a)).unwrap();
        store.save_config(&config(&a, "web")).unwrap();
        assert_eq!(store.by_name("web").unwrap().unwrap().id, a);
        store.ensure_name_index().unwrap();
        assert_eq!(
            fs::read_to_string(store.names_dir().join("web")).unwrap(),
            a
        );
        assert_eq!(store.by_name("web").unwrap().unwrap().id, a);
        assert!(store.by_name("db").unwrap().is_none());
        // A stale entry (its container was renamed or removed in a crash) is no holder.
        store.index_name("db", &b).unwrap();
        assert!(store.by_name("db").unwrap().is_none());
        fs::create_dir_all(store.dir(&b)).unwrap();
        store.save_config(&config(&b, "other")).unwrap();
        assert!(store.by_name("db").unwrap().is_none());
        // Unindexing only removes the holder's own entry.
        store.unindex_name("web", &b);
        assert_eq!(store.by_name("web").unwrap().unwrap().id, a);
        store.unindex_name("web", &a);
        assert!(store.by_name("web").unwrap().is_none());
        // Names that cannot be files are looked up by scanning, never as paths.
        assert!(store.by_name("../web").unwrap().is_none());
    }
}
