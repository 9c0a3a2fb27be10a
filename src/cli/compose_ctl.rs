//! `start`, `stop`, `restart`, `kill`, `pause`, `unpause`, `rm`: act on the project's existing
//! containers (selected by labels), in parallel; `start` follows dependency order.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Result, bail};
use clap::Args;
use rcompose_compose::execute::{Backend, Event};
use rcompose_compose::graph::DependencyGraph;
use rcompose_compose::labels;
use rcompose_compose::observe::{ContainerSummary, RunState};

use super::GlobalOpts;
use super::compose_common::{Progress, backend, check_services, containers, target};
use crate::backend::EngineBackend;

#[derive(Debug, Args)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    /// Remove containers for services not defined in the Compose file
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS", value_parser = super::env_flag)]
    pub remove_orphans: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    pub services: Vec<String>,
}

/// Runs `f` on every container in parallel; collects errors into one.
fn each(
    list: &[ContainerSummary],
    progress: &Progress,
    done: &'static str,
    f: impl Fn(&ContainerSummary) -> Result<()> + Sync,
) -> Result<()> {
    let errors = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for c in list {
            let (f, errors) = (&f, &errors);
            s.spawn(move || match f(c) {
                Ok(()) => progress.event(Event {
                    kind: "Container",
                    name: c.name.clone(),
                    status: done,
                }),
                Err(e) => errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("container {}: {e:#}", c.name)),
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_default();
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{}", errors.join("\n"))
    }
}

fn select(
    g: &GlobalOpts,
    services: &[String],
    all: bool,
) -> Result<(
    String,
    EngineBackend,
    Vec<ContainerSummary>,
    Option<DependencyGraph>,
)> {
    let t = target(g)?;
    let graph = match &t.project {
        Some(p) => {
            check_services(p, services)?;
            Some(DependencyGraph::new(p)?)
        }
        None => None,
    };
    let b = backend(g)?;
    let list = containers(&b, &t.name, services, all, false)?;
    Ok((t.name, b, list, graph))
}

/// `--dry-run`: prints what would be done to which containers; true when nothing may change.
fn dry_run(g: &GlobalOpts, list: &[ContainerSummary], verb: &str) -> bool {
    if g.dry_run {
        for c in list {
            println!("container {}: {verb}", c.name);
        }
    }
    g.dry_run
}

fn service_of(c: &ContainerSummary) -> &str {
    c.labels
        .get(labels::SERVICE)
        .map(String::as_str)
        .unwrap_or("")
}

/// Starts stopped containers level by level (dependencies first).
fn start_in_order(
    b: &EngineBackend,
    list: &[ContainerSummary],
    graph: Option<&DependencyGraph>,
    progress: &Progress,
) -> Result<()> {
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
        each(&batch, progress, "Started", |c| {
            Ok(b.start_container(&c.id)?)
        })?;
    }
    Ok(())
}

pub fn start(g: &GlobalOpts, a: ServicesArgs) -> Result<ExitCode> {
    let (_, b, list, graph) = select(g, &a.services, true)?;
    if dry_run(g, &list, "start") {
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        bail!("no containers to start; create them with `rcompose up` or `rcompose create`");
    }
    start_in_order(&b, &list, graph.as_ref(), &Progress::new(false))?;
    Ok(ExitCode::SUCCESS)
}

pub fn stop(g: &GlobalOpts, a: StopArgs) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, false)?;
    if dry_run(g, &list, "stop") {
        return Ok(ExitCode::SUCCESS);
    }
    each(&list, &Progress::new(false), "Stopped", |c| {
        Ok(b.stop_container(&c.id, a.timeout)?)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `services` plus, transitively, the services that declare `depends_on: {svc: {restart:
/// true}}` on one of them: compose restarts those too.
fn with_restart_dependents(g: &GlobalOpts, services: &[String]) -> Result<Vec<String>> {
    let t = target(g)?;
    let (Some(p), false) = (&t.project, services.is_empty()) else {
        return Ok(services.to_vec());
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
    Ok(out)
}

pub fn restart(g: &GlobalOpts, a: StopArgs) -> Result<ExitCode> {
    let services = with_restart_dependents(g, &a.services)?;
    let (_, b, list, graph) = select(g, &services, true)?;
    if dry_run(g, &list, "restart") {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    each(&list, &progress, "Stopped", |c| {
        Ok(b.stop_container(&c.id, a.timeout)?)
    })?;
    let fresh: Vec<ContainerSummary> = list
        .iter()
        .filter_map(|c| b.inspect_container(&c.id).ok())
        .collect();
    start_in_order(&b, &fresh, graph.as_ref(), &progress)?;
    Ok(ExitCode::SUCCESS)
}

pub fn kill(g: &GlobalOpts, a: KillArgs) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, false)?;
    if dry_run(g, &list, "kill") {
        return Ok(ExitCode::SUCCESS);
    }
    each(&list, &Progress::new(false), "Killed", |c| {
        Ok(b.containers.kill(&c.id, &a.signal)?)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn pause(g: &GlobalOpts, a: ServicesArgs, on: bool) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, false)?;
    if dry_run(g, &list, "pause/unpause") {
        return Ok(ExitCode::SUCCESS);
    }
    let done = if on { "Paused" } else { "Unpaused" };
    each(&list, &Progress::new(false), done, |c| {
        if on {
            Ok(b.containers.pause(&c.id)?)
        } else {
            Ok(b.containers.unpause(&c.id)?)
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn rm(g: &GlobalOpts, a: RmArgs) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, true)?;
    if dry_run(g, &list, "remove") {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    if a.stop {
        let up: Vec<ContainerSummary> = list.iter().filter(|c| c.status.is_up()).cloned().collect();
        each(&up, &progress, "Stopped", |c| {
            Ok(b.stop_container(&c.id, None)?)
        })?;
    }
    let stopped: Vec<ContainerSummary> = list
        .iter()
        .filter_map(|c| b.inspect_container(&c.id).ok())
        .filter(|c| !c.status.is_up() || c.status == RunState::Dead)
        .collect();
    if stopped.is_empty() {
        eprintln!("No stopped containers");
        return Ok(ExitCode::SUCCESS);
    }
    if !a.force {
        let names: Vec<&str> = stopped.iter().map(|c| c.name.as_str()).collect();
        eprint!(
            "Going to remove {}\n? Are you sure? [yN] ",
            names.join(", ")
        );
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    each(&stopped, &progress, "Removed", |c| {
        Ok(b.remove_container(&c.id, a.volumes)?)
    })?;
    Ok(ExitCode::SUCCESS)
}
