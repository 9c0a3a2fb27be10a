//! Unpacked layers, one directory per chain id, shared by every image that has them.

use std::io::BufReader;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::digest::{HashingReader, decompress, digest_of};
use super::{Result, Store, StoreError, fsutil, io_err};

/// Metadata of one unpacked layer (`layers/<chain-hex>/layer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    /// Bytes of file content in this layer alone.
    pub size: u64,
}

impl Store {
    pub fn has_layer(&self, chain_id: &str) -> bool {
        self.layer_path(chain_id)
            .map(|p| p.join("layer.json").is_file())
            .unwrap_or(false)
    }

    pub fn layer_info(&self, chain_id: &str) -> Result<LayerInfo> {
        let p = self.layer_path(chain_id)?.join("layer.json");
        let bytes = std::fs::read(&p).map_err(io_err(&p))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: p.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// The directory holding the layer's files (an overlay lowerdir).
    pub fn layer_diff_dir(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.layer_path(chain_id)?.join("diff"))
    }
}

impl Store {
    /// Unpack the stored blob `blob` (gzip, zstd or plain tar) as the layer on top of
    /// `parent`. The uncompressed stream must hash to `expected_diff_id` when given; on any
    /// failure nothing appears under `layers/`. Already-unpacked layers are reused. Needs no
    /// lock (the layer appears by one atomic rename), but a caller outside the lock must
    /// hold a [`super::Lease`] on the chain id until the image is committed.
    pub fn ensure_layer(
        &self,
        blob: &str,
        expected_diff_id: Option<&str>,
        parent: Option<&str>,
    ) -> Result<LayerInfo> {
        let chain_of = |diff: &str| match parent {
            None => diff.to_string(),
            Some(p) => digest_of(format!("{p} {diff}").as_bytes()),
        };
        if let Some(diff) = expected_diff_id {
            let chain = chain_of(diff);
            if self.has_layer(&chain) {
                return self.layer_info(&chain);
            }
        }
        let work = self.tmp_dir().join(fsutil::unique_name("layer"));
        let diff_dir = work.join("diff");
        let result = (|| {
            std::fs::create_dir_all(&diff_dir).map_err(io_err(&diff_dir))?;
            let file = self.open_blob(blob)?;
            let blob_path = self.blob_path(blob)?;
            let plain = decompress(BufReader::with_capacity(256 * 1024, file))
                .map_err(io_err(&blob_path))?;
            let mut hashing = HashingReader::new(plain);
            let stats = crate::unpack::unpack_layer(&mut hashing, &diff_dir).map_err(|source| {
                StoreError::Unpack {
                    blob: blob.to_string(),
                    source,
                }
            })?;
            let (diff_id, _) = hashing.finish().map_err(|e| StoreError::Unpack {
                blob: blob.to_string(),
                source: crate::unpack::UnpackError::Archive(e),
            })?;
            if let Some(exp) = expected_diff_id
                && exp != diff_id
            {
                return Err(StoreError::DigestMismatch {
                    what: format!("uncompressed layer {blob} (diff_id)"),
                    expected: exp.to_string(),
                    actual: diff_id,
                });
            }
            let info = LayerInfo {
                chain_id: chain_of(&diff_id),
                diff_id,
                parent: parent.map(str::to_string),
                size: stats.bytes,
            };
            let dest = self.layer_path(&info.chain_id)?;
            if self.has_layer(&info.chain_id) {
                return Ok(info);
            }
            let meta = work.join("layer.json");
            let json = serde_json::to_vec_pretty(&info).unwrap_or_default();
            fsutil::atomic_write(&meta, &json).map_err(io_err(&meta))?;
            // The directory appears complete (layer.json inside) or not at all; if another
            // process won the race, its copy is the same content.
            let layers = self.root.join("layers");
            match std::fs::rename(&work, &dest) {
                Ok(()) => {}
                Err(_) if self.has_layer(&info.chain_id) => return Ok(info),
                Err(e) => {
                    return Err(StoreError::Io {
                        path: dest,
                        source: e,
                    });
                }
            }
            fsutil::fsync_dir(&layers).map_err(io_err(&layers))?;
            Ok(info)
        })();
        if work.exists() {
            let _ = fsutil::remove_inside(&self.tmp_dir(), &work);
        }
        result
    }
}
