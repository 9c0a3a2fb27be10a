//! A container's cgroup resources, devices and sysctls: docker's `--cpu-shares`,
//! `--cpuset-*`, `--cpu-period/--cpu-quota`, `--memory-*`, `--oom-kill-disable`,
//! `--blkio-weight`, `--device`, `--device-cgroup-rule` and `--sysctl`, checked at create
//! (so a bad value creates nothing) and turned into the OCI spec's `linux.resources` at start.
//!
//! The runtime (youki's libcgroups) writes the values to cgroup v1 controllers or to the v2
//! unified hierarchy, whichever the host has; [`cgroup_files`] states what it writes on each,
//! including v2's conversions (shares → `cpu.weight`, memory+swap → `memory.swap.max`), so
//! tests and `doctor` can check a container's cgroup on either kind of host.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{Value, json};

use super::ContainerError;
use super::model::{ContainerConfig, DeviceMapping, HostConfig};

/// The cgroup hierarchy the runtime writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// v1 controllers (also hybrid hosts, whose v2 hierarchy has no controllers).
    V1,
    /// The unified v2 hierarchy at /sys/fs/cgroup.
    V2,
}

impl CgroupVersion {
    /// This host's, as libcgroups decides it: v2 only when /sys/fs/cgroup itself is cgroup2.
    pub fn host() -> Self {
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            Self::V2
        } else {
            Self::V1
        }
    }
}

fn invalid(option: &str, value: impl Into<String>, hint: impl Into<String>) -> ContainerError {
    ContainerError::InvalidOption {
        option: option.into(),
        value: value.into(),
        hint: hint.into(),
    }
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]` (docker's syntax; permissions default to rwm).
pub fn parse_device(s: &str) -> Result<DeviceMapping, ContainerError> {
    let parts: Vec<&str> = s.split(':').collect();
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms_ok(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if perms_ok(p) => (*h, *c, *p),
        _ => {
            return Err(invalid(
                "--device",
                s,
                "use HOST[:CONTAINER][:PERMISSIONS], e.g. /dev/fuse or /dev/sda:/dev/xvda:rwm",
            ));
        }
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(invalid("--device", s, "device paths must be absolute"));
    }
    Ok(DeviceMapping {
        path_on_host: host.into(),
        path_in_container: ctr.into(),
        cgroup_permissions: perms.into(),
    })
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'` as an OCI device rule (`*` = any number).
pub fn device_cgroup_rule(s: &str) -> Result<Value, ContainerError> {
    let bad = || {
        invalid(
            "--device-cgroup-rule",
            s,
            "use 'TYPE MAJOR:MINOR ACCESS' with TYPE a, b or c, numbers or *, ACCESS some of rwm, e.g. 'c 1:3 mr'",
        )
    };
    let f: Vec<&str> = s.split_whitespace().collect();
    let [kind, nums, access] = f.as_slice() else {
        return Err(bad());
    };
    if !matches!(*kind, "a" | "b" | "c") || access.is_empty() {
        return Err(bad());
    }
    if !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    let (maj, min) = nums.split_once(':').ok_or_else(bad)?;
    let num = |n: &str| -> Result<Value, ContainerError> {
        if n == "*" {
            Ok(Value::Null)
        } else {
            n.parse::<i64>().map(|v| json!(v)).map_err(|_| bad())
        }
    };
    let mut rule = json!({"allow": true, "type": kind, "access": access});
    for (k, v) in [("major", num(maj)?), ("minor", num(min)?)] {
        if !v.is_null() {
            rule[k] = v;
        }
    }
    Ok(rule)
}

/// Namespaced sysctls a container may set (docker's `IsValidSysctl`); `net.*` needs the
/// container's own network namespace, `kernel.domainname`/`hostname` its own UTS namespace.
pub fn check_sysctl(name: &str, host: &HostConfig) -> Result<(), ContainerError> {
    const IPC: [&str; 6] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
    ];
    let ipc = IPC.contains(&name)
        || name == "kernel.shmmni"
        || name == "kernel.shm_rmid_forced"
        || name.starts_with("fs.mqueue.");
    if ipc {
        if host.ipc_mode == "host" {
            return Err(invalid(
                "--sysctl",
                name,
                "IPC sysctls cannot be set with --ipc host",
            ));
        }
        return Ok(());
    }
    if name.starts_with("net.") {
        if host.network_mode == "host" {
            return Err(invalid(
                "--sysctl",
                name,
                "net.* sysctls cannot be set with --network host (they would change the host's)",
            ));
        }
        return Ok(());
    }
    if name == "kernel.domainname" || name == "kernel.hostname" {
        return Ok(());
    }
    Err(invalid(
        "--sysctl",
        name,
        "not a namespaced sysctl; a container may set net.*, fs.mqueue.*, kernel.msg*, kernel.sem and kernel.shm*",
    ))
}

/// Create-time checks of the resource options (docker's `verifyPlatformContainerResources`).
pub fn validate(host: &HostConfig) -> Result<(), ContainerError> {
    let x = &host.extra;
    if x.cpu_shares < 0 {
        return Err(invalid(
            "--cpu-shares",
            x.cpu_shares.to_string(),
            "use a positive number (1024 is the default weight)",
        ));
    }
    if host.nano_cpus > 0 && (x.cpu_period > 0 || x.cpu_quota > 0) {
        return Err(invalid(
            "--cpus",
            format!("{}", host.nano_cpus as f64 / 1e9),
            "conflicts with --cpu-period/--cpu-quota: give one or the other",
        ));
    }
    if x.cpu_period != 0 && !(1000..=1_000_000).contains(&x.cpu_period) {
        return Err(invalid(
            "--cpu-period",
            x.cpu_period.to_string(),
            "use 1000 to 1000000 microseconds",
        ));
    }
    if x.cpu_quota != 0 && x.cpu_quota != -1 && x.cpu_quota < 1000 {
        return Err(invalid(
            "--cpu-quota",
            x.cpu_quota.to_string(),
            "use at least 1000 microseconds, or -1 for no limit",
        ));
    }
    for (flag, v) in [
        ("--cpuset-cpus", &x.cpuset_cpus),
        ("--cpuset-mems", &x.cpuset_mems),
    ] {
        if !v.is_empty() && !valid_cpuset(v) {
            return Err(invalid(flag, v.as_str(), "use a list such as 0-3 or 0,2"));
        }
    }
    if x.memory_reservation < 0 {
        return Err(invalid(
            "--memory-reservation",
            x.memory_reservation.to_string(),
            "use a size such as 64m",
        ));
    }
    if host.memory > 0 && x.memory_reservation > host.memory {
        return Err(invalid(
            "--memory-reservation",
            x.memory_reservation.to_string(),
            "must be smaller than --memory",
        ));
    }
    if x.memory_swap > 0 {
        if host.memory == 0 {
            return Err(invalid(
                "--memory-swap",
                x.memory_swap.to_string(),
                "needs --memory too (it is memory plus swap)",
            ));
        }
        if x.memory_swap < host.memory {
            return Err(invalid(
                "--memory-swap",
                x.memory_swap.to_string(),
                "must be at least --memory (it is memory plus swap), or -1 for unlimited swap",
            ));
        }
    } else if x.memory_swap < -1 {
        return Err(invalid(
            "--memory-swap",
            x.memory_swap.to_string(),
            "use a size, or -1 for unlimited swap",
        ));
    }
    if let Some(s) = x.memory_swappiness
        && !(0..=100).contains(&s)
    {
        return Err(invalid(
            "--memory-swappiness",
            s.to_string(),
            "use 0 to 100, or -1 to inherit the host's",
        ));
    }
    if !(-1000..=1000).contains(&x.oom_score_adj) {
        return Err(invalid(
            "--oom-score-adj",
            x.oom_score_adj.to_string(),
            "use -1000 to 1000",
        ));
    }
    if x.blkio_weight != 0 && !(10..=1000).contains(&x.blkio_weight) {
        return Err(invalid(
            "--blkio-weight",
            x.blkio_weight.to_string(),
            "use 10 to 1000 (0 leaves it unset)",
        ));
    }
    for d in &x.devices {
        parse_device(&format!(
            "{}:{}:{}",
            d.path_on_host, d.path_in_container, d.cgroup_permissions
        ))?;
    }
    for r in &x.device_cgroup_rules {
        device_cgroup_rule(r)?;
    }
    for k in x.sysctls.keys() {
        check_sysctl(k, host)?;
    }
    if !x.cgroup_parent.is_empty()
        && (x.cgroup_parent.ends_with(".slice")
            || x.cgroup_parent.split('/').any(|c| c == ".." || c == "."))
    {
        return Err(invalid(
            "--cgroup-parent",
            x.cgroup_parent.as_str(),
            "use a cgroupfs path such as /mygroup (the engine does not use systemd slices)",
        ));
    }
    Ok(())
}

fn valid_cpuset(s: &str) -> bool {
    s.split(',').all(|part| {
        let mut it = part.splitn(2, '-');
        let a = it.next().and_then(|a| a.parse::<u32>().ok());
        match (a, it.next()) {
            (Some(_), None) => true,
            (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| b >= a),
            _ => false,
        }
    })
}

/// The container's cgroup, as the spec's `cgroupsPath`: `<parent>/<id>`, under `/rcompose`
/// unless `--cgroup-parent` says otherwise (relative parents are taken from the root, as
/// docker's cgroupfs driver does).
pub fn cgroups_path(cfg: &ContainerConfig) -> String {
    let parent = cfg.host.extra.cgroup_parent.trim_end_matches('/');
    if parent.is_empty() {
        return format!("/rcompose/{}", cfg.id);
    }
    let parent = parent.trim_start_matches('/');
    format!("/{parent}/{}", cfg.id)
}

/// Whether the container gets its own cgroup namespace: `--cgroupns private|host`, else
/// docker 20.10's default (private on a pure v2 host, the host's on v1).
pub fn cgroupns_private(host: &HostConfig, version: CgroupVersion) -> bool {
    match host.extra.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        _ => version == CgroupVersion::V2,
    }
}

/// Docker's name for the cgroup namespace mode (`inspect` HostConfig.CgroupnsMode).
pub fn cgroupns_name(host: &HostConfig, version: CgroupVersion) -> &'static str {
    if cgroupns_private(host, version) {
        "private"
    } else {
        "host"
    }
}

/// Drops the options the host cannot honour, as docker does (the inspect fields then show
/// docker's values: 0, false, null, or -1 for swap), and returns docker's warnings for them,
/// for the CLI to print.
pub fn discard_unsupported(host: &mut HostConfig, version: CgroupVersion) -> Vec<String> {
    let mut w = vec![];
    let memory = host.memory;
    let x = &mut host.extra;
    if x.blkio_weight > 0 && !blkio_weight_supported(version) {
        x.blkio_weight = 0;
        w.push(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
                .into(),
        );
    }
    if version == CgroupVersion::V2 {
        if x.memory_swappiness.take().is_some() {
            w.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
        }
        if x.oom_kill_disable {
            x.oom_kill_disable = false;
            w.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
        }
    } else if memory > 0 && !Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
    {
        if x.memory_swap != 0 {
            w.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        }
        x.memory_swap = -1;
    }
    if x.oom_kill_disable && memory == 0 {
        w.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    w
}

fn blkio_weight_supported(version: CgroupVersion) -> bool {
    match version {
        CgroupVersion::V1 => ["blkio/blkio.weight", "blkio/blkio.bfq.weight"]
            .iter()
            .any(|f| Path::new("/sys/fs/cgroup").join(f).exists()),
        CgroupVersion::V2 => std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
            .is_ok_and(|s| s.split_whitespace().any(|c| c == "io")),
    }
}

/// Docker's default device allow-list (moby `oci/defaults.go`).
fn default_device_rules() -> Vec<Value> {
    let c = |major: i64, minor: Option<i64>| {
        let mut r = json!({"allow": true, "type": "c", "major": major, "access": "rwm"});
        if let Some(m) = minor {
            r["minor"] = json!(m);
        }
        r
    };
    vec![
        json!({"allow": false, "access": "rwm"}),
        c(1, Some(5)),
        c(1, Some(3)),
        c(1, Some(9)),
        c(1, Some(8)),
        c(5, Some(0)),
        c(1, Some(7)),
        c(5, Some(1)),
        c(5, Some(2)),
        c(136, None),
        json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
    ]
}

/// The host devices of `--device`, as the spec's `linux.devices` entries plus the cgroup rules
/// allowing them. A directory brings every device node directly in it (docker's behaviour).
pub fn host_devices(maps: &[DeviceMapping]) -> Result<(Vec<Value>, Vec<Value>), ContainerError> {
    let mut nodes = vec![];
    let mut rules = vec![];
    for m in maps {
        let host = Path::new(&m.path_on_host);
        let md = std::fs::metadata(host).map_err(|e| {
            invalid(
                "--device",
                m.path_on_host.as_str(),
                format!("cannot use it: {e}"),
            )
        })?;
        let mut found: Vec<(std::path::PathBuf, String, std::fs::Metadata)> = vec![];
        if md.is_dir() {
            let rd = std::fs::read_dir(host).map_err(|e| ContainerError::io(host, e))?;
            for ent in rd.flatten() {
                if let Ok(emd) = std::fs::metadata(ent.path()) {
                    let inside = format!(
                        "{}/{}",
                        m.path_in_container.trim_end_matches('/'),
                        ent.file_name().to_string_lossy()
                    );
                    found.push((ent.path(), inside, emd));
                }
            }
        } else {
            found.push((host.to_path_buf(), m.path_in_container.clone(), md));
        }
        let mut any = false;
        for (path, inside, md) in found {
            let ft = md.file_type();
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            any = true;
            let rdev = md.rdev();
            let (major, minor) = (libc::major(rdev) as i64, libc::minor(rdev) as i64);
            nodes.push(json!({
                "path": inside, "type": kind, "major": major, "minor": minor,
                "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid(),
            }));
            rules.push(
                json!({"allow": true, "type": kind, "major": major, "minor": minor,
                              "access": m.cgroup_permissions}),
            );
            let _ = path;
        }
        if !any {
            return Err(invalid(
                "--device",
                m.path_on_host.as_str(),
                "not a character or block device (nor a directory holding some)",
            ));
        }
    }
    Ok((nodes, rules))
}

/// The spec's `linux.resources`: device rules, memory, CPU, block I/O and pids.
pub fn linux_resources(host: &HostConfig, device_rules: &[Value], version: CgroupVersion) -> Value {
    let x = &host.extra;
    let mut devices = if host.privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        default_device_rules()
    };
    devices.extend(device_rules.iter().cloned());
    for r in &x.device_cgroup_rules {
        if let Ok(rule) = device_cgroup_rule(r) {
            devices.push(rule);
        }
    }
    let mut res = json!({"devices": devices});
    let mut memory = serde_json::Map::new();
    if host.memory > 0 {
        memory.insert("limit".into(), json!(host.memory));
        let memsw = version == CgroupVersion::V2
            || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
        if memsw {
            let swap = match x.memory_swap {
                0 => host.memory * 2,
                s => s,
            };
            memory.insert("swap".into(), json!(swap));
        }
    }
    if x.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(x.memory_reservation));
    }
    if let Some(s) = x.memory_swappiness
        && version == CgroupVersion::V1
    {
        memory.insert("swappiness".into(), json!(s));
    }
    if !memory.is_empty() {
        res["memory"] = Value::Object(memory);
    }
    if x.oom_kill_disable && version == CgroupVersion::V1 {
        res["memory"]["disableOOMKiller"] = json!(true);
    }
    let mut cpu = serde_json::Map::new();
    if host.nano_cpus > 0 {
        let period: u64 = 100_000;
        let quota = (host.nano_cpus as u64).saturating_mul(period) / 1_000_000_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(quota));
    }
    if x.cpu_period > 0 {
        cpu.insert("period".into(), json!(x.cpu_period));
    }
    if x.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(x.cpu_quota));
    }
    if x.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(x.cpu_shares));
    }
    if !x.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(x.cpuset_cpus));
    }
    if !x.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(x.cpuset_mems));
    }
    if !cpu.is_empty() {
        res["cpu"] = Value::Object(cpu);
    }
    if x.blkio_weight > 0 && blkio_weight_supported(version) {
        res["blockIO"] = json!({"weight": x.blkio_weight});
    }
    if host.pids_limit > 0 {
        res["pids"] = json!({"limit": host.pids_limit});
    }
    res
}

/// `--oom-kill-disable` on cgroup v1, for the container whose bundle is `bundle`: the
/// runtime's memory controller writes `oom_kill_disable 0` whatever the spec says, so the
/// value is written after the runtime created the cgroup. No-op unless the spec asks for it.
pub fn apply_oom_kill_disable(bundle: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(bundle.join("config.json"))?;
    if !text.contains("\"disableOOMKiller\":true") {
        return Ok(());
    }
    let spec: Value = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    let Some(path) = spec["linux"]["cgroupsPath"].as_str() else {
        return Ok(());
    };
    let file = Path::new("/sys/fs/cgroup/memory")
        .join(path.trim_start_matches('/'))
        .join("memory.oom_control");
    std::fs::write(&file, "1")
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", file.display())))
}

/// cgroup v1 shares [2, 262144] → v2 `cpu.weight` [1, 10000], as crun and libcgroups convert
/// (a quadratic fit in log space that maps the default 1024 to the default 100).
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

/// What the runtime writes into the container's cgroup for the resource options:
/// `(controller, file, value)`; the controller is the v1 hierarchy's name, empty on v2.
pub fn cgroup_files(host: &HostConfig, version: CgroupVersion) -> Vec<(String, String, String)> {
    let x = &host.extra;
    let mut out: Vec<(String, String, String)> = vec![];
    let mut put = |c: &str, f: &str, v: String| out.push((c.into(), f.into(), v));
    let quota = if x.cpu_quota != 0 {
        x.cpu_quota
    } else if host.nano_cpus > 0 {
        host.nano_cpus * 100_000 / 1_000_000_000
    } else {
        0
    };
    let period = if x.cpu_period > 0 {
        x.cpu_period
    } else if host.nano_cpus > 0 {
        100_000
    } else {
        0
    };
    match version {
        CgroupVersion::V1 => {
            if x.cpu_shares > 0 {
                put("cpu", "cpu.shares", x.cpu_shares.to_string());
            }
            if period > 0 {
                put("cpu", "cpu.cfs_period_us", period.to_string());
            }
            if quota != 0 {
                put("cpu", "cpu.cfs_quota_us", quota.to_string());
            }
            if !x.cpuset_cpus.is_empty() {
                put("cpuset", "cpuset.cpus", x.cpuset_cpus.clone());
            }
            if !x.cpuset_mems.is_empty() {
                put("cpuset", "cpuset.mems", x.cpuset_mems.clone());
            }
            if host.memory > 0 {
                put("memory", "memory.limit_in_bytes", host.memory.to_string());
            }
            if x.memory_reservation > 0 {
                put(
                    "memory",
                    "memory.soft_limit_in_bytes",
                    x.memory_reservation.to_string(),
                );
            }
            if host.memory > 0 && x.memory_swap > 0 {
                put(
                    "memory",
                    "memory.memsw.limit_in_bytes",
                    x.memory_swap.to_string(),
                );
            }
            if let Some(s) = x.memory_swappiness {
                put("memory", "memory.swappiness", s.to_string());
            }
            if x.oom_kill_disable {
                put("memory", "memory.oom_control", "oom_kill_disable 1".into());
            }
            if x.blkio_weight > 0 {
                put("blkio", "blkio.weight", x.blkio_weight.to_string());
            }
            if host.pids_limit > 0 {
                put("pids", "pids.max", host.pids_limit.to_string());
            }
        }
        CgroupVersion::V2 => {
            if x.cpu_shares > 0 {
                put(
                    "",
                    "cpu.weight",
                    cpu_weight_from_shares(x.cpu_shares as u64).to_string(),
                );
            }
            if quota != 0 || period > 0 {
                let q = if quota > 0 {
                    quota.to_string()
                } else {
                    "max".into()
                };
                put("", "cpu.max", format!("{q} {}", period.max(100_000)));
            }
            if !x.cpuset_cpus.is_empty() {
                put("", "cpuset.cpus", x.cpuset_cpus.clone());
            }
            if !x.cpuset_mems.is_empty() {
                put("", "cpuset.mems", x.cpuset_mems.clone());
            }
            if host.memory > 0 {
                put("", "memory.max", host.memory.to_string());
                // v2 counts swap alone; docker's value is memory + swap.
                let swap = match x.memory_swap {
                    0 => host.memory.to_string(),
                    -1 => "max".into(),
                    s => (s - host.memory).to_string(),
                };
                put("", "memory.swap.max", swap);
            }
            if x.memory_reservation > 0 {
                put("", "memory.low", x.memory_reservation.to_string());
            }
            if host.pids_limit > 0 {
                put("", "pids.max", host.pids_limit.to_string());
            }
        }
    }
    out
}

/// `--uts`, `--userns`, `--cgroupns` and the resource options, checked before anything is
/// created (docker refuses the same combinations when the container is created).
pub fn check_modes(host: &HostConfig, hostname: Option<&str>) -> Result<(), ContainerError> {
    let x = &host.extra;
    let bad = |option: &str, value: &str, hint: &str| ContainerError::InvalidOption {
        option: option.into(),
        value: value.into(),
        hint: hint.into(),
    };
    match x.uts_mode.as_str() {
        "" => {}
        "host" => {
            if let Some(hostname) = hostname {
                return Err(bad(
                    "--hostname",
                    hostname,
                    "conflicting options: hostname and the UTS mode host (the host's name is used)",
                ));
            }
            if !x.domainname.is_empty() {
                return Err(bad(
                    "--domainname",
                    &x.domainname,
                    "conflicting options: domainname and the UTS mode host",
                ));
            }
        }
        m => {
            return Err(bad(
                "--uts",
                m,
                "use host (or leave it out for the container's own)",
            ));
        }
    }
    if !matches!(x.userns_mode.as_str(), "" | "host") {
        return Err(bad(
            "--userns",
            &x.userns_mode,
            "only host: the engine does not remap users (no userns-remap), so containers already use the host's user namespace",
        ));
    }
    if !matches!(x.cgroupns_mode.as_str(), "" | "private" | "host") {
        return Err(bad("--cgroupns", &x.cgroupns_mode, "use private or host"));
    }
    validate(host)
}

#[cfg(test)]
mod tests;
