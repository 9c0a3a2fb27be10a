//! What every compose verb shares: loading the project, opening the backend, observing the
//! project's objects, progress lines, service selection.

use std::io::Write;
use std::sync::Mutex;

use anyhow::{Result, bail};
use rcompose_compose::execute::Event;
use rcompose_compose::load::load;
use rcompose_compose::model::Project;
use rcompose_compose::observe::{ContainerSummary, ObservedState};
use rcompose_compose::ops;

use super::config::{load_options, print_warnings};
use super::{GlobalOpts, ProgressMode};
use rcompose_wire::backend::{EngineBackend, timing};

/// The project, or only its name when no compose file is needed (`down -p x` without files).
pub struct Target {
    pub project: Option<Project>,
    pub name: String,
}

/// Loads the project (services named on the command line are enabled whatever their profiles).
pub fn load_project(g: &GlobalOpts, services: &[String]) -> Result<Project> {
    let mut opts = load_options(g);
    opts.services = services.to_vec();
    let loaded = timing::time("project loaded", || load(&opts))?;
    print_warnings(&loaded);
    Ok(loaded.project)
}

/// Loads the project when there is one; with `-p` and no compose file, works by name only.
pub fn target(g: &GlobalOpts) -> Result<Target> {
    match load_project(g, &[]) {
        Ok(p) => Ok(Target {
            name: p.name.clone(),
            project: Some(p),
        }),
        Err(e) => match &g.project_name {
            Some(name) if e.to_string().contains("no configuration file") || g.files.is_empty() => {
                Ok(Target {
                    project: None,
                    name: name.clone(),
                })
            }
            _ => Err(e),
        },
    }
}

pub fn backend(g: &GlobalOpts) -> Result<EngineBackend> {
    Ok(EngineBackend::new(&g.root, &g.run_root)?)
}

/// Observed state of the project (networks/volumes only when the network layer opens).
pub fn observe(b: &EngineBackend, project: &str) -> Result<ObservedState> {
    Ok(timing::time("observed the project", || {
        ops::observe(b, project)
    })?)
}

/// The project's containers, sorted by name; `all` includes stopped ones; `oneoff` includes
/// `run` containers.
pub fn containers(
    b: &EngineBackend,
    project: &str,
    services: &[String],
    all: bool,
    oneoff: bool,
) -> Result<Vec<ContainerSummary>> {
    Ok(ops::select(&observe(b, project)?, services, all, oneoff))
}

/// Errors for service names that are not in the project.
pub fn check_services(project: &Project, services: &[String]) -> Result<()> {
    for s in services {
        if !project.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    Ok(())
}

/// The global `--progress`, set once by `dispatch` (every command's progress follows it).
static PROGRESS_MODE: std::sync::OnceLock<ProgressMode> = std::sync::OnceLock::new();

pub fn set_progress_mode(mode: ProgressMode) {
    let _ = PROGRESS_MODE.set(mode);
}

fn progress_mode() -> ProgressMode {
    PROGRESS_MODE.get().copied().unwrap_or(ProgressMode::Auto)
}

/// One progress line in `mode`; None when the mode prints nothing.
fn progress_line(
    mode: ProgressMode,
    kind: &str,
    name: &str,
    status: &str,
    done: bool,
) -> Option<String> {
    match mode {
        ProgressMode::Quiet => None,
        ProgressMode::Plain => Some(format!("{kind} {name}  {status}")),
        ProgressMode::Json => {
            Some(serde_json::json!({"id": format!("{kind} {name}"), "status": status}).to_string())
        }
        ProgressMode::Auto | ProgressMode::Tty => {
            let mark = if done { "✔" } else { "⠿" };
            Some(format!(" {mark} {kind} {name:<24} {status}"))
        }
    }
}

/// Prints one finished outcome (` ✔ Service web  Built …`) on stderr, shaped by `--progress`.
pub fn outcome_line(kind: &str, name: &str, status: &str) {
    if let Some(line) = progress_line(progress_mode(), kind, name, status, true) {
        eprintln!("{line}");
    }
}

/// Prints docker compose style progress lines (` ✔ Container demo-web-1  Started`) on stderr,
/// or on stdout with `COMPOSE_STATUS_STDOUT` set (as compose v2), shaped by `--progress`.
pub struct Progress {
    out: Mutex<()>,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self {
            out: Mutex::new(()),
            quiet,
        }
    }

    pub fn event(&self, e: Event) {
        timing::mark(format_args!("{} {} {}", e.kind, e.name, e.status));
        if self.quiet {
            return;
        }
        // Transitional states are noise in a log of lines; print outcomes only.
        let done = matches!(
            e.status,
            "Created"
                | "Started"
                | "Healthy"
                | "Exited"
                | "Stopped"
                | "Removed"
                | "Recreated"
                | "Running"
        );
        if !done && e.status != "Waiting" {
            return;
        }
        let Some(line) = progress_line(progress_mode(), e.kind, &e.name, e.status, done) else {
            return;
        };
        let _g = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let to_stdout = std::env::var("COMPOSE_STATUS_STDOUT")
            .ok()
            .is_some_and(|v| super::env_flag(&v).unwrap_or(false));
        let _ = if to_stdout {
            writeln!(std::io::stdout(), "{line}")
        } else {
            writeln!(std::io::stderr(), "{line}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_modes() {
        let line = |m| progress_line(m, "Container", "demo-web-1", "Started", true);
        assert_eq!(
            line(ProgressMode::Auto).as_deref(),
            Some(" ✔ Container demo-web-1               Started")
        );
        assert_eq!(
            line(ProgressMode::Plain).as_deref(),
            Some("Container demo-web-1  Started")
        );
        assert_eq!(
            line(ProgressMode::Json).as_deref(),
            Some(r#"{"id":"Container demo-web-1","status":"Started"}"#)
        );
        assert_eq!(line(ProgressMode::Quiet), None);
    }
}
