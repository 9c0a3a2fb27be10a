//! A compose service → the engine's `CreateOptions`, and the list of keys the engine cannot
//! honour yet (each a warning naming the key and the service — never silence).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::docker::OptionError;
use rcompose_compose::labels::{container_labels, volume_name};
use rcompose_compose::model::{Project, Service};
use rcompose_engine::container::CreateOptions;
use rcompose_engine::container::model::{
    HealthConfig, HostConfig, MountSpec, RestartPolicy, Ulimit,
};
use rcompose_engine::logs::LOG_OPTIONS;

use super::secrets::{self, SecretError};

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// A key the engine cannot take as written (the text names the service and the key).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Option(#[from] OptionError),
}

type Result<T> = std::result::Result<T, TranslateError>;
use crate::docker::{Syntax, namespace_mode};

/// Keys set on `svc` that the engine ignores today, as `key` names.
pub fn unsupported_keys(svc: &Service) -> Vec<&'static str> {
    let mut out = vec![];
    let mut flag = |set: bool, key: &'static str| {
        if set {
            out.push(key);
        }
    };
    flag(svc.runtime.is_some(), "runtime");
    flag(!svc.storage_opt.is_empty(), "storage_opt");
    flag(svc.gpus.is_some(), "gpus");
    if let Some(b) = &svc.build {
        flag(!b.cache_from.is_empty(), "build.cache_from");
        flag(!b.cache_to.is_empty(), "build.cache_to");
        flag(!b.ssh.is_empty(), "build.ssh");
        flag(!b.extra_hosts.is_empty(), "build.extra_hosts");
        flag(!b.ulimits.is_empty(), "build.ulimits");
        flag(b.privileged, "build.privileged");
        flag(!b.platforms.is_empty(), "build.platforms");
    }
    flag(
        svc.logging
            .as_ref()
            .and_then(|l| l.driver.as_deref())
            .is_some_and(|d| !matches!(d, "json-file" | "local" | "none")),
        "logging.driver (json-file and none only)",
    );
    // json-file's rotation options reach the engine (`log_opts` below); the others, and
    // any option of the none driver, are ignored.
    flag(
        svc.logging.as_ref().is_some_and(|l| {
            let none = l.driver.as_deref() == Some("none");
            l.options
                .keys()
                .any(|k| none || !LOG_OPTIONS.contains(&k.as_str()))
        }),
        "logging.options",
    );
    let networks = || svc.networks.values().flatten();
    flag(
        networks().any(|n| !n.link_local_ips.is_empty()),
        "networks.link_local_ips",
    );
    flag(
        networks().any(|n| n.interface_name.is_some()),
        "networks.interface_name",
    );
    flag(
        networks().any(|n| !n.driver_opts.is_empty()),
        "networks.driver_opts",
    );
    flag(
        svc.ports
            .iter()
            .any(|p| p.host_ip.as_deref().is_some_and(|ip| ip.contains(':'))),
        "ports (IPv6 host_ip: not published)",
    );
    volume_keys(svc, &mut flag);
    flag(!svc.annotations.is_empty(), "annotations");
    flag(svc.blkio_config.is_some(), "blkio_config");
    flag(svc.cgroup.is_some(), "cgroup");
    flag(svc.cpu_count.is_some(), "cpu_count");
    flag(svc.cpu_percent.is_some(), "cpu_percent");
    flag(svc.cpu_rt_period.is_some(), "cpu_rt_period");
    flag(svc.cpu_rt_runtime.is_some(), "cpu_rt_runtime");
    flag(svc.credential_spec.is_some(), "credential_spec");
    flag(!svc.device_cgroup_rules.is_empty(), "device_cgroup_rules");
    flag(svc.isolation.is_some(), "isolation");
    flag(svc.models.is_some(), "models");
    flag(svc.provider.is_some(), "provider");
    flag(svc.use_api_socket, "use_api_socket");
    flag(svc.volume_driver.is_some(), "volume_driver");
    deploy_keys(svc, &mut flag);
    // A plain link is honoured (an implied dependency; the name resolves through DNS); an
    // alias (`db:database`) is not resolvable.
    flag(
        svc.links.iter().any(|l| l.contains(':')),
        "links aliases (service names resolve through DNS, link aliases do not)",
    );
    flag(
        svc.healthcheck
            .as_ref()
            .is_some_and(|h| h.start_interval.is_some()),
        "healthcheck.start_interval",
    );
    out
}

/// Per-mount options of `volumes` the engine does not apply.
fn volume_keys(svc: &Service, flag: &mut impl FnMut(bool, &'static str)) {
    let bind = |f: fn(&rcompose_compose::model::VolumeBind) -> bool| {
        svc.volumes.iter().any(|v| v.bind.as_ref().is_some_and(f))
    };
    flag(
        bind(|b| b.propagation.is_some()),
        "volumes.bind.propagation",
    );
    flag(bind(|b| b.selinux.is_some()), "volumes.bind.selinux");
    flag(bind(|b| b.recursive.is_some()), "volumes.bind.recursive");
    let volume = |f: fn(&rcompose_compose::model::VolumeVolume) -> bool| {
        svc.volumes.iter().any(|v| v.volume.as_ref().is_some_and(f))
    };
    flag(volume(|o| o.subpath.is_some()), "volumes.volume.subpath");
    // The engine always fills a new volume from the image, as docker does by default.
    flag(volume(|o| o.nocopy), "volumes.volume.nocopy");
    flag(volume(|o| !o.labels.is_empty()), "volumes.volume.labels");
    flag(
        svc.volumes
            .iter()
            .any(|v| v.tmpfs.as_ref().is_some_and(|t| t.mode.is_some())),
        "volumes.tmpfs.mode",
    );
}

/// `deploy` keys beyond replicas, resource limits and the restart condition/attempts.
fn deploy_keys(svc: &Service, flag: &mut impl FnMut(bool, &'static str)) {
    let Some(d) = &svc.deploy else {
        return;
    };
    flag(
        d.mode.as_deref().is_some_and(|m| m != "replicated"),
        "deploy.mode",
    );
    flag(
        d.resources.reservations.is_some(),
        "deploy.resources.reservations",
    );
    let limits = d.resources.limits.as_ref();
    flag(
        limits.is_some_and(|l| l.devices.is_some() || l.generic_resources.is_some()),
        "deploy.resources.limits (devices, generic_resources)",
    );
    let policy = d.restart_policy.as_ref();
    flag(
        policy.is_some_and(|p| p.delay.is_some()),
        "deploy.restart_policy.delay",
    );
    flag(
        policy.is_some_and(|p| p.window.is_some()),
        "deploy.restart_policy.window",
    );
    flag(!d.labels.is_empty(), "deploy.labels (swarm service labels)");
    flag(d.placement.is_some(), "deploy.placement (swarm only)");
    flag(
        d.update_config.is_some(),
        "deploy.update_config (swarm only)",
    );
    flag(
        d.rollback_config.is_some(),
        "deploy.rollback_config (swarm only)",
    );
    flag(
        d.endpoint_mode.is_some(),
        "deploy.endpoint_mode (swarm only)",
    );
}

/// The options the engine creates the container with.
pub fn create_options(
    project: &Project,
    svc: &Service,
    name: &str,
    number: u32,
    root: &Path,
) -> Result<CreateOptions> {
    let mut env = vec![];
    for (k, v) in &svc.environment {
        // A bare name absent from the environment is left unset, as compose does.
        if let Some(v) = v {
            env.push(format!("{k}={v}"));
        }
    }
    let mut mounts = vec![];
    let mut tmpfs = svc.tmpfs.clone();
    for v in &svc.volumes {
        match v.kind.as_str() {
            "bind" => {
                let src = v.source.clone().unwrap_or_default();
                let create = v
                    .bind
                    .as_ref()
                    .and_then(|b| b.create_host_path)
                    .unwrap_or(true);
                if create && !Path::new(&src).exists() {
                    std::fs::create_dir_all(&src).map_err(|e| {
                        TranslateError::Invalid(format!(
                            "service \"{}\": creating bind mount source {src}: {e}",
                            svc.name
                        ))
                    })?;
                }
                mounts.push(MountSpec {
                    kind: "bind".into(),
                    source: src,
                    target: v.target.clone(),
                    read_only: v.read_only,
                    anonymous: false,
                });
            }
            "volume" => {
                let (source, anonymous) = match &v.source {
                    Some(key) if !key.is_empty() => (volume_name(project, key), false),
                    _ => (String::new(), true),
                };
                mounts.push(MountSpec {
                    kind: "volume".into(),
                    source,
                    target: v.target.clone(),
                    read_only: v.read_only,
                    anonymous,
                });
            }
            "tmpfs" => {
                let mut t = v.target.clone();
                if let Some(size) = v.tmpfs.as_ref().and_then(|t| t.size) {
                    t.push_str(&format!(":size={}", size.0));
                }
                tmpfs.push(t);
            }
            other => {
                return Err(TranslateError::Invalid(format!(
                    "service \"{}\": volume type \"{other}\" for {} is not supported yet",
                    svc.name, v.target
                )));
            }
        }
    }
    mounts.extend(secrets::mounts(project, svc, root)?);

    let limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.limits.clone())
        .unwrap_or_default();
    let memory = svc.mem_limit.map(|b| b.0).or(limits.memory.map(|b| b.0));
    let cpus = svc.cpus.or(limits.cpus);
    let pids = svc.pids_limit.or(limits.pids);
    let restart = restart_policy(svc)?;
    let mut ulimits = vec![];
    for (name, u) in &svc.ulimits {
        let (soft, hard) = match u {
            rcompose_compose::model::Ulimit::Single(n) => (*n, *n),
            rcompose_compose::model::Ulimit::Range { soft, hard, .. } => (*soft, *hard),
        };
        ulimits.push(Ulimit {
            name: name.clone(),
            soft: soft.max(0) as u64,
            hard: hard.max(0) as u64,
        });
    }
    let store = rcompose_engine::container::ContainerStore::new(root, PathBuf::new());
    let volumes_from = svc
        .volumes_from
        .iter()
        .map(|v| volumes_from(project, v))
        .collect();

    let (extra, no_new_privileges) = super::extras::extras(svc)?;
    let mut opts = CreateOptions {
        name: Some(name.to_string()),
        cmd: svc.command.clone().unwrap_or_default(),
        entrypoint: svc.entrypoint.clone(),
        env,
        working_dir: svc.working_dir.clone(),
        user: svc.user.clone(),
        hostname: svc.hostname.clone(),
        labels: container_labels(project, svc, number, false),
        tty: svc.tty,
        open_stdin: svc.stdin_open,
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc
            .stop_grace_period
            .map(|d| d.as_std().as_secs().min(u32::MAX as u64) as u32),
        healthcheck: healthcheck(svc),
        volumes_from,
        host: HostConfig {
            auto_remove: false,
            restart,
            network_mode: network_mode(project, svc),
            cap_add: svc.cap_add.clone(),
            cap_drop: svc.cap_drop.clone(),
            privileged: svc.privileged,
            read_only: svc.read_only,
            no_new_privileges,
            memory: memory.unwrap_or(0),
            nano_cpus: cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            pids_limit: pids.filter(|p| *p > 0).unwrap_or(0),
            shm_size: svc.shm_size.map(|b| b.0).unwrap_or(0),
            ulimits,
            init: svc.init.unwrap_or(false),
            tmpfs,
            mounts,
            pid_mode: namespace_mode(
                &store,
                Syntax::Compose {
                    project: &project.name,
                    key: "pid",
                },
                svc.pid.as_deref(),
            )?,
            ipc_mode: namespace_mode(
                &store,
                Syntax::Compose {
                    project: &project.name,
                    key: "ipc",
                },
                svc.ipc.as_deref(),
            )?,
            log_driver: match svc.logging.as_ref().and_then(|l| l.driver.as_deref()) {
                Some("none") => "none".into(),
                _ => String::new(),
            },
            log_opts: log_opts(svc)?,
            extra,
        },
    };
    // What the host cannot honour is dropped as docker drops it (docker compose shows none
    // of the daemon's warnings either).
    let _ = rcompose_engine::container::resources::discard_unsupported(
        &mut opts.host,
        rcompose_engine::container::resources::CgroupVersion::host(),
    );
    Ok(opts)
}

/// `logging.options` max-size and max-file for json-file (and `local`, kept as json-file),
/// checked as `--log-opt` is; other options are left out (a warning names them).
fn log_opts(svc: &Service) -> Result<BTreeMap<String, String>> {
    let Some(l) = svc.logging.as_ref() else {
        return Ok(BTreeMap::new());
    };
    if l.driver.as_deref() == Some("none") {
        return Ok(BTreeMap::new());
    }
    let host = HostConfig {
        log_opts: l
            .options
            .iter()
            .filter(|(k, _)| LOG_OPTIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..Default::default()
    };
    if let Err(e) = host.log_rotation() {
        return Err(TranslateError::Invalid(format!(
            "service {:?}: logging.options: {e}",
            svc.name
        )));
    }
    Ok(host.log_opts)
}

/// `service:x[:ro]` → the first container of service x; `container:x` → x.
fn volumes_from(project: &Project, v: &str) -> String {
    if let Some(rest) = v.strip_prefix("container:") {
        return rest.to_string();
    }
    let rest = v.strip_prefix("service:").unwrap_or(v);
    let (svc, mode) = match rest.rsplit_once(':') {
        Some((s, m)) if m == "ro" || m == "rw" => (s, Some(m)),
        _ => (rest, None),
    };
    let name = match project.services.get(svc) {
        Some(s) => rcompose_compose::labels::container_name(&project.name, s, 1),
        None => svc.to_string(),
    };
    match mode {
        Some(m) => format!("{name}:{m}"),
        None => name,
    }
}

/// What `inspect` shows as NetworkMode; the engine only distinguishes `host` from the rest
/// (its own namespace), networks are attached by the backend at start.
pub fn network_mode(project: &Project, svc: &Service) -> String {
    match svc.network_mode.as_deref() {
        Some(m) => m.to_string(),
        None => match svc.networks.keys().next() {
            Some(key) => rcompose_compose::labels::network_name(project, key),
            None => "none".into(),
        },
    }
}

fn restart_policy(svc: &Service) -> Result<RestartPolicy> {
    if let Some(r) = &svc.restart {
        return RestartPolicy::parse(r).map_err(|e| {
            TranslateError::Invalid(format!("service \"{}\": restart: {e}", svc.name))
        });
    }
    let Some(p) = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) else {
        return Ok(RestartPolicy::No);
    };
    Ok(match p.condition.as_deref() {
        Some("none") => RestartPolicy::No,
        Some("on-failure") => RestartPolicy::OnFailure {
            max_retries: p.max_attempts.unwrap_or(0) as u32,
        },
        _ => RestartPolicy::Always,
    })
}

fn healthcheck(svc: &Service) -> Option<HealthConfig> {
    let h = svc.healthcheck.as_ref()?;
    if h.disable {
        return Some(HealthConfig {
            test: vec!["NONE".into()],
            interval_ms: 0,
            timeout_ms: 0,
            start_period_ms: 0,
            retries: 0,
        });
    }
    if h.test.is_empty() {
        return None;
    }
    let ms = |d: Option<rcompose_compose::model::Duration>, default: u64| {
        d.map(|d| d.as_std().as_millis() as u64).unwrap_or(default)
    };
    Some(HealthConfig {
        test: h.test.clone(),
        interval_ms: ms(h.interval, 30_000),
        timeout_ms: ms(h.timeout, 30_000),
        start_period_ms: ms(h.start_period, 0),
        retries: h.retries.unwrap_or(3) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_keys_are_named() {
        let svc = Service {
            name: "web".into(),
            domainname: Some("example.org".into()),
            sysctls: [("net.core.somaxconn".to_string(), "1024".to_string())].into(),
            runtime: Some("kata".into()),
            pull_policy: Some("always".into()),
            platform: Some("linux/amd64".into()),
            ..Default::default()
        };
        let keys = unsupported_keys(&svc);
        // Honoured now (backend/extras.rs): no warning.
        assert!(!keys.contains(&"domainname"), "{keys:?}");
        assert!(!keys.contains(&"sysctls"), "{keys:?}");
        assert!(keys.contains(&"runtime"), "{keys:?}");
        // Honoured before the plan runs (src/cli/compose_pull.rs): no warning.
        assert!(
            !keys
                .iter()
                .any(|k| k.starts_with("pull_policy") || k.starts_with("platform")),
            "{keys:?}"
        );
        assert!(unsupported_keys(&Service::default()).is_empty());
    }

    #[test]
    fn ignored_sub_keys_are_named() {
        use rcompose_compose::model::{Deploy, Logging, ServiceNetwork, ServiceVolume, VolumeBind};
        let svc = Service {
            name: "web".into(),
            logging: Some(Logging {
                driver: Some("json-file".into()),
                options: [
                    ("max-size".to_string(), "10m".to_string()),
                    ("max-file".to_string(), "3".to_string()),
                ]
                .into(),
                ..Default::default()
            }),
            volumes: vec![ServiceVolume {
                kind: "bind".into(),
                source: Some("/srv".into()),
                target: "/srv".into(),
                bind: Some(VolumeBind {
                    propagation: Some("rshared".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            networks: [(
                "default".to_string(),
                Some(ServiceNetwork {
                    ipv6_address: Some("fd00::5".into()),
                    ..Default::default()
                }),
            )]
            .into(),
            deploy: Some(Deploy {
                replicas: Some(2),
                placement: Some(Default::default()),
                ..Default::default()
            }),
            links: vec!["db".into(), "cache:redis".into()],
            ..Default::default()
        };
        let keys = unsupported_keys(&svc);
        assert!(
            !keys.contains(&"networks.ipv6_address"),
            "ipv6_address is honoured: {keys:?}"
        );
        for want in ["volumes.bind.propagation", "deploy.placement (swarm only)"] {
            assert!(keys.contains(&want), "{want} missing from {keys:?}");
        }
        assert!(
            keys.iter().any(|k| k.starts_with("links aliases")),
            "{keys:?}"
        );
        assert!(
            !keys.iter().any(|k| k.starts_with("logging.driver")),
            "{keys:?}"
        );
        // json-file rotation is honoured: no logging warning at all.
        assert!(!keys.iter().any(|k| k.starts_with("logging")), "{keys:?}");
        let mut other = svc.clone();
        if let Some(l) = other.logging.as_mut() {
            l.options.insert("compress".into(), "true".into());
        }
        assert!(
            unsupported_keys(&other).contains(&"logging.options"),
            "{:?}",
            unsupported_keys(&other)
        );
        let none = Service {
            logging: Some(Logging {
                driver: Some("none".into()),
                options: [("max-size".to_string(), "10m".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(unsupported_keys(&none), ["logging.options"]);

        // What is honoured warns about nothing: replicas, plain links, json-file, watch.
        let plain = Service {
            links: vec!["db".into()],
            deploy: Some(Deploy {
                replicas: Some(3),
                ..Default::default()
            }),
            logging: Some(Logging {
                driver: Some("json-file".into()),
                ..Default::default()
            }),
            develop: Some(Default::default()),
            ..Default::default()
        };
        assert!(
            unsupported_keys(&plain).is_empty(),
            "{:?}",
            unsupported_keys(&plain)
        );
    }

    #[test]
    fn log_rotation_options_reach_the_engine_checked() {
        use rcompose_compose::model::Logging;
        let with = |options: &[(&str, &str)]| Service {
            name: "web".into(),
            logging: Some(Logging {
                driver: Some("json-file".into()),
                options: options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = log_opts(&with(&[
            ("max-size", "10m"),
            ("max-file", "3"),
            ("compress", "true"),
        ]))
        .unwrap();
        assert_eq!(
            opts.into_iter().collect::<Vec<_>>(),
            [
                ("max-file".to_string(), "3".to_string()),
                ("max-size".to_string(), "10m".to_string())
            ]
        );
        let e = log_opts(&with(&[("max-size", "ten")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"web\"") && e.contains("max-size"), "{e}");
        let e = log_opts(&with(&[("max-file", "3")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("max-file"), "{e}");
        assert!(log_opts(&Service::default()).unwrap().is_empty());
    }

    #[test]
    fn restart_policies_map_to_the_engine() {
        let mut svc = Service {
            restart: Some("on-failure:3".into()),
            ..Default::default()
        };
        assert_eq!(
            restart_policy(&svc).unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        svc.restart = Some("sometimes".into());
        assert!(restart_policy(&svc).is_err());
    }
}
