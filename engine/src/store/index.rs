//! The image index (`images/index.json`): tags → image id; image id → manifest. Container
//! users of an image are derived from the containers' configs (`users.rs`).
//! Image ids are Docker's: the digest of the config blob.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use super::digest::{chain_ids, digest_hex, is_hex64};
use super::manifest::Manifest;
use super::{LayerInfo, Locked, Result, Store, StoreError, fsutil, io_err};
use crate::image::reference::{Reference, familiar_name};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct IndexFile {
    /// Full tagged name (`docker.io/library/busybox:latest`) → image id.
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    images: BTreeMap<String, ImageEntry>,
}

/// What the index records for one image.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageEntry {
    /// Digest of the single-platform manifest blob.
    pub manifest: String,
    /// `name@sha256:…` digests this image was pulled or pushed as.
    #[serde(default)]
    pub repo_digests: BTreeSet<String>,
    /// RFC 3339 time the image entered this store.
    #[serde(default)]
    pub added: String,
    #[serde(default)]
    pub last_tag_time: Option<String>,
    /// Containers using this image: no longer recorded (see `users.rs`); read from older
    /// index files and dropped at their next write.
    #[serde(default, skip_serializing)]
    pub users: BTreeSet<String>,
}

/// Everything about one stored image, ready for use.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    pub manifest_digest: String,
    pub manifest: Manifest,
    pub config: ImageConfiguration,
    /// The config blob as JSON, including Docker-only fields (Healthcheck, Shell, …).
    pub config_json: serde_json::Value,
    /// Full names (`docker.io/library/busybox:latest`), sorted.
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Layers lowest first.
    pub layers: Vec<LayerInfo>,
    /// Unpacked layer directories, lowest first (reverse them for overlay's lowerdir=).
    pub layer_dirs: Vec<PathBuf>,
    /// Sum of the layers' content sizes.
    pub size: u64,
    pub added: String,
    pub last_tag_time: Option<String>,
}

impl ImageRecord {
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }

    /// Repo tags in Docker's short form (`busybox:latest`).
    pub fn familiar_tags(&self) -> Vec<String> {
        self.repo_tags.iter().map(|t| familiar_name(t)).collect()
    }

    /// The config's `created`, if any.
    pub fn created(&self) -> Option<&str> {
        self.config.created().as_deref()
    }
}

/// One step reported by [`Locked::remove_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(String),
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

impl Store {
    fn index_path(&self) -> PathBuf {
        self.root.join("images/index.json")
    }

    fn read_index(&self) -> Result<IndexFile> {
        let p = self.index_path();
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                what: p.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// Look an image up by tag (`busybox`, `busybox:1`, `host:5000/x:y`), by `name@digest`, by
    /// full id (`sha256:…`) or by a unique id prefix.
    pub fn resolve(&self, reference_or_id: &str) -> Result<ImageRecord> {
        let index = self.read_index()?;
        let id = find_id(&index, reference_or_id)?;
        self.record(&index, &id)
    }

    /// Called once a container's config (naming `image_id`) is saved: fails when the image
    /// was removed meanwhile, so that the caller removes the container again.
    pub fn confirm_image_user(&self, image_id: &str) -> Result<()> {
        let locked = self.lock()?;
        if locked.read_index()?.images.contains_key(image_id) {
            Ok(())
        } else {
            Err(StoreError::NoSuchImage(image_id.to_string()))
        }
    }

    /// The id an input refers to, without loading the image.
    pub fn resolve_id(&self, reference_or_id: &str) -> Result<String> {
        find_id(&self.read_index()?, reference_or_id)
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for id in index.images.keys() {
            match self.record(&index, id) {
                Ok(r) => out.push(r),
                // Removed by a concurrent `rm`/`prune` after we read the index.
                Err(StoreError::MissingBlob(_)) if !self.read_index()?.images.contains_key(id) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| b.created().cmp(&a.created()).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn record(&self, index: &IndexFile, id: &str) -> Result<ImageRecord> {
        let entry = index
            .images
            .get(id)
            .ok_or_else(|| StoreError::NoSuchImage(id.to_string()))?;
        let manifest_bytes = self.read_blob(&entry.manifest)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| StoreError::Corrupt {
                what: format!("manifest {}", entry.manifest),
                reason: e.to_string(),
            })?;
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let corrupt = |e: serde_json::Error| StoreError::Corrupt {
            what: format!("config {}", manifest.config.digest),
            reason: e.to_string(),
        };
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(corrupt)?;
        let config_json: serde_json::Value =
            serde_json::from_slice(&config_bytes).map_err(corrupt)?;
        let chains = chain_ids(config.rootfs().diff_ids());
        let mut layers = Vec::new();
        let mut layer_dirs = Vec::new();
        for chain in &chains {
            layers.push(self.layer_info(chain)?);
            layer_dirs.push(self.layer_diff_dir(chain)?);
        }
        let repo_tags = index
            .tags
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect();
        Ok(ImageRecord {
            id: id.to_string(),
            manifest_digest: entry.manifest.clone(),
            manifest,
            config,
            config_json,
            repo_tags,
            repo_digests: entry.repo_digests.iter().cloned().collect(),
            size: layers.iter().map(|l| l.size).sum(),
            layers,
            layer_dirs,
            added: entry.added.clone(),
            last_tag_time: entry.last_tag_time.clone(),
        })
    }
}

fn find_id(index: &IndexFile, input: &str) -> Result<String> {
    let not_found = || StoreError::NoSuchImage(input.to_string());
    if let Some(hex) = digest_hex(input) {
        let id = format!("sha256:{hex}");
        if index.images.contains_key(&id) {
            return Ok(id);
        }
        return Err(not_found());
    }
    let by_ref = Reference::parse(input).ok().and_then(|r| {
        let r = r.with_default_tag();
        if let Some(d) = &r.digest {
            let rd = format!("{}@{d}", r.name());
            return index
                .images
                .iter()
                .find(|(id, e)| e.repo_digests.contains(&rd) || &e.manifest == d || *id == d)
                .map(|(id, _)| id.clone());
        }
        r.tagged().and_then(|t| index.tags.get(&t).cloned())
    });
    if let Some(id) = by_ref {
        return Ok(id);
    }
    let prefix = input.strip_prefix("sha256:").unwrap_or(input);
    if !prefix.is_empty() && prefix.len() <= 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        let matches: Vec<_> = index
            .images
            .keys()
            .filter(|id| id.trim_start_matches("sha256:").starts_with(prefix))
            .collect();
        match matches.len() {
            1 => return Ok(matches[0].clone()),
            0 => {}
            _ => return Err(StoreError::Ambiguous(input.to_string())),
        }
    }
    Err(not_found())
}

impl Locked<'_> {
    fn write_index(&self, index: &IndexFile) -> Result<()> {
        let p = self.index_path();
        let json = serde_json::to_vec_pretty(index).map_err(|e| StoreError::Corrupt {
            what: "image index".into(),
            reason: e.to_string(),
        })?;
        fsutil::atomic_write(&p, &json).map_err(io_err(&p))
    }

    /// Register an image whose manifest, config and layers are all in the store, and point
    /// `tags` (full tagged names) at it. Returns the image id. Verifies completeness first,
    /// so an image never becomes visible half-present.
    pub fn commit_image(
        &self,
        manifest_digest: &str,
        tags: &[String],
        repo_digest: Option<String>,
    ) -> Result<String> {
        let manifest: Manifest = serde_json::from_slice(&self.read_blob(manifest_digest)?)
            .map_err(|e| StoreError::Corrupt {
                what: format!("manifest {manifest_digest}"),
                reason: e.to_string(),
            })?;
        let config: ImageConfiguration =
            serde_json::from_slice(&self.read_blob(&manifest.config.digest)?).map_err(|e| {
                StoreError::Corrupt {
                    what: format!("config {}", manifest.config.digest),
                    reason: e.to_string(),
                }
            })?;
        for chain in chain_ids(config.rootfs().diff_ids()) {
            if !self.has_layer(&chain) {
                return Err(StoreError::Corrupt {
                    what: format!("image {}", manifest.config.digest),
                    reason: format!("layer {chain} is not unpacked"),
                });
            }
        }
        let id = manifest.config.digest.clone();
        let now = crate::units::time::now_rfc3339();
        let mut index = self.read_index()?;
        let entry = index
            .images
            .entry(id.clone())
            .or_insert_with(|| ImageEntry {
                manifest: manifest_digest.to_string(),
                added: now.clone(),
                ..Default::default()
            });
        entry.manifest = manifest_digest.to_string();
        if let Some(rd) = repo_digest {
            entry.repo_digests.insert(rd);
        }
        if !tags.is_empty() {
            entry.last_tag_time = Some(now);
        }
        for t in tags {
            index.tags.insert(t.clone(), id.clone());
        }
        self.write_index(&index)?;
        Ok(id)
    }

    /// Record that the image is known to a registry as `name@sha256:…` (after a push).
    pub fn add_repo_digest(&self, image_id: &str, repo_digest: &str) -> Result<()> {
        let mut index = self.read_index()?;
        let entry = index
            .images
            .get_mut(image_id)
            .ok_or_else(|| StoreError::NoSuchImage(image_id.to_string()))?;
        if entry.repo_digests.insert(repo_digest.to_string()) {
            self.write_index(&index)?;
        }
        Ok(())
    }

    /// Point the full tagged name `tag` at `image_id`.
    pub fn tag(&self, image_id: &str, tag: &str) -> Result<()> {
        let mut index = self.read_index()?;
        let entry = index
            .images
            .get_mut(image_id)
            .ok_or_else(|| StoreError::NoSuchImage(image_id.to_string()))?;
        entry.last_tag_time = Some(crate::units::time::now_rfc3339());
        index.tags.insert(tag.to_string(), image_id.to_string());
        self.write_index(&index)
    }

    /// Docker's `rmi` semantics. `input` naming one of several tags only untags; naming the
    /// last tag or the id deletes the image and frees exactly the blobs and layers no other
    /// image uses. Images used by containers are refused unless `force` (then only untagged).
    pub fn remove_image(&self, input: &str, force: bool) -> Result<Vec<RemoveEvent>> {
        let mut index = self.read_index()?;
        let id = find_id(&index, input)?;
        let tags: Vec<String> = index
            .tags
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .collect();
        let entry = index.images.get(&id).cloned().unwrap_or_default();
        let by_tag = Reference::parse(input)
            .ok()
            .and_then(|r| r.with_default_tag().tagged())
            .filter(|t| tags.contains(t) && digest_hex(input).is_none());
        let mut events = Vec::new();
        if let Some(tag) = &by_tag
            && tags.len() > 1
        {
            index.tags.remove(tag);
            self.write_index(&index)?;
            return Ok(vec![RemoveEvent::Untagged(familiar_name(tag))]);
        }
        if by_tag.is_none() && tags.len() > 1 && !force {
            return Err(StoreError::Conflict(format!(
                "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short(&id)
            )));
        }
        let users = self.image_users()?;
        if let Some(user) = users.get(&id).and_then(|u| u.iter().next()) {
            if !force {
                let what = match &by_tag {
                    Some(t) => format!(
                        "unable to remove repository reference {:?} (must force)",
                        familiar_name(t)
                    ),
                    None => format!("unable to delete {} (must be forced)", short(&id)),
                };
                return Err(StoreError::Conflict(format!(
                    "{what} - container {} is using its referenced image {}",
                    short(user),
                    short(&id)
                )));
            }
            for t in &tags {
                index.tags.remove(t);
                events.push(RemoveEvent::Untagged(familiar_name(t)));
            }
            self.write_index(&index)?;
            return Ok(events);
        }
        for t in &tags {
            index.tags.remove(t);
            events.push(RemoveEvent::Untagged(familiar_name(t)));
        }
        for rd in &entry.repo_digests {
            events.push(RemoveEvent::Untagged(familiar_name(rd)));
        }
        index.images.remove(&id);
        self.write_index(&index)?;
        events.push(RemoveEvent::Deleted(id.clone()));
        for layer in self.collect_garbage()? {
            events.push(RemoveEvent::Deleted(layer));
        }
        Ok(events)
    }

    /// Remove every blob and layer that no indexed image references. Returns the removed
    /// layers' chain ids. Unreadable images keep everything they might reference.
    pub fn collect_garbage(&self) -> Result<Vec<String>> {
        let index = self.read_index()?;
        // Content claimed by commands still running (pulls in progress) stays.
        let leased = self.live_leases()?;
        let mut keep_blobs: HashSet<String> = leased.clone();
        let mut keep_layers: HashSet<String> = leased
            .iter()
            .map(|d| d.trim_start_matches("sha256:").to_string())
            .collect();
        for id in index.images.keys() {
            let record = match self.record(&index, id) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("image {id} is unreadable ({e}); skipping garbage collection");
                    return Ok(Vec::new());
                }
            };
            keep_blobs.insert(record.manifest_digest.clone());
            keep_blobs.insert(record.manifest.config.digest.clone());
            for l in &record.manifest.layers {
                keep_blobs.insert(l.digest.clone());
            }
            for l in &record.layers {
                keep_layers.insert(l.chain_id.trim_start_matches("sha256:").to_string());
            }
        }
        let blobs_dir = self.root.join("blobs/sha256");
        for e in std::fs::read_dir(&blobs_dir)
            .map_err(io_err(&blobs_dir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_hex64(&name) && !keep_blobs.contains(&format!("sha256:{name}")) {
                fsutil::remove_inside(&blobs_dir, &e.path()).map_err(io_err(&e.path()))?;
            }
        }
        let layers_dir = self.root.join("layers");
        let mut removed = Vec::new();
        for e in std::fs::read_dir(&layers_dir)
            .map_err(io_err(&layers_dir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_hex64(&name) && !keep_layers.contains(&name) {
                // Move it out first, so an interrupted removal never leaves a partial
                // layer under layers/ (tmp/ leftovers are cleared under the lock).
                let doomed = self.tmp_dir().join(fsutil::unique_name("gc"));
                std::fs::rename(e.path(), &doomed).map_err(io_err(&e.path()))?;
                fsutil::remove_inside(&self.tmp_dir(), &doomed).map_err(io_err(&doomed))?;
                removed.push(format!("sha256:{name}"));
            }
        }
        Ok(removed)
    }

    /// Ids of images with no tag (dangling); with `all`, also tagged ones. Images with
    /// container users are never listed.
    pub fn prune_candidates(&self, all: bool) -> Result<Vec<String>> {
        let index = self.read_index()?;
        let tagged: HashSet<&String> = index.tags.values().collect();
        let users = self.image_users()?;
        Ok(index
            .images
            .iter()
            .filter(|(id, _)| !users.contains_key(*id) && (all || !tagged.contains(id)))
            .map(|(id, _)| id.clone())
            .collect())
    }
}
