//! Stage: short forms → the long forms compose prints, relative paths → absolute.
//!
//! Runs per file on the value tree (after validation, so shapes are known), seeing through
//! `!reset`/`!override` tags so that the merge stage compares like with like.

use std::path::{Component, Path, PathBuf};

use yaml_serde::{Mapping, Value};

use super::parse::{is_reset, untagged, untagged_mut};
use super::short_syntax::{long_port, long_volume, parse_port, parse_volume, shell_split};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CanonicalError {
    #[error("{file}: services.{service}.ports: invalid port {spec:?}: {reason}")]
    Port {
        file: String,
        service: String,
        spec: String,
        reason: String,
    },
    #[error("{file}: services.{service}.volumes: invalid volume {spec:?}: {reason}")]
    Volume {
        file: String,
        service: String,
        spec: String,
        reason: String,
    },
    #[error("{file}: services.{service}.{key}: {reason}")]
    Other {
        file: String,
        service: String,
        key: String,
        reason: String,
    },
}

/// Where relative paths in one file resolve, and how `~` expands.
pub struct PathContext<'a> {
    /// Relative paths in the model resolve against this (the project directory for `-f` files,
    /// the file's own directory for `extends`/`include` targets).
    pub base_dir: &'a Path,
    /// The directory of the file itself (`extends.file` is relative to it).
    pub file_dir: &'a Path,
    pub home: Option<&'a str>,
    pub file: &'a str,
    /// `false` for `config --no-path-resolution`: model paths stay as written.
    pub resolve_paths: bool,
}

impl PathContext<'_> {
    /// A path of the model (bind source, build context, env_file, secret file...), resolved
    /// against `base_dir` unless path resolution is off.
    pub fn resolve(&self, p: &str) -> String {
        if !self.resolve_paths {
            return p.to_string();
        }
        self.resolve_always(p)
    }

    /// A path the loader itself must open (`extends.file`): always resolved.
    pub fn resolve_always(&self, p: &str) -> String {
        let expanded = match (p.strip_prefix('~'), self.home) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                format!("{home}{rest}")
            }
            _ => p.to_string(),
        };
        let path = Path::new(&expanded);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        };
        clean(&joined).display().to_string()
    }
}

/// Lexically normalises `.` and `..` (no symlink resolution, like Go's filepath.Clean).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match untagged(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// A list of `KEY=VALUE` (or mapping) → mapping of strings. Keys without `=` map to null when
/// `bare_is_null` (environment: "take from the shell"), else to "" (labels).
pub(crate) fn to_string_map(v: &Value, bare_is_null: bool) -> Value {
    let mut out = Mapping::new();
    match untagged(v) {
        Value::Sequence(seq) => {
            for item in seq {
                let Some(text) = scalar_text(item) else {
                    continue;
                };
                match text.split_once('=') {
                    Some((k, val)) => out.insert(s(k), s(val)),
                    None if bare_is_null => out.insert(s(text), Value::Null),
                    None => out.insert(s(text), s("")),
                };
            }
        }
        Value::Mapping(map) => {
            for (k, val) in map {
                let key = super::interpolate::key_text(k);
                if is_reset(val) {
                    // `KEY: !reset` removes the key when the files are merged.
                    out.insert(s(key), val.clone());
                    continue;
                }
                let val = match scalar_text(val) {
                    Some(t) => s(t),
                    None if bare_is_null => Value::Null,
                    None => s(""),
                };
                out.insert(s(key), val);
            }
        }
        _ => {}
    }
    Value::Mapping(out)
}

fn to_string_list(v: &Value) -> Value {
    match untagged(v) {
        Value::Sequence(seq) => {
            Value::Sequence(seq.iter().filter_map(scalar_text).map(s).collect())
        }
        other => match scalar_text(other) {
            Some(t) => Value::Sequence(vec![s(t)]),
            None => Value::Sequence(vec![]),
        },
    }
}

/// Applies `f` to the value under a key, seeing through tags.
pub(crate) fn update(map: &mut Mapping, key: &str, f: impl FnOnce(&Value) -> Value) {
    if let Some(v) = map.get_mut(key) {
        let inner = untagged_mut(v);
        *inner = f(inner);
    }
}

fn try_update<E>(
    map: &mut Mapping,
    key: &str,
    f: impl FnOnce(&Value) -> Result<Value, E>,
) -> Result<(), E> {
    if let Some(v) = map.get_mut(key) {
        let inner = untagged_mut(v);
        *inner = f(inner)?;
    }
    Ok(())
}

/// Canonicalises a whole file.
pub fn canonicalize(root: &mut Value, ctx: &PathContext) -> Result<(), CanonicalError> {
    let Some(top) = root.as_mapping_mut() else {
        return Ok(());
    };
    if let Some(services) = top
        .get_mut("services")
        .map(untagged_mut)
        .and_then(Value::as_mapping_mut)
    {
        for (name, svc) in services.iter_mut() {
            let name = super::interpolate::key_text(name);
            if let Some(map) = untagged_mut(svc).as_mapping_mut() {
                canonical_service(&name, map, ctx)?;
            }
        }
    }
    for kind in ["networks", "volumes"] {
        if let Some(map) = top
            .get_mut(kind)
            .map(untagged_mut)
            .and_then(Value::as_mapping_mut)
        {
            for (_, def) in map.iter_mut() {
                let def = untagged_mut(def);
                if def.is_null() {
                    *def = Value::Mapping(Mapping::new());
                }
                if let Some(m) = def.as_mapping_mut() {
                    canonical_resource(m);
                }
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(map) = top
            .get_mut(kind)
            .map(untagged_mut)
            .and_then(Value::as_mapping_mut)
        {
            for (_, def) in map.iter_mut() {
                if let Some(m) = untagged_mut(def).as_mapping_mut() {
                    canonical_resource(m);
                    update(m, "file", |v| {
                        s(ctx.resolve(&scalar_text(v).unwrap_or_default()))
                    });
                }
            }
        }
    }
    Ok(())
}

fn canonical_resource(m: &mut Mapping) {
    // Legacy `external: {name: x}` means external with that name.
    if let Some(Value::Mapping(ext)) = m.get("external").map(untagged) {
        let name = ext.get("name").and_then(scalar_text);
        m.insert(s("external"), Value::Bool(true));
        if let Some(name) = name {
            m.insert(s("name"), s(name));
        }
    }
    update(m, "labels", |v| to_string_map(v, false));
    update(m, "driver_opts", |v| to_string_map(v, false));
}

fn canonical_service(
    name: &str,
    svc: &mut Mapping,
    ctx: &PathContext,
) -> Result<(), CanonicalError> {
    let other = |key: &str, reason: String| CanonicalError::Other {
        file: ctx.file.into(),
        service: name.into(),
        key: key.into(),
        reason,
    };
    try_update(svc, "build", |v| canonical_build(v, ctx))?;
    try_update(svc, "command", |v| {
        shell_command(v).map_err(|r| other("command", r))
    })?;
    try_update(svc, "entrypoint", |v| {
        shell_command(v).map_err(|r| other("entrypoint", r))
    })?;
    update(svc, "depends_on", canonical_depends_on);
    update(svc, "environment", |v| to_string_map(v, true));
    update(svc, "labels", |v| to_string_map(v, false));
    update(svc, "annotations", |v| to_string_map(v, false));
    update(svc, "sysctls", |v| to_string_map(v, false));
    update(svc, "storage_opt", |v| to_string_map(v, false));
    update(svc, "env_file", |v| canonical_env_files(v, ctx));
    // `models: [llm]` is `models: {llm: null}` (compose v2's canonical form).
    update(svc, "models", |v| match v {
        Value::Sequence(names) => Value::Mapping(
            names
                .iter()
                .filter_map(scalar_text)
                .map(|n| (Value::String(n), Value::Null))
                .collect(),
        ),
        other => other.clone(),
    });
    update(svc, "label_file", |v| {
        let list = to_string_list(v);
        Value::Sequence(
            list.as_sequence()
                .map(|l| {
                    l.iter()
                        .filter_map(scalar_text)
                        .map(|p| s(ctx.resolve(&p)))
                        .collect()
                })
                .unwrap_or_default(),
        )
    });
    for key in [
        "expose",
        "dns",
        "dns_search",
        "dns_opt",
        "tmpfs",
        "group_add",
        "cap_add",
        "cap_drop",
        "profiles",
    ] {
        update(svc, key, to_string_list);
    }
    try_update(svc, "extra_hosts", |v| {
        extra_hosts(v).map_err(|r| other("extra_hosts", r))
    })?;
    try_update(svc, "healthcheck", |v| {
        let mut m = v.as_mapping().cloned().unwrap_or_default();
        if let Some(test) = m.get_mut("test") {
            let inner = untagged_mut(test);
            if let Some(text) = inner.as_str() {
                *inner = Value::Sequence(vec![s("CMD-SHELL"), s(text)]);
            } else {
                *inner = to_string_list(inner);
            }
        }
        Ok::<_, CanonicalError>(Value::Mapping(m))
    })?;
    update(svc, "networks", |v| match v {
        Value::Sequence(seq) => Value::Mapping(
            seq.iter()
                .filter_map(scalar_text)
                .map(|n| (s(n), Value::Null))
                .collect(),
        ),
        other => other.clone(),
    });
    update(svc, "logging", |v| {
        let mut m = v.as_mapping().cloned().unwrap_or_default();
        update(&mut m, "options", |o| to_string_map(o, false));
        Value::Mapping(m)
    });
    try_update(svc, "ports", |v| {
        let mut out = Vec::new();
        for item in v.as_sequence().map(|s| s.as_slice()).unwrap_or_default() {
            match untagged(item) {
                Value::Mapping(m) => out.push(Value::Mapping(long_port(m))),
                scalar => {
                    let spec = scalar_text(scalar).unwrap_or_default();
                    let ports = parse_port(&spec).map_err(|reason| CanonicalError::Port {
                        file: ctx.file.into(),
                        service: name.into(),
                        spec: spec.clone(),
                        reason,
                    })?;
                    out.extend(ports);
                }
            }
        }
        Ok(Value::Sequence(out))
    })?;
    try_update(svc, "volumes", |v| {
        let mut out = Vec::new();
        for item in v.as_sequence().map(|s| s.as_slice()).unwrap_or_default() {
            let err = |spec: String, reason: String| CanonicalError::Volume {
                file: ctx.file.into(),
                service: name.into(),
                spec,
                reason,
            };
            match untagged(item) {
                Value::Mapping(m) => {
                    out.push(long_volume(m, ctx).map_err(|r| err(long_form_label(m), r))?)
                }
                scalar => {
                    let spec = scalar_text(scalar).unwrap_or_default();
                    out.push(parse_volume(&spec, ctx).map_err(|r| err(spec.clone(), r))?);
                }
            }
        }
        Ok(Value::Sequence(out))
    })?;
    for key in ["secrets", "configs"] {
        let is_secret = key == "secrets";
        update(svc, key, |v| file_refs(v, is_secret));
    }
    update(svc, "devices", |v| {
        let items = v.as_sequence().cloned().unwrap_or_default();
        Value::Sequence(
            items
                .into_iter()
                .map(|item| match scalar_text(&item) {
                    Some(text) => {
                        let parts: Vec<&str> = text.split(':').collect();
                        let (src, dst, perm) = match parts.as_slice() {
                            [a] => (*a, *a, "rwm"),
                            [a, b] => (*a, *b, "rwm"),
                            [a, b, c, ..] => (*a, *b, *c),
                            [] => ("", "", "rwm"),
                        };
                        let mut m = Mapping::new();
                        m.insert(s("source"), s(src));
                        m.insert(s("target"), s(dst));
                        m.insert(s("permissions"), s(perm));
                        Value::Mapping(m)
                    }
                    None => item,
                })
                .collect(),
        )
    });
    update(svc, "extends", |v| {
        let mut m = match v {
            Value::Mapping(m) => m.clone(),
            other => {
                let mut m = Mapping::new();
                m.insert(s("service"), other.clone());
                m
            }
        };
        if let Some(file) = m.get("file").and_then(scalar_text) {
            let file_ctx = PathContext {
                base_dir: ctx.file_dir,
                ..*ctx
            };
            // Remote sources are kept as written: the extends stage refuses them by name.
            let file = if super::include::is_remote(&file) {
                file
            } else {
                file_ctx.resolve_always(&file)
            };
            m.insert(s("file"), s(file));
        }
        Value::Mapping(m)
    });
    if let Some(Value::Mapping(deploy)) = svc.get_mut("deploy").map(untagged_mut) {
        update(deploy, "labels", |v| to_string_map(v, false));
    }
    Ok(())
}

fn file_refs(v: &Value, is_secret: bool) -> Value {
    let items = v.as_sequence().cloned().unwrap_or_default();
    Value::Sequence(
        items
            .into_iter()
            .map(|item| {
                let mut m = match untagged(&item) {
                    Value::Mapping(m) => m.clone(),
                    other => {
                        let mut m = Mapping::new();
                        m.insert(s("source"), s(scalar_text(other).unwrap_or_default()));
                        m
                    }
                };
                if is_secret && !m.contains_key("target") {
                    let src = m.get("source").and_then(scalar_text).unwrap_or_default();
                    m.insert(s("target"), s(format!("/run/secrets/{src}")));
                }
                for key in ["uid", "gid", "mode"] {
                    if let Some(v) = m.get(key).and_then(scalar_text) {
                        let v = if key == "mode" { octal_mode(&v) } else { v };
                        m.insert(s(key), s(v));
                    }
                }
                Value::Mapping(m)
            })
            .collect(),
    )
}

/// `mode: 0440` arrives as the YAML integer 440 (YAML 1.2) or the string "0440"; both mean octal.
fn octal_mode(v: &str) -> String {
    if v.starts_with('0') {
        v.to_string()
    } else {
        format!("0{v}")
    }
}

fn canonical_build(v: &Value, ctx: &PathContext) -> Result<Value, CanonicalError> {
    let mut m = match v {
        Value::Mapping(m) => m.clone(),
        other => {
            let mut m = Mapping::new();
            m.insert(s("context"), s(scalar_text(other).unwrap_or_default()));
            m
        }
    };
    // A missing context or dockerfile is defaulted only after the files are merged (see
    // `build_defaults`): defaulted here, an override file's `build: {target: dev}` would
    // replace the context and dockerfile of the file it overrides.
    if let Some(context) = m.get("context").and_then(scalar_text) {
        let resolved = if is_remote_context(&context) {
            context
        } else {
            ctx.resolve(&context)
        };
        m.insert(s("context"), s(resolved));
    }
    update(&mut m, "args", |v| to_string_map(v, true));
    update(&mut m, "labels", |v| to_string_map(v, false));
    // Local paths among the additional contexts resolve like the context; builder-specific
    // (`docker-image://`, `service:`) and remote ones stay as written.
    update(&mut m, "additional_contexts", |v| {
        let mut map = to_string_map(v, false);
        if let Value::Mapping(entries) = &mut map {
            for value in entries.values_mut() {
                if let Some(text) = value.as_str()
                    && !is_remote_context(text)
                    && !text.starts_with("service:")
                {
                    *value = s(ctx.resolve(text));
                }
            }
        }
        map
    });
    update(&mut m, "secrets", |v| file_refs(v, true));
    if let Some(Ok(hosts)) = m.get("extra_hosts").map(extra_hosts) {
        m.insert(s("extra_hosts"), hosts);
    }
    Ok(Value::Mapping(m))
}

/// After merging: `build.context` defaults to the project directory and `build.dockerfile` to
/// `Dockerfile` (unless `dockerfile_inline` is given), as compose's normalisation does.
pub fn build_defaults(root: &mut Value, project_dir: &Path, resolve_paths: bool) {
    let Some(services) = root
        .get_mut("services")
        .map(untagged_mut)
        .and_then(Value::as_mapping_mut)
    else {
        return;
    };
    for svc in services.values_mut() {
        service_build_defaults(svc, project_dir, resolve_paths);
    }
}

/// [`build_defaults`] for one service.
pub fn service_build_defaults(svc: &mut Value, project_dir: &Path, resolve_paths: bool) {
    let Some(build) = untagged_mut(svc)
        .get_mut("build")
        .map(untagged_mut)
        .and_then(Value::as_mapping_mut)
    else {
        return;
    };
    if !build.contains_key("context") {
        let context = if resolve_paths {
            clean(project_dir).display().to_string()
        } else {
            ".".to_string()
        };
        build.insert(s("context"), s(context));
    }
    if !build.contains_key("dockerfile") && !build.contains_key("dockerfile_inline") {
        build.insert(s("dockerfile"), s("Dockerfile"));
    }
}

fn is_remote_context(c: &str) -> bool {
    c.contains("://") || c.starts_with("git@") || c.starts_with("github.com/")
}

fn canonical_env_files(v: &Value, ctx: &PathContext) -> Value {
    let items: Vec<Value> = match untagged(v) {
        Value::Sequence(seq) => seq.clone(),
        other => vec![other.clone()],
    };
    Value::Sequence(
        items
            .iter()
            .map(|item| {
                let (path, required, format) = match untagged(item) {
                    Value::Mapping(m) => (
                        m.get("path").and_then(scalar_text).unwrap_or_default(),
                        m.get("required").and_then(Value::as_bool).unwrap_or(true),
                        m.get("format").and_then(scalar_text),
                    ),
                    other => (scalar_text(other).unwrap_or_default(), true, None),
                };
                let mut m = Mapping::new();
                m.insert(s("path"), s(ctx.resolve(&path)));
                m.insert(s("required"), Value::Bool(required));
                if let Some(f) = format {
                    m.insert(s("format"), s(f));
                }
                if let Value::Mapping(written) = untagged(item) {
                    m.extend(extensions(written));
                }
                Value::Mapping(m)
            })
            .collect(),
    )
}

fn canonical_depends_on(v: &Value) -> Value {
    let mut out = Mapping::new();
    let dep = |cond: Option<String>, required: Option<bool>, restart: Option<bool>| {
        let mut m = Mapping::new();
        m.insert(
            s("condition"),
            s(cond.unwrap_or_else(|| "service_started".into())),
        );
        if restart == Some(true) {
            m.insert(s("restart"), Value::Bool(true));
        }
        m.insert(s("required"), Value::Bool(required.unwrap_or(true)));
        Value::Mapping(m)
    };
    match v {
        Value::Sequence(seq) => {
            for name in seq.iter().filter_map(scalar_text) {
                out.insert(s(name), dep(None, None, None));
            }
        }
        Value::Mapping(map) => {
            // Only what is written: the defaults (service_started, required) are the typed
            // model's, applied after the files are merged, so that an override giving only
            // `required` keeps the earlier file's condition (compose v2).
            for (k, val) in map {
                let d = untagged(val).as_mapping();
                let get = |key: &str| d.and_then(|d| d.get(key));
                let mut m = Mapping::new();
                if let Some(c) = get("condition").and_then(scalar_text) {
                    m.insert(s("condition"), s(c));
                }
                if get("restart").and_then(Value::as_bool) == Some(true) {
                    m.insert(s("restart"), Value::Bool(true));
                }
                if let Some(r) = get("required").and_then(Value::as_bool) {
                    m.insert(s("required"), Value::Bool(r));
                }
                if let Some(d) = d {
                    m.extend(extensions(d));
                }
                out.insert(s(super::interpolate::key_text(k)), Value::Mapping(m));
            }
        }
        _ => {}
    }
    Value::Mapping(out)
}

/// `extra_hosts` as sorted `host=ip` entries (list with `:` or `=`, or a mapping).
fn extra_hosts(v: &Value) -> Result<Value, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match untagged(v) {
        Value::Sequence(seq) => {
            for item in seq.iter().filter_map(scalar_text) {
                let (host, ip) = item
                    .split_once('=')
                    .or_else(|| item.split_once(':'))
                    .ok_or_else(|| {
                        format!("invalid additional host {item:?}, missing IP (use host=ip)")
                    })?;
                for ip in ip.split(',') {
                    pairs.push((host.to_string(), ip.to_string()));
                }
            }
        }
        Value::Mapping(map) => {
            for (k, val) in map {
                let host = super::interpolate::key_text(k);
                match untagged(val) {
                    Value::Sequence(ips) => {
                        for ip in ips.iter().filter_map(scalar_text) {
                            pairs.push((host.clone(), ip));
                        }
                    }
                    other => pairs.push((host, scalar_text(other).unwrap_or_default())),
                }
            }
        }
        _ => {}
    }
    let mut list: Vec<String> = pairs
        .into_iter()
        .map(|(h, ip)| {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .map(str::to_string)
                .unwrap_or(ip);
            format!("{h}={ip}")
        })
        .collect();
    list.sort();
    list.dedup();
    Ok(Value::Sequence(list.into_iter().map(s).collect()))
}

fn shell_command(v: &Value) -> Result<Value, String> {
    match v {
        Value::Sequence(_) => Ok(to_string_list(v)),
        Value::Null => Ok(Value::Null),
        other => {
            let text = scalar_text(other).unwrap_or_default();
            Ok(Value::Sequence(
                shell_split(&text)?.into_iter().map(s).collect(),
            ))
        }
    }
}

/// The `x-*` entries of a mapping (compose keeps them in every object of the model).
pub(crate) fn extensions(m: &Mapping) -> impl Iterator<Item = (Value, Value)> + '_ {
    m.iter()
        .filter(|(k, _)| k.as_str().is_some_and(|k| k.starts_with("x-")))
        .map(|(k, v)| (k.clone(), v.clone()))
}

/// How a long-form volume entry is named in errors.
fn long_form_label(m: &Mapping) -> String {
    match m.get("target").and_then(scalar_text) {
        Some(t) => format!("(long syntax, target {t})"),
        None => "(long syntax)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean() {
        let ctx = PathContext {
            base_dir: Path::new("/proj"),
            file_dir: Path::new("/proj"),
            home: None,
            file: "f",
            resolve_paths: true,
        };
        assert_eq!(ctx.resolve("./a/../b"), "/proj/b");
        assert_eq!(ctx.resolve("../x"), "/x");
        assert_eq!(ctx.resolve("/abs"), "/abs");
    }
}
