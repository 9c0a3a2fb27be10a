//! `rcompose watch`: `develop.watch` rules. Files under each rule's `path` are polled (every
//! 300 ms, by size and modification time) and changes are applied to the service's running
//! containers: `sync` copies them to `target` (and removes deleted ones), `sync+restart` then
//! restarts the container, `sync+exec` then runs `exec.command` in it. `ignore` patterns
//! (`*.ext`, `name`, `dir/`) skip paths; `initial_sync` copies everything at start.
//! `rebuild` needs the image builder and is refused with a clear error.
//! Copies and execs go through `rcompose container cp/exec` child processes (the runtime's
//! exec must run from a single-threaded process).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Args;
use rcompose_compose::model::Project;

use super::GlobalOpts;
use super::compose_common::{backend, check_services, containers, load_project};
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

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub service: String,
    pub action: String,
    pub path: PathBuf,
    pub target: String,
    pub ignore: Vec<String>,
    pub exec: Vec<String>,
    pub initial_sync: bool,
}

/// The `develop.watch` rules of the selected services.
pub fn rules(project: &Project, services: &[String]) -> Result<Vec<Rule>> {
    let mut out = vec![];
    for (name, svc) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(watch) = svc.develop.as_ref().and_then(|d| d.get("watch")) else {
            continue;
        };
        for (i, w) in watch.as_array().into_iter().flatten().enumerate() {
            let s = |k: &str| w.get(k).and_then(|v| v.as_str()).map(String::from);
            let action = s("action").unwrap_or_default();
            let Some(path) = s("path") else {
                bail!("service \"{name}\": develop.watch[{i}] has no path");
            };
            let path = if Path::new(&path).is_absolute() {
                PathBuf::from(path)
            } else {
                project.working_dir.join(path)
            };
            match action.as_str() {
                "sync" | "sync+restart" | "sync+exec" => {}
                "rebuild" => bail!(
                    "service \"{name}\": develop.watch action rebuild needs the image builder, which is not supported yet"
                ),
                other => bail!("service \"{name}\": unknown develop.watch action {other:?}"),
            }
            let Some(target) = s("target") else {
                bail!("service \"{name}\": develop.watch[{i}] ({action}) needs a target");
            };
            let exec = match w.get("exec").and_then(|e| e.get("command")) {
                Some(serde_json::Value::String(c)) => {
                    vec!["/bin/sh".into(), "-c".into(), c.clone()]
                }
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => vec![],
            };
            if action == "sync+exec" && exec.is_empty() {
                bail!("service \"{name}\": develop.watch[{i}] sync+exec needs exec.command");
            }
            out.push(Rule {
                service: name.clone(),
                action,
                path,
                target,
                ignore: w
                    .get("ignore")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                exec,
                initial_sync: w
                    .get("initial_sync")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
            });
        }
    }
    Ok(out)
}

/// Whether `rel` (relative to the rule's path, `/`-separated) matches an ignore pattern.
pub fn ignored(rel: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim_start_matches("./");
        if let Some(dir) = p.strip_suffix('/') {
            return rel == dir
                || rel.starts_with(&format!("{dir}/"))
                || rel.contains(&format!("/{dir}/"));
        }
        if let Some(ext) = p.strip_prefix("*") {
            return rel.ends_with(ext);
        }
        rel == p || rel.split('/').any(|part| part == p) || rel.starts_with(&format!("{p}/"))
    })
}

type Snapshot = BTreeMap<PathBuf, (u64, SystemTime)>;

fn snapshot(root: &Path, rule: &Rule) -> Snapshot {
    let mut out = Snapshot::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = rel_of(root, &p);
        if !rel.is_empty() && ignored(&rel, &rule.ignore) {
            continue;
        }
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                todo.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if meta.is_file() {
            out.insert(
                p,
                (
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ),
            );
        }
    }
    out
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .trim_start_matches('/')
        .to_string()
}

/// Target path in the container of host file `p` under `rule`.
fn target_of(rule: &Rule, p: &Path) -> String {
    let rel = rel_of(&rule.path, p);
    if rel.is_empty() {
        rule.target.clone()
    } else {
        format!("{}/{rel}", rule.target.trim_end_matches('/'))
    }
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
    let rules = rules(&project, services)?;
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
    let mut snaps: Vec<Snapshot> = rules.iter().map(|r| snapshot(&r.path, r)).collect();
    let ids_of = |svc: &str| -> Result<Vec<String>> {
        Ok(
            containers(&b, &project.name, &[svc.to_string()], false, false)?
                .into_iter()
                .map(|c| c.id)
                .collect(),
        )
    };
    for (rule, snap) in rules.iter().zip(&snaps) {
        if rule.initial_sync {
            let all: Vec<PathBuf> = snap.keys().cloned().collect();
            for id in ids_of(&rule.service)? {
                apply(g, &id, rule, &all, &[])?;
            }
        }
    }
    eprintln!("Watch enabled");
    while !stop() {
        std::thread::sleep(Duration::from_millis(300));
        for (rule, snap) in rules.iter().zip(snaps.iter_mut()) {
            let now = snapshot(&rule.path, rule);
            let changed: Vec<PathBuf> = now
                .iter()
                .filter(|(p, v)| snap.get(*p) != Some(v))
                .map(|(p, _)| p.clone())
                .collect();
            let deleted: Vec<PathBuf> = snap
                .keys()
                .filter(|p| !now.contains_key(*p))
                .cloned()
                .collect();
            if changed.is_empty() && deleted.is_empty() {
                continue;
            }
            for id in ids_of(&rule.service)? {
                match apply(g, &id, rule, &changed, &deleted) {
                    Ok(()) => eprintln!(
                        "Syncing service \"{}\" after {} changed files",
                        rule.service,
                        changed.len() + deleted.len()
                    ),
                    Err(e) => eprintln!("WARN[0000] watch {}: {e:#}", rule.service),
                }
            }
            *snap = now;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns() {
        let pats = vec!["node_modules/".to_string(), "*.tmp".into(), ".git".into()];
        assert!(ignored("node_modules/x/y.js", &pats));
        assert!(ignored("a/b.tmp", &pats));
        assert!(ignored(".git/config", &pats));
        assert!(!ignored("src/main.js", &pats));
    }

    #[test]
    fn targets_follow_relative_paths() {
        let rule = Rule {
            service: "web".into(),
            action: "sync".into(),
            path: "/proj/src".into(),
            target: "/app/src/".into(),
            ignore: vec![],
            exec: vec![],
            initial_sync: false,
        };
        assert_eq!(
            target_of(&rule, Path::new("/proj/src/a/b.txt")),
            "/app/src/a/b.txt"
        );
    }
}
