//! The compose verbs as library operations over a [`Backend`] (as compose v2's `pkg/compose`
//! beside its `cmd/`): `start`, `stop`, `restart`, `kill`, `pause`/`unpause`, `rm` here, `up`'s
//! preparation and `--wait` in [`up`], `down` in [`down`]. They act on the containers the CLI
//! selected, report progress through [`Event`]s and never print; the CLI parses flags, calls
//! one of them and renders. Containers are worked on in parallel (one thread each: the work is
//! waiting on the engine), and every failure is kept, so one stuck container does not hide the
//! others.

pub mod build;
pub mod down;
pub mod run;
pub mod up;
pub mod watch;

use std::fmt;

use crate::execute::{Backend, BackendError, Event, each};
use crate::graph::DependencyGraph;
use crate::labels;
use crate::model::Project;
use crate::observe::{ContainerSummary, ObservedState, RunState};

/// One container, network or volume an operation failed on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{object}: {source}")]
pub struct Failure {
    /// `container demo-web-1`, `network demo_default`, `volume demo_data`.
    pub object: String,
    pub source: BackendError,
}

/// Every failure of one operation, one per line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Failures(pub Vec<Failure>);

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Failure::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Turns collected failures into a result.
fn failures(list: Vec<Failure>) -> Result<(), Failures> {
    if list.is_empty() {
        Ok(())
    } else {
        Err(Failures(list))
    }
}

/// Observed state of the project (networks only when the backend can list them).
pub fn observe(backend: &dyn Backend, project: &str) -> Result<ObservedState, BackendError> {
    let containers = backend.list_containers()?;
    let networks = backend.list_networks().unwrap_or_default();
    let volumes = backend.list_volumes()?;
    Ok(ObservedState::from_objects(
        project,
        &containers,
        &networks,
        &volumes,
    ))
}

/// The project's containers in `observed`, sorted by name; `all` includes stopped ones,
/// `oneoff` includes `run` containers; `services` empty means all services.
pub fn select(
    observed: &ObservedState,
    services: &[String],
    all: bool,
    oneoff: bool,
) -> Vec<ContainerSummary> {
    let mut out: Vec<ContainerSummary> = observed
        .containers()
        .chain(observed.oneoff.iter().filter(|_| oneoff))
        .filter(|c| services.is_empty() || services.contains(&c.service))
        .filter(|c| all || c.summary.status.is_up())
        .map(|c| c.summary.clone())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// [`observe`] then [`select`].
pub fn containers(
    backend: &dyn Backend,
    project: &str,
    services: &[String],
    all: bool,
    oneoff: bool,
) -> Result<Vec<ContainerSummary>, BackendError> {
    Ok(select(&observe(backend, project)?, services, all, oneoff))
}

fn service_of(c: &ContainerSummary) -> &str {
    c.labels
        .get(labels::SERVICE)
        .map(String::as_str)
        .unwrap_or("")
}

/// Runs `f` on every container at once; reports `done` for each success.
fn for_each(
    list: &[ContainerSummary],
    done: &'static str,
    on_event: &(dyn Fn(Event) + Sync),
    f: impl Fn(&ContainerSummary) -> Result<(), BackendError> + Sync,
) -> Result<(), Failures> {
    failures(each(list, |c| match f(c) {
        Ok(()) => {
            on_event(Event {
                kind: "Container",
                name: c.name.clone(),
                status: done,
            });
            Ok(())
        }
        Err(source) => Err(Failure {
            object: format!("container {}", c.name),
            source,
        }),
    }))
}

/// Starts the stopped containers of `list` level by level (dependencies first, by `graph`;
/// without a project, all at once). Stops at the first level with a failure.
pub fn start(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    graph: Option<&DependencyGraph>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    let levels: Vec<Vec<String>> = match graph {
        Some(g) => g.levels(),
        None => vec![list.iter().map(|c| service_of(c).to_string()).collect()],
    };
    for level in levels {
        let batch: Vec<ContainerSummary> = list
            .iter()
            .filter(|c| level.iter().any(|s| s == service_of(c)))
            .filter(|c| !c.status.is_up())
            .cloned()
            .collect();
        for_each(&batch, "Started", on_event, |c| {
            backend.start_container(&c.id)
        })?;
    }
    Ok(())
}

/// Stops every container of `list` at once.
pub fn stop(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    timeout: Option<u32>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    for_each(list, "Stopped", on_event, |c| {
        backend.stop_container(&c.id, timeout)
    })
}

/// Stops every container of `list` at once, then starts them again in dependency order.
pub fn restart(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    graph: Option<&DependencyGraph>,
    timeout: Option<u32>,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    stop(backend, list, timeout, on_event)?;
    let fresh: Vec<ContainerSummary> = list
        .iter()
        .filter_map(|c| backend.inspect_container(&c.id).ok())
        .collect();
    start(backend, &fresh, graph, on_event)
}

/// `services` plus, transitively, the services that declare `depends_on: {svc: {restart:
/// true}}` on one of them: compose restarts those too. Empty stays empty (all services).
pub fn with_restart_dependents(project: Option<&Project>, services: &[String]) -> Vec<String> {
    let (Some(p), false) = (project, services.is_empty()) else {
        return services.to_vec();
    };
    let mut out = services.to_vec();
    let mut i = 0;
    while i < out.len() {
        let cur = out[i].clone();
        for (name, svc) in &p.services {
            if svc.depends_on.get(&cur).is_some_and(|d| d.restart) && !out.contains(name) {
                out.push(name.clone());
            }
        }
        i += 1;
    }
    out
}

/// Sends `signal` to every container of `list` at once.
pub fn kill(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    signal: &str,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    for_each(list, "Killed", on_event, |c| {
        backend.kill_container(&c.id, signal)
    })
}

/// Pauses (`on`) or unpauses every container of `list` at once.
pub fn pause(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    on: bool,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    let done = if on { "Paused" } else { "Unpaused" };
    for_each(list, done, on_event, |c| {
        if on {
            backend.pause_container(&c.id)
        } else {
            backend.unpause_container(&c.id)
        }
    })
}

/// `rm --stop`: stops the containers of `list` that are up.
pub fn stop_running(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    let up: Vec<ContainerSummary> = list.iter().filter(|c| c.status.is_up()).cloned().collect();
    for_each(&up, "Stopped", on_event, |c| {
        backend.stop_container(&c.id, None)
    })
}

/// The containers of `list` that `rm` may remove now: stopped (or dead), as they are now.
pub fn removable(backend: &dyn Backend, list: &[ContainerSummary]) -> Vec<ContainerSummary> {
    list.iter()
        .filter_map(|c| backend.inspect_container(&c.id).ok())
        .filter(|c| !c.status.is_up() || c.status == RunState::Dead)
        .collect()
}

/// Removes every container of `list` at once; `volumes` removes their anonymous volumes.
pub fn remove(
    backend: &dyn Backend,
    list: &[ContainerSummary],
    volumes: bool,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    for_each(list, "Removed", on_event, |c| {
        backend.remove_container(&c.id, volumes)
    })
}

#[cfg(test)]
mod tests;
