//! The content store under the state root.
//!
//! ```text
//! <root>/blobs/sha256/<hex>        manifests, configs, layer blobs; written to tmp/, verified, renamed
//! <root>/layers/<chain-hex>/diff/  one unpacked layer (overlay form), shared by every image that has it
//! <root>/layers/<chain-hex>/layer.json   {chain_id, diff_id, parent, size}
//! <root>/images/index.json         tags → image id, image id → manifest digest, repo digests
//! <root>/tmp/                      scratch for in-flight blobs and layers (named <kind>-<pid>-…;
//!                                  cleared under the lock once their process is gone)
//! <root>/leases/                   content claimed by running pulls, kept by garbage collection
//! <root>/store.lock                flock held by every index mutation and garbage collection
//! ```
//!
//! # Public API for the rest of the engine
//!
//! ```ignore
//! let store = Store::open(root)?;                       // creates the layout if missing
//! let img: ImageRecord = store.resolve("busybox")?;     // tag, full/short id, name@digest
//! img.id;            // "sha256:<hex>" = digest of the config blob (Docker's image id)
//! img.config;        // oci_spec::image::ImageConfiguration (Cmd, Env, WorkingDir, ...)
//! img.repo_tags;     // ["docker.io/library/busybox:latest"] (familiar form: image::reference::familiar_name)
//! img.layer_dirs;    // unpacked layer dirs, LOWEST FIRST; overlay wants them reversed in lowerdir=
//! store.confirm_image_user(&img.id)?;  // after saving a container's config naming img.id
//! ```
//! Users of an image are the containers whose `<root>/containers/<id>/config.json` names it
//! (`users.rs`). An image with users is never deleted: `image rm` refuses it (with `-f` it only untags),
//! and `image prune` skips it. Reads take no lock (the index is replaced atomically);
//! index mutations go through [`Store::lock`] → [`Locked`], an exclusive flock on
//! `store.lock`. Blob and layer writes need no lock (content-addressed, atomic renames); a
//! writer outside the lock holds a [`Lease`] on what it wrote until it commits the image.
//! Never call a locking method (`confirm_image_user`, `lock`) while holding a [`Locked`].
//!
//! Pulling: `image::registry::pull::pull(&store, &Client::new()?, "busybox", &PullOptions::default(), &|event| ..)`.

pub mod digest;
pub mod fsutil;
mod index;
mod layers;
mod lease;
pub mod manifest;
pub mod perms;
pub mod private;
mod users;

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub use index::{ImageEntry, ImageRecord, RemoveEvent};
pub use layers::LayerInfo;
pub use lease::Lease;

use crate::image::reference::ReferenceError;
use crate::unpack::UnpackError;
use digest::{HashingWriter, digest_hex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid digest {0:?} (expected sha256:<64 lowercase hex>)")]
    BadDigest(String),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}; nothing was stored")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("image id prefix {0:?} is ambiguous: it matches several images; give more characters")]
    Ambiguous(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store is corrupt: {what}: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("blob {0} is missing from the store")]
    MissingBlob(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("unpacking layer {blob}: {source}")]
    Unpack {
        blob: String,
        #[source]
        source: UnpackError,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Handle on a content store. Cheap to clone; holds no descriptors.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Proof that the store lock is held; mutations live here. Derefs to [`Store`].
#[derive(Debug)]
pub struct Locked<'a> {
    store: &'a Store,
    _lock: fsutil::FileLock,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store
    }
}

impl Store {
    /// Open (creating if needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir().map_err(io_err(root))?.join(root)
        };
        for sub in ["blobs/sha256", "layers", "images", "tmp"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Take the exclusive store lock (blocks while another command holds it). Leftovers of
    /// interrupted writers in `tmp/` (whose process is gone) are removed.
    pub fn lock(&self) -> Result<Locked<'_>> {
        let path = self.root.join("store.lock");
        let lock = fsutil::FileLock::exclusive(&path).map_err(io_err(&path))?;
        let tmp = self.tmp_dir();
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                // Writers outside the lock (pulls) own their temp files while they live.
                if !fsutil::owner_alive(&e.file_name().to_string_lossy()) {
                    let _ = fsutil::remove_inside(&tmp, &e.path());
                }
            }
        }
        Ok(Locked {
            store: self,
            _lock: lock,
        })
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Path of a blob (which may not exist).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest_hex(digest).ok_or_else(|| StoreError::BadDigest(digest.to_string()))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Size of a stored blob.
    pub fn blob_size(&self, digest: &str) -> Result<u64> {
        let p = self.blob_path(digest)?;
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::MissingBlob(digest.to_string()))
            }
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// Read a (small) blob fully, verifying its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(digest.to_string()),
            _ => StoreError::Io {
                path: p.clone(),
                source: e,
            },
        })?;
        let actual = digest::digest_of(&bytes);
        if actual != digest {
            return Err(StoreError::Corrupt {
                what: p.display().to_string(),
                reason: format!("content hashes to {actual}"),
            });
        }
        Ok(bytes)
    }

    /// Open a blob for streaming (large layers; verify downstream if needed).
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.blob_path(digest)?;
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(digest.to_string()),
            _ => StoreError::Io {
                path: p.clone(),
                source: e,
            },
        })
    }

    /// Where a layer is (or would be) unpacked.
    pub fn layer_path(&self, chain_id: &str) -> Result<PathBuf> {
        let hex =
            digest_hex(chain_id).ok_or_else(|| StoreError::BadDigest(chain_id.to_string()))?;
        Ok(self.root.join("layers").join(hex))
    }
}

impl Store {
    /// Stream `reader` into the blob store: temp file, fsync, digest check, rename.
    /// With `expected`, a mismatch leaves the store unchanged and is an error.
    pub fn ingest_blob<R: Read>(
        &self,
        mut reader: R,
        expected: Option<&str>,
    ) -> Result<(String, u64)> {
        if let Some(d) = expected
            && digest_hex(d).is_none()
        {
            return Err(StoreError::BadDigest(d.to_string()));
        }
        let tmp = self.tmp_dir().join(fsutil::unique_name("blob"));
        let result = (|| {
            let file = File::create(&tmp).map_err(io_err(&tmp))?;
            let mut w = HashingWriter::new(io::BufWriter::new(file));
            io::copy(&mut reader, &mut w).map_err(io_err(&tmp))?;
            let (buf, digest, size) = w.finish();
            let file = buf.into_inner().map_err(|e| StoreError::Io {
                path: tmp.clone(),
                source: e.into_error(),
            })?;
            if let Some(exp) = expected
                && exp != digest
            {
                return Err(StoreError::DigestMismatch {
                    what: format!("blob {exp}"),
                    expected: exp.to_string(),
                    actual: digest,
                });
            }
            file.sync_all().map_err(io_err(&tmp))?;
            let dest = self.blob_path(&digest)?;
            std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
            let dir = self.root.join("blobs/sha256");
            fsutil::fsync_dir(&dir).map_err(io_err(&dir))?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Store a small blob held in memory.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = digest::digest_of(bytes);
        if !self.has_blob(&digest) {
            self.ingest_blob(bytes, Some(&digest))?;
        }
        Ok(digest)
    }

    /// Copy a blob into `w`.
    pub fn copy_blob<W: Write>(&self, digest: &str, w: &mut W) -> Result<u64> {
        let f = self.open_blob(digest)?;
        let p = self.blob_path(digest)?;
        io::copy(&mut BufReader::new(f), w).map_err(io_err(&p))
    }
}

#[cfg(test)]
mod tests;
