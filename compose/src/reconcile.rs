//! `reconcile(project, observed, options) -> Plan`: the pure heart of `up`. Compares the desired
//! project with what the labels say exists and decides, per container, create / recreate /
//! start / keep / remove, each with its cause. No I/O, so every decision is unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::{DependencyGraph, GraphError};
use crate::hash::service_hash;
use crate::labels::{container_name, key_hashes, network_name, volume_name};
use crate::model::{Project, Service};
use crate::observe::{ObservedContainer, ObservedState};
use crate::plan::{ContainerAction, ContainerOp, ObjectAction, ObjectOp, Plan, ServicePlan};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReconcileError {
    #[error("no such service: {name}{}", suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default())]
    NoSuchService {
        name: String,
        suggestion: Option<String>,
    },
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(
        "service \"{service}\" sets container_name \"{name}\" and cannot be scaled to {replicas}: a container name is unique; remove container_name or scale to 1"
    )]
    ScaleWithContainerName {
        service: String,
        name: String,
        replicas: u32,
    },
}

/// When to recreate containers whose configuration is unchanged or changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecreatePolicy {
    /// Recreate only when the config hash (or image) changed.
    #[default]
    Diverged,
    /// `--force-recreate`.
    Force,
    /// `--no-recreate`.
    Never,
}

#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    /// Services named on the command line; empty means all.
    pub services: Vec<String>,
    /// `--no-deps`: do not include the named services' dependencies.
    pub no_deps: bool,
    pub recreate: RecreatePolicy,
    /// `--remove-orphans`.
    pub remove_orphans: bool,
    /// `COMPOSE_IGNORE_ORPHANS`: orphans are neither removed nor warned about.
    pub ignore_orphans: bool,
    /// `--no-start` (`create`).
    pub no_start: bool,
    /// `--scale svc=n`.
    pub scale: BTreeMap<String, u32>,
    /// Service → id of the image it would run now (after pull/build); a container running
    /// another id is recreated with cause "image updated".
    pub image_ids: BTreeMap<String, String>,
}

/// Computes the plan. Deterministic: same inputs, same printed plan.
pub fn reconcile(
    project: &Project,
    observed: &ObservedState,
    opts: &ReconcileOptions,
) -> Result<Plan, ReconcileError> {
    let with_implicit = implicit_dependencies(project);
    let project = &with_implicit;
    let graph = DependencyGraph::new(project)?;
    for name in opts.services.iter().chain(opts.scale.keys()) {
        check_service(project, name)?;
    }
    let selected: BTreeSet<String> = if opts.services.is_empty() {
        project.services.keys().cloned().collect()
    } else if opts.no_deps {
        opts.services.iter().cloned().collect()
    } else {
        graph.with_dependencies(&opts.services)
    };

    let mut plan = Plan {
        project: project.name.clone(),
        ..Default::default()
    };
    plan_objects(project, observed, &mut plan);

    for level in graph.levels() {
        let mut out = vec![];
        for name in level.iter().filter(|n| selected.contains(*n)) {
            let svc = &project.services[name];
            let joined = joined_namespace(svc, &plan, observed);
            out.push(plan_service(
                project, svc, observed, opts, &selected, &joined,
            )?);
        }
        if !out.is_empty() {
            plan.levels.push(out);
        }
    }

    let orphans: Vec<&ObservedContainer> = observed
        .containers()
        .filter(|c| {
            !project.services.contains_key(&c.service)
                && !project.disabled_services.contains_key(&c.service)
        })
        .collect();
    if opts.remove_orphans {
        plan.orphans = orphans
            .iter()
            .map(|c| ContainerOp {
                action: ContainerAction::Remove,
                service: c.service.clone(),
                name: c.summary.name.clone(),
                number: c.number,
                id: Some(c.summary.id.clone()),
                cause: "orphan".into(),
            })
            .collect();
    } else if !orphans.is_empty() && !opts.ignore_orphans {
        let names: Vec<&str> = orphans.iter().map(|c| c.summary.name.as_str()).collect();
        plan.warnings.push(format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        ));
    }
    Ok(plan)
}

/// The project with the dependencies compose implies: `network_mode: service:x`,
/// `volumes_from: [x]` and `links: [x]` need x started first.
pub fn implicit_dependencies(project: &Project) -> Project {
    let mut p = project.clone();
    for svc in p.services.values_mut() {
        let mut implied: Vec<String> = vec![];
        if let Some(x) = svc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
        {
            implied.push(x.to_string());
        }
        for v in &svc.volumes_from {
            if v.starts_with("container:") {
                continue;
            }
            let rest = v.strip_prefix("service:").unwrap_or(v);
            let name = match rest.rsplit_once(':') {
                Some((n, "ro" | "rw")) => n,
                _ => rest,
            };
            implied.push(name.to_string());
        }
        for l in &svc.links {
            implied.push(l.split(':').next().unwrap_or(l).to_string());
        }
        for x in implied {
            if x != svc.name && project.services.contains_key(&x) {
                svc.depends_on.entry(x).or_insert(crate::model::Dependency {
                    condition: crate::model::CONDITION_STARTED.into(),
                    restart: false,
                    required: true,
                    extensions: Default::default(),
                });
            }
        }
    }
    p
}

/// The service whose namespace `svc` joins (`network_mode: service:x` → `x`).
pub fn namespace_service(svc: &Service) -> Option<&str> {
    svc.network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
}

/// `svc` with `network_mode: service:x` resolved to `container:<id>` of x's first container,
/// as compose does before hashing and creating: the config hash then names the container
/// whose namespace is joined, so a dependent is recreated when x's container is replaced.
/// Other services are returned unchanged.
pub fn with_joined_container(svc: &Service, container_id: &str) -> Service {
    let mut out = svc.clone();
    if namespace_service(svc).is_some() {
        out.network_mode = Some(format!("container:{container_id}"));
    }
    out
}

/// What happens to the container whose namespace a `network_mode: service:x` service joins.
#[derive(Debug, Clone, PartialEq)]
enum Joined {
    /// Not a `service:` network mode.
    None,
    /// x's first container stays: its id.
    Kept(String),
    /// x's first container (this id) is started again by this plan, in a new namespace: the
    /// service's running containers, still in the old one, must be recreated to join it.
    Restarted(String, String),
    /// x's first container is created or recreated by this plan (its id is not known yet):
    /// the service's containers must be recreated to join the new namespace.
    Replaced(String),
    /// x has no container and none is planned (the create will say so).
    Missing,
}

/// x's first container (lowest number, not being removed) as planned in the earlier levels
/// of `plan`, else as observed (x not selected, e.g. `--no-deps`).
fn joined_namespace(svc: &Service, plan: &Plan, observed: &ObservedState) -> Joined {
    let Some(target) = namespace_service(svc) else {
        return Joined::None;
    };
    let planned = plan
        .levels
        .iter()
        .flatten()
        .find(|s| s.service == target)
        .and_then(|s| {
            s.ops
                .iter()
                .filter(|o| o.action != ContainerAction::Remove)
                .min_by_key(|o| o.number)
        });
    if let Some(op) = planned {
        return match (&op.action, &op.id) {
            (ContainerAction::Keep, Some(id)) => Joined::Kept(id.clone()),
            (ContainerAction::Start, Some(id)) => Joined::Restarted(target.to_string(), id.clone()),
            _ => Joined::Replaced(target.to_string()),
        };
    }
    match observed.services.get(target).and_then(|l| l.first()) {
        Some(c) => Joined::Kept(c.summary.id.clone()),
        None => Joined::Missing,
    }
}

fn check_service(project: &Project, name: &str) -> Result<(), ReconcileError> {
    if project.services.contains_key(name) {
        return Ok(());
    }
    let suggestion = project
        .services
        .keys()
        .map(|k| (strsim::damerau_levenshtein(k, name), k))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k.clone());
    Err(ReconcileError::NoSuchService {
        name: name.to_string(),
        suggestion,
    })
}

fn plan_objects(project: &Project, observed: &ObservedState, plan: &mut Plan) {
    for (key, net) in &project.networks {
        let name = network_name(project, key);
        if net.external {
            plan.networks.push(ObjectOp {
                key: key.clone(),
                name,
                action: ObjectAction::External,
                cause: String::new(),
            });
        } else if !observed.networks.contains_key(key) {
            plan.networks.push(ObjectOp {
                key: key.clone(),
                name,
                action: ObjectAction::Create,
                cause: "not found".into(),
            });
        }
    }
    for (key, vol) in &project.volumes {
        let name = volume_name(project, key);
        if vol.external {
            plan.volumes.push(ObjectOp {
                key: key.clone(),
                name,
                action: ObjectAction::External,
                cause: String::new(),
            });
        } else if !observed.volumes.contains_key(key) {
            plan.volumes.push(ObjectOp {
                key: key.clone(),
                name,
                action: ObjectAction::Create,
                cause: "not found".into(),
            });
        }
    }
}

fn plan_service(
    project: &Project,
    svc: &Service,
    observed: &ObservedState,
    opts: &ReconcileOptions,
    selected: &BTreeSet<String>,
    joined: &Joined,
) -> Result<ServicePlan, ReconcileError> {
    let replicas = opts
        .scale
        .get(&svc.name)
        .copied()
        .unwrap_or_else(|| svc.replicas());
    if let Some(name) = &svc.container_name
        && replicas > 1
    {
        return Err(ReconcileError::ScaleWithContainerName {
            service: svc.name.clone(),
            name: name.clone(),
            replicas,
        });
    }
    let targeted = opts.services.is_empty() || opts.services.contains(&svc.name);
    let start = !opts.no_start;
    let hashed = match joined {
        Joined::Kept(id) | Joined::Restarted(_, id) => with_joined_container(svc, id),
        _ => svc.clone(),
    };
    let wanted_hash = service_hash(&hashed);
    let wanted_keys = key_hashes(&hashed);
    let existing: &[ObservedContainer] = observed
        .services
        .get(&svc.name)
        .map(Vec::as_slice)
        .unwrap_or(&[]);

    let mut ops = vec![];
    for (i, c) in existing.iter().enumerate() {
        let op = |action, cause: &str| ContainerOp {
            action,
            service: svc.name.clone(),
            name: c.summary.name.clone(),
            number: c.number,
            id: Some(c.summary.id.clone()),
            cause: cause.to_string(),
        };
        if i as u32 >= replicas {
            ops.push(op(ContainerAction::Remove, "scale down"));
            continue;
        }
        // Dependencies pulled in by `up web` are recreated only when forced explicitly for
        // them too; compose does the same (`--always-recreate-deps` aside).
        let policy = if targeted {
            opts.recreate
        } else {
            match opts.recreate {
                RecreatePolicy::Force => RecreatePolicy::Diverged,
                p => p,
            }
        };
        let divergence = match joined {
            Joined::Replaced(x) => Some(format!(
                "network_mode service:{x}: the container of {x} is replaced"
            )),
            Joined::Restarted(x, _) if c.summary.status.is_up() => Some(format!(
                "network_mode service:{x}: {x} starts again in a new network namespace"
            )),
            _ => diverged(svc, c, &wanted_hash, &wanted_keys, opts),
        };
        let recreate_cause = match (policy, divergence) {
            (RecreatePolicy::Never, _) => None,
            (RecreatePolicy::Force, d) => Some(d.unwrap_or_else(|| "--force-recreate".into())),
            (RecreatePolicy::Diverged, d) => d,
        };
        if let Some(cause) = recreate_cause {
            ops.push(op(ContainerAction::Recreate { start }, &cause));
        } else if !c.summary.status.is_up() && start {
            ops.push(op(ContainerAction::Start, c.summary.status.as_str()));
        } else {
            ops.push(op(ContainerAction::Keep, c.summary.status.as_str()));
        }
    }
    let first = observed.next_number(&svc.name);
    let missing = replicas.saturating_sub(existing.len() as u32);
    for number in first..first + missing {
        let cause = if existing.is_empty() {
            "not found"
        } else {
            "scale up"
        };
        ops.push(ContainerOp {
            action: ContainerAction::Create { start },
            service: svc.name.clone(),
            name: container_name(&project.name, svc, number),
            number,
            id: None,
            cause: cause.into(),
        });
    }
    let wait_for = svc
        .depends_on
        .iter()
        .filter(|(d, _)| selected.contains(*d))
        .map(|(d, dep)| (d.clone(), dep.clone()))
        .collect();
    Ok(ServicePlan {
        service: svc.name.clone(),
        wait_for,
        ops,
    })
}

/// Why the container no longer matches the service, or `None` when it does.
fn diverged(
    svc: &Service,
    c: &ObservedContainer,
    wanted_hash: &str,
    wanted_keys: &BTreeMap<String, String>,
    opts: &ReconcileOptions,
) -> Option<String> {
    if c.config_hash != wanted_hash {
        if c.config_keys.is_empty() {
            return Some("config hash changed".into());
        }
        let keys: BTreeSet<&String> = wanted_keys.keys().chain(c.config_keys.keys()).collect();
        let changed: Vec<&str> = keys
            .into_iter()
            .filter(|k| wanted_keys.get(*k) != c.config_keys.get(*k))
            .map(String::as_str)
            .collect();
        if changed.is_empty() {
            return Some("config hash changed".into());
        }
        return Some(format!("config hash changed: {}", changed.join(", ")));
    }
    if let Some(id) = opts.image_ids.get(&svc.name)
        && !c.summary.image_id.is_empty()
        && *id != c.summary.image_id
    {
        return Some("image updated".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::container_labels;
    use crate::observe::{ContainerSummary, RunState};

    const JOINED: &str = "services:\n  side:\n    image: busybox\n    network_mode: service:main\n  main:\n    image: busybox\n";

    fn project(yaml: &str) -> Project {
        let opts = crate::load::LoadOptions {
            files: vec!["-".into()],
            project_name: Some("nm".into()),
            working_dir: std::env::temp_dir(),
            interpolate: true,
            stdin: Some(yaml.into()),
            ..Default::default()
        };
        crate::load::load(&opts).expect("test file loads").project
    }

    /// A running container of `svc` as the backend would have labelled it.
    fn running(p: &Project, svc: &Service, id: &str) -> ContainerSummary {
        ContainerSummary {
            id: id.into(),
            name: container_name(&p.name, svc, 1),
            status: RunState::Running,
            labels: container_labels(p, svc, 1, false),
            ..Default::default()
        }
    }

    fn ops(plan: &Plan, service: &str) -> Vec<String> {
        plan.levels
            .iter()
            .flatten()
            .filter(|s| s.service == service)
            .flat_map(|s| s.ops.iter().map(|o| format!("{:?}: {}", o.action, o.cause)))
            .collect()
    }

    #[test]
    fn joined_service_is_kept_while_its_target_container_stays() {
        let p = project(JOINED);
        let (main, side) = (&p.services["main"], &p.services["side"]);
        let observed = ObservedState::from_objects(
            "nm",
            &[
                running(&p, main, "id-main"),
                running(&p, &with_joined_container(side, "id-main"), "id-side"),
            ],
            &[],
            &[],
        );
        let plan = reconcile(&p, &observed, &ReconcileOptions::default()).unwrap();
        assert_eq!(ops(&plan, "side"), ["Keep: running"]);

        // Created against another container of main (main was recreated by a run that did
        // not include side): the hash names network_mode.
        let stale = ObservedState::from_objects(
            "nm",
            &[
                running(&p, main, "id-main"),
                running(&p, &with_joined_container(side, "id-old"), "id-side"),
            ],
            &[],
            &[],
        );
        let plan = reconcile(&p, &stale, &ReconcileOptions::default()).unwrap();
        assert_eq!(
            ops(&plan, "side"),
            ["Recreate { start: true }: config hash changed: network_mode"]
        );
    }

    #[test]
    fn recreating_the_target_recreates_the_joined_service() {
        let before = project(JOINED);
        let observed = ObservedState::from_objects(
            "nm",
            &[
                running(&before, &before.services["main"], "id-main"),
                running(
                    &before,
                    &with_joined_container(&before.services["side"], "id-main"),
                    "id-side",
                ),
            ],
            &[],
            &[],
        );
        let p = project(&JOINED.replace(
            "  main:\n    image: busybox\n",
            "  main:\n    image: busybox\n    environment: {A: b}\n",
        ));
        let plan = reconcile(&p, &observed, &ReconcileOptions::default()).unwrap();
        assert_eq!(
            ops(&plan, "main"),
            ["Recreate { start: true }: config hash changed: environment.A"]
        );
        assert_eq!(
            ops(&plan, "side"),
            [
                "Recreate { start: true }: network_mode service:main: the container of main is replaced"
            ]
        );
        // main stopped while side runs: starting main again gives it a new namespace, which
        // side must join.
        let mut stopped = observed.clone();
        stopped.services.get_mut("main").unwrap()[0].summary.status = RunState::Exited;
        let plan = reconcile(&before, &stopped, &ReconcileOptions::default()).unwrap();
        assert_eq!(ops(&plan, "main"), ["Start: exited"]);
        assert_eq!(
            ops(&plan, "side"),
            [
                "Recreate { start: true }: network_mode service:main: main starts again in a new network namespace"
            ]
        );
        // Both stopped: starting side after main is enough.
        stopped.services.get_mut("side").unwrap()[0].summary.status = RunState::Exited;
        let plan = reconcile(&before, &stopped, &ReconcileOptions::default()).unwrap();
        assert_eq!(ops(&plan, "side"), ["Start: exited"]);
        // --no-recreate leaves both alone.
        let opts = ReconcileOptions {
            recreate: RecreatePolicy::Never,
            ..Default::default()
        };
        let plan = reconcile(&p, &observed, &opts).unwrap();
        assert_eq!(ops(&plan, "side"), ["Keep: running"]);
    }

    #[test]
    fn joined_hash_differs_only_in_network_mode() {
        let p = project(JOINED);
        let side = &p.services["side"];
        let resolved = with_joined_container(side, "abc");
        assert_eq!(resolved.network_mode.as_deref(), Some("container:abc"));
        assert_ne!(service_hash(side), service_hash(&resolved));
        let main = &p.services["main"];
        assert_eq!(&with_joined_container(main, "abc"), main);
        assert_eq!(namespace_service(side), Some("main"));
    }
}
