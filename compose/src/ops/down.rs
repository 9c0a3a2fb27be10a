//! `down`: [`plan`] decides from the labels (so `-p name` without a compose file is enough)
//! which containers, networks and volumes go, as a [`Plan`] like `up`'s (`--dry-run` prints
//! it); [`execute`] stops and removes the containers in parallel, then removes the networks
//! and, with `-v`, the volumes.

use std::collections::BTreeMap;

use super::{Failure, Failures, failures};
use crate::execute::{Backend, Event, each};
use crate::model::Project;
use crate::observe::{ObservedContainer, ObservedState};
use crate::plan::{ContainerAction, ContainerOp, ObjectAction, ObjectOp, Plan, ServicePlan};

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// Only these services' containers (and then no networks or volumes); empty: everything.
    pub services: Vec<String>,
    /// Also the containers of services no longer in the compose file.
    pub remove_orphans: bool,
    /// `-v`: the project's volumes, and the containers' anonymous volumes.
    pub volumes: bool,
    /// Stop timeout.
    pub timeout: Option<u32>,
}

fn remove_op(c: &ObservedContainer, cause: &str) -> ContainerOp {
    ContainerOp {
        action: ContainerAction::Remove,
        service: c.service.clone(),
        name: c.summary.name.clone(),
        number: c.number,
        id: Some(c.summary.id.clone()),
        cause: cause.into(),
    }
}

/// What `down` removes. `project` is the compose file's project when there is one: without
/// it every labelled container belongs to the project. Containers of services not in it are
/// orphans, removed only with `remove_orphans` (else the plan warns about them).
pub fn plan(observed: &ObservedState, project: Option<&Project>, opts: &DownOptions) -> Plan {
    let in_project = |c: &ObservedContainer| match project {
        Some(p) => {
            p.services.contains_key(&c.service) || p.disabled_services.contains_key(&c.service)
        }
        None => true,
    };
    let selected =
        |c: &ObservedContainer| opts.services.is_empty() || opts.services.contains(&c.service);
    let mut plan = Plan {
        project: observed.project.clone(),
        ..Default::default()
    };
    let mut services: BTreeMap<String, Vec<ContainerOp>> = BTreeMap::new();
    for c in observed.containers().filter(|c| selected(c)) {
        if in_project(c) {
            services
                .entry(c.service.clone())
                .or_default()
                .push(remove_op(c, ""));
        } else if opts.remove_orphans {
            plan.orphans.push(remove_op(c, "orphan"));
        }
    }
    if opts.services.is_empty() {
        for c in &observed.oneoff {
            services
                .entry(c.service.clone())
                .or_default()
                .push(remove_op(c, "one-off"));
        }
    }
    if !services.is_empty() {
        plan.levels.push(
            services
                .into_iter()
                .map(|(service, ops)| ServicePlan {
                    service,
                    wait_for: vec![],
                    ops,
                })
                .collect(),
        );
    }
    let orphans: Vec<&str> = observed
        .containers()
        .filter(|c| !in_project(c))
        .map(|c| c.summary.name.as_str())
        .collect();
    if !opts.remove_orphans && !orphans.is_empty() {
        plan.warnings.push(format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            orphans.join(" ")
        ));
    }
    if opts.services.is_empty() {
        let remove = |(key, name): (&String, &String)| ObjectOp {
            key: key.clone(),
            name: name.clone(),
            action: ObjectAction::Remove,
            cause: String::new(),
        };
        plan.networks = observed.networks.iter().map(remove).collect();
        if opts.volumes {
            plan.volumes = observed.volumes.iter().map(remove).collect();
        }
    }
    plan
}

/// Runs a [`plan`]: stops and removes every container at once (stopping is the slow part),
/// then removes the networks, then the volumes. Goes on after a failure; returns them all.
pub fn execute(
    backend: &dyn Backend,
    plan: &Plan,
    opts: &DownOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), Failures> {
    let containers: Vec<&ContainerOp> = plan
        .services()
        .flat_map(|s| &s.ops)
        .chain(&plan.orphans)
        .filter(|op| op.action == ContainerAction::Remove)
        .collect();
    let mut errors = each(&containers, |op| {
        let ev = |status| {
            on_event(Event {
                kind: "Container",
                name: op.name.clone(),
                status,
            })
        };
        let id = op.id.as_deref().unwrap_or_default();
        ev("Stopping");
        let res = backend.stop_container(id, opts.timeout).and_then(|()| {
            ev("Stopped");
            ev("Removing");
            backend.remove_container(id, opts.volumes)
        });
        match res {
            Ok(()) => {
                ev("Removed");
                Ok(())
            }
            Err(source) => Err(Failure {
                object: format!("container {}", op.name),
                source,
            }),
        }
    });
    let removed = |o: &&ObjectOp| o.action == ObjectAction::Remove;
    for op in plan.networks.iter().filter(removed) {
        let ev = |status| {
            on_event(Event {
                kind: "Network",
                name: op.name.clone(),
                status,
            })
        };
        ev("Removing");
        match backend.remove_network(&op.name) {
            Ok(()) => ev("Removed"),
            Err(source) => errors.push(Failure {
                object: format!("network {}", op.name),
                source,
            }),
        }
    }
    for op in plan.volumes.iter().filter(removed) {
        match backend.remove_volume(&op.name) {
            Ok(()) => on_event(Event {
                kind: "Volume",
                name: op.name.clone(),
                status: "Removed",
            }),
            Err(source) => errors.push(Failure {
                object: format!("volume {}", op.name),
                source,
            }),
        }
    }
    failures(errors)
}
