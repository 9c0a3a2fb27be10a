//! `rcompose down`: stop (in parallel) and remove the project's containers, then its networks,
//! and with `-v` its volumes. Works from the labels, so `-p name` alone is enough.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use rcompose_compose::execute::{Backend, Event};
use rcompose_compose::observe::ObservedContainer;

use super::GlobalOpts;
use super::compose_common::{Progress, backend, observe, target};
use crate::backend::{lock::lock_project, secrets::project_dir, timing};

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section and anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove images used by services ("local"|"all")
    #[arg(long, value_name = "TYPE")]
    pub rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS", value_parser = super::env_flag)]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    pub services: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: DownArgs) -> Result<ExitCode> {
    if let Some(r) = &a.rmi
        && r != "local"
        && r != "all"
    {
        bail!("invalid --rmi {r:?}: use local or all");
    }
    timing::mark("down: begin");
    let t = target(g)?;
    let b = backend(g)?;
    let _lock = timing::time("project lock", || lock_project(&g.root, &t.name))?;
    let o = observe(&b, &t.name)?;
    let progress = Progress::new(false);
    let in_project = |c: &&ObservedContainer| match &t.project {
        Some(p) => {
            p.services.contains_key(&c.service) || p.disabled_services.contains_key(&c.service)
        }
        None => true,
    };
    let selected =
        |c: &&ObservedContainer| a.services.is_empty() || a.services.contains(&c.service);
    let mut victims: Vec<&ObservedContainer> = o
        .containers()
        .filter(|c| in_project(c) || a.remove_orphans)
        .filter(selected)
        .collect();
    if a.services.is_empty() {
        victims.extend(o.oneoff.iter());
    }
    let orphans: Vec<&str> = o
        .containers()
        .filter(|c| !in_project(c))
        .map(|c| c.summary.name.as_str())
        .collect();
    if !a.remove_orphans && !orphans.is_empty() {
        eprintln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            orphans.join(" ")
        );
    }
    if g.dry_run {
        for c in &victims {
            println!("container {}: stop, remove", c.summary.name);
        }
        if a.services.is_empty() {
            for name in o.networks.values() {
                println!("network {name}: remove");
            }
            for name in o.volumes.values().filter(|_| a.volumes) {
                println!("volume {name}: remove");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let errors = std::sync::Mutex::new(Vec::<String>::new());
    // Stop in parallel (the slow part), then remove.
    std::thread::scope(|s| {
        for c in &victims {
            let (b, progress, errors) = (&b, &progress, &errors);
            s.spawn(move || {
                let ev = |status| {
                    progress.event(Event {
                        kind: "Container",
                        name: c.summary.name.clone(),
                        status,
                    })
                };
                ev("Stopping");
                let res = b.stop_container(&c.summary.id, a.timeout).and_then(|()| {
                    ev("Stopped");
                    ev("Removing");
                    b.remove_container(&c.summary.id, a.volumes)
                });
                match res {
                    Ok(()) => ev("Removed"),
                    Err(e) => errors
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("container {}: {e}", c.summary.name)),
                }
            });
        }
    });
    timing::mark("containers stopped and removed");
    let mut errors = errors.into_inner().unwrap_or_default();
    if a.services.is_empty() {
        for name in o.networks.values() {
            progress.event(Event {
                kind: "Network",
                name: name.clone(),
                status: "Removing",
            });
            match b.remove_network(name) {
                Ok(()) => progress.event(Event {
                    kind: "Network",
                    name: name.clone(),
                    status: "Removed",
                }),
                Err(e) => errors.push(format!("network {name}: {e}")),
            }
        }
        if a.volumes {
            for name in o.volumes.values() {
                match b.remove_volume(name) {
                    Ok(()) => progress.event(Event {
                        kind: "Volume",
                        name: name.clone(),
                        status: "Removed",
                    }),
                    Err(e) => errors.push(format!("volume {name}: {e}")),
                }
            }
        }
        remove_project_dir(&g.root, &t.name);
        if let (Some(rmi), Some(p)) = (&a.rmi, &t.project) {
            errors.extend(remove_images(g, p, rmi == "all", &progress));
        }
    }
    timing::mark("down: end");
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--rmi`: `all` removes every service image, `local` only images without a custom tag
/// (the `<project>-<service>` images built for services without `image:`).
fn remove_images(
    g: &GlobalOpts,
    p: &rcompose_compose::model::Project,
    all: bool,
    progress: &Progress,
) -> Vec<String> {
    let mut refs: Vec<String> = p
        .services
        .values()
        .filter(|s| all || s.image.is_none())
        .map(|s| s.image_name(&p.name))
        .collect();
    refs.sort();
    refs.dedup();
    let mut errors = vec![];
    for r in refs {
        let Ok(exe) = std::env::current_exe() else {
            continue;
        };
        let out = std::process::Command::new(exe)
            .arg("--root")
            .arg(&g.root)
            .arg("--run-root")
            .arg(&g.run_root)
            .args(["image", "rm", &r])
            .output();
        match out {
            Ok(o) if o.status.success() => progress.event(Event {
                kind: "Image",
                name: r.clone(),
                status: "Removed",
            }),
            Ok(o) => {
                let msg = String::from_utf8_lossy(&o.stderr).trim().to_string();
                // An image that is not there (never built or pulled) is not an error.
                if !msg.to_lowercase().contains("no such image") {
                    errors.push(format!("image {r}: {msg}"));
                }
            }
            Err(e) => errors.push(format!("image {r}: {e}")),
        }
    }
    errors
}

/// Removes `<root>/compose/<project>` (materialised secrets/configs), guarded.
fn remove_project_dir(root: &std::path::Path, project: &str) {
    if project.is_empty() || project.contains('/') || project.starts_with('.') {
        return;
    }
    let dir = project_dir(root, project);
    if dir.parent() == Some(&root.join("compose")) && dir.is_dir() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
