//! Names and labels of the objects a project creates (as compose v2's `pkg/api/labels.go`):
//! the `com.docker.compose.*` label names docker compose puts on them (rcompose uses the same,
//! so tools reading them keep working), the engine names of networks, volumes and containers,
//! and the label sets of a service container or a project network/volume.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::hash::service_hash;
use crate::model::{Project, Service};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const ENVIRONMENT_FILE: &str = "com.docker.compose.project.environment_file";
pub const VERSION: &str = "com.docker.compose.version";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
pub const IMAGE: &str = "com.docker.compose.image";
pub const REPLACE: &str = "com.docker.compose.replace";
pub const SLUG: &str = "com.docker.compose.slug";

/// Label rcompose adds beside the config hash: one short hash per top-level service key (and
/// per environment variable / label), so a plan can name what changed.
pub const CONFIG_KEYS: &str = "io.rcompose.config-keys";

/// Engine name of a network: `name:` if set, else `<project>_<key>`.
pub fn network_name(project: &Project, key: &str) -> String {
    project
        .networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// Engine name of a volume: `name:` if set, else `<project>_<key>`.
pub fn volume_name(project: &Project, key: &str) -> String {
    project
        .volumes
        .get(key)
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// `container_name`, else `<project>-<service>-<n>`.
pub fn container_name(project: &str, svc: &Service, number: u32) -> String {
    match &svc.container_name {
        Some(n) => n.clone(),
        None => format!("{project}-{}-{number}", svc.name),
    }
}

/// One short hash per top-level key of the service (and per entry of `environment`, `labels`
/// and `annotations`), over the same normalised service [`service_hash`] hashes. Stored in a
/// label so a later plan can say which keys changed.
pub fn key_hashes(svc: &Service) -> BTreeMap<String, String> {
    // The same fields `hash::service_hash` ignores.
    let mut s = svc.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    if let Some(deploy) = s.deploy.as_mut() {
        deploy.replicas = Some(1);
    }
    s.depends_on.clear();
    s.profiles.clear();
    let value = serde_json::to_value(&s).unwrap_or_default();
    let mut out = BTreeMap::new();
    let short = |v: &serde_json::Value| {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))[..8].to_string()
    };
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            match (&*k, &v) {
                ("environment" | "labels" | "annotations", serde_json::Value::Object(m)) => {
                    for (sub, sv) in m {
                        // Commas and '=' would break the label's `k=v,k=v` form.
                        let sub: String = sub
                            .chars()
                            .map(|ch| if ch == ',' || ch == '=' { '_' } else { ch })
                            .collect();
                        out.insert(format!("{k}.{sub}"), short(sv));
                    }
                }
                _ => {
                    out.insert(k, short(&v));
                }
            }
        }
    }
    out
}

/// `key=hash,key=hash` → map. Unparseable parts are skipped: the label only refines a cause.
pub fn parse_config_keys(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The inverse of [`parse_config_keys`].
pub fn format_config_keys(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Version written to `com.docker.compose.version` (tools read it; compose writes its own).
pub const COMPOSE_VERSION: &str = "2.40.0";

/// The `com.docker.compose.*` labels of a service container (plus the service's own labels).
pub fn container_labels(
    project: &Project,
    svc: &Service,
    number: u32,
    oneoff: bool,
) -> BTreeMap<String, String> {
    let mut out = svc.labels.clone();
    out.insert(PROJECT.into(), project.name.clone());
    out.insert(SERVICE.into(), svc.name.clone());
    out.insert(CONTAINER_NUMBER.into(), number.to_string());
    out.insert(ONEOFF.into(), if oneoff { "True" } else { "False" }.into());
    out.insert(CONFIG_HASH.into(), service_hash(svc));
    out.insert(CONFIG_KEYS.into(), format_config_keys(&key_hashes(svc)));
    out.insert(
        WORKING_DIR.into(),
        project.working_dir.display().to_string(),
    );
    out.insert(CONFIG_FILES.into(), project.compose_files.join(","));
    out.insert(VERSION.into(), COMPOSE_VERSION.into());
    let deps: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(d, dep)| format!("{d}:{}:{}", dep.condition, dep.restart))
        .collect();
    out.insert(DEPENDS_ON.into(), deps.join(","));
    out.insert(IMAGE.into(), svc.image_name(&project.name));
    out
}

/// Labels of a project network or volume (`label` is `labels::NETWORK` or `labels::VOLUME`).
pub fn object_labels(
    project: &Project,
    label: &str,
    key: &str,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = own.clone();
    out.insert(PROJECT.into(), project.name.clone());
    out.insert(label.into(), key.into());
    out.insert(VERSION.into(), COMPOSE_VERSION.into());
    out
}
