//! `up` around the executor: [`prepare`] checks the images and reconciles into a [`Plan`];
//! [`wait_ready`] is `--wait`; [`stop_all`] is the attached `up`'s Ctrl-C.

use std::time::{Duration, Instant};

use crate::execute::{Backend, BackendError};
use crate::graph::{DependencyGraph, GraphError};
use crate::labels;
use crate::model::{CONDITION_COMPLETED, Project};
use crate::observe::{ContainerSummary, RunState};
use crate::plan::Plan;
use crate::reconcile::{ReconcileError, ReconcileOptions, reconcile};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PrepareError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    #[error(transparent)]
    Build(#[from] super::build::BuildError),
    #[error(
        "service \"{service}\": image {image} not found locally; load, import or pull it first (`rcompose image pull {image}`)"
    )]
    ImageMissing { service: String, image: String },
}

/// When `up` builds: `--build` (always), `--no-build` (never), else images that are missing.
pub struct BuildPolicy<'a> {
    pub always: bool,
    pub never: bool,
    pub flags: super::build::BuildFlags,
    /// `(service, line)` of build progress.
    pub progress: &'a (dyn Fn(&str, &str) + Sync),
}

impl BuildPolicy<'_> {
    /// Builds only missing images, silently.
    pub fn missing() -> BuildPolicy<'static> {
        BuildPolicy {
            always: false,
            never: false,
            flags: Default::default(),
            progress: &|_, _| {},
        }
    }
}

/// Builds the selected services' images that need it (see [`BuildPolicy`]), checks that every
/// selected service's image is present (recording its id in the returned options), warns about
/// keys the backend ignores, then reconciles with what exists. `on_warning` gets each warning
/// as it is found (the plan's own warnings included).
pub fn prepare(
    project: &Project,
    backend: &dyn Backend,
    mut opts: ReconcileOptions,
    build: &BuildPolicy<'_>,
    on_warning: &dyn Fn(String),
) -> Result<(Plan, ReconcileOptions), PrepareError> {
    let graph = DependencyGraph::new(project)?;
    let selected: Vec<String> = if opts.services.is_empty() {
        project.service_names()
    } else if opts.no_deps {
        opts.services.clone()
    } else {
        graph
            .with_dependencies(&opts.services)
            .into_iter()
            .collect()
    };
    if !build.never {
        super::build::build_missing(
            project,
            backend,
            &selected,
            build.always,
            &build.flags,
            build.progress,
        )?;
    }
    for name in &selected {
        let svc = &project.services[name];
        let image = svc.image_name(&project.name);
        let id = backend.image_id(&image)?;
        match id {
            Some(id) => {
                opts.image_ids.insert(name.clone(), id);
            }
            None => {
                return Err(PrepareError::ImageMissing {
                    service: name.clone(),
                    image,
                });
            }
        }
        for key in backend.unsupported_keys(svc) {
            on_warning(format!(
                "service \"{name}\": {key} is not supported yet and is ignored"
            ));
        }
    }
    let observed = super::observe(backend, &project.name)?;
    let plan = reconcile(project, &observed, &opts)?;
    for w in &plan.warnings {
        on_warning(w.clone());
    }
    Ok((plan, opts))
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WaitError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("container {name} exited ({code})")]
    Exited { name: String, code: i32 },
    #[error("container {name} is unhealthy")]
    Unhealthy { name: String },
    #[error("timeout waiting for {} to be running and healthy", .pending.join(", "))]
    Timeout { pending: Vec<String> },
}

/// `up --wait`: polls until every selected container runs, and is healthy when it has a
/// healthcheck. A container that a `service_completed_successfully` dependency waits for
/// may instead have exited with 0.
pub fn wait_ready(
    backend: &dyn Backend,
    project: &Project,
    services: &[String],
    timeout: Option<Duration>,
    poll: Duration,
) -> Result<(), WaitError> {
    let start = Instant::now();
    loop {
        let mut list = vec![];
        for c in super::containers(backend, &project.name, services, true, false)? {
            list.push(backend.inspect_container(&c.id)?);
        }
        let mut pending = vec![];
        for c in &list {
            let svc = c.labels.get(labels::SERVICE).cloned().unwrap_or_default();
            let one_shot = project.services.values().any(|s| {
                s.depends_on
                    .get(&svc)
                    .is_some_and(|d| d.condition == CONDITION_COMPLETED)
            });
            match (c.status, c.health.as_deref()) {
                (RunState::Exited, _) if one_shot && c.exit_code == 0 => {}
                (RunState::Exited | RunState::Dead, _) => {
                    return Err(WaitError::Exited {
                        name: c.name.clone(),
                        code: c.exit_code,
                    });
                }
                (_, Some("unhealthy")) => {
                    return Err(WaitError::Unhealthy {
                        name: c.name.clone(),
                    });
                }
                (RunState::Running, None | Some("healthy")) => {}
                _ => pending.push(c.name.clone()),
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if let Some(t) = timeout
            && start.elapsed() > t
        {
            return Err(WaitError::Timeout { pending });
        }
        std::thread::sleep(poll);
    }
}

/// Stops every container of `list` at once and returns when all are down. While they stop,
/// `force()` is polled: once it says so (a second Ctrl-C), they are killed with SIGKILL.
/// Errors are ignored: this is the way out of an attached `up`.
pub fn stop_all(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    timeout: Option<u32>,
    force: &(dyn Fn() -> bool + Sync),
) {
    std::thread::scope(|s| {
        for c in list {
            s.spawn(move || {
                let _ = backend.stop_container(&c.id, timeout);
            });
        }
        while list.iter().any(|c| {
            backend
                .inspect_container(&c.id)
                .map(|x| x.status.is_up())
                .unwrap_or(false)
        }) {
            if force() {
                for c in list {
                    let _ = backend.kill_container(&c.id, "SIGKILL");
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}
