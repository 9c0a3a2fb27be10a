//! A compose project as Kubernetes manifests (`rcompose convert --to kubernetes`), as Kompose
//! does: a Deployment per service (a StatefulSet, when asked, for a one-replica service with
//! named volumes), a Service for its ports (ClusterIP; LoadBalancer for published ports), a
//! PersistentVolumeClaim per named volume, Secrets and ConfigMaps for `secrets` and `configs`,
//! probes from the healthcheck, resources from `deploy.resources`, replicas from
//! `deploy.replicas`/`scale`, and `depends_on` as init containers that wait for the
//! dependency's Service. What Kubernetes cannot express is reported per service and key, never
//! dropped silently.
//!
//! Pure: the project and a file reader in, manifests and the report out.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::model::{CONDITION_COMPLETED, CONDITION_HEALTHY, Project, Service};

pub use super::Unsupported;
use super::base64;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these services (and nothing they do not use); all when empty.
    pub services: Vec<String>,
    /// One-replica services with named volumes become StatefulSets.
    pub statefulsets: bool,
    /// The image of the init containers that wait for dependencies.
    pub wait_image: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("no such service: {0}")]
    NoService(String),
    #[error("{what} {name}: cannot read {path}: {source}")]
    Read {
        what: &'static str,
        name: String,
        path: String,
        source: std::io::Error,
    },
}

pub struct Converted {
    pub manifests: Vec<Value>,
    pub unsupported: Vec<Unsupported>,
}

/// A DNS-1123 name: lower case, `-` for anything else, at most 63 characters.
pub fn k8s_name(name: &str) -> String {
    let mut s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(63);
    s.trim_matches('-').to_string()
}

/// Kubernetes quantities: CPUs as millicores, memory in bytes.
fn cpu(c: f64) -> String {
    format!("{}m", (c * 1000.0).round() as i64)
}

fn seconds(d: crate::model::Duration) -> i64 {
    (d.0 / 1_000_000_000).max(1)
}

pub fn convert(
    project: &Project,
    opts: &Options,
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Converted, ConvertError> {
    for s in &opts.services {
        if !project.services.contains_key(s) {
            return Err(ConvertError::NoService(s.clone()));
        }
    }
    let chosen: Vec<&Service> = project
        .services
        .values()
        .filter(|s| opts.services.is_empty() || opts.services.contains(&s.name))
        .collect();
    let mut c = Converter {
        project,
        opts,
        out: Vec::new(),
        report: Vec::new(),
    };
    let mut volumes_used = BTreeMap::new();
    let mut secrets_used = BTreeMap::new();
    let mut configs_used = BTreeMap::new();
    for svc in &chosen {
        for v in svc.volumes.iter().filter(|v| v.kind == "volume") {
            if let Some(src) = &v.source {
                volumes_used.insert(src.clone(), ());
            }
        }
        for s in &svc.secrets {
            secrets_used.insert(s.source.clone(), ());
        }
        for s in &svc.configs {
            configs_used.insert(s.source.clone(), ());
        }
    }
    for name in volumes_used.keys() {
        c.out.push(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": k8s_name(name), "labels": {"app.kubernetes.io/part-of": k8s_name(&project.name)}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }));
    }
    for (kind, used, objects) in [
        ("Secret", &secrets_used, &project.secrets),
        ("ConfigMap", &configs_used, &project.configs),
    ] {
        for name in used.keys() {
            let Some(obj) = objects.get(name) else {
                continue;
            };
            let what = if kind == "Secret" { "secret" } else { "config" };
            let bytes = match (&obj.file, &obj.content, &obj.environment) {
                (Some(f), _, _) => read(Path::new(f)).map_err(|source| ConvertError::Read {
                    what,
                    name: name.clone(),
                    path: f.clone(),
                    source,
                })?,
                (None, Some(text), _) => text.clone().into_bytes(),
                (None, None, Some(var)) => project
                    .environment
                    .get(var)
                    .cloned()
                    .unwrap_or_default()
                    .into_bytes(),
                _ => {
                    c.note(
                        "",
                        &format!("{what}s.{name}"),
                        "external: it must exist in the cluster already",
                    );
                    continue;
                }
            };
            c.out.push(json!({
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": k8s_name(name)},
                (if kind == "Secret" { "data" } else { "binaryData" }): {file_key(name): base64(&bytes)},
            }));
        }
    }
    for svc in chosen {
        c.service(svc);
    }
    Ok(Converted {
        manifests: c.out,
        unsupported: c.report,
    })
}

/// A key of a Secret's or ConfigMap's data: letters, digits, `-`, `_`, `.`.
fn file_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Converter<'a> {
    project: &'a Project,
    opts: &'a Options,
    out: Vec<Value>,
    report: Vec<Unsupported>,
}

impl Converter<'_> {
    fn note(&mut self, service: &str, key: &str, why: &str) {
        self.report.push(Unsupported {
            service: service.to_string(),
            key: key.to_string(),
            why: why.to_string(),
        });
    }

    /// The first container port of a service, which init containers of its dependents probe.
    fn first_port(&self, name: &str) -> Option<u32> {
        let s = self.project.services.get(name)?;
        s.ports.first().map(|p| p.target).or_else(|| {
            s.expose
                .first()
                .and_then(|e| e.split(['/', '-']).next()?.parse().ok())
        })
    }

    fn service(&mut self, svc: &Service) {
        let name = k8s_name(&svc.name);
        let n = svc.name.as_str();
        if name != svc.name {
            self.note(
                n,
                "name",
                &format!("not a DNS-1123 name: the Kubernetes objects are named {name}"),
            );
        }
        let image = match (&svc.image, &svc.build) {
            (Some(i), _) => i.clone(),
            (None, Some(_)) => {
                let i = format!("{}-{}", self.project.name, svc.name);
                self.note(n, "build", &format!("Kubernetes pulls images: build and push {i} to a registry the cluster reaches"));
                i
            }
            (None, None) => String::new(),
        };
        let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": k8s_name(&self.project.name)});
        let mut container = json!({"name": name, "image": image});
        if let Some(e) = &svc.entrypoint {
            container["command"] = json!(e);
        }
        if let Some(cmd) = &svc.command {
            container["args"] = json!(cmd);
        }
        let env: Vec<Value> = svc
            .environment
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v.clone().unwrap_or_default()}))
            .collect();
        if !env.is_empty() {
            container["env"] = json!(env);
        }
        if let Some(w) = &svc.working_dir {
            container["workingDir"] = json!(w);
        }
        if svc.tty {
            container["tty"] = json!(true);
        }
        if svc.stdin_open {
            container["stdin"] = json!(true);
        }
        let ports: Vec<Value> = svc
            .ports
            .iter()
            .map(
                |p| json!({"containerPort": p.target, "protocol": p.protocol.to_ascii_uppercase()}),
            )
            .collect();
        if !ports.is_empty() {
            container["ports"] = json!(ports);
        }
        self.security(svc, &mut container);
        self.resources(svc, &mut container);
        self.probes(svc, &mut container);
        let (mounts, pod_volumes) = self.volumes(svc);
        if !mounts.is_empty() {
            container["volumeMounts"] = json!(mounts);
        }
        let mut pod = json!({"containers": [container]});
        if !pod_volumes.is_empty() {
            pod["volumes"] = json!(pod_volumes);
        }
        let init = self.init_containers(svc);
        if !init.is_empty() {
            pod["initContainers"] = json!(init);
        }
        if let Some(h) = &svc.hostname {
            pod["hostname"] = json!(k8s_name(h));
        }
        if let Some(g) = svc.stop_grace_period {
            pod["terminationGracePeriodSeconds"] = json!(seconds(g));
        }
        let aliases: Vec<Value> = svc
            .extra_hosts
            .iter()
            .filter_map(|h| {
                let (host, ip) = h.split_once('=').or_else(|| h.split_once(':'))?;
                Some(json!({"ip": ip, "hostnames": [host]}))
            })
            .collect();
        if !aliases.is_empty() {
            pod["hostAliases"] = json!(aliases);
        }
        if !svc.dns.is_empty() || !svc.dns_search.is_empty() {
            pod["dnsConfig"] = json!({"nameservers": svc.dns, "searches": svc.dns_search});
        }
        if matches!(svc.restart.as_deref(), Some("no") | Some("on-failure")) {
            self.note(n, "restart", "a Deployment always restarts its pods");
        }
        self.unexpressible(svc);
        let replicas = svc
            .deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(svc.scale)
            .unwrap_or(1);
        let annotations: BTreeMap<&String, &String> = svc.labels.iter().collect();
        let stateful = self.opts.statefulsets
            && replicas == 1
            && svc.volumes.iter().any(|v| v.kind == "volume");
        let mut workload = json!({
            "apiVersion": "apps/v1",
            "kind": if stateful { "StatefulSet" } else { "Deployment" },
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        });
        if !annotations.is_empty() {
            // Compose label values need not be valid Kubernetes label values.
            workload["metadata"]["annotations"] = json!(annotations);
            workload["spec"]["template"]["metadata"]["annotations"] = json!(annotations);
        }
        if stateful {
            workload["spec"]["serviceName"] = json!(name);
        }
        self.out.push(workload);
        self.k8s_service(svc, &name, &labels);
    }

    fn k8s_service(&mut self, svc: &Service, name: &str, labels: &Value) {
        let published = svc.ports.iter().any(|p| p.published.is_some());
        let mut ports: Vec<Value> = Vec::new();
        for p in &svc.ports {
            let port = match p.published.as_deref() {
                Some(pubd) => match pubd.parse::<u32>() {
                    Ok(v) => v,
                    Err(_) => {
                        self.note(
                            &svc.name,
                            "ports",
                            &format!(
                                "published range {pubd}: the container port {} is used",
                                p.target
                            ),
                        );
                        p.target
                    }
                },
                None => p.target,
            };
            if p.host_ip.is_some() {
                self.note(
                    &svc.name,
                    "ports.host_ip",
                    "a Service listens on every node address",
                );
            }
            ports.push(
                json!({"name": format!("{}-{}", p.protocol, p.target), "port": port,
                "targetPort": p.target, "protocol": p.protocol.to_ascii_uppercase()}),
            );
        }
        for e in &svc.expose {
            if let Ok(p) = e.split('/').next().unwrap_or(e).parse::<u32>()
                && !svc.ports.iter().any(|x| x.target == p)
            {
                ports.push(json!({"name": format!("tcp-{p}"), "port": p, "targetPort": p, "protocol": "TCP"}));
            }
        }
        ports.dedup_by(|a, b| a["name"] == b["name"]);
        if ports.is_empty() {
            let dependents = self
                .project
                .services
                .values()
                .any(|s| s.depends_on.contains_key(&svc.name));
            if dependents {
                self.note(&svc.name, "ports", "no ports or expose: other services cannot reach it by name in Kubernetes; add `expose`");
            }
            return;
        }
        let kind = if published {
            "LoadBalancer"
        } else {
            "ClusterIP"
        };
        self.out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": labels},
            "spec": {"type": kind, "selector": {"app.kubernetes.io/name": name}, "ports": ports},
        }));
    }

    fn security(&mut self, svc: &Service, container: &mut Value) {
        let mut sc = serde_json::Map::new();
        if svc.privileged {
            sc.insert("privileged".into(), json!(true));
        }
        if svc.read_only {
            sc.insert("readOnlyRootFilesystem".into(), json!(true));
        }
        if !svc.cap_add.is_empty() || !svc.cap_drop.is_empty() {
            let strip = |v: &Vec<String>| -> Vec<String> {
                v.iter()
                    .map(|c| c.trim_start_matches("CAP_").to_string())
                    .collect()
            };
            sc.insert(
                "capabilities".into(),
                json!({"add": strip(&svc.cap_add), "drop": strip(&svc.cap_drop)}),
            );
        }
        if let Some(u) = &svc.user {
            let (uid, gid) = u.split_once(':').unwrap_or((u, ""));
            match uid.parse::<i64>() {
                Ok(id) => {
                    sc.insert("runAsUser".into(), json!(id));
                    if let Ok(g) = gid.parse::<i64>() {
                        sc.insert("runAsGroup".into(), json!(g));
                    }
                }
                Err(_) => self.note(
                    &svc.name,
                    "user",
                    "Kubernetes takes numeric ids only: set USER in the image instead",
                ),
            }
        }
        if !sc.is_empty() {
            container["securityContext"] = Value::Object(sc);
        }
    }

    fn resources(&mut self, svc: &Service, container: &mut Value) {
        let mut limits = serde_json::Map::new();
        let mut requests = serde_json::Map::new();
        if let Some(r) = svc.deploy.as_ref().map(|d| &d.resources) {
            if let Some(l) = &r.limits {
                if let Some(c) = l.cpus {
                    limits.insert("cpu".into(), json!(cpu(c)));
                }
                if let Some(m) = l.memory {
                    limits.insert("memory".into(), json!(m.0.to_string()));
                }
                if l.pids.is_some() {
                    self.note(
                        &svc.name,
                        "deploy.resources.limits.pids",
                        "no per-container pids limit in a pod spec",
                    );
                }
            }
            if let Some(res) = &r.reservations {
                if let Some(c) = res.cpus {
                    requests.insert("cpu".into(), json!(cpu(c)));
                }
                if let Some(m) = res.memory {
                    requests.insert("memory".into(), json!(m.0.to_string()));
                }
            }
        }
        if let Some(c) = svc.cpus {
            limits.entry("cpu").or_insert(json!(cpu(c)));
        }
        if let Some(m) = svc.mem_limit {
            limits.entry("memory").or_insert(json!(m.0.to_string()));
        }
        if !limits.is_empty() || !requests.is_empty() {
            let mut r = json!({});
            if !limits.is_empty() {
                r["limits"] = Value::Object(limits);
            }
            if !requests.is_empty() {
                r["requests"] = Value::Object(requests);
            }
            container["resources"] = r;
        }
    }

    fn probes(&mut self, svc: &Service, container: &mut Value) {
        let Some(h) = svc.healthcheck.as_ref().filter(|h| !h.disable) else {
            return;
        };
        let command: Vec<String> = match h.test.split_first() {
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                vec!["sh".into(), "-c".into(), rest.join(" ")]
            }
            Some((kind, _)) if kind == "NONE" => return,
            _ => return,
        };
        let mut probe = json!({"exec": {"command": command}});
        if let Some(i) = h.interval {
            probe["periodSeconds"] = json!(seconds(i));
        }
        if let Some(t) = h.timeout {
            probe["timeoutSeconds"] = json!(seconds(t));
        }
        if let Some(r) = h.retries {
            probe["failureThreshold"] = json!(r.max(1));
        }
        if let Some(s) = h.start_period {
            probe["initialDelaySeconds"] = json!(seconds(s));
        }
        container["readinessProbe"] = probe.clone();
        container["livenessProbe"] = probe;
    }

    fn volumes(&mut self, svc: &Service) -> (Vec<Value>, Vec<Value>) {
        let (mut mounts, mut vols) = (Vec::new(), Vec::new());
        for (i, v) in svc.volumes.iter().enumerate() {
            let vname = format!("{}-v{i}", k8s_name(&svc.name));
            let mut mount = json!({"name": vname, "mountPath": v.target});
            if v.read_only {
                mount["readOnly"] = json!(true);
            }
            let source = match (v.kind.as_str(), &v.source) {
                ("volume", Some(src)) => {
                    json!({"persistentVolumeClaim": {"claimName": k8s_name(src)}})
                }
                ("tmpfs", _) => json!({"emptyDir": {"medium": "Memory"}}),
                ("volume", None) => json!({"emptyDir": {}}),
                (kind, src) => {
                    self.note(&svc.name, &format!("volumes.{}", v.target), &format!(
                        "a {kind} mount of {} has no portable equivalent: it became an empty directory",
                        src.as_deref().unwrap_or("?")
                    ));
                    json!({"emptyDir": {}})
                }
            };
            mounts.push(mount);
            let mut pv = json!({"name": vname});
            if let Value::Object(m) = source {
                for (k, val) in m {
                    pv[k] = val;
                }
            }
            vols.push(pv);
        }
        for (kind, refs) in [("secret", &svc.secrets), ("configMap", &svc.configs)] {
            for r in refs {
                let vname = format!("{}-{}", k8s_name(&svc.name), k8s_name(&r.source));
                let key = file_key(&r.source);
                let target = match (&r.target, kind) {
                    (Some(t), _) if t.starts_with('/') => t.clone(),
                    (Some(t), "secret") => format!("/run/secrets/{t}"),
                    (Some(t), _) => format!("/{t}"),
                    (None, "secret") => format!("/run/secrets/{}", r.source),
                    (None, _) => format!("/{}", r.source),
                };
                mounts.push(
                    json!({"name": vname, "mountPath": target, "subPath": key, "readOnly": true}),
                );
                let src = if kind == "secret" {
                    json!({"secretName": k8s_name(&r.source)})
                } else {
                    json!({"name": k8s_name(&r.source)})
                };
                vols.push(json!({"name": vname, (kind): src}));
            }
        }
        (mounts, vols)
    }

    fn init_containers(&mut self, svc: &Service) -> Vec<Value> {
        let mut out = Vec::new();
        for (dep, d) in &svc.depends_on {
            if d.condition == CONDITION_COMPLETED {
                self.note(
                    &svc.name,
                    &format!("depends_on.{dep}"),
                    "service_completed_successfully: run it as a Job before the stack",
                );
                continue;
            }
            let Some(port) = self.first_port(dep) else {
                self.note(
                    &svc.name,
                    &format!("depends_on.{dep}"),
                    "the dependency has no port to wait for: not awaited",
                );
                continue;
            };
            let host = k8s_name(dep);
            let what = if d.condition == CONDITION_HEALTHY {
                "ready"
            } else {
                "up"
            };
            out.push(json!({
                "name": format!("wait-for-{host}"),
                "image": self.opts.wait_image,
                "command": ["sh", "-c", format!(
                    "until nc -z {host} {port}; do echo waiting for {host} to be {what}; sleep 2; done"
                )],
            }));
        }
        out
    }

    fn unexpressible(&mut self, svc: &Service) {
        let n = svc.name.as_str();
        let mut keys: Vec<(&str, bool)> = vec![
            ("network_mode", svc.network_mode.is_some()),
            ("pid", svc.pid.is_some()),
            ("ipc", svc.ipc.is_some()),
            ("devices", !svc.devices.is_empty()),
            ("ulimits", !svc.ulimits.is_empty()),
            ("logging", svc.logging.is_some()),
            ("stop_signal", svc.stop_signal.is_some()),
            ("links", !svc.links.is_empty()),
            ("volumes_from", !svc.volumes_from.is_empty()),
            ("security_opt", !svc.security_opt.is_empty()),
            ("sysctls", !svc.sysctls.is_empty()),
        ];
        keys.retain(|(_, set)| *set);
        for (k, _) in keys {
            self.note(n, k, "not expressible in a pod spec: left out");
        }
        if svc.networks.len() > 1 || svc.networks.keys().any(|k| k != "default") {
            self.note(n, "networks", "every pod shares the cluster network: isolation between networks needs NetworkPolicies, not generated");
        }
    }
}

#[cfg(test)]
mod tests;
