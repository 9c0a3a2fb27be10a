//! `image save` / `image load`: docker-archive tarballs (with an OCI image layout inside,
//! as Docker 25+ writes them) and plain OCI image-layout archives.
//!
//! Saved archives carry the stored blobs unchanged (layers stay compressed, manifests keep
//! their digests); `docker load` accepts compressed layers. Loading verifies every blob
//! against its digest and every layer against its diff_id; a failure leaves no image behind.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsFd;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::reference::{Reference, familiar_name};
use super::{ImageError, Result, io_err};
use crate::store::digest::{chain_ids, decompress};
use crate::store::manifest::{
    AnyManifest, Descriptor, Manifest, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD,
    OCI_MANIFEST, parse_any,
};
use crate::store::{Locked, Store, fsutil};

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// What to save: an image and the full tagged names to record for it.
pub struct SaveItem {
    pub image_id: String,
    pub tags: Vec<String>,
}

/// Resolve `save` arguments: a tag saves that tag, an id saves all of the image's tags.
pub fn save_items(store: &Store, names: &[String]) -> Result<Vec<SaveItem>> {
    let mut items: Vec<SaveItem> = Vec::new();
    for name in names {
        let img = store.resolve(name)?;
        let by_tag = Reference::parse(name)
            .ok()
            .and_then(|r| r.with_default_tag().tagged())
            .filter(|t| img.repo_tags.contains(t));
        let tags = match by_tag {
            Some(t) => vec![t],
            None => img.repo_tags.clone(),
        };
        match items.iter_mut().find(|i| i.image_id == img.id) {
            Some(existing) => {
                for t in tags {
                    if !existing.tags.contains(&t) {
                        existing.tags.push(t);
                    }
                }
            }
            None => items.push(SaveItem {
                image_id: img.id,
                tags,
            }),
        }
    }
    Ok(items)
}

/// Write a docker-archive (with OCI layout) of `items` to `out`.
pub fn save<W: Write>(store: &Store, items: &[SaveItem], out: W) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut written = BTreeSet::new();
    let mut entries = Vec::new();
    let mut index = Vec::new();
    let write_err = |e: io::Error| ImageError::Io {
        path: "archive".into(),
        source: e,
    };
    append_bytes(&mut tar, "blobs/", None, true).map_err(write_err)?;
    append_bytes(&mut tar, "blobs/sha256/", None, true).map_err(write_err)?;
    for item in items {
        let img = store.resolve(&item.image_id)?;
        let mut blobs = vec![
            img.manifest_digest.clone(),
            img.manifest.config.digest.clone(),
        ];
        blobs.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
        for d in &blobs {
            if written.insert(d.clone()) {
                let size = store.blob_size(d)?;
                let file = store.open_blob(d)?;
                let path = format!("blobs/sha256/{}", &d[7..]);
                let mut h = tar::Header::new_ustar();
                h.set_size(size);
                h.set_mode(0o444);
                h.set_mtime(0);
                h.set_uid(0);
                h.set_gid(0);
                h.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut h, &path, BufReader::new(file))
                    .map_err(write_err)?;
            }
        }
        let names: Vec<String> = item.tags.iter().map(|t| familiar_name(t)).collect();
        entries.push(ArchiveEntry {
            config: format!("blobs/sha256/{}", &img.manifest.config.digest[7..]),
            repo_tags: Some(names),
            layers: img
                .manifest
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", &l.digest[7..]))
                .collect(),
        });
        let size = store.blob_size(&img.manifest_digest)?;
        let media = img
            .manifest
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.into());
        if item.tags.is_empty() {
            index.push(json!({"mediaType": media, "digest": img.manifest_digest, "size": size}));
        }
        for t in &item.tags {
            let tag = t.rsplit_once(':').map(|x| x.1).unwrap_or("latest");
            index.push(json!({
                "mediaType": media, "digest": img.manifest_digest, "size": size,
                "annotations": {
                    "io.containerd.image.name": t,
                    "org.opencontainers.image.ref.name": tag,
                }
            }));
        }
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index});
    let files = [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", serde_json::to_vec(&index).unwrap_or_default()),
        (
            "manifest.json",
            serde_json::to_vec(&entries).unwrap_or_default(),
        ),
    ];
    for (name, bytes) in files {
        append_bytes(&mut tar, name, Some(&bytes), false).map_err(write_err)?;
    }
    tar.into_inner()
        .map_err(write_err)?
        .flush()
        .map_err(write_err)
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: Option<&[u8]>,
    dir: bool,
) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    if dir {
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, name, io::empty())
    } else {
        let bytes = bytes.unwrap_or_default();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o444);
        h.set_size(bytes.len() as u64);
        tar.append_data(&mut h, name, bytes)
    }
}

/// What `load` produced.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Familiar tags loaded (`busybox:latest`).
    pub tags: Vec<String>,
    /// Ids of images loaded without any tag.
    pub untagged_ids: Vec<String>,
}

/// Load a docker-archive or OCI-layout archive (optionally gzip/zstd compressed).
pub fn load<R: Read>(store: &Store, input: R) -> Result<LoadReport> {
    let locked = store.lock()?;
    let work = store.tmp_dir().join(fsutil::unique_name("load"));
    let result = (|| {
        std::fs::create_dir(&work).map_err(io_err(&work))?;
        let plain = decompress(BufReader::new(input)).map_err(io_err(&work))?;
        crate::unpack::unpack_layer(plain, &work)
            .map_err(|e| ImageError::Invalid(format!("the archive is corrupt or unsafe: {e}")))?;
        let dir = File::open(&work).map_err(io_err(&work))?;
        if exists_beneath(&dir, "manifest.json") {
            load_docker(&locked, &dir)
        } else if exists_beneath(&dir, "index.json") {
            load_oci(&locked, &dir)
        } else {
            Err(ImageError::Invalid(
                "the archive has neither manifest.json (docker-archive) nor index.json (OCI layout)"
                    .into(),
            ))
        }
    })();
    let _ = fsutil::remove_inside(&store.tmp_dir(), &work);
    if result.is_err() {
        let _ = locked.collect_garbage();
    }
    result
}

/// Open `rel` inside `dir`, refusing symlinks and anything outside.
fn open_beneath(dir: &File, rel: &str) -> Result<File> {
    let comps = crate::unpack::clean_path(rel.as_bytes())
        .map_err(|r| ImageError::Invalid(format!("archive path {rel:?}: {r}")))?;
    let joined: Vec<String> = comps
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let fd = rustix::fs::openat2(
        dir.as_fd(),
        joined.join("/"),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::BENEATH
            | rustix::fs::ResolveFlags::NO_SYMLINKS
            | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| {
        ImageError::Invalid(format!("archive member {rel:?} is missing or unsafe: {e}"))
    })?;
    let f = File::from(fd);
    let is_file = f.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !is_file {
        return Err(ImageError::Invalid(format!(
            "archive member {rel:?} is not a regular file"
        )));
    }
    Ok(f)
}

fn exists_beneath(dir: &File, rel: &str) -> bool {
    open_beneath(dir, rel).is_ok()
}

fn read_beneath(dir: &File, rel: &str) -> Result<Vec<u8>> {
    super::read_metadata(open_beneath(dir, rel)?, &format!("archive member {rel:?}"))
        .map_err(ImageError::Invalid)
}

fn layer_media_type(locked: &Locked<'_>, digest: &str) -> Result<&'static str> {
    let mut head = [0u8; 4];
    let mut f = locked.open_blob(digest)?;
    let n = f.read(&mut head).unwrap_or(0);
    Ok(if head[..n].starts_with(&[0x1f, 0x8b]) {
        OCI_LAYER_GZIP
    } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        OCI_LAYER_ZSTD
    } else {
        OCI_LAYER_TAR
    })
}

fn config_diff_ids(bytes: &[u8], what: &str) -> Result<Vec<String>> {
    let cfg: oci_spec::image::ImageConfiguration = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Invalid(format!("{what}: invalid image config: {e}")))?;
    Ok(cfg.rootfs().diff_ids().clone())
}

/// Unpack the layers of an image (blobs already stored) and check them against diff_ids.
fn unpack_layers(locked: &Locked<'_>, blobs: &[String], diff_ids: &[String]) -> Result<()> {
    if blobs.len() != diff_ids.len() {
        return Err(ImageError::Invalid(format!(
            "the image has {} layers but its config lists {} diff_ids",
            blobs.len(),
            diff_ids.len()
        )));
    }
    let chains = chain_ids(diff_ids);
    for (i, blob) in blobs.iter().enumerate() {
        let parent = if i == 0 {
            None
        } else {
            Some(chains[i - 1].as_str())
        };
        locked.ensure_layer(blob, Some(&diff_ids[i]), parent)?;
    }
    Ok(())
}

fn load_docker(locked: &Locked<'_>, dir: &File) -> Result<LoadReport> {
    let entries: Vec<ArchiveEntry> =
        serde_json::from_slice(&read_beneath(dir, "manifest.json")?)
            .map_err(|e| ImageError::Invalid(format!("manifest.json is invalid: {e}")))?;
    let mut report = LoadReport::default();
    for entry in entries {
        let config = read_beneath(dir, &entry.config)?;
        let diff_ids = config_diff_ids(&config, &entry.config)?;
        let config_digest = locked.put_blob(&config)?;
        // An archive from `save` names blobs by digest: verify them as such.
        let expected_of = |p: &str| {
            p.strip_prefix("blobs/sha256/")
                .map(|h| format!("sha256:{h}"))
                .filter(|d| crate::store::digest::digest_hex(d).is_some())
        };
        if let Some(exp) = expected_of(&entry.config)
            && exp != config_digest
        {
            return Err(crate::store::StoreError::DigestMismatch {
                what: entry.config.clone(),
                expected: exp,
                actual: config_digest,
            }
            .into());
        }
        let mut layers = Vec::new();
        for path in &entry.layers {
            let f = open_beneath(dir, path)?;
            let (digest, size) = locked.ingest_blob(f, expected_of(path).as_deref())?;
            layers.push(Descriptor {
                media_type: layer_media_type(locked, &digest)?.into(),
                digest,
                size,
                platform: None,
                annotations: None,
            });
        }
        let blobs: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
        unpack_layers(locked, &blobs, &diff_ids)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: crate::store::manifest::OCI_CONFIG.into(),
                digest: config_digest,
                size: config.len() as u64,
                platform: None,
                annotations: None,
            },
            layers,
        };
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| ImageError::Invalid(e.to_string()))?;
        let manifest_digest = locked.put_blob(&bytes)?;
        let mut tags = Vec::new();
        for t in entry.repo_tags.unwrap_or_default() {
            tags.push(super::full_tag(&t)?);
        }
        let id = locked.commit_image(&manifest_digest, &tags, None)?;
        if tags.is_empty() {
            report.untagged_ids.push(id);
        }
        report.tags.extend(tags.iter().map(|t| familiar_name(t)));
    }
    Ok(report)
}

fn load_oci(locked: &Locked<'_>, dir: &File) -> Result<LoadReport> {
    let index_bytes = read_beneath(dir, "index.json")?;
    let AnyManifest::Index(index) = parse_any(&index_bytes, Some(OCI_INDEX))
        .map_err(|e| ImageError::Invalid(format!("index.json: {e}")))?
    else {
        return Err(ImageError::Invalid(
            "index.json is not an image index".into(),
        ));
    };
    let mut report = LoadReport::default();
    let mut by_manifest: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for desc in &index.manifests {
        let name = desc.annotations.as_ref().and_then(|a| {
            a.get("io.containerd.image.name").cloned().or_else(|| {
                a.get("org.opencontainers.image.ref.name")
                    .filter(|n| n.contains(['/', ':']) || Reference::parse(n).is_ok())
                    .cloned()
            })
        });
        let manifest_digest = ingest_manifest(locked, dir, desc)?;
        let tags = by_manifest.entry(manifest_digest).or_default();
        if let Some(n) = name {
            tags.push(super::full_tag(&n)?);
        }
    }
    for (manifest_digest, tags) in by_manifest {
        let id = locked.commit_image(&manifest_digest, &tags, None)?;
        if tags.is_empty() {
            report.untagged_ids.push(id);
        }
        report.tags.extend(tags.iter().map(|t| familiar_name(t)));
    }
    Ok(report)
}

/// Copy one manifest (choosing the host platform from a nested index), its config and
/// layers from the layout into the store, verified. Returns the image manifest's digest.
fn ingest_manifest(locked: &Locked<'_>, dir: &File, desc: &Descriptor) -> Result<String> {
    let blob = |d: &str| -> Result<File> {
        let hex = crate::store::digest::digest_hex(d)
            .ok_or_else(|| ImageError::Invalid(format!("invalid digest {d:?} in the layout")))?;
        open_beneath(dir, &format!("blobs/sha256/{hex}"))
    };
    let bytes = super::read_metadata(blob(&desc.digest)?, &format!("manifest {}", desc.digest))
        .map_err(ImageError::Invalid)?;
    let digest = locked.put_blob(&bytes)?;
    if digest != desc.digest {
        return Err(crate::store::StoreError::DigestMismatch {
            what: "manifest".into(),
            expected: desc.digest.clone(),
            actual: digest,
        }
        .into());
    }
    match parse_any(&bytes, Some(&desc.media_type)).map_err(ImageError::Invalid)? {
        AnyManifest::Index(idx) => {
            let chosen = super::platform::select(&idx.manifests, None)?;
            ingest_manifest(locked, dir, chosen)
        }
        AnyManifest::Image(m) => {
            let (cfg_digest, _) =
                locked.ingest_blob(blob(&m.config.digest)?, Some(&m.config.digest))?;
            let diff_ids = config_diff_ids(&locked.read_blob(&cfg_digest)?, &cfg_digest)?;
            let mut blobs = Vec::new();
            for l in &m.layers {
                locked.ingest_blob(blob(&l.digest)?, Some(&l.digest))?;
                blobs.push(l.digest.clone());
            }
            unpack_layers(locked, &blobs, &diff_ids)?;
            Ok(digest)
        }
    }
}
