//! Docker-shaped `inspect` JSON for a container.

use serde_json::{Value, json};

use super::model::{ContainerConfig, ContainerState, HealthState, Status, ZERO_TIME};
use super::store::ContainerStore;
use crate::units::human_duration;

/// The health docker would show: the recorded one, or `starting` for a started container
/// with a healthcheck whose monitor has not written it yet (just after `run -d` returns).
pub fn effective_health(c: &ContainerConfig, st: &ContainerState) -> Option<HealthState> {
    if let Some(h) = &st.health {
        return Some(h.clone());
    }
    let checked = c
        .healthcheck
        .as_ref()
        .and_then(|h| h.test.first())
        .is_some_and(|t| t == "CMD" || t == "CMD-SHELL");
    let started = matches!(
        st.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    (checked && started).then(|| HealthState {
        status: "starting".into(),
        failing_streak: 0,
        log: vec![],
    })
}

/// Docker's STATUS column (`docker ps`, and `Status` in the API's container list).
pub fn status_text(st: &ContainerState, health: Option<&str>) -> String {
    let h = match health {
        Some("starting") => " (health: starting)".to_string(),
        Some(h) => format!(" ({h})"),
        None => String::new(),
    };
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}{h}", human_duration(since(&st.started_at))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&st.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration(since(&st.finished_at))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            human_duration(since(&st.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// Applies one `docker ps --filter key=value` (the network filters are the wire crate's).
pub fn matches_filter(c: &ContainerConfig, st: &ContainerState, f: &str) -> Result<bool, String> {
    let (k, v) = f
        .split_once('=')
        .ok_or_else(|| format!("bad format of filter \"{f}\" (expected name=value)"))?;
    Ok(match k {
        "name" => c.name.contains(v.trim_start_matches('/')),
        "id" => c.id.starts_with(v),
        "label" => match v.split_once('=') {
            Some((lk, lv)) => c.labels.get(lk).is_some_and(|x| x == lv),
            None => c.labels.contains_key(v),
        },
        "status" => st.status.as_str() == v,
        "ancestor" => {
            c.image == v
                || c.image_id == v
                || c.image_id.trim_start_matches("sha256:").starts_with(v)
        }
        "exited" => st.status == Status::Exited && st.exit_code.to_string() == v,
        "health" => {
            effective_health(c, st)
                .as_ref()
                .map(|h| h.status.as_str())
                .unwrap_or("none")
                == v
        }
        other => {
            return Err(format!(
                "invalid filter '{other}': use name, id, label, status, ancestor, exited, health, network or publish"
            ));
        }
    })
}

fn since(rfc3339: &str) -> i64 {
    crate::units::time::seconds_since(rfc3339).unwrap_or(0)
}

pub fn inspect_json(store: &ContainerStore, c: &ContainerConfig, st: &ContainerState) -> Value {
    let or_zero = |s: &str| {
        if s.is_empty() {
            ZERO_TIME.to_string()
        } else {
            s.to_string()
        }
    };
    let vols = crate::volume::Volumes::new(&store.root);
    let mounts: Vec<Value> = c
        .host
        .mounts
        .iter()
        .map(|m| {
            let (source, name) = match m.kind.as_str() {
                "volume" => (
                    vols.data_dir(&m.source)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    Some(m.source.clone()),
                ),
                _ => (m.source.clone(), None),
            };
            let mut v = json!({
                "Type": m.kind, "Source": source, "Destination": m.target,
                "Mode": if m.read_only { "ro" } else { "" }, "RW": !m.read_only,
                "Propagation": if m.kind == "bind" { "rprivate" } else { "" },
            });
            if let Some(n) = name {
                v["Name"] = json!(n);
                v["Driver"] = json!("local");
            }
            v
        })
        .collect();
    let health = effective_health(c, st).map(|h| {
        json!({"Status": h.status, "FailingStreak": h.failing_streak,
               "Log": h.log.iter().map(|l| json!({"Start": l.start, "End": l.end, "ExitCode": l.exit_code, "Output": l.output})).collect::<Vec<_>>()})
    });
    let mut state = json!({
        "Status": st.status.as_str(),
        "Running": matches!(st.status, Status::Running | Status::Paused),
        "Paused": st.status == Status::Paused,
        "Restarting": st.status == Status::Restarting,
        "OOMKilled": st.oom_killed,
        "Dead": st.status == Status::Dead,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": or_zero(&st.started_at),
        "FinishedAt": or_zero(&st.finished_at),
    });
    if let Some(h) = health {
        state["Health"] = h;
    }
    let labels: serde_json::Map<String, Value> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let x = &c.host.extra;
    let volumes: serde_json::Map<String, Value> = c
        .host
        .mounts
        .iter()
        .filter(|m| m.anonymous)
        .map(|m| (m.target.clone(), json!({})))
        .collect();
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.args.first().cloned().unwrap_or_default(),
        "Args": c.args.iter().skip(1).collect::<Vec<_>>(),
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": store.run_dir(&c.id).join("resolv.conf"),
        "HostnamePath": store.run_dir(&c.id).join("hostname"),
        "HostsPath": store.run_dir(&c.id).join("hosts"),
        // Docker leaves it empty when the driver keeps no file.
        "LogPath": if c.host.keeps_logs() { store.log_path(&c.id) } else { Default::default() },
        "Name": format!("/{}", c.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": host_config(c),
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": c.layer_dirs.iter().rev().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                "UpperDir": store.rootfs_dir(c).join("upper"),
                "WorkDir": store.rootfs_dir(c).join("work"),
                "MergedDir": store.rootfs_dir(c).join("merged"),
            }
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": c.hostname,
            "User": c.user,
            "Tty": c.tty,
            "OpenStdin": c.open_stdin,
            // docker closes stdin after the first attach when run/create attached it.
            "StdinOnce": x.attach_stdin,
            "Env": c.env,
            "Cmd": c.cmd,
            "Image": c.image,
            "WorkingDir": c.working_dir,
            "Entrypoint": if c.entrypoint.is_empty() { Value::Null } else { json!(c.entrypoint) },
            "Labels": labels,
            "StopSignal": c.stop_signal,
            "StopTimeout": c.stop_timeout,
            "Domainname": x.domainname,
            "AttachStdin": x.attach_stdin,
            "AttachStdout": x.attach_stdout,
            "AttachStderr": x.attach_stderr,
            "Volumes": if volumes.is_empty() { Value::Null } else { Value::Object(volumes) },
            "OnBuild": Value::Null,
        },
        "NetworkSettings": {"Networks": {}},
        "ExecIDs": Value::Null,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": x.apparmor,
    })
}

/// `null` for an empty list, as docker's Go slices print.
fn list<T: serde::Serialize>(v: &[T]) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

/// Docker's HostConfig (API 1.41 field set) with docker's defaults for what is unset.
fn host_config(c: &ContainerConfig) -> Value {
    let h = &c.host;
    let x = &h.extra;
    let version = super::resources::CgroupVersion::host();
    let max_retry = match h.restart {
        super::model::RestartPolicy::OnFailure { max_retries } => max_retries,
        _ => 0,
    };
    let tmpfs: serde_json::Map<String, Value> = h
        .tmpfs
        .iter()
        .map(|t| {
            let (d, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
            (d.to_string(), json!(o))
        })
        .collect();
    let ulimits: Vec<Value> = h
        .ulimits
        .iter()
        .map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard}))
        .collect();
    let binds: Vec<String> = h
        .mounts
        .iter()
        .filter(|m| m.kind == "bind" && !m.anonymous)
        .map(|m| {
            format!(
                "{}:{}{}",
                m.source,
                m.target,
                if m.read_only { ":ro" } else { "" }
            )
        })
        .collect();
    let mut security = vec![];
    if h.no_new_privileges {
        security.push("no-new-privileges".to_string());
    }
    if let Some(p) = x.seccomp.as_deref() {
        security.push(format!("seccomp={p}"));
    }
    if !x.apparmor.is_empty() {
        security.push(format!("apparmor={}", x.apparmor));
    }
    security.extend(x.label_opts.iter().map(|l| format!("label={l}")));
    let devices: Vec<Value> = x
        .devices
        .iter()
        .map(|d| {
            json!({"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
                   "CgroupPermissions": d.cgroup_permissions})
        })
        .collect();
    // docker fills in twice the memory limit when only --memory is given.
    let memory_swap = match (h.memory, x.memory_swap) {
        (m, 0) if m > 0 => 2 * m,
        (_, s) => s,
    };
    let (masked, readonly) = if h.privileged {
        (Value::Null, Value::Null)
    } else {
        (
            json!(super::spec::MASKED_PATHS),
            json!(super::spec::READONLY_PATHS),
        )
    };
    let mut v = json!({
        "Binds": list(&binds),
        "ContainerIDFile": x.container_id_file,
        "LogConfig": {"Type": h.log_driver(), "Config": h.log_opts},
        "NetworkMode": h.network_mode,
        "PortBindings": {},
        "RestartPolicy": {"Name": h.restart.name(), "MaximumRetryCount": max_retry},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": list(&x.volumes_from),
        "CapAdd": list(&h.cap_add),
        "CapDrop": list(&h.cap_drop),
        "CgroupnsMode": super::resources::cgroupns_name(h, version),
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": Value::Null,
        "GroupAdd": list(&x.group_add),
        "IpcMode": if h.ipc_mode.is_empty() { "private" } else { h.ipc_mode.as_str() },
        "Cgroup": "",
        "Links": Value::Null,
        "OomScoreAdj": x.oom_score_adj,
        "PidMode": h.pid_mode,
        "Privileged": h.privileged,
        "PublishAllPorts": false,
        "ReadonlyRootfs": h.read_only,
        "SecurityOpt": list(&security),
        "UTSMode": x.uts_mode,
        "UsernsMode": x.userns_mode,
    });
    // Two literals: one would pass serde_json's macro recursion limit.
    let resources = json!({
        "ShmSize": if h.shm_size > 0 { h.shm_size } else { 64 << 20 },
        "Runtime": "runc",
        "ConsoleSize": [0, 0],
        "Isolation": "",
        "CpuShares": x.cpu_shares,
        "Memory": h.memory,
        "NanoCpus": h.nano_cpus,
        "CgroupParent": x.cgroup_parent,
        "BlkioWeight": x.blkio_weight,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": Value::Null,
        "BlkioDeviceWriteBps": Value::Null,
        "BlkioDeviceReadIOps": Value::Null,
        "BlkioDeviceWriteIOps": Value::Null,
        "CpuPeriod": x.cpu_period,
        "CpuQuota": x.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": x.cpuset_cpus,
        "CpusetMems": x.cpuset_mems,
        "Devices": devices,
        "DeviceCgroupRules": list(&x.device_cgroup_rules),
        "DeviceRequests": Value::Null,
        "KernelMemory": 0,
        "KernelMemoryTCP": 0,
        "MemoryReservation": x.memory_reservation,
        "MemorySwap": memory_swap,
        "MemorySwappiness": x.memory_swappiness,
        "OomKillDisable": x.oom_kill_disable,
        "PidsLimit": if h.pids_limit > 0 { json!(h.pids_limit) } else { Value::Null },
        "Ulimits": list(&ulimits),
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": masked,
        "ReadonlyPaths": readonly,
        "Init": h.init,
        "Tmpfs": tmpfs,
    });
    if let (Some(m), Value::Object(r)) = (v.as_object_mut(), resources) {
        m.extend(r);
    }
    if !x.sysctls.is_empty() {
        v["Sysctls"] = json!(x.sysctls);
    }
    if !x.annotations.is_empty() {
        v["Annotations"] = json!(x.annotations);
    }
    v
}
