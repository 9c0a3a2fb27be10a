//! docker's container create body (`Config` + `HostConfig` + `NetworkingConfig`) → the same
//! engine options and network flags `rcompose container create` builds from its flags, with
//! docker's options parsed by the same `wire::docker` functions. Pure except for
//! `namespace_mode`, which looks up `container:<name>`.

use std::collections::BTreeMap;

use rcompose_engine::container::model::{HealthConfig, RestartPolicy};
use rcompose_engine::container::{ContainerStore, CreateOptions, HostConfig};
use rcompose_wire::docker::{
    Syntax, log_driver, log_opts, namespace_mode, parse_mount, parse_ulimit, parse_volume,
};
use rcompose_wire::netwire::flags::RunNetworkFlags;
use serde_json::Value;

use crate::error::ApiError;

/// Everything a create request asks for.
#[derive(Debug, Default)]
pub struct CreateRequest {
    pub image: String,
    pub opts: CreateOptions,
    /// The `--network` values: the network mode, as the CLI's `--network`.
    pub networks: Vec<String>,
    pub net_flags: RunNetworkFlags,
}

fn s(v: &Value) -> Option<String> {
    v.as_str().filter(|x| !x.is_empty()).map(String::from)
}

/// A list of strings; docker's older clients send a lone string for `Cmd`/`Entrypoint`.
fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::String(x) => vec![x.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

fn map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.clone(), x.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn healthcheck(h: &Value) -> Option<HealthConfig> {
    let test = strs(&h["Test"]);
    if test.is_empty() {
        return None;
    }
    let ms = |v: &Value, default: u64| match v.as_u64().unwrap_or(0) / 1_000_000 {
        0 => default,
        n => n,
    };
    Some(HealthConfig {
        test,
        interval_ms: ms(&h["Interval"], 30_000),
        timeout_ms: ms(&h["Timeout"], 30_000),
        start_period_ms: ms(&h["StartPeriod"], 0),
        retries: match h["Retries"].as_u64().unwrap_or(0) {
            0 => 3,
            n => n as u32,
        },
    })
}

/// `PortBindings` → `-p` values: `[ip:][hostPort]:containerPort/proto`.
fn publish(bindings: &Value) -> Vec<String> {
    let mut out = vec![];
    for (port, list) in bindings.as_object().into_iter().flatten() {
        let list = list.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            out.push(port.clone());
        }
        for b in list {
            let ip = b["HostIp"].as_str().unwrap_or_default();
            let hp = b["HostPort"].as_str().unwrap_or_default();
            out.push(match (ip, hp) {
                ("", "") => port.clone(),
                ("", hp) => format!("{hp}:{port}"),
                (ip, hp) => format!("{ip}:{hp}:{port}"),
            });
        }
    }
    out
}

/// `HostConfig.Mounts` → `--mount` values.
fn mount_flag(m: &Value) -> String {
    let mut parts = vec![format!("type={}", m["Type"].as_str().unwrap_or("volume"))];
    if let Some(src) = s(&m["Source"]) {
        parts.push(format!("source={src}"));
    }
    parts.push(format!(
        "target={}",
        m["Target"].as_str().unwrap_or_default()
    ));
    if m["ReadOnly"].as_bool().unwrap_or(false) {
        parts.push("readonly".into());
    }
    parts.join(",")
}

fn restart(p: &Value) -> Result<RestartPolicy, ApiError> {
    let name = p["Name"].as_str().unwrap_or("");
    let text = match (name, int(&p["MaximumRetryCount"])) {
        ("", _) => "no".to_string(),
        ("on-failure", n) if n > 0 => format!("on-failure:{n}"),
        (name, _) => name.to_string(),
    };
    Ok(RestartPolicy::parse(&text)?)
}

/// Maps the body of `POST /containers/create?name=…`.
pub fn parse(
    store: &ContainerStore,
    name: Option<&str>,
    body: &[u8],
) -> Result<CreateRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let c: Value = serde_json::from_slice(body)?;
    let hc = &c["HostConfig"];
    let image = s(&c["Image"])
        .ok_or_else(|| ApiError::bad_request("No command specified: the request names no Image"))?;
    let entrypoint = match &c["Entrypoint"] {
        Value::Null => None,
        v => {
            let e = strs(v);
            // `--entrypoint ""` resets the image's entrypoint.
            Some(if e.iter().all(String::is_empty) {
                vec![]
            } else {
                e
            })
        }
    };
    let mut mounts = vec![];
    for b in strs(&hc["Binds"]) {
        mounts.push(parse_volume(&b)?);
    }
    for m in hc["Mounts"].as_array().into_iter().flatten() {
        mounts.push(parse_mount(&mount_flag(m))?);
    }
    let mut ulimits = vec![];
    for u in hc["Ulimits"].as_array().into_iter().flatten() {
        let text = format!(
            "{}={}:{}",
            u["Name"].as_str().unwrap_or_default(),
            int(&u["Soft"]),
            int(&u["Hard"])
        );
        ulimits.push(parse_ulimit(&text)?);
    }
    let (extra, no_new_privileges) = crate::create_extras::extras(&c, hc)?;
    let driver = s(&hc["LogConfig"]["Type"]);
    let log_opt: Vec<String> = map(&hc["LogConfig"]["Config"])
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let tmpfs: Vec<String> = map(&hc["Tmpfs"])
        .into_iter()
        .map(|(k, v)| if v.is_empty() { k } else { format!("{k}:{v}") })
        .collect();
    let opts = CreateOptions {
        name: name
            .filter(|n| !n.is_empty())
            .map(|n| n.trim_start_matches('/').to_string()),
        cmd: strs(&c["Cmd"]),
        entrypoint,
        env: strs(&c["Env"]),
        working_dir: s(&c["WorkingDir"]),
        user: s(&c["User"]),
        hostname: s(&c["Hostname"]),
        labels: map(&c["Labels"]),
        tty: c["Tty"].as_bool().unwrap_or(false),
        open_stdin: c["OpenStdin"].as_bool().unwrap_or(false),
        stop_signal: s(&c["StopSignal"]),
        stop_timeout: c["StopTimeout"].as_u64().map(|t| t as u32),
        healthcheck: healthcheck(&c["Healthcheck"]),
        volumes_from: strs(&hc["VolumesFrom"]),
        host: HostConfig {
            auto_remove: hc["AutoRemove"].as_bool().unwrap_or(false),
            restart: restart(&hc["RestartPolicy"])?,
            // Decided by `netwire::flags::apply` from the network mode.
            network_mode: "bridge".into(),
            cap_add: strs(&hc["CapAdd"]),
            cap_drop: strs(&hc["CapDrop"]),
            privileged: hc["Privileged"].as_bool().unwrap_or(false),
            read_only: hc["ReadonlyRootfs"].as_bool().unwrap_or(false),
            no_new_privileges,
            memory: int(&hc["Memory"]),
            nano_cpus: int(&hc["NanoCpus"]),
            pids_limit: int(&hc["PidsLimit"]).max(0),
            shm_size: int(&hc["ShmSize"]),
            ulimits,
            init: hc["Init"].as_bool().unwrap_or(false),
            tmpfs,
            mounts,
            log_driver: log_driver(driver.as_deref())?,
            pid_mode: namespace_mode(store, Syntax::Flag("PidMode"), s(&hc["PidMode"]).as_deref())?,
            ipc_mode: namespace_mode(store, Syntax::Flag("IpcMode"), s(&hc["IpcMode"]).as_deref())?,
            log_opts: log_opts(driver.as_deref(), &log_opt)?,
            extra,
        },
    };
    let mode = match s(&hc["NetworkMode"]).as_deref() {
        None | Some("default") => "bridge".to_string(),
        Some(m) => m.to_string(),
    };
    // API 1.41 clients send one endpoint, the network mode's (docker-compose 1.29 connects
    // the others after create); its aliases and addresses are `--network-alias`/`--ip`.
    let ep = c["NetworkingConfig"]["EndpointsConfig"]
        .get(&mode)
        .cloned()
        .unwrap_or(Value::Null);
    let net_flags = RunNetworkFlags {
        publish: publish(&hc["PortBindings"]),
        publish_all: hc["PublishAllPorts"].as_bool().unwrap_or(false),
        expose: c["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        network_alias: strs(&ep["Aliases"]),
        ip: s(&ep["IPAMConfig"]["IPv4Address"]),
        ip6: s(&ep["IPAMConfig"]["IPv6Address"]),
        add_host: strs(&hc["ExtraHosts"]),
        dns: strs(&hc["Dns"]),
        dns_search: strs(&hc["DnsSearch"]),
        dns_option: strs(&hc["DnsOptions"]),
        link: strs(&hc["Links"]),
        mac_address: s(&c["MacAddress"]).or_else(|| s(&ep["MacAddress"])),
    };
    Ok(CreateRequest {
        image,
        opts,
        networks: vec![mode],
        net_flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(v: Value) -> Result<CreateRequest, ApiError> {
        let dir = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(dir.path(), dir.path());
        parse(&store, Some("web"), &serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn docker_run_body_maps_onto_the_cli_options() {
        // What `docker run -d --name web --network none -e A=1 -l k=v -v /tmp:/data:ro
        // -p 127.0.0.1:8080:80 --restart on-failure:2 IMAGE sleep 60` sends.
        let r = parse_json(json!({
            "Image": "busybox:test", "Cmd": ["sleep", "60"], "Entrypoint": null,
            "Env": ["A=1"], "Labels": {"k": "v"}, "Tty": false, "OpenStdin": false,
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {
                "Binds": ["/tmp:/data:ro"], "NetworkMode": "none",
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                "LogConfig": {"Type": "", "Config": {}}, "PidsLimit": null
            },
            "NetworkingConfig": {"EndpointsConfig": {"none": {}}}
        }))
        .unwrap();
        assert_eq!(r.image, "busybox:test");
        assert_eq!(r.opts.name.as_deref(), Some("web"));
        assert_eq!(r.opts.cmd, ["sleep", "60"]);
        assert_eq!(r.opts.entrypoint, None);
        assert_eq!(r.opts.labels["k"], "v");
        assert_eq!(r.opts.host.mounts[0].target, "/data");
        assert!(r.opts.host.mounts[0].read_only);
        assert_eq!(
            r.opts.host.restart,
            RestartPolicy::parse("on-failure:2").unwrap()
        );
        assert_eq!(r.networks, ["none"]);
        assert_eq!(r.net_flags.publish, ["127.0.0.1:8080:80/tcp"]);
        assert_eq!(r.net_flags.expose, ["80/tcp"]);
    }

    #[test]
    fn compose_endpoint_aliases_and_default_mode() {
        let r = parse_json(json!({
            "Image": "x", "Entrypoint": [""],
            "HostConfig": {"NetworkMode": "proj_default"},
            "NetworkingConfig": {"EndpointsConfig": {"proj_default": {"Aliases": ["web", "abc"]}}}
        }))
        .unwrap();
        assert_eq!(r.networks, ["proj_default"]);
        assert_eq!(r.net_flags.network_alias, ["web", "abc"]);
        assert_eq!(r.opts.entrypoint, Some(vec![]));
        let d =
            parse_json(json!({"Image": "x", "HostConfig": {"NetworkMode": "default"}})).unwrap();
        assert_eq!(d.networks, ["bridge"]);
    }

    #[test]
    fn run_extras_map_onto_the_engine() {
        // What docker 20.10's client sends for `--cpu-shares 512 --memory-reservation 32m
        // --sysctl k=v --group-add 4242 --device /dev/null:/dev/mynull --security-opt
        // seccomp=unconfined --security-opt no-new-privileges --domainname example.org`.
        let r = parse_json(json!({
            "Image": "x", "Domainname": "example.org", "AttachStdout": true,
            "HostConfig": {
                "CpuShares": 512, "MemoryReservation": 33554432, "MemorySwappiness": null,
                "Sysctls": {"kernel.shmmax": "123"}, "GroupAdd": ["4242"],
                "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                             "CgroupPermissions": "rwm"}],
                "SecurityOpt": ["seccomp=unconfined", "no-new-privileges"],
                "UTSMode": "host", "CgroupnsMode": "private", "OomScoreAdj": 300,
                "Runtime": "runc", "Isolation": "", "KernelMemory": 0, "BlkioWeightDevice": [],
                "DeviceRequests": null
            }
        }))
        .unwrap();
        let h = &r.opts.host;
        let x = &h.extra;
        assert!(h.no_new_privileges);
        assert_eq!(x.cpu_shares, 512);
        assert_eq!(x.memory_reservation, 32 << 20);
        assert_eq!(x.memory_swappiness, None);
        assert_eq!(x.sysctls["kernel.shmmax"], "123");
        assert_eq!(x.group_add, ["4242"]);
        assert_eq!(x.devices[0].path_in_container, "/dev/mynull");
        assert_eq!(x.seccomp.as_deref(), Some("unconfined"));
        assert_eq!(x.domainname, "example.org");
        assert_eq!(
            (x.uts_mode.as_str(), x.cgroupns_mode.as_str()),
            ("host", "private")
        );
        assert_eq!(x.oom_score_adj, 300);
        assert!(x.attach_stdout && !x.attach_stdin);
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        for (hc, named) in [
            (json!({"Runtime": "kata"}), "--runtime kata"),
            (json!({"StorageOpt": {"size": "1G"}}), "--storage-opt"),
            (json!({"Isolation": "hyperv"}), "--isolation hyperv"),
            (
                json!({"VolumeDriver": "flocker"}),
                "--volume-driver flocker",
            ),
            (
                json!({"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]}),
                "--gpus all",
            ),
            (json!({"KernelMemory": 4194304}), "--kernel-memory"),
            (
                json!({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "x"}]}),
                "device",
            ),
            (
                json!({"DeviceCgroupRules": ["z 1:1 r"]}),
                "--device-cgroup-rule",
            ),
            (json!({"SecurityOpt": ["bogus=1"]}), "security-opt"),
            (json!({"SecurityOpt": ["seccomp={nope"]}), "seccomp"),
            (json!({"OomScoreAdj": 1_i64 << 40}), "--oom-score-adj"),
            (json!({"BlkioWeight": 70000}), "--blkio-weight"),
        ] {
            let e = parse_json(json!({"Image": "x", "HostConfig": hc})).unwrap_err();
            assert_eq!(e.status, 400, "{hc}: {}", e.message);
            assert!(e.message.contains(named), "{hc}: {}", e.message);
        }
    }

    #[test]
    fn bad_bodies_are_400s() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(dir.path(), dir.path());
        let e = parse(&store, None, b"").unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse(&store, None, b"{nope").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("key must be a string"), "{}", e.message);
        let e = parse_json(json!({"Image": "x", "HostConfig": {"Binds": ["::"]}})).unwrap_err();
        assert_eq!(e.status, 400);
    }
}
