//! Which containers use which image. Derived, not recorded: every container's
//! `<root>/containers/<id>/config.json` names its image id; that file is written at create and
//! removed at `rm`. Deriving spares every `run --rm` two rewrites of the whole image index
//! (four fsyncs, 5–20 ms on a busy disk), and the answer can never drift from the containers
//! that exist (a crash between `rm` and an index update used to leave a phantom user).
//!
//! Races with `image rm`: a container's config is written before
//! [`Store::confirm_image_user`] checks, under the store lock, that the image still exists;
//! `image rm` scans the configs under the same lock. Either the scan sees the new container, or
//! the check sees the image gone and the create fails.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Result, Store, StoreError};

/// The two fields of a container's config.json this module needs.
#[derive(Deserialize)]
struct ConfigRef {
    id: String,
    #[serde(default)]
    image_id: String,
}

impl Store {
    /// Image id → ids of the containers created from it.
    pub fn image_users(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let dir = self.root.join("containers");
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
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
        for entry in entries.flatten() {
            // A container being created or removed right now may have no config (yet/any more).
            let Ok(bytes) = std::fs::read(entry.path().join("config.json")) else {
                continue;
            };
            if let Ok(c) = serde_json::from_slice::<ConfigRef>(&bytes)
                && !c.image_id.is_empty()
            {
                out.entry(c.image_id).or_default().insert(c.id);
            }
        }
        Ok(out)
    }
}
