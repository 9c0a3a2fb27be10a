//! Stage: merging several files (and `extends` bases) with the compose-spec rules.
//!
//! Works on canonical value trees, so every rule compares long forms:
//! - mappings merge key by key (environment, labels, sysctls, depends_on, networks, ...: the
//!   later file wins per key);
//! - `command`, `entrypoint`, `healthcheck.test`, `profiles` and each `ulimits.*` are replaced;
//! - `ports` are unique by (host_ip, published, target, protocol), `volumes` by target,
//!   `secrets`/`configs` by target, `devices` by target, `env_file` by path; the later entry
//!   replaces the earlier one in place;
//! - `dns`, `dns_search`, `dns_opt`, `tmpfs`, `cap_add`, `cap_drop`, `links`, `build.tags` and
//!   a service network's `aliases`/`link_local_ips` are unique by the text before any `=`
//!   (compose v2's rule), `extra_hosts`, `security_opt`, ... append without duplicates; other
//!   sequences append;
//! - `networks.*.ipam.config` entries merge by subnet;
//! - a key the earlier file has keeps its place in the mapping;
//! - `logging` is replaced when the drivers differ;
//! - `!reset` removes a key, `!override` replaces the value instead of merging.

use yaml_serde::{Mapping, Value};

use super::canonical::scalar_text;
use super::parse::{is_override, is_reset, untagged, untagged_mut};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("cannot merge {path}: {left} in one file, {right} in the other")]
    Mismatch {
        path: String,
        left: &'static str,
        right: &'static str,
    },
}

/// Merges `over` onto `base` (both whole files, or two service bodies when `prefix` is
/// `services.<name>`).
pub fn merge(base: Value, over: Value, prefix: &[String]) -> Result<Value, MergeError> {
    let mut path = prefix.to_vec();
    merge_at(base, over, &mut path)
}

/// Removes repeated entries from the lists compose v2 keeps unique (ports, volumes, secrets,
/// dns, …: see [`rule`]) within one file: a later entry with the same key replaces the earlier
/// one in its place. Merging keeps them unique across files.
pub fn enforce_unicity(root: &mut Value) {
    let Some(Value::Mapping(services)) = root.get_mut("services").map(untagged_mut) else {
        return;
    };
    for (name, svc) in services.iter_mut() {
        let name = super::interpolate::key_text(name);
        let Value::Mapping(svc) = untagged_mut(svc) else {
            continue;
        };
        for (key, value) in svc.iter_mut() {
            let key = super::interpolate::key_text(key);
            dedup_at(value, &["services".into(), name.clone(), key.clone()]);
            if key == "networks"
                && let Value::Mapping(nets) = untagged_mut(value)
            {
                for (net, cfg) in nets.iter_mut() {
                    let net = super::interpolate::key_text(net);
                    if let Value::Mapping(cfg) = untagged_mut(cfg) {
                        for (k, v) in cfg.iter_mut() {
                            let path = [
                                "services".into(),
                                name.clone(),
                                "networks".into(),
                                net.clone(),
                                super::interpolate::key_text(k),
                            ];
                            dedup_at(v, &path);
                        }
                    }
                }
            }
        }
    }
}

fn dedup_at(value: &mut Value, path: &[String]) {
    let Rule::UniqueBy(key) = rule(path) else {
        return;
    };
    let Value::Sequence(items) = untagged_mut(value) else {
        return;
    };
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        let k = key(&item);
        match out.iter().position(|e| k.is_some() && key(e) == k) {
            Some(pos) => out[pos] = item,
            None => out.push(item),
        }
    }
    *items = out;
}

fn rule(path: &[String]) -> Rule {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["services", _, "command" | "entrypoint" | "profiles"] => Rule::Replace,
        ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "ulimits", _] | ["services", _, "build", "ulimits", _] => Rule::Replace,
        ["services", _, "ports"] => Rule::UniqueBy(port_key),
        ["services", _, "volumes"] => Rule::UniqueBy(|v| field(v, "target")),
        ["services", _, "secrets" | "configs"] | ["services", _, "build", "secrets"] => {
            Rule::UniqueBy(|v| field(v, "target").or_else(|| field(v, "source")))
        }
        ["services", _, "devices"] => Rule::UniqueBy(|v| field(v, "target")),
        ["services", _, "env_file"] => Rule::UniqueBy(|v| field(v, "path")),
        ["services", _, "logging"] => Rule::Logging,
        // compose v2 keys these by the text before any `=`: a later entry replaces an
        // earlier one with the same key, in its place.
        [
            "services",
            _,
            "dns" | "dns_search" | "dns_opt" | "tmpfs" | "cap_add" | "cap_drop" | "links",
        ]
        | ["services", _, "networks", _, "aliases" | "link_local_ips"]
        | ["services", _, "build", "tags"] => Rule::UniqueBy(key_before_equals),
        ["networks", _, "ipam", "config"] => Rule::IpamConfig,
        [
            "services",
            _,
            "extra_hosts"
            | "security_opt"
            | "expose"
            | "group_add"
            | "external_links"
            | "volumes_from"
            | "label_file"
            | "device_cgroup_rules",
        ] => Rule::UniqueScalars,
        [
            "services",
            _,
            "build",
            "extra_hosts" | "cache_from" | "cache_to" | "platforms",
        ] => Rule::UniqueScalars,
        _ => Rule::Default,
    }
}

enum Rule {
    Default,
    IpamConfig,
    Replace,
    UniqueBy(fn(&Value) -> Option<String>),
    UniqueScalars,
    Logging,
}

fn key_before_equals(v: &Value) -> Option<String> {
    let text = scalar_text(untagged(v))?;
    Some(
        text.split_once('=')
            .map_or(text.clone(), |(k, _)| k.to_string()),
    )
}

fn field(v: &Value, key: &str) -> Option<String> {
    untagged(v).get(key).and_then(scalar_text)
}

fn port_key(v: &Value) -> Option<String> {
    Some(format!(
        "{}|{}|{}|{}",
        field(v, "host_ip").unwrap_or_default(),
        field(v, "published").unwrap_or_default(),
        field(v, "target").unwrap_or_default(),
        field(v, "protocol").unwrap_or_else(|| "tcp".into())
    ))
}

fn kind(v: &Value) -> &'static str {
    super::parse::kind_name(v)
}

fn merge_at(base: Value, over: Value, path: &mut Vec<String>) -> Result<Value, MergeError> {
    if is_override(&over) || is_reset(&over) {
        return Ok(over);
    }
    // A tagged base has served its purpose (it was meant for an earlier merge).
    let base = match base {
        Value::Tagged(t) => t.value,
        other => other,
    };
    match rule(path) {
        Rule::Replace => return Ok(over),
        Rule::Logging => {
            let driver = |v: &Value| v.get("driver").and_then(scalar_text);
            if let (Some(a), Some(b)) = (driver(&base), driver(&over))
                && a != b
            {
                return Ok(over);
            }
        }
        Rule::UniqueBy(key) => {
            if let (Value::Sequence(mut items), Value::Sequence(more)) =
                (base.clone(), over.clone())
            {
                for item in more {
                    if is_reset(&item) {
                        continue;
                    }
                    let k = key(&item);
                    match items
                        .iter()
                        .position(|existing| k.is_some() && key(existing) == k)
                    {
                        Some(pos) => items[pos] = item,
                        None => items.push(item),
                    }
                }
                return Ok(Value::Sequence(items));
            }
        }
        Rule::IpamConfig => {
            // Entries with the same subnet merge (the later file's fields win, aux_addresses
            // merge by host); others are appended.
            if let (Value::Sequence(mut items), Value::Sequence(more)) =
                (base.clone(), over.clone())
            {
                for item in more {
                    if is_reset(&item) {
                        continue;
                    }
                    let subnet = field(&item, "subnet");
                    match items
                        .iter()
                        .position(|existing| field(existing, "subnet") == subnet)
                    {
                        Some(pos) => {
                            let existing = std::mem::replace(&mut items[pos], Value::Null);
                            path.push("[]".into());
                            items[pos] = merge_at(existing, item, path)?;
                            path.pop();
                        }
                        None => items.push(item),
                    }
                }
                return Ok(Value::Sequence(items));
            }
        }
        Rule::UniqueScalars => {
            if let (Value::Sequence(mut items), Value::Sequence(more)) =
                (base.clone(), over.clone())
            {
                for item in more {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                return Ok(Value::Sequence(items));
            }
        }
        Rule::Default => {}
    }
    match (base, over) {
        (Value::Mapping(mut base), Value::Mapping(over)) => {
            for (k, v) in over {
                let key = super::interpolate::key_text(&k);
                if is_reset(&v) {
                    base.shift_remove(&k);
                    continue;
                }
                // A key the base has keeps its place.
                match base.get_mut(&k) {
                    Some(existing) if !key.starts_with("x-") => {
                        let earlier = std::mem::replace(existing, Value::Null);
                        path.push(key);
                        let merged = merge_at(earlier, v, path);
                        path.pop();
                        *base.get_mut(&k).expect("present") = merged?;
                    }
                    Some(existing) => *existing = v,
                    None => {
                        base.insert(k, v);
                    }
                }
            }
            Ok(Value::Mapping(base))
        }
        (Value::Sequence(mut base), Value::Sequence(over)) => {
            base.extend(over.into_iter().filter(|v| !is_reset(v)));
            Ok(Value::Sequence(base))
        }
        (Value::Null, over) => Ok(over),
        (base, Value::Null) => Ok(base),
        (base @ (Value::Mapping(_) | Value::Sequence(_)), over)
            if !matches!(over, Value::Mapping(_) | Value::Sequence(_)) =>
        {
            Err(MergeError::Mismatch {
                path: path.join("."),
                left: kind(&base),
                right: kind(&over),
            })
        }
        (_, over) => Ok(over),
    }
}

/// A mapping with one entry, for building expected values in tests.
#[cfg(test)]
fn parse(text: &str) -> Value {
    let mut v = super::parse::parse("t", text).unwrap();
    let ctx = super::canonical::PathContext {
        base_dir: std::path::Path::new("/p"),
        file_dir: std::path::Path::new("/p"),
        home: None,
        file: "t",
        resolve_paths: true,
    };
    super::canonical::canonicalize(&mut v, &ctx).unwrap();
    v
}

#[allow(dead_code)]
fn _unused(_: Mapping) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(a: &str, b: &str) -> Value {
        let mut v = merge(parse(a), parse(b), &[]).unwrap();
        super::super::parse::strip_tags(&mut v);
        v
    }

    #[test]
    fn scalars_replace_maps_merge() {
        let v = m(
            "services: {web: {image: a, environment: {A: '1', B: '2'}}}",
            "services: {web: {image: b, environment: [B=3, C=4]}}",
        );
        let web = &v["services"]["web"];
        assert_eq!(web["image"].as_str(), Some("b"));
        assert_eq!(web["environment"]["A"].as_str(), Some("1"));
        assert_eq!(web["environment"]["B"].as_str(), Some("3"));
        assert_eq!(web["environment"]["C"].as_str(), Some("4"));
    }

    #[test]
    fn command_replaced_ports_unique() {
        let v = m(
            "services: {web: {command: a b, ports: ['80:80', '443:443']}}",
            "services: {web: {command: [c], ports: ['80:80', '8080:80']}}",
        );
        let web = &v["services"]["web"];
        assert_eq!(web["command"].as_sequence().unwrap().len(), 1);
        assert_eq!(web["ports"].as_sequence().unwrap().len(), 3);
    }

    #[test]
    fn volumes_by_target_and_reset() {
        let v = m(
            "services: {web: {volumes: ['va:/data', 'vb:/other'], dns: [1.1.1.1], labels: {x: y}}}",
            "services: {web: {volumes: ['vc:/data'], dns: [1.1.1.1, 8.8.8.8], labels: !reset {}}}",
        );
        let web = &v["services"]["web"];
        let vols = web["volumes"].as_sequence().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0]["source"].as_str(), Some("vc"));
        assert_eq!(web["dns"].as_sequence().unwrap().len(), 2);
        assert!(web.get("labels").is_none());
    }

    #[test]
    fn override_tag_replaces() {
        let v = m(
            "services: {web: {ports: ['80:80']}}",
            "services: {web: {ports: !override ['81:81']}}",
        );
        let ports = v["services"]["web"]["ports"].as_sequence().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["target"].as_i64(), Some(81));
    }
}
