//! `rcompose watch`: the `develop.watch` rules and the polling are `compose::ops::watch`
//! (every 300 ms here); this file applies the changes to a service's running containers.
//! Copies and execs go through `rcompose container cp/exec` child processes (the runtime's
//! exec must run from a single-threaded process).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use rcompose_compose::model::Project;
use rcompose_compose::ops;
use rcompose_compose::ops::watch::{Rule, WatchEvent, target_of};

use super::GlobalOpts;
use super::compose_common::{backend, check_services, load_project};
use super::compose_logs::{INTERRUPTS, catch_interrupts};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Do not build & start services before watching
    #[arg(long)]
    pub no_up: bool,
    /// Hide build output
    #[arg(long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

fn rc(g: &GlobalOpts) -> Result<Command> {
    let mut c = Command::new(std::env::current_exe().context("locating rcompose")?);
    c.arg("--root")
        .arg(&g.root)
        .arg("--run-root")
        .arg(&g.run_root);
    c.stdin(Stdio::null());
    Ok(c)
}

fn run_child(mut c: Command, what: &str) -> Result<()> {
    let o = c.output().with_context(|| format!("running {what}"))?;
    if !o.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(())
}

fn apply(
    g: &GlobalOpts,
    id: &str,
    rule: &Rule,
    changed: &[PathBuf],
    deleted: &[PathBuf],
) -> Result<()> {
    for p in changed {
        let dst = target_of(rule, p);
        let parent = Path::new(&dst)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or("/".into());
        let mut mk = rc(g)?;
        mk.args(["container", "exec", id, "mkdir", "-p", &parent]);
        run_child(mk, &format!("mkdir -p {parent}"))?;
        let mut cp = rc(g)?;
        cp.args(["container", "cp"])
            .arg(p)
            .arg(format!("{id}:{dst}"));
        run_child(cp, &format!("copying {} to {dst}", p.display()))?;
    }
    for p in deleted {
        let dst = target_of(rule, p);
        // Only paths under the rule's target: never anything else in the container.
        if dst.starts_with(&rule.target) && dst != rule.target && !dst.contains("/../") {
            let mut rm = rc(g)?;
            rm.args(["container", "exec", id, "rm", "-f", &dst]);
            run_child(rm, &format!("removing {dst}"))?;
        }
    }
    match rule.action.as_str() {
        "sync+restart" => {
            let mut c = rc(g)?;
            c.args(["container", "restart", "-t", "10", id]);
            run_child(c, "restarting")?;
        }
        "sync+exec" => {
            let mut c = rc(g)?;
            c.args(["container", "exec", id]).args(&rule.exec);
            run_child(c, "exec")?;
        }
        _ => {}
    }
    Ok(())
}

pub fn run(g: &GlobalOpts, a: WatchArgs) -> Result<ExitCode> {
    let (project, rules) = prepare(g, &a.services)?;
    if !a.no_up {
        super::compose_up::up(
            g,
            super::compose_up::UpArgs {
                detach: true,
                services: a.services.clone(),
                ..Default::default()
            },
        )?;
    }
    catch_interrupts();
    watch(g, &project, &rules, &|| {
        INTERRUPTS.load(Ordering::SeqCst) > 0
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Loads the project and the selected services' watch rules; an error when none has any.
pub fn prepare(g: &GlobalOpts, services: &[String]) -> Result<(Project, Vec<Rule>)> {
    let project = load_project(g, services)?;
    check_services(&project, services)?;
    let rules = ops::watch::rules(&project, services)?;
    if rules.is_empty() {
        bail!(
            "none of the selected services is configured for watch, consider setting a 'develop' section"
        );
    }
    Ok((project, rules))
}

/// Applies the rules (initial sync first) until `stop` returns true. Used by `watch` and by
/// `up --watch`, which runs it beside the attached logs.
pub fn watch(
    g: &GlobalOpts,
    project: &Project,
    rules: &[Rule],
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<()> {
    let b = backend(g)?;
    let apply = |id: &str, rule: &Rule, changed: &[PathBuf], deleted: &[PathBuf]| {
        apply(g, id, rule, changed, deleted).map_err(|e| format!("{e:#}"))
    };
    let on_event = |e: WatchEvent| match e {
        WatchEvent::Enabled => eprintln!("Watch enabled"),
        WatchEvent::Synced { service, files } => {
            eprintln!("Syncing service \"{service}\" after {files} changed files")
        }
        WatchEvent::Failed { service, error } => eprintln!("WARN[0000] watch {service}: {error}"),
    };
    let poll = Duration::from_millis(300);
    ops::watch::watch(&b, project, rules, poll, &apply, stop, &on_event)?;
    Ok(())
}
