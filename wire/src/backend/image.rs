//! The engine's view of an image (`ImageInfo`) from a record in the local image store.

use std::path::Path;

use rcompose_engine::container::ImageInfo;
use rcompose_engine::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "service \"{service}\": image {reference} not found locally; load, import or pull it first (`rcompose image load`, `rcompose image pull {reference}`)"
    )]
    NotFound {
        service: String,
        reference: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error(transparent)]
    Store(Box<StoreError>),
}

// Boxed: the store's error is large, and these travel through every create.
impl From<StoreError> for ImageError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

/// Resolves `reference` in the store under `root`; a clear error when it is not there.
pub fn image_info(root: &Path, reference: &str, service: &str) -> Result<ImageInfo, ImageError> {
    let store = Store::open(root)?;
    let rec = store
        .resolve(reference)
        .map_err(|source| ImageError::NotFound {
            service: service.to_string(),
            reference: reference.to_string(),
            source: Box::new(source),
        })?;
    Ok(ImageInfo::from_record(reference, &rec))
}

/// The id of `reference` in the local store, `None` when absent.
pub fn image_id(root: &Path, reference: &str) -> Result<Option<String>, ImageError> {
    let store = Store::open(root)?;
    Ok(store.resolve_id(reference).ok())
}
