//! Leases: a running command's claim on blobs and layers it is about to reference.
//!
//! Pulls download and unpack without holding the store lock (so several pulls and
//! container creations proceed in parallel). Garbage collection, which runs under the
//! lock, keeps everything named in the lease file of a live process; leases of dead
//! processes are removed. Content writes need no lock: blobs are content-addressed and
//! renamed into place atomically, layers likewise.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Result, Store, StoreError, fsutil, io_err};

/// Held while a command works with content it has not committed yet; removed on drop.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    items: Mutex<BTreeSet<String>>,
}

impl Store {
    fn leases_dir(&self) -> PathBuf {
        self.root.join("leases")
    }

    /// Start an (empty) lease for this process.
    pub fn lease(&self) -> Result<Lease> {
        let dir = self.leases_dir();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(fsutil::unique_name("lease"));
        fsutil::atomic_write(&path, b"[]").map_err(io_err(&path))?;
        Ok(Lease {
            path,
            items: Mutex::new(BTreeSet::new()),
        })
    }

    /// Digests and chain ids claimed by live processes. Leases of dead ones are removed.
    pub(crate) fn live_leases(&self) -> Result<HashSet<String>> {
        let dir = self.leases_dir();
        let mut out = HashSet::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(StoreError::Io {
                    path: dir,
                    source: e,
                });
            }
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // an atomic write in flight
            }
            if !fsutil::owner_alive(&name) {
                let _ = fsutil::remove_inside(&dir, &e.path());
                continue;
            }
            if let Ok(bytes) = std::fs::read(e.path())
                && let Ok(items) = serde_json::from_slice::<Vec<String>>(&bytes)
            {
                out.extend(items);
            }
        }
        Ok(out)
    }
}

impl Lease {
    /// Add blob digests / chain ids to the lease (persisted before returning).
    pub fn add<I: IntoIterator<Item = String>>(&self, ids: I) -> Result<()> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let before = items.len();
        items.extend(ids);
        if items.len() == before {
            return Ok(());
        }
        let json = serde_json::to_vec(&*items).unwrap_or_default();
        fsutil::atomic_write(&self.path, &json).map_err(io_err(&self.path))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
