//! The rest of docker's create body (devices, cgroup resources, namespaces, security
//! options, …) → the engine's `RunExtras`, checked by the same `wire::run_extras` and
//! `wire::docker` functions `container run`'s flags go through; the engine checks the
//! combinations (swap below memory, `--cpus` with `--cpu-quota`, …) at create.

use rcompose_engine::container::model::RunExtras;
use rcompose_wire::docker::security_opts_inline;
use rcompose_wire::run_extras::{self, Unsupported};
use serde_json::Value;

use crate::error::ApiError;

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `{"k": "v"}` → `k=v`, for the flag parsers.
fn pairs(v: &Value) -> Vec<String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
        .collect()
}

fn set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Bool(b) => *b,
    }
}

/// Resource fields docker's client sends as zero/empty unless their flag is given; the
/// engine has none of them, so a set one is refused rather than silently dropped.
const UNSUPPORTED: [(&str, &str); 13] = [
    ("KernelMemory", "--kernel-memory"),
    ("KernelMemoryTCP", "--kernel-memory-tcp"),
    ("CpuRealtimePeriod", "--cpu-rt-period"),
    ("CpuRealtimeRuntime", "--cpu-rt-runtime"),
    ("CpuCount", "--cpu-count"),
    ("CpuPercent", "--cpu-percent"),
    ("IOMaximumIOps", "--io-maxiops"),
    ("IOMaximumBandwidth", "--io-maxbandwidth"),
    ("BlkioWeightDevice", "--blkio-weight-device"),
    ("BlkioDeviceReadBps", "--device-read-bps"),
    ("BlkioDeviceWriteBps", "--device-write-bps"),
    ("BlkioDeviceReadIOps", "--device-read-iops"),
    ("BlkioDeviceWriteIOps", "--device-write-iops"),
];

/// `--gpus` as the user wrote it, from the `DeviceRequests` docker's client made of it.
fn gpus(reqs: &Value) -> Option<String> {
    let r = reqs.as_array()?.first()?;
    let ids = strs(&r["DeviceIDs"]);
    Some(match int(&r["Count"]) {
        -1 => "all".into(),
        0 if !ids.is_empty() => format!("device={}", ids.join(",")),
        n => n.to_string(),
    })
}

fn ranged<T: TryFrom<i64>>(hc: &Value, key: &str, flag: &str) -> Result<T, ApiError> {
    let n = int(&hc[key]);
    T::try_from(n).map_err(|_| {
        ApiError::bad_request(format!(
            "invalid {flag} {n}: HostConfig.{key} is out of range"
        ))
    })
}

/// The extras of a create body (`c`, its `HostConfig` `hc`) and whether no-new-privileges
/// was asked for.
pub fn extras(c: &Value, hc: &Value) -> Result<(RunExtras, bool), ApiError> {
    let runtime = s(&hc["Runtime"]);
    let isolation = s(&hc["Isolation"]);
    let volume_driver = s(&hc["VolumeDriver"]);
    let gpus = gpus(&hc["DeviceRequests"]);
    Unsupported {
        runtime: Some(&runtime),
        storage_opt: set(&hc["StorageOpt"]),
        isolation: Some(&isolation),
        volume_driver: Some(&volume_driver),
        gpus: gpus.as_deref(),
    }
    .refuse()?;
    for (key, flag) in UNSUPPORTED {
        if set(&hc[key]) {
            return Err(ApiError::bad_request(format!(
                "{flag} (HostConfig.{key}) is not supported by rcompose's engine; leave it out"
            )));
        }
    }
    let device_specs: Vec<String> = hc["Devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let host = s(&d["PathOnHost"]);
            let ctr = match s(&d["PathInContainer"]) {
                c if c.is_empty() => host.clone(),
                c => c,
            };
            let perms = match s(&d["CgroupPermissions"]) {
                p if p.is_empty() => "rwm".to_string(),
                p => p,
            };
            format!("{host}:{ctr}:{perms}")
        })
        .collect();
    let device_cgroup_rules = strs(&hc["DeviceCgroupRules"]);
    run_extras::check_cgroup_rules(&device_cgroup_rules)?;
    let sec = security_opts_inline(&strs(&hc["SecurityOpt"]))?;
    let x = RunExtras {
        devices: run_extras::devices(&device_specs)?,
        device_cgroup_rules,
        group_add: strs(&hc["GroupAdd"]),
        sysctls: run_extras::key_values("--sysctl", &pairs(&hc["Sysctls"]))?,
        cpu_shares: int(&hc["CpuShares"]),
        cpuset_cpus: s(&hc["CpusetCpus"]),
        cpuset_mems: s(&hc["CpusetMems"]),
        cpu_period: int(&hc["CpuPeriod"]),
        cpu_quota: int(&hc["CpuQuota"]),
        memory_reservation: int(&hc["MemoryReservation"]),
        memory_swap: int(&hc["MemorySwap"]),
        // docker's -1 and an absent value both inherit the parent's.
        memory_swappiness: hc["MemorySwappiness"].as_i64().filter(|s| *s != -1),
        oom_score_adj: ranged(hc, "OomScoreAdj", "--oom-score-adj")?,
        oom_kill_disable: hc["OomKillDisable"].as_bool().unwrap_or(false),
        blkio_weight: ranged(hc, "BlkioWeight", "--blkio-weight")?,
        domainname: s(&c["Domainname"]),
        uts_mode: s(&hc["UTSMode"]),
        userns_mode: s(&hc["UsernsMode"]),
        cgroup_parent: s(&hc["CgroupParent"]),
        cgroupns_mode: s(&hc["CgroupnsMode"]),
        annotations: run_extras::key_values("--annotation", &pairs(&hc["Annotations"]))?,
        seccomp: sec.seccomp,
        apparmor: sec.apparmor,
        label_opts: sec.labels,
        container_id_file: s(&hc["ContainerIDFile"]),
        attach_stdin: c["AttachStdin"].as_bool().unwrap_or(false),
        attach_stdout: c["AttachStdout"].as_bool().unwrap_or(false),
        attach_stderr: c["AttachStderr"].as_bool().unwrap_or(false),
        ..Default::default()
    };
    Ok((x, sec.no_new_privileges))
}
