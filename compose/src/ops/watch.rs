//! `develop.watch`: the rules of the selected services, and the watch itself. Files under
//! each rule's `path` are polled (by size and modification time) and changes are handed to
//! the caller to apply to the service's running containers: `sync` copies them to `target`
//! (and removes deleted ones), `sync+restart` then restarts the container, `sync+exec` then
//! runs `exec.command` in it. `ignore` patterns (`*.ext`, `name`, `dir/`) skip paths;
//! `initial_sync` copies everything at start. `rebuild` needs the image builder and is
//! refused with a clear error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::execute::{Backend, BackendError};
use crate::model::Project;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WatchError {
    /// A rule that cannot be followed (the text names the service and the rule).
    #[error("{0}")]
    Rule(String),
    /// Applying a change failed during the initial sync.
    #[error("{0}")]
    Apply(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
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
pub fn rules(project: &Project, services: &[String]) -> Result<Vec<Rule>, WatchError> {
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
                return Err(WatchError::Rule(format!(
                    "service \"{name}\": develop.watch[{i}] has no path"
                )));
            };
            let path = if Path::new(&path).is_absolute() {
                PathBuf::from(path)
            } else {
                project.working_dir.join(path)
            };
            match action.as_str() {
                "sync" | "sync+restart" | "sync+exec" => {}
                "rebuild" => {
                    return Err(WatchError::Rule(format!(
                        "service \"{name}\": develop.watch action rebuild needs the image builder, which is not supported yet"
                    )));
                }
                other => {
                    return Err(WatchError::Rule(format!(
                        "service \"{name}\": unknown develop.watch action {other:?}"
                    )));
                }
            }
            let Some(target) = s("target") else {
                return Err(WatchError::Rule(format!(
                    "service \"{name}\": develop.watch[{i}] ({action}) needs a target"
                )));
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
                return Err(WatchError::Rule(format!(
                    "service \"{name}\": develop.watch[{i}] sync+exec needs exec.command"
                )));
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

/// Size and modification time of every file under a rule's path.
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
pub fn target_of(rule: &Rule, p: &Path) -> String {
    let rel = rel_of(&rule.path, p);
    if rel.is_empty() {
        rule.target.clone()
    } else {
        format!("{}/{rel}", rule.target.trim_end_matches('/'))
    }
}

/// What a watch reports, for the CLI to print.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// The initial syncs are done; changes are watched from now on.
    Enabled,
    /// The changed files of `service` were applied to one of its containers.
    Synced { service: String, files: usize },
    /// Applying them failed (the watch goes on).
    Failed { service: String, error: String },
}

/// Applies one rule's changes to one container: `(container id, rule, changed, deleted)`.
pub type ApplyFn<'a> = dyn Fn(&str, &Rule, &[PathBuf], &[PathBuf]) -> Result<(), String> + 'a;

/// Applies the rules (initial sync first) until `stop` returns true, polling every `poll`.
/// `apply(container id, rule, changed, deleted)` copies, removes and restarts or execs as the
/// rule says (the CLI does it through its own subcommands). Used by `watch` and by
/// `up --watch`, which runs it beside the attached logs.
pub fn watch(
    backend: &dyn Backend,
    project: &Project,
    rules: &[Rule],
    poll: Duration,
    apply: &ApplyFn<'_>,
    stop: &dyn Fn() -> bool,
    on_event: &dyn Fn(WatchEvent),
) -> Result<(), WatchError> {
    let mut snaps: Vec<Snapshot> = rules.iter().map(|r| snapshot(&r.path, r)).collect();
    let ids_of = |svc: &str| -> Result<Vec<String>, BackendError> {
        Ok(
            super::containers(backend, &project.name, &[svc.to_string()], false, false)?
                .into_iter()
                .map(|c| c.id)
                .collect(),
        )
    };
    for (rule, snap) in rules.iter().zip(&snaps) {
        if rule.initial_sync {
            let all: Vec<PathBuf> = snap.keys().cloned().collect();
            for id in ids_of(&rule.service)? {
                apply(&id, rule, &all, &[]).map_err(WatchError::Apply)?;
            }
        }
    }
    on_event(WatchEvent::Enabled);
    while !stop() {
        std::thread::sleep(poll);
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
                on_event(match apply(&id, rule, &changed, &deleted) {
                    Ok(()) => WatchEvent::Synced {
                        service: rule.service.clone(),
                        files: changed.len() + deleted.len(),
                    },
                    Err(error) => WatchEvent::Failed {
                        service: rule.service.clone(),
                        error,
                    },
                });
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
