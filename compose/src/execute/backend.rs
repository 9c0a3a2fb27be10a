//! The [`Backend`] trait: everything the orchestrator asks of an engine, and the progress
//! [`Event`]s it reports.

use crate::model::{Project, Service};
use crate::observe::{ContainerSummary, ObjectSummary};

/// An error from the backend, already worded for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl BackendError {
    pub fn new(msg: impl std::fmt::Display) -> Self {
        Self(msg.to_string())
    }
}

/// What the orchestrator needs from an engine. Every call is blocking and may be made from
/// several threads at once.
pub trait Backend: Sync {
    /// Every container (the caller filters by labels).
    fn list_containers(&self) -> Result<Vec<ContainerSummary>, BackendError>;
    fn list_networks(&self) -> Result<Vec<ObjectSummary>, BackendError>;
    fn list_volumes(&self) -> Result<Vec<ObjectSummary>, BackendError>;
    fn network_exists(&self, name: &str) -> Result<bool, BackendError>;
    fn volume_exists(&self, name: &str) -> Result<bool, BackendError>;
    fn create_network(&self, project: &Project, key: &str, name: &str) -> Result<(), BackendError>;
    fn remove_network(&self, name: &str) -> Result<(), BackendError>;
    fn create_volume(&self, project: &Project, key: &str, name: &str) -> Result<(), BackendError>;
    fn remove_volume(&self, name: &str) -> Result<(), BackendError>;
    /// The local image id a service would run, `None` when the image is not present.
    fn image_id(&self, reference: &str) -> Result<Option<String>, BackendError>;
    /// Creates the container of `service` number `number` named `name` (labels from
    /// `labels::container_labels`); returns its id.
    fn create_container(
        &self,
        project: &Project,
        service: &Service,
        name: &str,
        number: u32,
    ) -> Result<String, BackendError>;
    /// Anonymous volumes of a container as (mount target, volume name): a recreated
    /// container gets them back, so recreating never loses their data (compose does the same
    /// unless `-V`).
    fn anonymous_volumes(&self, _id: &str) -> Vec<(String, String)> {
        vec![]
    }
    /// [`Backend::create_container`] that mounts the given anonymous volumes again.
    fn create_container_inheriting(
        &self,
        project: &Project,
        service: &Service,
        name: &str,
        number: u32,
        _inherit: &[(String, String)],
    ) -> Result<String, BackendError> {
        self.create_container(project, service, name, number)
    }
    fn start_container(&self, id: &str) -> Result<(), BackendError>;
    fn stop_container(&self, id: &str, timeout: Option<u32>) -> Result<(), BackendError>;
    /// Sends `signal` (`SIGKILL`, `TERM`, `9`…) to the container's process.
    fn kill_container(&self, id: &str, signal: &str) -> Result<(), BackendError>;
    fn pause_container(&self, id: &str) -> Result<(), BackendError>;
    fn unpause_container(&self, id: &str) -> Result<(), BackendError>;
    /// Removes a stopped (or, when needed, killed) container; `volumes` removes its anonymous
    /// volumes.
    fn remove_container(&self, id: &str, volumes: bool) -> Result<(), BackendError>;
    fn inspect_container(&self, id: &str) -> Result<ContainerSummary, BackendError>;
    /// [`Backend::inspect_container`] for frequent polls of the state, health and exit code
    /// (a backend may leave out what is costly to gather, such as published ports).
    fn poll_container(&self, id: &str) -> Result<ContainerSummary, BackendError> {
        self.inspect_container(id)
    }
    /// The last `lines` log lines (for error messages about a failing dependency).
    fn log_tail(&self, id: &str, lines: usize) -> Vec<String>;
    /// The health check log's last outputs, newest last.
    fn health_log(&self, id: &str) -> Vec<String>;
    /// Builds the image of a service with a `build:` section and tags it (its `image:`, else
    /// `<project>-<service>`, plus `build.tags`); returns the image id. `progress` gets
    /// one line per step.
    fn build_image(
        &self,
        _project: &Project,
        service: &Service,
        _flags: &crate::ops::build::BuildFlags,
        _progress: &(dyn Fn(&str) + Sync),
    ) -> Result<String, BackendError> {
        Err(BackendError(format!(
            "service \"{}\": this backend cannot build images",
            service.name
        )))
    }
    /// Keys of `service` this backend cannot honour and ignores (`up` warns about them).
    fn unsupported_keys(&self, _service: &Service) -> Vec<&'static str> {
        vec![]
    }
}

/// Progress, one line per resource (docker compose's `✔ Container demo-web-1  Started`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `Network`, `Volume` or `Container`.
    pub kind: &'static str,
    pub name: String,
    /// `Creating`, `Created`, `Starting`, `Started`, `Waiting`, `Healthy`, `Exited`,
    /// `Stopping`, `Stopped`, `Removing`, `Removed`, `Recreate`, `Recreated`, `Running`.
    pub status: &'static str,
}
