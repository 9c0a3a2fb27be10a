//! Images: references, configs, import, archives (docker-archive / OCI layout), registry
//! client, history and prune. Everything goes through [`crate::store::Store`].

pub mod archive;
pub mod bootstrap;
pub mod changes;
pub mod history;
pub mod import;
pub mod inspect;
pub mod platform;
pub mod progress;
pub mod prune;
pub mod reference;
pub mod registry;

/// The largest image config, manifest or index read into memory (from a registry or an
/// archive). Real ones are kilobytes; a hostile one claiming gigabytes is refused before a
/// byte of it is read rather than exhausting memory.
pub const MAX_METADATA_BYTES: u64 = 32 * 1024 * 1024;

/// Reads at most [`MAX_METADATA_BYTES`] from `r`; `what` names the document in the error.
pub(crate) fn read_metadata(r: impl std::io::Read, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let mut buf = Vec::new();
    r.take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("reading {what}: {e}"))?;
    if buf.len() as u64 > MAX_METADATA_BYTES {
        return Err(format!(
            "{what} is larger than {} MiB: not an image document",
            MAX_METADATA_BYTES >> 20
        ));
    }
    Ok(buf)
}

use std::path::PathBuf;

use crate::store::StoreError;
pub use reference::{Reference, ReferenceError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Change(String),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The host platform in OCI terms (`amd64`, `arm64`, ...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Parse a user-given tag into the full tagged name the index stores.
pub fn full_tag(input: &str) -> Result<String> {
    let r = Reference::parse(input)?;
    if r.digest.is_some() {
        return Err(ImageError::Invalid(format!(
            "{input:?}: a tag cannot contain a digest"
        )));
    }
    Ok(r.with_default_tag().tagged().unwrap_or_default())
}

#[cfg(test)]
mod metadata_tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn metadata_reads_are_capped() {
        let ok = read_metadata(std::io::repeat(b'x').take(1024), "config").unwrap();
        assert_eq!(ok.len(), 1024);
        let huge = std::io::repeat(b'x').take(MAX_METADATA_BYTES + 1);
        let err = read_metadata(huge, "config sha256:abc").unwrap_err();
        assert!(
            err.contains("config sha256:abc is larger than 32 MiB"),
            "{err}"
        );
    }
}
