//! `rcompose down`: flags → `compose::ops::down` (a `Plan` that `--dry-run` prints, then stop
//! in parallel and remove the project's containers, its networks and with `-v` its volumes;
//! works from the labels, so `-p name` alone is enough) → progress lines; `--rmi` and the
//! project's materialised secrets here.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use rcompose_compose::execute::Event;
use rcompose_compose::ops::down::{self, DownOptions};

use super::GlobalOpts;
use super::compose_common::{Progress, backend, observe, target};
use rcompose_wire::backend::{lock::lock_project, secrets::project_dir, timing};

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
    let opts = DownOptions {
        services: a.services.clone(),
        remove_orphans: a.remove_orphans,
        volumes: a.volumes,
        timeout: a.timeout,
    };
    let plan = down::plan(&o, t.project.as_ref(), &opts);
    for w in &plan.warnings {
        eprintln!("WARN[0000] {w}");
    }
    if g.dry_run {
        print!("{plan}");
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(false);
    let result = down::execute(&b, &plan, &opts, &|e| progress.event(e));
    timing::mark("containers, networks and volumes removed");
    let mut errors: Vec<String> = match result {
        Ok(()) => vec![],
        Err(failures) => failures.0.iter().map(ToString::to_string).collect(),
    };
    if a.services.is_empty() {
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
