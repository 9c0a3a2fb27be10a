//! `up -V/--renew-anon-volumes`: a recreated container gets new, empty anonymous volumes
//! instead of inheriting the previous container's (the default since compose keeps their
//! data across recreates). The old anonymous volumes are removed once the run succeeded:
//! dropping their data is what `-V` asks for, and nothing could reach them afterwards
//! (docker compose leaves them dangling for `volume prune`).
//!
//! Implemented as a [`Backend`] that delegates to the engine backend but reports no
//! anonymous volumes to inherit, remembering the ones it hid.

use std::sync::Mutex;

use rcompose_compose::execute::{
    Backend, BackendError, Event, ExecuteError, ExecuteOptions, ExecuteReport, execute,
};
use rcompose_compose::model::{Project, Service};
use rcompose_compose::observe::{ContainerSummary, ObjectSummary};
use rcompose_compose::plan::Plan;

use crate::backend::EngineBackend;

/// [`execute`] with fresh anonymous volumes for every recreated container; then removes the
/// volumes the replaced containers had. A volume that cannot be removed is named in a warning.
pub fn execute_renewing(
    project: &Project,
    plan: &Plan,
    backend: &EngineBackend,
    opts: &ExecuteOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<ExecuteReport, ExecuteError> {
    let renew = Renew {
        inner: backend,
        replaced: Mutex::new(vec![]),
    };
    let report = execute(project, plan, &renew, opts, on_event)?;
    let replaced = renew
        .replaced
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    for name in replaced {
        match backend.remove_volume(&name) {
            Ok(()) => on_event(Event {
                kind: "Volume",
                name,
                status: "Removed",
            }),
            Err(e) => eprintln!(
                "WARN[0000] anonymous volume {name} of a replaced container was kept: {e}"
            ),
        }
    }
    Ok(report)
}

struct Renew<'a> {
    inner: &'a EngineBackend,
    /// Anonymous volumes of the containers being replaced.
    replaced: Mutex<Vec<String>>,
}

impl Backend for Renew<'_> {
    fn anonymous_volumes(&self, id: &str) -> Vec<(String, String)> {
        let old = self.inner.anonymous_volumes(id);
        self.replaced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(old.into_iter().map(|(_, name)| name));
        vec![]
    }

    fn create_container_inheriting(
        &self,
        project: &Project,
        service: &Service,
        name: &str,
        number: u32,
        _inherit: &[(String, String)],
    ) -> Result<String, BackendError> {
        self.inner.create_container(project, service, name, number)
    }

    fn list_containers(&self) -> Result<Vec<ContainerSummary>, BackendError> {
        self.inner.list_containers()
    }
    fn list_networks(&self) -> Result<Vec<ObjectSummary>, BackendError> {
        self.inner.list_networks()
    }
    fn list_volumes(&self) -> Result<Vec<ObjectSummary>, BackendError> {
        self.inner.list_volumes()
    }
    fn network_exists(&self, name: &str) -> Result<bool, BackendError> {
        self.inner.network_exists(name)
    }
    fn volume_exists(&self, name: &str) -> Result<bool, BackendError> {
        self.inner.volume_exists(name)
    }
    fn create_network(&self, project: &Project, key: &str, name: &str) -> Result<(), BackendError> {
        self.inner.create_network(project, key, name)
    }
    fn remove_network(&self, name: &str) -> Result<(), BackendError> {
        self.inner.remove_network(name)
    }
    fn create_volume(&self, project: &Project, key: &str, name: &str) -> Result<(), BackendError> {
        self.inner.create_volume(project, key, name)
    }
    fn remove_volume(&self, name: &str) -> Result<(), BackendError> {
        self.inner.remove_volume(name)
    }
    fn image_id(&self, reference: &str) -> Result<Option<String>, BackendError> {
        self.inner.image_id(reference)
    }
    fn create_container(
        &self,
        project: &Project,
        service: &Service,
        name: &str,
        number: u32,
    ) -> Result<String, BackendError> {
        self.inner.create_container(project, service, name, number)
    }
    fn start_container(&self, id: &str) -> Result<(), BackendError> {
        self.inner.start_container(id)
    }
    fn stop_container(&self, id: &str, timeout: Option<u32>) -> Result<(), BackendError> {
        self.inner.stop_container(id, timeout)
    }
    fn remove_container(&self, id: &str, volumes: bool) -> Result<(), BackendError> {
        self.inner.remove_container(id, volumes)
    }
    fn inspect_container(&self, id: &str) -> Result<ContainerSummary, BackendError> {
        self.inner.inspect_container(id)
    }
    fn log_tail(&self, id: &str, lines: usize) -> Vec<String> {
        self.inner.log_tail(id, lines)
    }
    fn health_log(&self, id: &str) -> Vec<String> {
        self.inner.health_log(id)
    }
}
