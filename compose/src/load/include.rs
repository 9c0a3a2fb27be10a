//! Stage: `include` — each entry is loaded as its own project (its own project directory and
//! env files), and its services, networks, volumes, secrets and configs are added to the
//! including file. Defining the same resource in both is an error, as in compose.

use std::path::{Path, PathBuf};

use yaml_serde::{Mapping, Value};

use super::canonical::{clean, scalar_text};
use super::discover::Source;
use super::parse::untagged;
use super::{LoadError, Loader, ProjectEnv};

#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("{file}: include: file {path} not found")]
    MissingFile { file: String, path: String },
    #[error("{file}: include: env file {path} not found")]
    MissingEnvFile { file: String, path: String },
    #[error(
        "{}: include: {path:?} is a remote resource, which rcompose does not load (no network access): download it and include the local copy",
        super::location(file, *line)
    )]
    Remote {
        file: String,
        line: Option<usize>,
        path: String,
    },
    #[error("{file}: include: circular include of {path}")]
    Cycle { file: String, path: String },
}

/// Whether an `include` path or `extends.file` names a remote resource (git repository, OCI
/// artifact, URL) rather than a local file. Compose v2 fetches these; rcompose has no network
/// access for them and says so instead of looking for a local file of that name.
pub fn is_remote(path: &str) -> bool {
    path.contains("://") || path.starts_with("git@")
}

struct Entry {
    /// The paths as written, for error messages.
    raw: Vec<String>,
    paths: Vec<PathBuf>,
    project_directory: Option<PathBuf>,
    env_files: Vec<PathBuf>,
}

fn entries(value: &Value, file_dir: &Path) -> Vec<Entry> {
    let list = match value.get("include").map(untagged) {
        Some(Value::Sequence(seq)) => seq.clone(),
        _ => return Vec::new(),
    };
    let resolve = |p: &str| {
        let p = Path::new(p);
        clean(&if p.is_absolute() {
            p.to_path_buf()
        } else {
            file_dir.join(p)
        })
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v.map(untagged) {
            Some(Value::Sequence(s)) => s.iter().filter_map(scalar_text).collect(),
            Some(other) => scalar_text(other).into_iter().collect(),
            None => Vec::new(),
        }
    };
    list.iter()
        .map(|item| match untagged(item) {
            Value::Mapping(m) => Entry {
                raw: strings(m.get("path")),
                paths: strings(m.get("path")).iter().map(|p| resolve(p)).collect(),
                project_directory: m
                    .get("project_directory")
                    .and_then(scalar_text)
                    .map(|p| resolve(&p)),
                env_files: strings(m.get("env_file"))
                    .iter()
                    .map(|p| resolve(p))
                    .collect(),
            },
            other => Entry {
                raw: scalar_text(other).into_iter().collect(),
                paths: scalar_text(other)
                    .map(|p| vec![resolve(&p)])
                    .unwrap_or_default(),
                project_directory: None,
                env_files: Vec::new(),
            },
        })
        .collect()
}

/// Loads every `include` entry of `value` and adds its resources to `value`.
pub fn apply(
    loader: &mut Loader,
    value: &mut Value,
    file: &str,
    file_dir: &Path,
    penv: &ProjectEnv,
    stack: &mut Vec<PathBuf>,
) -> Result<(), LoadError> {
    for entry in entries(value, file_dir) {
        if let Some(remote) = entry.raw.iter().find(|p| is_remote(p)) {
            return Err(IncludeError::Remote {
                file: file.into(),
                line: loader.line_of(file, &[remote, "include:"]),
                path: remote.clone(),
            }
            .into());
        }
        let Some(first) = entry.paths.first() else {
            continue;
        };
        for p in &entry.paths {
            if !p.is_file() {
                return Err(IncludeError::MissingFile {
                    file: file.into(),
                    path: p.display().to_string(),
                }
                .into());
            }
            if stack.contains(p) {
                return Err(IncludeError::Cycle {
                    file: file.into(),
                    path: p.display().to_string(),
                }
                .into());
            }
        }
        let project_dir = entry.project_directory.clone().unwrap_or_else(|| {
            first
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| file_dir.to_path_buf())
        });
        let env_files: Vec<(PathBuf, bool)> = if entry.env_files.is_empty() {
            vec![(project_dir.join(".env"), false)]
        } else {
            for f in &entry.env_files {
                if !f.is_file() {
                    return Err(IncludeError::MissingEnvFile {
                        file: file.into(),
                        path: f.display().to_string(),
                    }
                    .into());
                }
            }
            entry.env_files.iter().map(|f| (f.clone(), true)).collect()
        };
        // The included project sees the including project's variables, then its own env files.
        let vars = super::env_with_files(&penv.vars, &env_files)?;
        let rebase = (!loader.opts.resolve_paths).then(|| {
            let from = penv.rebase.clone().unwrap_or_else(|| PathBuf::from("."));
            super::canonical::clean(
                &from.join(super::extends::relative_to(&project_dir, &penv.base_dir)),
            )
        });
        let sub_env = ProjectEnv {
            vars,
            base_dir: project_dir,
            rebase,
        };
        stack.extend(entry.paths.iter().cloned());
        let sources: Vec<Source> = entry.paths.iter().cloned().map(Source::File).collect();
        let mut included = loader.load_files(&sources, &sub_env, stack)?;
        for _ in &entry.paths {
            stack.pop();
        }
        super::parse::strip_tags(&mut included);
        resolve_bare_environment(&mut included, &sub_env.vars);
        let defaults = loader
            .opts
            .normalize
            .then_some((penv.base_dir.as_path(), loader.opts.resolve_paths));
        add_resources(
            value,
            included,
            file,
            &first.display().to_string(),
            defaults,
        )?;
    }
    if let Some(m) = value.as_mapping_mut() {
        m.shift_remove("include");
    }
    Ok(())
}

/// A service's `environment` entry without a value takes it from the included project's
/// environment (its env files), as compose v2 resolves it while loading that project; what
/// stays unset there is left for the including project.
fn resolve_bare_environment(
    included: &mut Value,
    vars: &std::collections::BTreeMap<String, String>,
) {
    let Some(Value::Mapping(services)) = included.get_mut("services") else {
        return;
    };
    for svc in services.values_mut() {
        if let Some(Value::Mapping(env)) = svc.get_mut("environment") {
            for (k, v) in env.iter_mut() {
                if v.is_null()
                    && let Some(value) = k.as_str().and_then(|k| vars.get(k))
                {
                    *v = Value::String(value.clone());
                }
            }
        }
    }
}

/// `build_defaults` (project directory, path resolution) of the including project, when
/// normalising: its services get build defaults only after merging, the included ones already
/// have them.
fn add_resources(
    value: &mut Value,
    included: Value,
    file: &str,
    from: &str,
    build_defaults: Option<(&Path, bool)>,
) -> Result<(), LoadError> {
    let Some(top) = value.as_mapping_mut() else {
        return Ok(());
    };
    for kind in ["services", "networks", "volumes", "secrets", "configs"] {
        let Some(Value::Mapping(theirs)) = included.get(kind).cloned() else {
            continue;
        };
        let slot = top
            .entry(Value::String(kind.into()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        let slot = super::parse::untagged_mut(slot);
        if slot.is_null() {
            *slot = Value::Mapping(Mapping::new());
        }
        let Some(ours) = slot.as_mapping_mut() else {
            continue;
        };
        for (k, v) in theirs {
            let same = |existing: &Value| {
                let Some((dir, resolve)) = build_defaults.filter(|_| kind == "services") else {
                    return existing == &v;
                };
                if existing == &v {
                    return true;
                }
                let mut completed = existing.clone();
                super::canonical::service_build_defaults(&mut completed, dir, resolve);
                completed == v
            };
            match ours.get(&k) {
                // As compose v2: a resource the including file defines too is the imported one
                // with the including file's definition merged over it (`!reset`/`!override`
                // apply).
                Some(existing) if !same(existing) => {
                    let name = super::interpolate::key_text(&k);
                    let prefix = [kind.to_string(), name];
                    let merged =
                        super::merge::merge(v, existing.clone(), &prefix).map_err(|source| {
                            LoadError::Merge {
                                file: format!("{file} (over {from})"),
                                source,
                            }
                        })?;
                    ours.insert(k, merged);
                }
                _ => {
                    ours.insert(k, v);
                }
            }
        }
    }
    Ok(())
}
