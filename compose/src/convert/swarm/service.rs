//! One compose service as a swarm `ServiceSpec` (docker/cli's `convert.Service`).

use serde_json::{Map, Value, json};

use super::{IMAGE_LABEL, SwarmError, resolved, stack_labels};
use crate::convert::Unsupported;
use crate::model::units::parse_duration;
use crate::model::{Any, Duration, Project, Service};

struct Ctx<'a> {
    project: &'a Project,
    namespace: &'a str,
    svc: &'a Service,
    notes: Vec<Unsupported>,
}

impl Ctx<'_> {
    fn note(&mut self, key: &str, why: &str) {
        self.notes.push(Unsupported {
            service: self.svc.name.clone(),
            key: key.to_string(),
            why: why.to_string(),
        });
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> SwarmError {
        SwarmError::Invalid {
            service: self.svc.name.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

fn ns(d: Duration) -> Value {
    json!(d.0)
}

/// The `ServiceSpec` of `svc` in stack `namespace`, and what it had to leave out.
pub(super) fn spec(
    project: &Project,
    namespace: &str,
    svc: &Service,
) -> Result<(Value, Vec<Unsupported>), SwarmError> {
    let mut c = Ctx {
        project,
        namespace,
        svc,
        notes: Vec::new(),
    };
    let Some(image) = svc.image.clone() else {
        return Err(c.invalid(
            "image",
            "swarm nodes pull their images: set `image:` (and push what `build:` makes)",
        ));
    };
    let deploy = svc.deploy.clone().unwrap_or_default();
    let mut labels = deploy.labels.clone();
    labels.insert(IMAGE_LABEL.into(), image.clone());
    let task = json!({
        "ContainerSpec": container_spec(&mut c, &image)?,
        "Resources": resources(&mut c),
        "RestartPolicy": restart_policy(&mut c)?,
        "Placement": placement(&c, deploy.placement.as_ref())?,
        "Networks": networks(&mut c),
    });
    let mut task = strip_empty(task);
    if let Some(l) = &svc.logging {
        let mut driver = json!({"Name": l.driver.clone().unwrap_or_else(|| "json-file".into())});
        if !l.options.is_empty() {
            driver["Options"] = json!(l.options);
        }
        task["LogDriver"] = driver;
    }
    let mut spec = json!({
        "Name": format!("{namespace}_{}", svc.name),
        "Labels": stack_labels(namespace, &labels),
        "TaskTemplate": task,
        "Mode": mode(&c, deploy.mode.as_deref())?,
        "EndpointSpec": endpoint(&mut c, deploy.endpoint_mode.as_deref()),
    });
    for (key, field) in [
        ("update_config", "UpdateConfig"),
        ("rollback_config", "RollbackConfig"),
    ] {
        let raw = if key == "update_config" {
            &deploy.update_config
        } else {
            &deploy.rollback_config
        };
        if let Some(raw) = raw {
            spec[field] = update_config(&c, key, raw)?;
        }
    }
    unsupported(&mut c);
    Ok((spec, c.notes))
}

/// Drops `null`s, empty objects and empty arrays one level down, so bodies stay small.
fn strip_empty(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| match v {
                    Value::Null => false,
                    Value::Object(o) => !o.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => true,
                })
                .collect(),
        ),
        other => other,
    }
}

fn container_spec(c: &mut Ctx, image: &str) -> Result<Value, SwarmError> {
    let svc = c.svc;
    let mut env: Vec<String> = svc
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    env.sort();
    let mut spec = json!({
        "Image": image,
        "Labels": stack_labels(c.namespace, &svc.labels),
        "Command": svc.entrypoint,
        "Args": svc.command,
        "Hostname": svc.hostname,
        "Env": env,
        "Dir": svc.working_dir,
        "User": svc.user,
        "Groups": svc.group_add,
        "StopSignal": svc.stop_signal,
        "StopGracePeriod": svc.stop_grace_period.map(ns),
        "Init": svc.init,
        "Isolation": svc.isolation,
        "CapabilityAdd": svc.cap_add,
        "CapabilityDrop": svc.cap_drop,
    });
    if svc.tty {
        spec["TTY"] = json!(true);
    }
    if svc.stdin_open {
        spec["OpenStdin"] = json!(true);
    }
    if svc.read_only {
        spec["ReadOnly"] = json!(true);
    }
    if !svc.sysctls.is_empty() {
        spec["Sysctls"] = json!(svc.sysctls);
    }
    if !svc.ulimits.is_empty() {
        let ulimits: Vec<Value> = svc
            .ulimits
            .iter()
            .map(|(name, u)| {
                let (soft, hard) = match u {
                    crate::model::Ulimit::Single(n) => (*n, *n),
                    crate::model::Ulimit::Range { soft, hard, .. } => (*soft, *hard),
                };
                json!({"Name": name, "Soft": soft, "Hard": hard})
            })
            .collect();
        spec["Ulimits"] = json!(ulimits);
    }
    if !svc.dns.is_empty() || !svc.dns_search.is_empty() || !svc.dns_opt.is_empty() {
        spec["DNSConfig"] = strip_empty(
            json!({"Nameservers": svc.dns, "Search": svc.dns_search, "Options": svc.dns_opt}),
        );
    }
    // Docker's `Hosts` entries are `IP host`, as in /etc/hosts.
    let hosts: Vec<String> = svc
        .extra_hosts
        .iter()
        .filter_map(|h| h.split_once('=').map(|(host, ip)| format!("{ip} {host}")))
        .collect();
    if !hosts.is_empty() {
        spec["Hosts"] = json!(hosts);
    }
    if let Some(h) = &svc.healthcheck {
        spec["Healthcheck"] = healthcheck(h);
    }
    spec["Mounts"] = json!(mounts(c)?);
    spec["Secrets"] = json!(file_refs(c, true)?);
    spec["Configs"] = json!(file_refs(c, false)?);
    Ok(strip_empty(spec))
}

fn healthcheck(h: &crate::model::Healthcheck) -> Value {
    if h.disable {
        return json!({"Test": ["NONE"]});
    }
    let mut v = json!({});
    if !h.test.is_empty() {
        v["Test"] = json!(h.test);
    }
    for (k, d) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if let Some(d) = d {
            v[k] = ns(d);
        }
    }
    if let Some(r) = h.retries {
        v["Retries"] = json!(r);
    }
    v
}

fn mounts(c: &mut Ctx) -> Result<Vec<Value>, SwarmError> {
    let mut out = Vec::new();
    for v in &c.svc.volumes {
        let key = format!("volumes.{}", v.target);
        let mut m = json!({"Type": v.kind, "Target": v.target});
        if v.read_only {
            m["ReadOnly"] = json!(true);
        }
        match v.kind.as_str() {
            "volume" => {
                let mut opts = Map::new();
                if let Some(src) = &v.source {
                    let Some(top) = c.project.volumes.get(src) else {
                        return Err(SwarmError::Undefined {
                            service: c.svc.name.clone(),
                            what: "volume",
                            name: src.clone(),
                        });
                    };
                    m["Source"] = json!(resolved(top.name.as_deref(), c.namespace, src));
                    if !top.external {
                        let mut labels = top.labels.clone();
                        if let Some(vv) = &v.volume {
                            labels.extend(vv.labels.clone());
                        }
                        opts.insert("Labels".into(), stack_labels(c.namespace, &labels));
                        if top.driver.is_some() || !top.driver_opts.is_empty() {
                            opts.insert(
                                "DriverConfig".into(),
                                json!({"Name": top.driver.clone().unwrap_or_else(|| "local".into()), "Options": top.driver_opts}),
                            );
                        }
                    }
                }
                if let Some(vv) = &v.volume {
                    if vv.nocopy {
                        opts.insert("NoCopy".into(), json!(true));
                    }
                    if vv.subpath.is_some() {
                        c.note(
                            &format!("{key}.volume.subpath"),
                            "the Engine API this speaks (1.41) has no volume subpath",
                        );
                    }
                }
                if !opts.is_empty() {
                    m["VolumeOptions"] = Value::Object(opts);
                }
            }
            "bind" => {
                m["Source"] = json!(v.source);
                if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.as_ref()) {
                    m["BindOptions"] = json!({"Propagation": p});
                }
            }
            "tmpfs" => {
                if let Some(t) = &v.tmpfs {
                    let mut o = Map::new();
                    if let Some(s) = t.size {
                        o.insert("SizeBytes".into(), json!(s.0));
                    }
                    if let Some(mode) = t.mode {
                        o.insert("Mode".into(), json!(mode));
                    }
                    if !o.is_empty() {
                        m["TmpfsOptions"] = Value::Object(o);
                    }
                }
            }
            other => {
                c.note(
                    &key,
                    &format!("a {other} mount has no swarm equivalent: left out"),
                );
                continue;
            }
        }
        out.push(m);
    }
    for t in &c.svc.tmpfs {
        let target = t.split(':').next().unwrap_or(t);
        out.push(json!({"Type": "tmpfs", "Target": target}));
    }
    Ok(out)
}

/// Secret and config references. Swarm mounts secrets under `/run/secrets/` itself, so the
/// loader's default target (`/run/secrets/<name>`) becomes the bare file name docker sends.
fn file_refs(c: &mut Ctx, secrets: bool) -> Result<Vec<Value>, SwarmError> {
    let (refs, objects, what) = if secrets {
        (&c.svc.secrets, &c.project.secrets, "secret")
    } else {
        (&c.svc.configs, &c.project.configs, "config")
    };
    let mut out = Vec::new();
    for r in refs {
        let Some(obj) = objects.get(&r.source) else {
            return Err(SwarmError::Undefined {
                service: c.svc.name.clone(),
                what,
                name: r.source.clone(),
            });
        };
        let name = resolved(obj.name.as_deref(), c.namespace, &r.source);
        let target = match (&r.target, secrets) {
            (Some(t), true) => t.strip_prefix("/run/secrets/").unwrap_or(t).to_string(),
            (Some(t), false) => t.clone(),
            (None, true) => r.source.clone(),
            (None, false) => format!("/{}", r.source),
        };
        let mode = match &r.mode {
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8).map_err(|_| {
                c.invalid(
                    &format!("{what}s.{}.mode", r.source),
                    format!("{m:?} is not an octal file mode such as 0440"),
                )
            })?,
            None => 0o444,
        };
        let file = json!({
            "Name": target,
            "UID": r.uid.clone().unwrap_or_else(|| "0".into()),
            "GID": r.gid.clone().unwrap_or_else(|| "0".into()),
            "Mode": mode,
        });
        out.push(if secrets {
            json!({"File": file, "SecretName": name})
        } else {
            json!({"File": file, "ConfigName": name})
        });
    }
    Ok(out)
}

fn resources(c: &mut Ctx) -> Value {
    let Some(r) = c.svc.deploy.as_ref().map(|d| d.resources.clone()) else {
        return Value::Null;
    };
    let nano = |cpus: f64| json!((cpus * 1e9).round() as i64);
    let mut out = json!({});
    if let Some(l) = &r.limits {
        let mut v = Map::new();
        if let Some(cpus) = l.cpus {
            v.insert("NanoCPUs".into(), nano(cpus));
        }
        if let Some(m) = l.memory {
            v.insert("MemoryBytes".into(), json!(m.0));
        }
        if let Some(p) = l.pids {
            v.insert("Pids".into(), json!(p));
        }
        out["Limits"] = Value::Object(v);
    }
    if let Some(res) = &r.reservations {
        let mut v = Map::new();
        if let Some(cpus) = res.cpus {
            v.insert("NanoCPUs".into(), nano(cpus));
        }
        if let Some(m) = res.memory {
            v.insert("MemoryBytes".into(), json!(m.0));
        }
        if let Some(g) = res.generic_resources.as_ref().and_then(Value::as_array) {
            let generic: Vec<Value> = g
                .iter()
                .filter_map(|x| {
                    let d = x.get("discrete_resource_spec")?;
                    Some(json!({"DiscreteResourceSpec": {"Kind": d.get("kind")?, "Value": d.get("value")?}}))
                })
                .collect();
            v.insert("GenericResources".into(), json!(generic));
        }
        if res.devices.is_some() {
            c.note(
                "deploy.resources.reservations.devices",
                "swarm reserves generic resources, not devices: use generic_resources",
            );
        }
        out["Reservations"] = Value::Object(v);
    }
    out
}

fn restart_policy(c: &mut Ctx) -> Result<Value, SwarmError> {
    if let Some(p) = c
        .svc
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
    {
        let mut v = json!({});
        if let Some(cond) = &p.condition {
            if !["none", "on-failure", "any"].contains(&cond.as_str()) {
                return Err(c.invalid(
                    "deploy.restart_policy.condition",
                    format!("{cond:?}: use none, on-failure or any"),
                ));
            }
            v["Condition"] = json!(cond);
        }
        if let Some(d) = p.delay {
            v["Delay"] = ns(d);
        }
        if let Some(n) = p.max_attempts {
            v["MaxAttempts"] = json!(n);
        }
        if let Some(w) = p.window {
            v["Window"] = ns(w);
        }
        return Ok(v);
    }
    // Without `deploy.restart_policy`, docker maps the container restart policy.
    Ok(match c.svc.restart.as_deref() {
        None => Value::Null,
        Some("no") => json!({"Condition": "none"}),
        Some("always") | Some("unless-stopped") => json!({"Condition": "any"}),
        Some(r) if r.starts_with("on-failure") => match r.split_once(':') {
            Some((_, n)) => {
                let n: u64 = n
                    .parse()
                    .map_err(|_| c.invalid("restart", format!("{r:?}: bad retry count")))?;
                json!({"Condition": "on-failure", "MaxAttempts": n})
            }
            None => json!({"Condition": "on-failure"}),
        },
        Some(other) => {
            c.note(
                "restart",
                &format!("{other:?} has no swarm restart condition"),
            );
            Value::Null
        }
    })
}

fn placement(c: &Ctx, raw: Option<&Any>) -> Result<Value, SwarmError> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    let mut v = json!({});
    if let Some(cons) = raw.get("constraints") {
        v["Constraints"] = cons.clone();
    }
    if let Some(prefs) = raw.get("preferences").and_then(Value::as_array) {
        let mut out = Vec::new();
        for p in prefs {
            let Some(spread) = p.get("spread").and_then(Value::as_str) else {
                return Err(c.invalid(
                    "deploy.placement.preferences",
                    "each preference is `spread: <label>`",
                ));
            };
            out.push(json!({"Spread": {"SpreadDescriptor": spread}}));
        }
        v["Preferences"] = json!(out);
    }
    if let Some(m) = raw.get("max_replicas_per_node") {
        v["MaxReplicas"] = m.clone();
    }
    Ok(v)
}

fn networks(c: &mut Ctx) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for (key, cfg) in &c.svc.networks {
        let name = c
            .project
            .networks
            .get(key)
            .map(|n| resolved(n.name.as_deref(), c.namespace, key))
            .unwrap_or_else(|| format!("{}_{key}", c.namespace));
        let mut aliases = vec![c.svc.name.clone()];
        if let Some(cfg) = cfg {
            aliases.extend(cfg.aliases.iter().cloned());
            if cfg.ipv4_address.is_some() || cfg.ipv6_address.is_some() {
                c.note(
                    &format!("networks.{key}.ipv4_address"),
                    "swarm assigns task addresses",
                );
            }
        }
        out.push(json!({"Target": name, "Aliases": aliases}));
    }
    out.sort_by(|a, b| a["Target"].as_str().cmp(&b["Target"].as_str()));
    out
}

fn mode(c: &Ctx, mode: Option<&str>) -> Result<Value, SwarmError> {
    let replicas = c.svc.replicas();
    let explicit = c.svc.deploy.as_ref().and_then(|d| d.replicas).is_some();
    if explicit && matches!(mode, Some("global" | "global-job")) {
        return Err(c.invalid(
            "deploy.replicas",
            "replicas can only be used with replicated or replicated-job mode",
        ));
    }
    Ok(match mode.unwrap_or("replicated") {
        "replicated" => json!({"Replicated": {"Replicas": replicas}}),
        "global" => json!({"Global": {}}),
        "replicated-job" => {
            json!({"ReplicatedJob": {"MaxConcurrent": replicas, "TotalCompletions": replicas}})
        }
        "global-job" => json!({"GlobalJob": {}}),
        other => {
            return Err(c.invalid(
                "deploy.mode",
                format!("{other:?}: use replicated, global, replicated-job or global-job"),
            ));
        }
    })
}

fn endpoint(c: &mut Ctx, mode: Option<&str>) -> Value {
    let mut ports = Vec::new();
    for p in &c.svc.ports {
        let mut port = json!({
            "Protocol": p.protocol,
            "TargetPort": p.target,
            "PublishMode": if p.mode.is_empty() { "ingress" } else { p.mode.as_str() },
        });
        if let Some(pubd) = &p.published {
            match pubd.parse::<u32>() {
                Ok(n) => port["PublishedPort"] = json!(n),
                Err(_) => c.note(
                    "ports",
                    &format!("published range {pubd}: swarm publishes one port per target; the daemon picks one"),
                ),
            }
        }
        if p.host_ip.is_some() {
            c.note("ports.host_ip", "swarm publishes on every node address");
        }
        ports.push(port);
    }
    strip_empty(json!({"Mode": mode.unwrap_or("vip"), "Ports": ports}))
}

fn duration_field(c: &Ctx, key: &str, v: &Value) -> Result<Value, SwarmError> {
    match v {
        Value::String(s) => parse_duration(s).map(ns).map_err(|e| c.invalid(key, e)),
        Value::Number(n) => Ok(json!(n)),
        other => Err(c.invalid(key, format!("{other} is not a duration"))),
    }
}

/// `update_config`/`rollback_config`, kept as written by the loader, as `UpdateConfig`.
fn update_config(c: &Ctx, key: &str, raw: &Any) -> Result<Value, SwarmError> {
    let Some(m) = raw.as_object() else {
        return Err(c.invalid(&format!("deploy.{key}"), "expected a mapping"));
    };
    // docker/cli sends parallelism 1 when the file leaves it out.
    let mut v = json!({"Parallelism": 1});
    for (k, val) in m {
        let path = format!("deploy.{key}.{k}");
        match k.as_str() {
            "parallelism" => v["Parallelism"] = val.clone(),
            "delay" => v["Delay"] = duration_field(c, &path, val)?,
            "monitor" => v["Monitor"] = duration_field(c, &path, val)?,
            "failure_action" => v["FailureAction"] = val.clone(),
            "max_failure_ratio" => v["MaxFailureRatio"] = val.clone(),
            "order" => v["Order"] = val.clone(),
            k if k.starts_with("x-") => {}
            _ => return Err(c.invalid(&path, "unknown key")),
        }
    }
    Ok(v)
}

/// Keys a swarm service cannot express, as docker reports them ("Ignoring unsupported
/// options"), each with what to do instead.
fn unsupported(c: &mut Ctx) {
    let s = c.svc;
    let keys: [(&str, bool, &str); 30] = [
        (
            "build",
            s.build.is_some(),
            "swarm runs the image; build and push it first",
        ),
        (
            "depends_on",
            !s.depends_on.is_empty(),
            "swarm starts services in any order",
        ),
        (
            "container_name",
            s.container_name.is_some(),
            "tasks are named <stack>_<service>.<slot>",
        ),
        (
            "expose",
            !s.expose.is_empty(),
            "services on one network reach every port of each other",
        ),
        (
            "links",
            !s.links.is_empty(),
            "use networks: services are reachable by name",
        ),
        (
            "external_links",
            !s.external_links.is_empty(),
            "use an external network",
        ),
        (
            "network_mode",
            s.network_mode.is_some(),
            "tasks attach to networks",
        ),
        ("pid", s.pid.is_some(), "no namespace sharing in swarm"),
        ("ipc", s.ipc.is_some(), "no namespace sharing in swarm"),
        ("uts", s.uts.is_some(), "no namespace sharing in swarm"),
        ("userns_mode", s.userns_mode.is_some(), "set on the daemon"),
        ("privileged", s.privileged, "use cap_add"),
        ("devices", !s.devices.is_empty(), "not in a swarm task"),
        (
            "security_opt",
            !s.security_opt.is_empty(),
            "not in a swarm task",
        ),
        (
            "cgroup_parent",
            s.cgroup_parent.is_some(),
            "set on the daemon",
        ),
        ("cgroup", s.cgroup.is_some(), "not in a swarm task"),
        ("domainname", s.domainname.is_some(), "not in a swarm task"),
        (
            "mac_address",
            s.mac_address.is_some(),
            "swarm assigns addresses",
        ),
        (
            "shm_size",
            s.shm_size.is_some(),
            "mount a tmpfs at /dev/shm",
        ),
        (
            "volumes_from",
            !s.volumes_from.is_empty(),
            "use named volumes",
        ),
        ("cpus", s.cpus.is_some(), "use deploy.resources.limits.cpus"),
        ("cpu_shares", s.cpu_shares.is_some(), "use deploy.resources"),
        ("cpu_quota", s.cpu_quota.is_some(), "use deploy.resources"),
        ("cpuset", s.cpuset.is_some(), "use deploy.resources"),
        (
            "mem_limit",
            s.mem_limit.is_some(),
            "use deploy.resources.limits.memory",
        ),
        (
            "mem_reservation",
            s.mem_reservation.is_some(),
            "use deploy.resources.reservations.memory",
        ),
        (
            "pids_limit",
            s.pids_limit.is_some(),
            "use deploy.resources.limits.pids",
        ),
        (
            "oom_score_adj",
            s.oom_score_adj.is_some(),
            "not in a swarm task",
        ),
        ("runtime", s.runtime.is_some(), "set on the daemon"),
        (
            "pull_policy",
            s.pull_policy.is_some(),
            "swarm nodes pull what they lack",
        ),
    ];
    for (k, set, why) in keys {
        if set {
            c.note(k, why);
        }
    }
}
