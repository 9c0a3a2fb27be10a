//! `rcompose stack`: a converted compose project ([`rcompose_compose::convert::swarm::Stack`])
//! deployed to a Docker Swarm through the manager's Engine API, and the stack's objects listed
//! and removed, as `docker stack deploy/ls/services/ps/rm` do. Every object carries
//! `com.docker.stack.namespace=<stack>`; that label is how a stack's objects are found again.
//!
//! Progress goes to a callback; the CLI renders it as docker does (`Creating service x`).

pub mod client;
pub mod http;
mod tasks;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rcompose_compose::convert::swarm::{NAMESPACE_LABEL, Stack, resolve_references};
use serde_json::Value;

pub use client::{Client, ClientError};
pub use tasks::{TaskRow, tasks};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(
        "this node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again"
    )]
    NotManager,
    #[error(
        "network {0:?} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
    )]
    ExternalNetwork(String),
    #[error(
        "network {name:?} is declared as external, but it is not in the right scope: {scope:?} instead of \"swarm\""
    )]
    ExternalScope { name: String, scope: String },
    #[error(
        "{what} {name:?} is declared as external, but could not be found: create it first (docker {what} create)"
    )]
    ExternalObject { what: &'static str, name: String },
    #[error("{what} while {doing}; rolled back what this deploy had created")]
    RolledBack {
        what: Box<StackError>,
        doing: String,
    },
    #[error("service {name}: {message}")]
    UpdatePaused { name: String, message: String },
    #[error("services of stack {stack} did not converge within {secs} s: {}", waiting.join(", "))]
    NotConverged {
        stack: String,
        secs: u64,
        waiting: Vec<String>,
    },
    #[error("failed to remove some resources from stack {stack}:\n{}", errors.join("\n"))]
    Incomplete { stack: String, errors: Vec<String> },
}

/// What a deploy or a removal is doing, for the CLI to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Creating {
        kind: &'static str,
        name: String,
    },
    Updating {
        kind: &'static str,
        name: String,
        id: String,
    },
    Removing {
        kind: &'static str,
        name: String,
    },
    /// A warning the daemon returned (an image it cannot resolve, …).
    Warning(String),
    /// While waiting for convergence: a service's running and desired tasks changed.
    Progress {
        name: String,
        running: u64,
        desired: u64,
    },
    Converged {
        name: String,
    },
}

fn label(namespace: &str) -> String {
    format!("{NAMESPACE_LABEL}={namespace}")
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Refuses a daemon that is not a swarm manager, as docker does before anything else.
pub fn check_manager(c: &Client) -> Result<(), StackError> {
    let info = c.get("/info")?;
    if info["Swarm"]["ControlAvailable"].as_bool() == Some(true) {
        Ok(())
    } else {
        Err(StackError::NotManager)
    }
}

#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Remove services of the stack that the file no longer has.
    pub prune: bool,
}

/// The objects of the stack, by kind (`services`, `networks`, `secrets`, `configs`).
fn objects(c: &Client, kind: &str, namespace: &str) -> Result<Vec<Value>, StackError> {
    Ok(c.list(kind, "label", &[&label(namespace)])?)
}

/// The object named exactly `name` (name filters match prefixes).
fn by_name(c: &Client, kind: &str, name: &str) -> Result<Option<Value>, StackError> {
    Ok(c.list(kind, "name", &[name])?
        .into_iter()
        .find(|x| x["Spec"]["Name"] == name || x["Name"] == name))
}

/// Deploys `stack`: secrets, configs, networks, then services, created or updated. A failure
/// removes again what this call created (updates of existing services stay, as the daemon
/// rolls those back by their own `rollback_config`).
pub fn deploy(
    c: &Client,
    stack: &Stack,
    opts: &DeployOptions,
    on: &mut dyn FnMut(Event),
) -> Result<(), StackError> {
    check_manager(c)?;
    let mut created: Vec<(&'static str, String, String)> = Vec::new();
    let mut doing = String::new();
    match deploy_steps(c, stack, opts, &mut created, &mut doing, on) {
        Ok(()) => Ok(()),
        Err(e) if created.is_empty() => Err(e),
        Err(e) => {
            for (kind, id, name) in created.iter().rev() {
                on(Event::Removing {
                    kind: singular(kind),
                    name: name.clone(),
                });
                // Best effort: the error that matters is the one that stopped the deploy.
                let _ = c.delete(&format!("/{kind}/{id}"));
            }
            Err(StackError::RolledBack {
                what: Box::new(e),
                doing,
            })
        }
    }
}

fn singular(kind: &str) -> &'static str {
    match kind {
        "services" => "service",
        "networks" => "network",
        "secrets" => "secret",
        _ => "config",
    }
}

fn deploy_steps(
    c: &Client,
    stack: &Stack,
    opts: &DeployOptions,
    created: &mut Vec<(&'static str, String, String)>,
    doing: &mut String,
    on: &mut dyn FnMut(Event),
) -> Result<(), StackError> {
    let ns = &stack.namespace;
    let existing = objects(c, "services", ns)?;
    if opts.prune {
        for svc in &existing {
            let name = s(&svc["Spec"]["Name"]);
            if !stack.services.iter().any(|x| x.name == name) {
                on(Event::Removing {
                    kind: "service",
                    name: name.clone(),
                });
                *doing = format!("removing service {name}");
                c.delete(&format!("/services/{}", s(&svc["ID"])))?;
            }
        }
    }
    let mut ids: [BTreeMap<String, String>; 2] = Default::default();
    for (i, (kind, specs, externals)) in [
        ("secrets", &stack.secrets, &stack.external_secrets),
        ("configs", &stack.configs, &stack.external_configs),
    ]
    .into_iter()
    .enumerate()
    {
        for f in specs {
            *doing = format!("creating {} {}", singular(kind), f.name);
            let id = match by_name(c, kind, &f.name)? {
                Some(found) => {
                    let id = s(&found["ID"]);
                    // The daemon accepts the same data with new labels, and refuses changed
                    // data with its own message (docker behaves the same).
                    c.post(
                        &format!("/{kind}/{id}/update?version={}", found["Version"]["Index"]),
                        &f.spec,
                    )?;
                    id
                }
                None => {
                    on(Event::Creating {
                        kind: singular(kind),
                        name: f.name.clone(),
                    });
                    let id = c.create(&format!("/{kind}/create"), &f.spec)?;
                    created.push((kind, id.clone(), f.name.clone()));
                    id
                }
            };
            ids[i].insert(f.name.clone(), id);
        }
        for name in externals {
            let Some(found) = by_name(c, kind, name)? else {
                return Err(StackError::ExternalObject {
                    what: singular(kind),
                    name: name.clone(),
                });
            };
            ids[i].insert(name.clone(), s(&found["ID"]));
        }
    }
    let have: Vec<String> = objects(c, "networks", ns)?
        .iter()
        .map(|n| s(&n["Name"]))
        .collect();
    for n in &stack.networks {
        if have.contains(&n.name) {
            continue;
        }
        *doing = format!("creating network {}", n.name);
        on(Event::Creating {
            kind: "network",
            name: n.name.clone(),
        });
        let id = c.create("/networks/create", &n.spec)?;
        created.push(("networks", id, n.name.clone()));
    }
    for name in &stack.external_networks {
        let net = match c.get(&format!("/networks/{}", client::encode(name))) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return Err(StackError::ExternalNetwork(name.clone())),
            Err(e) => return Err(e.into()),
        };
        if net["Scope"] != "swarm" {
            return Err(StackError::ExternalScope {
                name: name.clone(),
                scope: s(&net["Scope"]),
            });
        }
    }
    for svc in &stack.services {
        let mut spec = svc.spec.clone();
        resolve_references(&mut spec, &ids[0], &ids[1]).map_err(|name| {
            StackError::ExternalObject {
                what: "secret or config",
                name,
            }
        })?;
        let warnings = match existing.iter().find(|x| x["Spec"]["Name"] == svc.name) {
            Some(old) => {
                let id = s(&old["ID"]);
                *doing = format!("updating service {}", svc.name);
                on(Event::Updating {
                    kind: "service",
                    name: svc.name.clone(),
                    id: id.clone(),
                });
                // An update that forces a restart must not repeat on every deploy.
                let force = &old["Spec"]["TaskTemplate"]["ForceUpdate"];
                if !force.is_null() {
                    spec["TaskTemplate"]["ForceUpdate"] = force.clone();
                }
                c.post(
                    &format!("/services/{id}/update?version={}", old["Version"]["Index"]),
                    &spec,
                )?
            }
            None => {
                *doing = format!("creating service {}", svc.name);
                on(Event::Creating {
                    kind: "service",
                    name: svc.name.clone(),
                });
                let v = c.post("/services/create", &spec)?;
                created.push(("services", s(&v["ID"]), svc.name.clone()));
                v
            }
        };
        for w in warnings["Warnings"].as_array().into_iter().flatten() {
            on(Event::Warning(s(w)));
        }
    }
    Ok(())
}

/// A stack and how many services it has (`stack ls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSummary {
    pub name: String,
    pub services: usize,
}

pub fn list(c: &Client) -> Result<Vec<StackSummary>, StackError> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for svc in c.list("services", "label", &[NAMESPACE_LABEL])? {
        if let Some(ns) = svc["Spec"]["Labels"][NAMESPACE_LABEL].as_str() {
            *count.entry(ns.to_string()).or_default() += 1;
        }
    }
    Ok(count
        .into_iter()
        .map(|(name, services)| StackSummary { name, services })
        .collect())
}

/// The stack's services as the API lists them, with `ServiceStatus` (running and desired
/// tasks), sorted by name; `filters` are the API's (`stack services -f name=web`).
pub fn services(
    c: &Client,
    namespace: &str,
    filters: &[(String, String)],
) -> Result<Vec<Value>, StackError> {
    let mut pairs = vec![("label".to_string(), label(namespace))];
    pairs.extend(filters.iter().cloned());
    let mut v = c.get(&format!(
        "/services?status=true&{}",
        client::filter_query(&pairs)
    ))?;
    let mut out = match v.take() {
        Value::Array(a) => a,
        _ => Vec::new(),
    };
    out.sort_by_key(|x| s(&x["Spec"]["Name"]));
    Ok(out)
}

/// Waits until every replicated or global service of the stack runs as many tasks as it
/// wants and no update is in progress (`stack deploy --detach=false`); jobs are not awaited.
pub fn wait_converged(
    c: &Client,
    namespace: &str,
    timeout: Duration,
    on: &mut dyn FnMut(Event),
) -> Result<(), StackError> {
    let deadline = Instant::now() + timeout;
    let mut seen: BTreeMap<String, (u64, u64, bool)> = BTreeMap::new();
    loop {
        let mut waiting = Vec::new();
        let tasks = objects(c, "tasks", namespace)?;
        for svc in services(c, namespace, &[])? {
            let mode = &svc["Spec"]["Mode"];
            if mode.get("ReplicatedJob").is_some() || mode.get("GlobalJob").is_some() {
                continue;
            }
            let name = s(&svc["Spec"]["Name"]);
            // Running tasks of the current spec only: right after an update the daemon still
            // reports the old tasks as running, before it has started to replace them.
            let spec = &svc["Spec"]["TaskTemplate"]["ContainerSpec"];
            let running = tasks
                .iter()
                .filter(|t| {
                    t["ServiceID"] == svc["ID"]
                        && t["DesiredState"] == "running"
                        && t["Status"]["State"] == "running"
                        && &t["Spec"]["ContainerSpec"] == spec
                })
                .count() as u64;
            let desired = mode["Replicated"]["Replicas"]
                .as_u64()
                .or_else(|| svc["ServiceStatus"]["DesiredTasks"].as_u64())
                .unwrap_or(0);
            let update = svc["UpdateStatus"]["State"].as_str().unwrap_or_default();
            if matches!(update, "paused" | "rollback_paused") {
                return Err(StackError::UpdatePaused {
                    name,
                    message: format!(
                        "update {update}: {}",
                        svc["UpdateStatus"]["Message"].as_str().unwrap_or_default()
                    ),
                });
            }
            let done = running == desired && !matches!(update, "updating" | "rollback_started");
            if seen.get(&name) != Some(&(running, desired, done)) {
                on(if done {
                    Event::Converged { name: name.clone() }
                } else {
                    Event::Progress {
                        name: name.clone(),
                        running,
                        desired,
                    }
                });
                seen.insert(name.clone(), (running, desired, done));
            }
            if !done {
                waiting.push(format!("{name} {running}/{desired}"));
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StackError::NotConverged {
                stack: namespace.to_string(),
                secs: timeout.as_secs(),
                waiting,
            });
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Removes the stack's services, then (once their tasks are gone, at most `wait`) its
/// secrets, configs and networks. `Ok(false)` when the stack has nothing.
pub fn remove(
    c: &Client,
    namespace: &str,
    wait: Duration,
    on: &mut dyn FnMut(Event),
) -> Result<bool, StackError> {
    let found: Vec<(&'static str, Vec<Value>)> = ["services", "secrets", "configs", "networks"]
        .into_iter()
        .map(|k| Ok((k, objects(c, k, namespace)?)))
        .collect::<Result<_, StackError>>()?;
    if found.iter().all(|(_, v)| v.is_empty()) {
        return Ok(false);
    }
    let mut errors = Vec::new();
    let deadline = Instant::now() + wait;
    for (kind, mut list) in found {
        let name_of = |x: &Value| {
            if kind == "networks" {
                s(&x["Name"])
            } else {
                s(&x["Spec"]["Name"])
            }
        };
        list.sort_by_key(name_of);
        if kind == "secrets" {
            // Secrets, configs and networks stay in use until the tasks have stopped.
            wait_tasks_gone(c, namespace, deadline)?;
        }
        for x in &list {
            let name = name_of(x);
            on(Event::Removing {
                kind: singular(kind),
                name: name.clone(),
            });
            let id = if kind == "networks" {
                s(&x["Id"])
            } else {
                s(&x["ID"])
            };
            // A network's endpoints go a moment after the last task.
            let r = loop {
                match c.delete(&format!("/{kind}/{id}")) {
                    Err(ClientError::Daemon { status, .. })
                        if status != 404 && kind == "networks" && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Err(e) if e.is_not_found() => break Ok(()),
                    r => break r,
                }
            };
            if let Err(e) = r {
                errors.push(format!("Failed to remove {} {name}: {e}", singular(kind)));
            }
        }
    }
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(StackError::Incomplete {
            stack: namespace.to_string(),
            errors,
        })
    }
}

/// Swarm deletes the tasks of a removed service once they have shut down.
fn wait_tasks_gone(c: &Client, namespace: &str, deadline: Instant) -> Result<(), StackError> {
    while !objects(c, "tasks", namespace)?.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
