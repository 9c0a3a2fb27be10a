//! `start`, `stop`, `restart`, `kill`, `pause`, `unpause`, `rm`: flags → the project's existing
//! containers (selected by labels) → `compose::ops` (in parallel; `start` follows dependency
//! order) → progress lines.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use rcompose_compose::graph::DependencyGraph;
use rcompose_compose::observe::ContainerSummary;
use rcompose_compose::ops;

use super::GlobalOpts;
use super::compose_common::{Progress, backend, check_services, containers, target};
use rcompose_wire::backend::EngineBackend;

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

pub fn start(g: &GlobalOpts, a: ServicesArgs) -> Result<ExitCode> {
    let (_, b, list, graph) = select(g, &a.services, true)?;
    if dry_run(g, &list, "start") {
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        bail!("no containers to start; create them with `rcompose up` or `rcompose create`");
    }
    let progress = Progress::new(false);
    ops::start(&b, &list, graph.as_ref(), &|e| progress.event(e))?;
    Ok(ExitCode::SUCCESS)
}

pub fn stop(g: &GlobalOpts, a: StopArgs) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, false)?;
    if dry_run(g, &list, "stop") {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    ops::stop(&b, &list, a.timeout, &|e| progress.event(e))?;
    Ok(ExitCode::SUCCESS)
}

pub fn restart(g: &GlobalOpts, a: StopArgs) -> Result<ExitCode> {
    let services = ops::with_restart_dependents(target(g)?.project.as_ref(), &a.services);
    let (_, b, list, graph) = select(g, &services, true)?;
    if dry_run(g, &list, "restart") {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    let on_event = |e| progress.event(e);
    ops::restart(&b, &list, graph.as_ref(), a.timeout, &on_event)?;
    Ok(ExitCode::SUCCESS)
}

pub fn kill(g: &GlobalOpts, a: KillArgs) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, false)?;
    if dry_run(g, &list, "kill") {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    ops::kill(&b, &list, &a.signal, &|e| progress.event(e))?;
    Ok(ExitCode::SUCCESS)
}

pub fn pause(g: &GlobalOpts, a: ServicesArgs, on: bool) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, false)?;
    if dry_run(g, &list, "pause/unpause") {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    ops::pause(&b, &list, on, &|e| progress.event(e))?;
    Ok(ExitCode::SUCCESS)
}

pub fn rm(g: &GlobalOpts, a: RmArgs) -> Result<ExitCode> {
    let (_, b, list, _) = select(g, &a.services, true)?;
    if dry_run(g, &list, "remove") {
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    let on_event = |e| progress.event(e);
    if a.stop {
        ops::stop_running(&b, &list, &on_event)?;
    }
    let stopped = ops::removable(&b, &list);
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
    ops::remove(&b, &stopped, a.volumes, &on_event)?;
    Ok(ExitCode::SUCCESS)
}
