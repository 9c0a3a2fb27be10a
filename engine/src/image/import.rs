//! `image import`: a rootfs tarball (plain, gzip, zstd) or directory → single-layer image.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use oci_spec::image::{Config, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder};

use super::{ImageError, Result, changes::apply_change, full_tag, io_err};
use crate::store::digest::{HashingWriter, decompress};
use crate::store::manifest::{Descriptor, Manifest, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::store::{Locked, Store, fsutil};
use crate::units::time::now_rfc3339;

pub enum ImportSource {
    /// A root filesystem directory.
    Dir(PathBuf),
    /// A tar stream (plain, gzip or zstd), e.g. a file or stdin.
    Tar(Box<dyn Read>),
}

#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=1`, ...).
    pub changes: Vec<String>,
    /// Commit message recorded in the history.
    pub message: Option<String>,
    /// Shown in `history` (e.g. the file name).
    pub source_name: String,
}

/// Import `source` as a new image tagged `tag` (if any). Returns the image id.
pub fn import(
    store: &Store,
    source: ImportSource,
    tag: Option<&str>,
    opts: &ImportOptions,
) -> Result<String> {
    let tag = tag.map(full_tag).transpose()?;
    let mut config = Config::default();
    for c in &opts.changes {
        apply_change(&mut config, c).map_err(ImageError::Change)?;
    }
    let locked = store.lock()?;
    let tmp_tar = store.tmp_dir().join(fsutil::unique_name("import.tar"));
    let result = import_locked(&locked, source, &tmp_tar, config, tag, opts);
    let _ = std::fs::remove_file(&tmp_tar);
    if result.is_err() {
        // The layer blob may already be stored; nothing references it now.
        let _ = locked.collect_garbage();
    }
    result
}

fn import_locked(
    locked: &Locked<'_>,
    source: ImportSource,
    tmp_tar: &Path,
    config: Config,
    tag: Option<String>,
    opts: &ImportOptions,
) -> Result<String> {
    // 1. The uncompressed layer tar, hashed on the way (diff_id).
    let file = File::options()
        .create_new(true)
        .read(true)
        .write(true)
        .open(tmp_tar)
        .map_err(io_err(tmp_tar))?;
    let mut w = HashingWriter::new(file);
    match source {
        ImportSource::Dir(dir) => {
            if !dir.is_dir() {
                return Err(ImageError::Invalid(format!(
                    "{}: not a directory",
                    dir.display()
                )));
            }
            let mut b = tar::Builder::new(&mut w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            b.append_dir_all(".", &dir).map_err(io_err(&dir))?;
            b.finish().map_err(io_err(&dir))?;
        }
        ImportSource::Tar(reader) => {
            let mut plain = decompress(BufReader::new(reader)).map_err(io_err(tmp_tar))?;
            io::copy(&mut plain, &mut w).map_err(|e| {
                ImageError::Invalid(format!("reading the import archive failed: {e}"))
            })?;
        }
    }
    let (mut file, diff_id, _) = w.finish();
    file.rewind().map_err(io_err(tmp_tar))?;

    // 2. The gzip blob, then the unpacked layer (which validates the tar).
    let gz = flate2::read::GzEncoder::new(BufReader::new(file), flate2::Compression::fast());
    let (blob, blob_size) = locked.ingest_blob(gz, None)?;
    let layer = locked.ensure_layer(&blob, Some(&diff_id), None)?;

    // 3. Config and manifest.
    let created = now_rfc3339();
    let mut history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(format!("Imported from {}", opts.source_name));
    if let Some(m) = &opts.message {
        history = history.comment(m.clone());
    }
    let image_config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(super::host_arch())
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![layer.diff_id.clone()])
                .build()
                .map_err(|e| ImageError::Invalid(e.to_string()))?,
        )
        .history(vec![
            history
                .build()
                .map_err(|e| ImageError::Invalid(e.to_string()))?,
        ])
        .build()
        .map_err(|e| ImageError::Invalid(e.to_string()))?;
    let config_bytes =
        serde_json::to_vec(&image_config).map_err(|e| ImageError::Invalid(e.to_string()))?;
    let config_digest = locked.put_blob(&config_bytes)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: OCI_CONFIG.into(),
            digest: config_digest,
            size: config_bytes.len() as u64,
            platform: None,
            annotations: None,
        },
        layers: vec![Descriptor {
            media_type: OCI_LAYER_GZIP.into(),
            digest: blob,
            size: blob_size,
            platform: None,
            annotations: None,
        }],
    };
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| ImageError::Invalid(e.to_string()))?;
    let manifest_digest = locked.put_blob(&manifest_bytes)?;
    let tags: Vec<String> = tag.into_iter().collect();
    let id = locked.commit_image(&manifest_digest, &tags, None)?;
    if let Err(e) = locked.collect_garbage() {
        tracing::debug!("garbage collection after import: {e}");
    }
    Ok(id)
}

/// `image import URL`: the body of an http(s) URL as a tar stream, as `docker import` does.
/// Plain-HTTP is allowed, as with docker: the content is a rootfs the user named, not a
/// registry blob with a digest to check.
pub fn open_url(url: &str) -> Result<Box<dyn Read + Send>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(15)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(120)))
        .user_agent(concat!("rcompose/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let resp = agent
        .get(url)
        .call()
        .map_err(|e| ImageError::Invalid(format!("downloading {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ImageError::Invalid(format!(
            "downloading {url}: the server answered {status}"
        )));
    }
    Ok(Box::new(resp.into_body().into_reader()))
}
