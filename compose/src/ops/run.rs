//! `run` around its one-off container: what must run first.

use crate::execute::{Event, ExecuteError, ExecuteOptions, execute};
use crate::graph::{DependencyGraph, GraphError};
use crate::model::Project;
use crate::reconcile::{ReconcileError, ReconcileOptions, RecreatePolicy, reconcile};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Backend(#[from] crate::execute::BackendError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    Execute(#[from] ExecuteError),
}

/// `up -d` of what `service` depends on (not the service itself, nothing recreated); with
/// `no_deps` (or nothing to depend on) only the project's networks and volumes, which the
/// one-off needs. The caller holds the project lock.
pub fn start_dependencies(
    project: &Project,
    backend: &dyn crate::execute::Backend,
    service: &str,
    no_deps: bool,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), RunError> {
    let graph = DependencyGraph::new(project)?;
    let deps: Vec<String> = graph
        .with_dependencies(&[service.to_string()])
        .into_iter()
        .filter(|s| s != service && !no_deps)
        .collect();
    let objects_only = deps.is_empty();
    let observed = super::observe(backend, &project.name)?;
    let mut plan = reconcile(
        project,
        &observed,
        &ReconcileOptions {
            services: if objects_only {
                vec![service.to_string()]
            } else {
                deps
            },
            no_deps: objects_only,
            recreate: RecreatePolicy::Never,
            ..Default::default()
        },
    )?;
    if objects_only {
        plan.levels.clear();
    }
    execute(
        project,
        &plan,
        backend,
        &ExecuteOptions::default(),
        on_event,
    )?;
    Ok(())
}
