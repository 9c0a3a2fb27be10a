//! The engine's view of an image (`ImageInfo`) from a record in the local image store.

use anyhow::{Context, Result};
use rcompose_engine::container::ImageInfo;

/// Resolves `reference` in the store under `root`; a clear error when it is not there.
pub fn image_info(root: &std::path::Path, reference: &str, service: &str) -> Result<ImageInfo> {
    let store = rcompose_engine::store::Store::open(root)?;
    let rec = store.resolve(reference).with_context(|| {
        format!(
            "service \"{service}\": image {reference} not found locally; load, import or pull it first (`rcompose image load`, `rcompose image pull {reference}`)"
        )
    })?;
    Ok(ImageInfo::from_record(reference, &rec))
}

/// The id of `reference` in the local store, `None` when absent.
pub fn image_id(root: &std::path::Path, reference: &str) -> Result<Option<String>> {
    let store = rcompose_engine::store::Store::open(root)?;
    Ok(store.resolve_id(reference).ok())
}
