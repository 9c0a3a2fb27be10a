//! A compose project as Docker Swarm objects (`rcompose stack deploy`), as `docker stack deploy`
//! makes them: services `<stack>_<service>`, overlay networks `<stack>_<net>`, secrets and
//! configs `<stack>_<name>` created from their files, named volumes `<stack>_<vol>` mounted as
//! volume mounts, every object labelled `com.docker.stack.namespace=<stack>`. The bodies are
//! the Docker Engine API's (`ServiceSpec`, `NetworkCreateRequest`, `SecretSpec`, `ConfigSpec`)
//! as JSON. What Swarm cannot express is reported per service and key, never dropped silently.
//!
//! Pure: the project and a file reader in, API bodies and the report out. The client that
//! sends them is `rcompose_wire::stack`.

mod service;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::{Unsupported, base64};
use crate::model::{FileObject, Project};

/// The label every object of a stack carries; its value is the stack's name.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// The image a service was deployed with, on the service (docker sets it too).
pub const IMAGE_LABEL: &str = "com.docker.stack.image";

#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error(
        "invalid stack name {0:?}: use lower-case letters, digits, '-' and '_', starting with a letter or digit"
    )]
    StackName(String),
    #[error("{what} {name}: cannot read {path}: {source}")]
    Read {
        what: &'static str,
        name: String,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {name}: no file, content or environment to create it from")]
    Empty { what: &'static str, name: String },
    #[error("service {service}: {key}: {message}")]
    Invalid {
        service: String,
        key: String,
        message: String,
    },
    #[error("service {service}: {what} {name} is not defined at the top level of the compose file")]
    Undefined {
        service: String,
        what: &'static str,
        name: String,
    },
}

/// A secret or config to create: its name and the API body (`SecretSpec`/`ConfigSpec`).
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    pub name: String,
    pub spec: Value,
}

/// A network to create: its name and the API body (`NetworkCreateRequest`).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpec {
    pub name: String,
    pub spec: Value,
}

/// A service: its swarm name (`<stack>_<service>`) and its `ServiceSpec`. Secret and config
/// references carry `SecretName`/`ConfigName`; [`resolve_references`] fills in the ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub spec: Value,
}

/// Everything a deploy sends, in the order it is sent.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub namespace: String,
    pub secrets: Vec<FileSpec>,
    pub configs: Vec<FileSpec>,
    pub networks: Vec<NetworkSpec>,
    /// Networks the file declares external: they must exist, swarm-scoped.
    pub external_networks: Vec<String>,
    /// Secrets and configs declared external: they must exist.
    pub external_secrets: Vec<String>,
    pub external_configs: Vec<String>,
    pub services: Vec<ServiceSpec>,
    pub unsupported: Vec<Unsupported>,
}

/// Docker's rule for stack names is looser, but the name also prefixes every object and must
/// be a compose project name for the file to load under it.
pub fn check_stack_name(name: &str) -> Result<(), SwarmError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SwarmError::StackName(name.to_string()))
    }
}

/// `labels` with the stack's namespace label added (it wins over one the file sets).
pub(crate) fn stack_labels(namespace: &str, labels: &BTreeMap<String, String>) -> Value {
    let mut m: Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    m.insert(NAMESPACE_LABEL.into(), json!(namespace));
    Value::Object(m)
}

/// The project (loaded with the stack's name as project name, so resolved names are
/// `<stack>_<key>`) as the objects of stack `namespace`.
pub fn convert(
    project: &Project,
    namespace: &str,
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Stack, SwarmError> {
    check_stack_name(namespace)?;
    let mut stack = Stack {
        namespace: namespace.to_string(),
        ..Default::default()
    };
    let mut nets_used = BTreeMap::new();
    let mut secrets_used = BTreeMap::new();
    let mut configs_used = BTreeMap::new();
    for svc in project.services.values() {
        for n in svc.networks.keys() {
            nets_used.insert(n.clone(), svc.name.clone());
        }
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            nets_used.insert("default".to_string(), svc.name.clone());
        }
        for s in &svc.secrets {
            secrets_used.insert(s.source.clone(), svc.name.clone());
        }
        for c in &svc.configs {
            configs_used.insert(c.source.clone(), svc.name.clone());
        }
    }
    for (key, user) in &nets_used {
        let Some(net) = project.networks.get(key) else {
            return Err(SwarmError::Undefined {
                service: user.clone(),
                what: "network",
                name: key.clone(),
            });
        };
        let name = resolved(net.name.as_deref(), namespace, key);
        if net.external {
            stack.external_networks.push(name);
            continue;
        }
        stack.networks.push(NetworkSpec {
            spec: network_spec(&name, namespace, net),
            name,
        });
    }
    for (what, used, objects) in [
        ("secret", &secrets_used, &project.secrets),
        ("config", &configs_used, &project.configs),
    ] {
        for (key, user) in used {
            let Some(obj) = objects.get(key) else {
                return Err(SwarmError::Undefined {
                    service: user.clone(),
                    what,
                    name: key.clone(),
                });
            };
            let name = resolved(obj.name.as_deref(), namespace, key);
            let (specs, externals) = if what == "secret" {
                (&mut stack.secrets, &mut stack.external_secrets)
            } else {
                (&mut stack.configs, &mut stack.external_configs)
            };
            if obj.external {
                externals.push(name);
                continue;
            }
            let data = file_data(project, what, key, obj, read)?;
            let mut spec = json!({
                "Name": name,
                "Labels": stack_labels(namespace, &obj.labels),
                "Data": base64(&data),
            });
            if let Some(d) = &obj.driver {
                spec["Driver"] = json!({"Name": d, "Options": obj.driver_opts});
            }
            if let Some(t) = &obj.template_driver {
                spec["Templating"] = json!({"Name": t});
            }
            specs.push(FileSpec { name, spec });
        }
    }
    for svc in project.services.values() {
        let (spec, notes) = service::spec(project, namespace, svc)?;
        stack.unsupported.extend(notes);
        stack.services.push(ServiceSpec {
            name: format!("{namespace}_{}", svc.name),
            spec,
        });
    }
    Ok(stack)
}

/// The engine-level name of a network, volume, secret or config: the one the loader resolved
/// (`<project>_<key>` or the file's `name:`), else `<stack>_<key>`.
pub(crate) fn resolved(name: Option<&str>, namespace: &str, key: &str) -> String {
    name.map(str::to_string)
        .unwrap_or_else(|| format!("{namespace}_{key}"))
}

fn network_spec(name: &str, namespace: &str, net: &crate::model::Network) -> Value {
    let mut spec = json!({
        "Name": name,
        "CheckDuplicate": true,
        "Driver": net.driver.clone().unwrap_or_else(|| "overlay".into()),
        "Labels": stack_labels(namespace, &net.labels),
    });
    if !net.driver_opts.is_empty() {
        spec["Options"] = json!(net.driver_opts);
    }
    if net.attachable {
        spec["Attachable"] = json!(true);
    }
    if net.internal {
        spec["Internal"] = json!(true);
    }
    if net.enable_ipv6 == Some(true) {
        spec["EnableIPv6"] = json!(true);
    }
    if !net.ipam.is_empty() {
        let config: Vec<Value> = net
            .ipam
            .config
            .iter()
            .map(|p| {
                let mut c = Map::new();
                for (k, v) in [
                    ("Subnet", &p.subnet),
                    ("IPRange", &p.ip_range),
                    ("Gateway", &p.gateway),
                ] {
                    if let Some(v) = v {
                        c.insert(k.into(), json!(v));
                    }
                }
                if !p.aux_addresses.is_empty() {
                    c.insert("AuxiliaryAddresses".into(), json!(p.aux_addresses));
                }
                Value::Object(c)
            })
            .collect();
        let mut ipam = json!({"Driver": net.ipam.driver.clone().unwrap_or_else(|| "default".into()), "Config": config});
        if !net.ipam.options.is_empty() {
            ipam["Options"] = json!(net.ipam.options);
        }
        spec["IPAM"] = ipam;
    }
    spec
}

fn file_data(
    project: &Project,
    what: &'static str,
    key: &str,
    obj: &FileObject,
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, SwarmError> {
    match (&obj.file, &obj.content, &obj.environment) {
        (Some(f), _, _) => read(Path::new(f)).map_err(|source| SwarmError::Read {
            what,
            name: key.to_string(),
            path: f.clone(),
            source,
        }),
        (None, Some(text), _) => Ok(text.clone().into_bytes()),
        (None, None, Some(var)) => Ok(project
            .environment
            .get(var)
            .cloned()
            .unwrap_or_default()
            .into_bytes()),
        _ => Err(SwarmError::Empty {
            what,
            name: key.to_string(),
        }),
    }
}

/// Fills `SecretID`/`ConfigID` of every reference in a `ServiceSpec` from the ids the daemon
/// gave the names; returns the first name it has no id for.
pub fn resolve_references(
    spec: &mut Value,
    secrets: &BTreeMap<String, String>,
    configs: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (list, name_key, id_key, ids) in [
        ("Secrets", "SecretName", "SecretID", secrets),
        ("Configs", "ConfigName", "ConfigID", configs),
    ] {
        let Some(refs) = spec["TaskTemplate"]["ContainerSpec"][list].as_array_mut() else {
            continue;
        };
        for r in refs {
            let name = r[name_key].as_str().unwrap_or_default().to_string();
            let id = ids.get(&name).ok_or_else(|| name.clone())?;
            r[id_key] = json!(id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
