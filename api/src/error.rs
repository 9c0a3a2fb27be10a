//! Errors as docker's daemon answers them: an HTTP status and a `{"message": …}` body, so a
//! docker client prints `Error response from daemon: <message>` exactly as it does against
//! Docker.

use rcompose_engine::container::ContainerError;
use rcompose_engine::image::registry::RegistryError;
use rcompose_engine::image::{ImageError, ReferenceError};
use rcompose_engine::store::StoreError;
use rcompose_engine::volume::VolumeError;
use rcompose_net::NetError;

/// One failed request: the status docker would send and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
    pub fn not_implemented(what: &str) -> Self {
        Self::new(501, format!("not supported yet by rcompose: {what}"))
    }

    /// The body docker sends with an error status.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "message": self.message })
    }
}

fn container_status(e: &ContainerError) -> u16 {
    match e {
        ContainerError::NotFound { .. } => 404,
        ContainerError::NameInUse { .. }
        | ContainerError::Running(_)
        | ContainerError::NotRunning(_)
        | ContainerError::Paused(_) => 409,
        ContainerError::InvalidName(_)
        | ContainerError::InvalidOption { .. }
        | ContainerError::Ambiguous { .. }
        | ContainerError::BindSourceMissing(_) => 400,
        _ => 500,
    }
}

fn store_status(e: &StoreError) -> u16 {
    match e {
        StoreError::NoSuchImage(_) => 404,
        StoreError::Conflict(_) => 409,
        StoreError::Ambiguous(_) | StoreError::BadDigest(_) | StoreError::Reference(_) => 400,
        _ => 500,
    }
}

fn net_status(e: &NetError) -> u16 {
    match e {
        NetError::NotFound(_) => 404,
        NetError::Exists(_) | NetError::InUse { .. } => 409,
        NetError::Ambiguous { .. } => 400,
        NetError::Predefined(..) => 403,
        _ => 500,
    }
}

fn volume_status(e: &VolumeError) -> u16 {
    match e {
        VolumeError::NotFound { .. } => 404,
        VolumeError::InUse { .. } => 409,
        VolumeError::InvalidName(_) => 400,
        _ => 500,
    }
}

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> Self {
        Self::new(container_status(&e), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::new(store_status(&e), e.to_string())
    }
}

impl From<NetError> for ApiError {
    fn from(e: NetError) -> Self {
        Self::new(net_status(&e), e.to_string())
    }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        Self::new(volume_status(&e), e.to_string())
    }
}

/// Errors that arrive through anyhow (the binary-facing helpers): the status comes from the first typed engine or
/// network error in the chain (a "No such container" deep inside stays a 404), the message
/// from the whole chain, as the CLI prints it. Untyped errors are the client's: docker
/// answers a bad option with 400.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        let status = e
            .chain()
            .find_map(|c| {
                c.downcast_ref::<ContainerError>()
                    .map(container_status)
                    .or_else(|| c.downcast_ref::<StoreError>().map(store_status))
                    .or_else(|| c.downcast_ref::<NetError>().map(net_status))
                    .or_else(|| c.downcast_ref::<VolumeError>().map(volume_status))
                    .or_else(|| c.downcast_ref::<ImageError>().map(image_status))
            })
            .unwrap_or(400);
        Self::new(status, format!("{e:#}"))
    }
}

fn registry_status(e: &RegistryError) -> u16 {
    match e {
        RegistryError::NotFound { .. } => 404,
        RegistryError::Auth { .. } => 401,
        _ => 500,
    }
}

fn image_status(e: &ImageError) -> u16 {
    match e {
        ImageError::Store(e) => store_status(e),
        ImageError::Registry(e) => registry_status(e),
        ImageError::Reference(_) | ImageError::Invalid(_) | ImageError::Change(_) => 400,
        ImageError::Io { .. } => 500,
    }
}

/// The status of a typed error found anywhere in a `source()` chain (wire's errors wrap the
/// engine's and the network's), docker's 400 for a refused option when none is.
fn chain_status(top: &(dyn std::error::Error + 'static), fallback: u16) -> u16 {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(top);
    while let Some(e) = cur {
        let hit = e
            .downcast_ref::<ContainerError>()
            .map(container_status)
            .or_else(|| e.downcast_ref::<StoreError>().map(store_status))
            .or_else(|| e.downcast_ref::<NetError>().map(net_status))
            .or_else(|| e.downcast_ref::<VolumeError>().map(volume_status))
            .or_else(|| e.downcast_ref::<ImageError>().map(image_status));
        if let Some(s) = hit {
            return s;
        }
        cur = e.source();
    }
    fallback
}

impl From<rcompose_wire::netwire::NetwireError> for ApiError {
    fn from(e: rcompose_wire::netwire::NetwireError) -> Self {
        use rcompose_wire::netwire::NetwireError as W;
        let status = match &e {
            W::Net(n) => net_status(n),
            W::Container(c) => container_status(c),
            W::Store(s) => store_status(s),
            W::Invalid(_) | W::Mode(_) | W::Attachment(_) | W::Json(_) => 400,
            W::Context { source, .. } => chain_status(source.as_ref(), 500),
            W::Io(_) => 500,
        };
        Self::new(status, e.to_string())
    }
}

impl From<rcompose_wire::docker::OptionError> for ApiError {
    fn from(e: rcompose_wire::docker::OptionError) -> Self {
        use rcompose_wire::docker::OptionError as O;
        let status = match &e {
            O::Container(c) => container_status(c),
            O::NoSuchContainer { .. } => 404,
            _ => chain_status(&e, 400),
        };
        Self::new(status, e.to_string())
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        Self::new(image_status(&e), e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        Self::new(registry_status(&e), e.to_string())
    }
}

impl From<ReferenceError> for ApiError {
    fn from(e: ReferenceError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Self::bad_request(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_keep_docker_statuses_through_anyhow() {
        let e = ContainerError::NotFound {
            key: "x".into(),
            suggestion: None,
        };
        let a: ApiError = anyhow::Error::new(e).context("starting x").into();
        assert_eq!(a.status, 404);
        assert_eq!(a.message, "starting x: No such container: x");
        let plain: ApiError = anyhow::anyhow!("invalid --ip").into();
        assert_eq!(plain.status, 400);
        assert_eq!(
            ApiError::conflict("c").body(),
            serde_json::json!({"message": "c"})
        );
    }
}
