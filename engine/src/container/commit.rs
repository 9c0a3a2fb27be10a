//! `commit`: the container's changes (overlay upper dir) as a new layer on top of its image,
//! with the image config updated by `-c` changes, `-m` and `-a`.

use std::io::{BufReader, Seek};

use oci_spec::image::{HistoryBuilder, ImageConfiguration};

use super::{ContainerError, Containers, Status, proc};
use crate::store::Store;
use crate::store::digest::HashingWriter;
use crate::store::manifest::{Descriptor, Manifest, OCI_LAYER_GZIP};

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo[:tag]`, or none for an untagged image.
    pub tag: Option<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=1`, ...).
    pub changes: Vec<String>,
    /// Freeze the container while its files are read.
    pub pause: bool,
}

fn other(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Other(e.to_string())
}

impl Containers {
    /// Returns the new image id.
    pub fn commit(&self, id: &str, opts: &CommitOptions) -> Result<String, ContainerError> {
        let cfg = self.store.load_config(id)?;
        if cfg.image_id.is_empty() {
            return Err(ContainerError::Other(format!(
                "container {} was not created from an image (--rootfs); nothing to commit onto",
                cfg.name
            )));
        }
        let mut config = cfg_for_commit(&self.store.root, &cfg.image_id)?;
        let mut inner = config.config().clone().unwrap_or_default();
        for c in &opts.changes {
            crate::image::changes::apply_change(&mut inner, c).map_err(|e| {
                ContainerError::InvalidOption {
                    option: "--change".into(),
                    value: c.clone(),
                    hint: e,
                }
            })?;
        }
        let tag = opts
            .tag
            .as_deref()
            .map(crate::image::full_tag)
            .transpose()
            .map_err(other)?;

        let st = self.observe(id)?;
        let paused =
            opts.pause && st.status == Status::Running && proc::alive(st.pid, st.pid_start_ticks);
        if paused {
            self.freeze_marked(id)?;
        }
        let store = Store::open(&self.store.root).map_err(other)?;
        let tmp = tempfile_in(&self.store.dir(id))?;
        let tar_res = {
            let file = std::fs::File::options()
                .create_new(true)
                .read(true)
                .write(true)
                .open(&tmp)
                .map_err(|e| ContainerError::io(&tmp, e))?;
            let mut w = HashingWriter::new(file);
            self.changes_tar(id, &mut w).map(|()| w.finish())
        };
        if paused {
            self.thaw_marked(id);
        }
        let result = (|| {
            let (mut file, diff_id, _) = tar_res?;
            file.rewind().map_err(|e| ContainerError::io(&tmp, e))?;
            let locked = store.lock().map_err(other)?;
            let rec = locked.resolve(&cfg.image_id).map_err(other)?;
            let parent = rec.layers.last().map(|l| l.chain_id.clone());
            let gz =
                flate2::read::GzEncoder::new(BufReader::new(file), flate2::Compression::fast());
            let (blob, blob_size) = locked.ingest_blob(gz, None).map_err(other)?;
            let layer = locked
                .ensure_layer(&blob, Some(&diff_id), parent.as_deref())
                .map_err(other)?;
            let created = super::model::now_rfc3339();
            let mut history = config.history().clone().unwrap_or_default();
            let mut h = HistoryBuilder::default()
                .created(created.clone())
                .created_by(cfg.args.join(" "));
            if let Some(m) = &opts.message {
                h = h.comment(m.clone());
            }
            if let Some(a) = &opts.author {
                h = h.author(a.clone());
            }
            history.push(h.build().map_err(other)?);
            let mut rootfs = config.rootfs().clone();
            let mut diff_ids = rootfs.diff_ids().clone();
            diff_ids.push(layer.diff_id.clone());
            rootfs.set_diff_ids(diff_ids);
            config.set_rootfs(rootfs);
            config.set_history(Some(history));
            config.set_config(Some(inner.clone()));
            config.set_created(Some(created));
            if let Some(a) = &opts.author {
                config.set_author(Some(a.clone()));
            }
            // docker's image config carries the commit message as `comment` (image
            // inspect's Comment); the OCI type has no such field.
            let mut config_value = serde_json::to_value(&config).map_err(other)?;
            if let Some(m) = &opts.message {
                config_value["comment"] = serde_json::Value::String(m.clone());
            }
            let config_bytes = serde_json::to_vec(&config_value).map_err(other)?;
            let config_digest = locked.put_blob(&config_bytes).map_err(other)?;
            let mut layers = rec.manifest.layers.clone();
            layers.push(Descriptor {
                media_type: OCI_LAYER_GZIP.into(),
                digest: blob,
                size: blob_size,
                platform: None,
                annotations: None,
            });
            let manifest = Manifest {
                schema_version: 2,
                media_type: rec.manifest.media_type.clone(),
                config: Descriptor {
                    media_type: rec.manifest.config.media_type.clone(),
                    digest: config_digest,
                    size: config_bytes.len() as u64,
                    platform: None,
                    annotations: None,
                },
                layers,
            };
            let manifest_bytes = serde_json::to_vec(&manifest).map_err(other)?;
            let manifest_digest = locked.put_blob(&manifest_bytes).map_err(other)?;
            let tags: Vec<String> = tag.clone().into_iter().collect();
            locked
                .commit_image(&manifest_digest, &tags, None)
                .map_err(other)
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }
}

fn cfg_for_commit(
    root: &std::path::Path,
    image_id: &str,
) -> Result<ImageConfiguration, ContainerError> {
    let store = Store::open(root).map_err(other)?;
    let rec = store.resolve(image_id).map_err(|e| {
        ContainerError::Other(format!("the container's image {image_id} is gone: {e}"))
    })?;
    Ok(rec.config)
}

fn tempfile_in(dir: &std::path::Path) -> Result<std::path::PathBuf, ContainerError> {
    Ok(dir.join(format!(".commit-{}.tar", std::process::id())))
}
