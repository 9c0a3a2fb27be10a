//! Stage: `extends` (same file or another file, chains, cycle detection). The base service is
//! taken in canonical form (its relative paths already resolved against its own file) and the
//! extending service is merged onto it with the usual merge rules.

use std::path::{Path, PathBuf};

use yaml_serde::{Mapping, Value};

use super::discover::Source;
use super::parse::untagged;
use super::{LoadError, Loader, ProjectEnv};

#[derive(Debug, thiserror::Error)]
pub enum ExtendsError {
    #[error("{file}: services.{service}: extends: circular reference {}", chain.join(" -> "))]
    Cycle {
        file: String,
        service: String,
        chain: Vec<String>,
    },
    #[error("{file}: services.{service}: extends refers to service {base:?}, which {where_} does not define{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    MissingService {
        file: String,
        service: String,
        base: String,
        where_: String,
        suggestion: Option<String>,
    },
    #[error("{file}: services.{service}: extends: file {path} not found")]
    MissingFile {
        file: String,
        service: String,
        path: String,
    },
    #[error(
        "{}: services.{service}: extends: file {path:?} is a remote resource, which rcompose does not load (no network access): download it and extend the local copy",
        super::location(file, *line)
    )]
    Remote {
        file: String,
        line: Option<usize>,
        service: String,
        path: String,
    },
    #[error("{file}: services.{service}: extends needs a service name")]
    NoService { file: String, service: String },
    #[error("{file}: services.{service}: extends: {source}")]
    Merge {
        file: String,
        service: String,
        source: super::merge::MergeError,
    },
}

/// Resolves every `extends` in one canonical file.
pub fn apply(
    loader: &mut Loader,
    value: &mut Value,
    source: &Source,
    penv: &ProjectEnv,
) -> Result<(), LoadError> {
    let Some(services) = value
        .get("services")
        .map(untagged)
        .and_then(Value::as_mapping)
    else {
        return Ok(());
    };
    // Most files use no `extends`: skip the copy of every service.
    if !services
        .values()
        .any(|svc| untagged(svc).get("extends").is_some())
    {
        return Ok(());
    }
    let services = services.clone();
    let file = source.display();
    let this_path = match source {
        Source::File(p) => p.clone(),
        Source::Stdin => PathBuf::from("-"),
    };
    let mut resolved = Mapping::new();
    for (name, _) in &services {
        let name_text = super::interpolate::key_text(name);
        let mut stack = Vec::new();
        let svc = resolve(
            loader, &services, &this_path, &file, &name_text, penv, &mut stack,
        )?;
        resolved.insert(name.clone(), svc);
    }
    if let Some(Value::Mapping(top)) = Some(&mut *value) {
        // Keep tags on services (e.g. `!reset`) as written.
        if let Some(slot) = top.get_mut("services") {
            let slot = super::parse::untagged_mut(slot);
            if let Value::Mapping(map) = slot {
                for (k, v) in resolved {
                    if let Some(existing) = map.get_mut(&k) {
                        *super::parse::untagged_mut(existing) = v;
                    }
                }
            }
        }
    }
    Ok(())
}

fn extends_of(svc: &Value) -> Option<(Option<String>, Option<String>)> {
    let ext = untagged(svc).get("extends")?;
    let ext = untagged(ext);
    Some((
        ext.get("service").and_then(super::canonical::scalar_text),
        ext.get("file").and_then(super::canonical::scalar_text),
    ))
}

fn resolve(
    loader: &mut Loader,
    services: &Mapping,
    path: &Path,
    file: &str,
    name: &str,
    penv: &ProjectEnv,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Value, LoadError> {
    let key = (path.to_path_buf(), name.to_string());
    if stack.contains(&key) {
        let mut chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).collect();
        chain.push(name.to_string());
        let first = stack[0].1.clone();
        return Err(ExtendsError::Cycle {
            file: file.into(),
            service: first,
            chain,
        }
        .into());
    }
    let Some(svc) = services.get(name).map(|v| untagged(v).clone()) else {
        unreachable_service(file, name)?;
        return Ok(Value::Null);
    };
    let Some((base_name, base_file)) = extends_of(&svc) else {
        return Ok(svc);
    };
    let base_name = base_name.ok_or_else(|| ExtendsError::NoService {
        file: file.into(),
        service: name.into(),
    })?;
    stack.push(key);
    let (base_services, base_path, base_file_text) = match base_file {
        None => (services.clone(), path.to_path_buf(), file.to_string()),
        Some(other) if super::include::is_remote(&other) => {
            let line = loader.line_of(file, &[&other, "extends"]);
            return Err(ExtendsError::Remote {
                file: file.into(),
                line,
                service: name.into(),
                path: other,
            }
            .into());
        }
        Some(other) => {
            let other_path = PathBuf::from(&other);
            if !other_path.is_file() {
                return Err(ExtendsError::MissingFile {
                    file: file.into(),
                    service: name.into(),
                    path: other,
                }
                .into());
            }
            let services = load_other(loader, &other_path, penv)?;
            (services, other_path, other)
        }
    };
    if !base_services.contains_key(base_name.as_str()) {
        let where_ = if base_path == path {
            "this file".to_string()
        } else {
            base_file_text.clone()
        };
        return Err(ExtendsError::MissingService {
            file: file.into(),
            service: name.into(),
            base: base_name.clone(),
            where_,
            suggestion: super::validate::suggest(
                &base_name,
                base_services.keys().filter_map(Value::as_str),
            ),
        }
        .into());
    }
    let base = resolve(
        loader,
        &base_services,
        &base_path,
        &base_file_text,
        &base_name,
        penv,
        stack,
    )?;
    stack.pop();
    let mut own = svc;
    if let Some(m) = own.as_mapping_mut() {
        m.shift_remove("extends");
    }
    let mut base = base;
    if let Some(m) = base.as_mapping_mut() {
        m.shift_remove("extends");
    }
    let prefix = ["services".to_string(), name.to_string()];
    super::merge::merge(base, own, &prefix).map_err(|source| {
        ExtendsError::Merge {
            file: file.into(),
            service: name.into(),
            source,
        }
        .into()
    })
}

fn unreachable_service(_file: &str, _name: &str) -> Result<(), LoadError> {
    Ok(())
}

/// The canonical services of another file, with paths relative to that file's directory.
fn load_other(loader: &mut Loader, path: &Path, penv: &ProjectEnv) -> Result<Mapping, LoadError> {
    if let Some(v) = loader.cache.get(path) {
        return Ok(v
            .get("services")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default());
    }
    let source = Source::File(path.to_path_buf());
    // compose v2 does not check the rest of a file it takes a service from: a service left
    // empty (`name:` with no value) there is an empty service, not an error.
    let mut value = loader.parse_checked_with(&source, &penv.vars, |value| {
        if let Some(Value::Mapping(services)) = value.get_mut("services") {
            for svc in services.values_mut() {
                if matches!(svc, Value::Null) {
                    *svc = Value::Mapping(Mapping::new());
                }
            }
        }
    })?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| penv.base_dir.clone());
    let file = source.display();
    // Without path resolution, compose v2 still rebases that file's relative paths onto the
    // project directory (`build: .` in `sub/x.yaml` is `sub`): resolve against the relative
    // way from the project directory to the file's directory.
    let rebased = (!loader.opts.resolve_paths).then(|| relative_to(&dir, &penv.base_dir));
    let ctx = super::canonical::PathContext {
        base_dir: rebased.as_deref().unwrap_or(&dir),
        file_dir: &dir,
        home: penv.vars.get("HOME").map(String::as_str),
        file: &file,
        resolve_paths: true,
    };
    super::canonical::canonicalize(&mut value, &ctx)?;
    // Tags stay: `!reset`/`!override` in that file apply when its own services are resolved
    // (compose v2); the project strips what is left once everything is merged.
    loader.cache.insert(path.to_path_buf(), value.clone());
    Ok(value
        .get("services")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default())
}

/// `path` relative to `base` (both absolute and clean), with `..` where it leaves `base`.
pub(crate) fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let path: Vec<_> = path.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for c in &path[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}
