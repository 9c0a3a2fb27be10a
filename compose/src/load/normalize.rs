//! Stage: project-level normalisation on the typed model: profiles, implicit dependencies,
//! reference checks (depends_on, networks, volumes, secrets, configs), the implicit `default`
//! network, resolved resource names (`<project>_<key>`), and the service environment
//! (`env_file` contents under `environment`, bare names taken from the environment).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::model::{CONDITION_STARTED, Dependency, Network, Project, Service};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NormalizeError {
    #[error(
        "service {service:?} depends on undefined service {dependency:?}{}: invalid compose project",
        hint(suggestion)
    )]
    UnknownDependency {
        service: String,
        dependency: String,
        suggestion: Option<String>,
    },
    #[error(
        "service {service:?} depends on service {dependency:?}, which is disabled by its profiles [{}]; enable one with --profile",
        profiles.join(", ")
    )]
    DisabledDependency {
        service: String,
        dependency: String,
        profiles: Vec<String>,
    },
    #[error(
        "service {service:?} refers to undefined {kind} {name:?}{}: invalid compose project",
        hint(suggestion)
    )]
    UndefinedResource {
        service: String,
        kind: &'static str,
        name: String,
        suggestion: Option<String>,
    },
    #[error("no such service: {0:?}")]
    NoSuchService(String),
    #[error("service {service:?}: env file {path} not found")]
    MissingEnvFile { service: String, path: String },
    #[error("service {service:?}: {reason}")]
    EnvFile { service: String, reason: String },
    #[error("service {service:?} has neither an image nor a build context specified")]
    NoImage { service: String },
    #[error("services.{service}: {reason}")]
    Invalid { service: String, reason: String },
}

fn hint(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

fn suggest<'a>(name: &str, options: impl Iterator<Item = &'a String>) -> Option<String> {
    super::validate::suggest(name, options.map(String::as_str))
}

/// Which parts of this stage run: `config --no-normalize` turns off the implied model (default
/// network, implied `depends_on`, resolved names), `--no-consistency` the reference checks.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub normalize: bool,
    pub consistency: bool,
    /// `false` for `config --no-env-resolution`: `env_file` is not read into `environment`
    /// and bare names stay unresolved.
    pub resolve_environment: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            normalize: true,
            consistency: true,
            resolve_environment: true,
        }
    }
}

pub fn normalize(
    project: &mut Project,
    profiles: &[String],
    requested: &[String],
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
    options: Options,
) -> Result<(), NormalizeError> {
    for (name, svc) in project.services.iter_mut() {
        svc.name = name.clone();
    }
    for name in requested {
        if !project.services.contains_key(name) {
            return Err(NormalizeError::NoSuchService(name.clone()));
        }
    }
    for svc in project.services.values_mut() {
        if options.normalize {
            add_implicit_dependencies(svc);
        }
        check_service(svc, options.consistency)?;
    }
    apply_profiles(project, profiles, requested)?;
    check_dependencies(project, warnings, options.consistency)?;
    networks(project, options)?;
    volumes(project, options)?;
    file_objects(project, options)?;
    for svc in project.services.values_mut() {
        if options.resolve_environment {
            resolve_environment(svc, env)?;
        }
        // Merged files may interleave hosts; compose prints them sorted.
        svc.extra_hosts.sort();
        svc.extra_hosts.dedup();
    }
    Ok(())
}

fn check_service(svc: &Service, consistency: bool) -> Result<(), NormalizeError> {
    let name_ok = !svc.name.is_empty()
        && svc
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err(NormalizeError::Invalid {
            service: svc.name.clone(),
            reason: "service names may only contain letters, digits, '.', '_' and '-'".into(),
        });
    }
    if consistency && svc.image.is_none() && svc.build.is_none() && svc.provider.is_none() {
        return Err(NormalizeError::NoImage {
            service: svc.name.clone(),
        });
    }
    if let (Some(mode), false) = (&svc.network_mode, svc.networks.is_empty()) {
        return Err(NormalizeError::Invalid {
            service: svc.name.clone(),
            reason: format!("network_mode {mode:?} and networks cannot be combined"),
        });
    }
    if let Some(mode) = &svc.network_mode {
        check_joined_namespace(svc, mode)?;
    }
    if let Some(restart) = &svc.restart {
        let ok = matches!(
            restart.as_str(),
            "no" | "always" | "unless-stopped" | "on-failure"
        ) || restart
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if !ok {
            return Err(NormalizeError::Invalid {
                service: svc.name.clone(),
                reason: format!(
                    "restart {restart:?} is not one of no, always, unless-stopped, on-failure[:N]"
                ),
            });
        }
    }
    for (dep, d) in &svc.depends_on {
        if !matches!(
            d.condition.as_str(),
            "service_started" | "service_healthy" | "service_completed_successfully"
        ) {
            return Err(NormalizeError::Invalid {
                service: svc.name.clone(),
                reason: format!(
                    "depends_on.{dep}.condition {:?} is not one of service_started, service_healthy, service_completed_successfully",
                    d.condition
                ),
            });
        }
    }
    Ok(())
}

/// A service joining another's network namespace (`network_mode: service:x` or
/// `container:x`) cannot set what belongs to that namespace: docker refuses each at create
/// time ("conflicting options"); refused here so that `up` creates nothing.
fn check_joined_namespace(svc: &Service, mode: &str) -> Result<(), NormalizeError> {
    let owner = if let Some(x) = mode.strip_prefix("service:") {
        format!("service {x:?}")
    } else if let Some(c) = mode.strip_prefix("container:") {
        format!("container {c:?}")
    } else {
        return Ok(());
    };
    let conflicts = [
        (!svc.ports.is_empty(), "ports"),
        (!svc.links.is_empty(), "links"),
        (!svc.dns.is_empty(), "dns"),
        (!svc.dns_search.is_empty(), "dns_search"),
        (!svc.dns_opt.is_empty(), "dns_opt"),
        (!svc.extra_hosts.is_empty(), "extra_hosts"),
        (svc.hostname.is_some(), "hostname"),
        (svc.mac_address.is_some(), "mac_address"),
    ];
    let set: Vec<&str> = conflicts
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, key)| *key)
        .collect();
    if set.is_empty() {
        return Ok(());
    }
    Err(NormalizeError::Invalid {
        service: svc.name.clone(),
        reason: format!(
            "{} cannot be combined with network_mode {mode:?}: the network namespace belongs to {owner}; set them there",
            set.join(", ")
        ),
    })
}

/// `links`, `network_mode`/`ipc`/`pid`/`uts`/`cgroup` set to `service:x`, and
/// `volumes_from: x` imply `depends_on`, as in compose (the first two with `restart: true`:
/// the dependent must be recreated when its target is).
fn add_implicit_dependencies(svc: &mut Service) {
    let mut implied: Vec<(String, bool)> = Vec::new();
    for link in &svc.links {
        implied.push((link.split(':').next().unwrap_or(link).to_string(), true));
    }
    let namespaces = [&svc.network_mode, &svc.ipc, &svc.pid, &svc.uts, &svc.cgroup];
    for target in namespaces
        .into_iter()
        .flatten()
        .filter_map(|m| m.strip_prefix("service:"))
    {
        implied.push((target.to_string(), true));
    }
    for from in &svc.volumes_from {
        if from.starts_with("container:") {
            continue;
        }
        implied.push((from.split(':').next().unwrap_or(from).to_string(), false));
    }
    for (name, restart) in implied {
        svc.depends_on.entry(name).or_insert(Dependency {
            condition: CONDITION_STARTED.into(),
            restart,
            required: true,
            extensions: Default::default(),
        });
    }
    if svc.pull_policy.as_deref() == Some("if_not_present") {
        svc.pull_policy = Some("missing".into());
    }
}

fn apply_profiles(
    project: &mut Project,
    profiles: &[String],
    requested: &[String],
) -> Result<(), NormalizeError> {
    let all = profiles.iter().any(|p| p == "*");
    // Services named on the command line are enabled, and so are the services they need
    // (their required dependencies, transitively), whatever their profiles.
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = requested.to_vec();
    while let Some(name) = todo.pop() {
        if let Some(svc) = project.services.get(&name)
            && wanted.insert(name)
        {
            todo.extend(
                svc.depends_on
                    .iter()
                    .filter(|(_, d)| d.required)
                    .map(|(n, _)| n.clone()),
            );
        }
    }
    let enabled = |svc: &Service| {
        svc.profiles.is_empty()
            || all
            || svc.profiles.iter().any(|p| profiles.contains(p))
            || wanted.contains(&svc.name)
    };
    let names: Vec<String> = project.services.keys().cloned().collect();
    for name in names {
        if !enabled(&project.services[&name])
            && let Some(svc) = project.services.remove(&name)
        {
            project.disabled_services.insert(name, svc);
        }
    }
    Ok(())
}

fn check_dependencies(
    project: &mut Project,
    warnings: &mut Vec<String>,
    consistency: bool,
) -> Result<(), NormalizeError> {
    let enabled: BTreeSet<String> = project.services.keys().cloned().collect();
    for svc in project.services.values_mut() {
        let mut drop = Vec::new();
        for (dep, d) in &svc.depends_on {
            if enabled.contains(dep) {
                continue;
            }
            if !d.required {
                warnings.push(format!(
                    "service {:?} depends on {dep:?}, which is not enabled; ignoring this optional dependency",
                    svc.name
                ));
                drop.push(dep.clone());
                continue;
            }
            if !consistency {
                continue;
            }
            if let Some(disabled) = project.disabled_services.get(dep) {
                return Err(NormalizeError::DisabledDependency {
                    service: svc.name.clone(),
                    dependency: dep.clone(),
                    profiles: disabled.profiles.clone(),
                });
            }
            return Err(NormalizeError::UnknownDependency {
                service: svc.name.clone(),
                dependency: dep.clone(),
                suggestion: suggest(dep, enabled.iter()),
            });
        }
        for dep in drop {
            svc.depends_on.remove(&dep);
        }
    }
    Ok(())
}

fn resource_name(project: &str, key: &str, explicit: &Option<String>, external: bool) -> String {
    match explicit {
        Some(n) => n.clone(),
        None if external => key.to_string(),
        None => format!("{project}_{key}"),
    }
}

fn networks(project: &mut Project, options: Options) -> Result<(), NormalizeError> {
    let mut uses_default = false;
    for svc in project.services.values_mut() {
        if options.normalize
            && svc.network_mode.is_none()
            && svc.networks.is_empty()
            && svc.provider.is_none()
        {
            svc.networks.insert("default".into(), None);
        }
        if svc.networks.contains_key("default") {
            uses_default = true;
        }
        for net in svc.networks.keys() {
            if options.consistency && net != "default" && !project.networks.contains_key(net) {
                return Err(NormalizeError::UndefinedResource {
                    service: svc.name.clone(),
                    kind: "network",
                    name: net.clone(),
                    suggestion: suggest(net, project.networks.keys()),
                });
            }
        }
    }
    if !options.normalize {
        return Ok(());
    }
    if uses_default && !project.networks.contains_key("default") {
        project
            .networks
            .insert("default".into(), Network::default());
    }
    let name = project.name.clone();
    for (key, net) in project.networks.iter_mut() {
        net.name = Some(resource_name(&name, key, &net.name, net.external));
    }
    Ok(())
}

fn volumes(project: &mut Project, options: Options) -> Result<(), NormalizeError> {
    for svc in project.services.values().filter(|_| options.consistency) {
        for vol in &svc.volumes {
            if vol.kind != "volume" {
                continue;
            }
            if let Some(src) = &vol.source
                && !project.volumes.contains_key(src)
            {
                return Err(NormalizeError::UndefinedResource {
                    service: svc.name.clone(),
                    kind: "volume",
                    name: src.clone(),
                    suggestion: suggest(src, project.volumes.keys()),
                });
            }
        }
    }
    if !options.normalize {
        return Ok(());
    }
    let name = project.name.clone();
    for (key, vol) in project.volumes.iter_mut() {
        vol.name = Some(resource_name(&name, key, &vol.name, vol.external));
    }
    Ok(())
}

fn file_objects(project: &mut Project, options: Options) -> Result<(), NormalizeError> {
    for svc in project.services.values().filter(|_| options.consistency) {
        for (kind, refs, defs) in [
            ("secret", &svc.secrets, &project.secrets),
            ("config", &svc.configs, &project.configs),
        ] {
            for r in refs {
                if !defs.contains_key(&r.source) {
                    return Err(NormalizeError::UndefinedResource {
                        service: svc.name.clone(),
                        kind,
                        name: r.source.clone(),
                        suggestion: suggest(&r.source, defs.keys()),
                    });
                }
            }
        }
    }
    if !options.normalize {
        return Ok(());
    }
    let name = project.name.clone();
    for (key, obj) in project.secrets.iter_mut().chain(project.configs.iter_mut()) {
        obj.name = Some(resource_name(&name, key, &obj.name, obj.external));
    }
    Ok(())
}

fn resolve_environment(
    svc: &mut Service,
    env: &BTreeMap<String, String>,
) -> Result<(), NormalizeError> {
    let mut from_files: BTreeMap<String, Option<String>> = BTreeMap::new();
    for ef in &svc.env_file {
        let path = Path::new(&ef.path);
        if !path.exists() {
            if ef.required {
                return Err(NormalizeError::MissingEnvFile {
                    service: svc.name.clone(),
                    path: ef.path.clone(),
                });
            }
            continue;
        }
        // As compose v2: the project environment wins, then the service's `environment`,
        // then what earlier env files (and earlier lines of this one) defined.
        let known = from_files.clone();
        let lookup = |k: &str| {
            env.get(k)
                .cloned()
                .or_else(|| svc.environment.get(k).cloned().flatten())
        };
        let fallback = |k: &str| known.get(k).cloned().flatten();
        let pairs = super::dotenv::read_file_format(path, ef.format.as_deref(), &lookup, &fallback)
            .map_err(|e| NormalizeError::EnvFile {
                service: svc.name.clone(),
                reason: e.to_string(),
            })?;
        for (k, v) in pairs {
            from_files.insert(k, Some(v));
        }
    }
    for (k, v) in std::mem::take(&mut svc.environment) {
        from_files.insert(k, v);
    }
    for (k, v) in from_files.iter_mut() {
        if v.is_none() {
            *v = env.get(k).cloned();
        }
    }
    svc.environment = from_files;
    // `label_file` entries are KEY=VALUE files; explicit `labels` win over them.
    let mut labels = BTreeMap::new();
    for file in &svc.label_file {
        if !Path::new(file).is_file() {
            return Err(NormalizeError::Invalid {
                service: svc.name.clone(),
                reason: format!("label_file {file} not found"),
            });
        }
        // Label files see the labels of earlier label files (not the environment).
        let known = labels.clone();
        let lookup = |k: &str| known.get(k).cloned();
        let pairs = super::dotenv::read_file(Path::new(file), &lookup, &|_| None).map_err(|e| {
            NormalizeError::EnvFile {
                service: svc.name.clone(),
                reason: e.to_string(),
            }
        })?;
        labels.extend(pairs);
    }
    if !labels.is_empty() {
        labels.extend(std::mem::take(&mut svc.labels));
        svc.labels = labels;
    }
    if let Some(build) = svc.build.as_mut() {
        for (k, v) in build.args.iter_mut() {
            if v.is_none() {
                *v = env.get(k).cloned();
            }
        }
        // A bare build arg the environment does not set is dropped (compose v2).
        build.args.retain(|_, v| v.is_some());
    }
    Ok(())
}
