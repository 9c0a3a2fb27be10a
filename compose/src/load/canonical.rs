//! Stage: short forms → the long forms compose prints, relative paths → absolute.
//!
//! Runs per file on the value tree (after validation, so shapes are known), seeing through
//! `!reset`/`!override` tags so that the merge stage compares like with like.

use std::path::{Component, Path, PathBuf};

use yaml_serde::{Mapping, Value};

use super::parse::{untagged, untagged_mut};

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
}

impl PathContext<'_> {
    pub fn resolve(&self, p: &str) -> String {
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
fn to_string_map(v: &Value, bare_is_null: bool) -> Value {
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
fn update(map: &mut Mapping, key: &str, f: impl FnOnce(&Value) -> Value) {
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
                    out.push(long_volume(m, ctx).map_err(|r| err(format!("{m:?}"), r))?)
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
            m.insert(s("file"), s(file_ctx.resolve(&file)));
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
    let context = m
        .get("context")
        .and_then(scalar_text)
        .unwrap_or_else(|| ".".into());
    let resolved = if is_remote_context(&context) {
        context
    } else {
        ctx.resolve(&context)
    };
    m.insert(s("context"), s(resolved));
    if !m.contains_key("dockerfile") && !m.contains_key("dockerfile_inline") {
        m.insert(s("dockerfile"), s("Dockerfile"));
    }
    update(&mut m, "args", |v| to_string_map(v, true));
    update(&mut m, "labels", |v| to_string_map(v, false));
    update(&mut m, "additional_contexts", |v| to_string_map(v, false));
    update(&mut m, "secrets", |v| file_refs(v, true));
    if let Some(Ok(hosts)) = m.get("extra_hosts").map(extra_hosts) {
        m.insert(s("extra_hosts"), hosts);
    }
    Ok(Value::Mapping(m))
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
            for (k, val) in map {
                let d = untagged(val).as_mapping();
                let get = |key: &str| d.and_then(|d| d.get(key));
                out.insert(
                    s(super::interpolate::key_text(k)),
                    dep(
                        get("condition").and_then(scalar_text),
                        get("required").and_then(Value::as_bool),
                        get("restart").and_then(Value::as_bool),
                    ),
                );
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

/// Splits a command line like a POSIX shell would, without expansions.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(format!("unterminated double quote in {text:?}")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated double quote in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn long_port(m: &Mapping) -> Mapping {
    let mut out = Mapping::new();
    if let Some(n) = m.get("name") {
        out.insert(s("name"), n.clone());
    }
    out.insert(
        s("mode"),
        m.get("mode").cloned().unwrap_or_else(|| s("ingress")),
    );
    if let Some(ip) = m.get("host_ip") {
        out.insert(s("host_ip"), ip.clone());
    }
    if let Some(t) = m.get("target") {
        out.insert(s("target"), t.clone());
    }
    if let Some(p) = m.get("published").and_then(scalar_text) {
        out.insert(s("published"), s(p));
    }
    out.insert(
        s("protocol"),
        m.get("protocol").cloned().unwrap_or_else(|| s("tcp")),
    );
    if let Some(a) = m.get("app_protocol") {
        out.insert(s("app_protocol"), a.clone());
    }
    for (k, v) in m {
        if k.as_str().is_some_and(|k| k.starts_with("x-")) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn port_range(text: &str) -> Result<(u32, u32), String> {
    let parse = |p: &str| -> Result<u32, String> {
        p.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("{p:?} is not a port number (0-65535)"))
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid range {text}: end before start"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse(text)?;
            Ok((p, p))
        }
    }
}

/// Port short syntax: `[host_ip:][published:]target[/protocol]`, with ranges; `[::1]:80:80`.
pub fn parse_port(spec: &str) -> Result<Vec<Value>, String> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".into()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol {protocol:?} (tcp, udp or sctp)"));
    }
    let (host_ip, rest) = if let Some(stripped) = rest.strip_prefix('[') {
        let end = stripped.find(']').ok_or("unclosed [ in IPv6 address")?;
        let ip = &stripped[..end];
        let after = stripped[end + 1..]
            .strip_prefix(':')
            .ok_or("expected : after the IPv6 address")?;
        (Some(ip.to_string()), after)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => (Some(parts[0].to_string()), &rest[parts[0].len() + 1..]),
            _ => {
                return Err(
                    "too many colons (IPv6 host addresses go in brackets: [::1]:80:80)".into(),
                );
            }
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest),
    };
    let (t_start, t_end) = port_range(target)?;
    let published = published.filter(|p| !p.is_empty());
    let host_range = published.map(port_range).transpose()?;
    let count = t_end - t_start + 1;
    let mut out = Vec::new();
    for i in 0..count {
        let published = match host_range {
            None => None,
            Some((h_start, h_end)) if count == 1 => Some(if h_start == h_end {
                h_start.to_string()
            } else {
                format!("{h_start}-{h_end}")
            }),
            Some((h_start, h_end)) => {
                if h_end - h_start + 1 != count {
                    return Err("host and container port ranges have different sizes".into());
                }
                Some((h_start + i).to_string())
            }
        };
        let mut m = Mapping::new();
        m.insert(s("mode"), s("ingress"));
        if let Some(ip) = &host_ip {
            m.insert(s("host_ip"), s(ip.clone()));
        }
        m.insert(s("target"), Value::Number((t_start + i).into()));
        if let Some(p) = published {
            m.insert(s("published"), s(p));
        }
        m.insert(s("protocol"), s(protocol.clone()));
        out.push(Value::Mapping(m));
    }
    Ok(out)
}

fn is_path_source(src: &str) -> bool {
    src.starts_with('.') || src.starts_with('/') || src.starts_with('~') || src.contains('/')
}

/// Volume short syntax: `[source:]target[:options]`.
pub fn parse_volume(spec: &str, ctx: &PathContext) -> Result<Value, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, o] => (Some(*src), *t, Some(*o)),
        _ => return Err("too many colons (use source:target:options)".into()),
    };
    if target.is_empty() {
        return Err("empty target path".into());
    }
    let mut m = Mapping::new();
    let mut bind = Mapping::new();
    let mut vol = Mapping::new();
    let mut read_only = false;
    for opt in options
        .map(|o| o.split(',').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" => {
                bind.insert(s("selinux"), s(opt));
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind.insert(s("propagation"), s(opt));
            }
            "nocopy" => {
                vol.insert(s("nocopy"), Value::Bool(true));
            }
            "delegated" | "cached" | "consistent" => {}
            other => {
                return Err(format!(
                    "unknown option {other:?} (ro, rw, z, Z, nocopy, or a propagation mode)"
                ));
            }
        }
    }
    match source.filter(|s| !s.is_empty()) {
        Some(src) if is_path_source(src) => {
            m.insert(s("type"), s("bind"));
            m.insert(s("source"), s(ctx.resolve(src)));
            m.insert(s("target"), s(target));
            if read_only {
                m.insert(s("read_only"), Value::Bool(true));
            }
            bind.insert(s("create_host_path"), Value::Bool(true));
            m.insert(s("bind"), Value::Mapping(bind));
        }
        src => {
            m.insert(s("type"), s("volume"));
            if let Some(src) = src {
                m.insert(s("source"), s(src));
            }
            m.insert(s("target"), s(target));
            if read_only {
                m.insert(s("read_only"), Value::Bool(true));
            }
            m.insert(s("volume"), Value::Mapping(vol));
        }
    }
    Ok(Value::Mapping(m))
}

fn long_volume(m: &Mapping, ctx: &PathContext) -> Result<Value, String> {
    let mut m = m.clone();
    let source = m.get("source").and_then(scalar_text);
    let kind = match m.get("type").and_then(scalar_text) {
        Some(t) => t,
        None => {
            let t = if source.as_deref().is_some_and(is_path_source) {
                "bind"
            } else {
                "volume"
            };
            m.insert(s("type"), s(t));
            t.to_string()
        }
    };
    if !m.contains_key("target") {
        return Err("target is required".into());
    }
    if kind == "bind" {
        match source {
            Some(src) => {
                m.insert(s("source"), s(ctx.resolve(&src)));
            }
            None => return Err("a bind mount needs a source".into()),
        }
        if let Some(Value::Mapping(b)) = m.get_mut("bind")
            && !b.contains_key("create_host_path")
        {
            b.insert(s("create_host_path"), Value::Bool(true));
        }
    }
    if let Some(Value::Mapping(v)) = m.get_mut("volume") {
        update(v, "labels", |l| to_string_map(l, false));
    }
    Ok(Value::Mapping(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PathContext<'static> {
        PathContext {
            base_dir: Path::new("/proj"),
            file_dir: Path::new("/proj"),
            home: Some("/root"),
            file: "f",
        }
    }

    fn y(v: &Value) -> String {
        yaml_serde::to_string(v).unwrap()
    }

    #[test]
    fn ports() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            y(&p[0]),
            "mode: ingress\nhost_ip: 127.0.0.1\ntarget: 80\npublished: '8080'\nprotocol: udp\n"
        );
        assert_eq!(parse_port("3000-3002:4000-4002").unwrap().len(), 3);
        assert_eq!(parse_port("80").unwrap()[0].get("published"), None);
        let p = parse_port("8000-8010:80").unwrap();
        assert_eq!(p[0]["published"].as_str(), Some("8000-8010"));
        let p = parse_port("[::1]:53:53/udp").unwrap();
        assert_eq!(p[0]["host_ip"].as_str(), Some("::1"));
        assert!(parse_port("80:70000").is_err());
        assert!(parse_port("80/foo").is_err());
        assert!(parse_port("1-3:4-5").is_err());
    }

    #[test]
    fn volumes() {
        let v = parse_volume("./data:/data:ro,z", &ctx()).unwrap();
        assert_eq!(v["source"].as_str(), Some("/proj/data"));
        assert_eq!(v["read_only"].as_bool(), Some(true));
        assert_eq!(v["bind"]["selinux"].as_str(), Some("z"));
        let v = parse_volume("db:/var/lib/db", &ctx()).unwrap();
        assert_eq!(v["type"].as_str(), Some("volume"));
        let v = parse_volume("/cache", &ctx()).unwrap();
        assert!(v.get("source").is_none());
        let v = parse_volume("~/x:/x", &ctx()).unwrap();
        assert_eq!(v["source"].as_str(), Some("/root/x"));
        assert!(parse_volume("a:/b:bogus", &ctx()).is_err());
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split("sh -c 'echo hi there'").unwrap(),
            vec!["sh", "-c", "echo hi there"]
        );
        assert_eq!(
            shell_split(r#"a "b \"c\"" d\ e"#).unwrap(),
            vec!["a", "b \"c\"", "d e"]
        );
        assert!(shell_split("'open").is_err());
    }

    #[test]
    fn paths_clean() {
        assert_eq!(ctx().resolve("./a/../b"), "/proj/b");
        assert_eq!(ctx().resolve("../x"), "/x");
        assert_eq!(ctx().resolve("/abs"), "/abs");
    }
}
