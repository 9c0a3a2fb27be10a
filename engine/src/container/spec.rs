//! OCI runtime spec generation, mirroring what docker (moby's `oci/defaults.go` and
//! `daemon/oci_linux.go`) gives a container: default capabilities with an empty inheritable
//! set, masked and read-only /proc and /sys paths, the default /dev, /dev/shm, read-only /sys,
//! cgroup limits and ulimits, and the optional `--init`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ContainerError;
use super::model::ContainerConfig;
use super::resources::{self, CgroupVersion};
use super::user::ResolvedUser;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability this kernel knows (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where `--init` finds its init on the host (Debian's `tini` package).
pub const HOST_INIT: &str = "/usr/bin/tini-static";
/// Where the init is bind-mounted inside the container (docker uses the same path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Host-side facts the spec needs besides the container's config.
pub struct SpecInput<'a> {
    pub cfg: &'a ContainerConfig,
    pub rootfs: &'a Path,
    pub user: &'a ResolvedUser,
    /// Path of the persistent network namespace, `None` for `--network host`.
    pub netns: Option<&'a Path>,
    /// Resolved host sources for `cfg.host.mounts`, same order.
    pub mount_sources: &'a [PathBuf],
    /// Files generated for the container (hostname, hosts, resolv.conf) to bind-mount.
    pub etc_files: &'a [(PathBuf, &'static str)],
    /// The PID and IPC namespaces (`--pid`, `--ipc`).
    pub pid: Join,
    pub ipc: Join,
    /// Extra groups of `--group-add`, resolved in the image's /etc/group.
    pub group_add: &'a [u32],
    /// The cgroup hierarchy the runtime will write to.
    pub cgroups: CgroupVersion,
}

/// Which namespace of a kind the container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// A new one of its own.
    Own,
    /// The host's (`host` mode): no namespace entry at all.
    Host,
    /// Another container's, by its `/proc/<pid>/ns/<kind>` path.
    Path(PathBuf),
}

/// Resolves `--cap-add/--cap-drop/--privileged` into the final capability list.
pub fn capabilities(cfg: &ContainerConfig) -> Result<Vec<String>, ContainerError> {
    let norm = |c: &str| -> Result<String, ContainerError> {
        let up = c.to_ascii_uppercase();
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if full == "CAP_ALL" || ALL_CAPS.contains(&full.as_str()) {
            Ok(full)
        } else {
            Err(ContainerError::InvalidOption {
                option: "--cap-add/--cap-drop".into(),
                value: c.into(),
                hint: "use a capability name such as NET_ADMIN or ALL".into(),
            })
        }
    };
    // `--privileged` and `ALL` mean every capability we hold ourselves: asking for more
    // (a host whose bounding set lacks some) makes capset fail with EPERM.
    let host = host_bounding_set();
    let all = || -> Vec<String> {
        ALL_CAPS
            .iter()
            .enumerate()
            .filter(|(i, _)| host & (1u64 << i) != 0)
            .map(|(_, s)| s.to_string())
            .collect()
    };
    if cfg.host.privileged {
        return Ok(all());
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for d in &cfg.host.cap_drop {
        let d = norm(d)?;
        if d == "CAP_ALL" {
            caps.clear();
        } else {
            caps.retain(|c| *c != d);
        }
    }
    for a in &cfg.host.cap_add {
        let a = norm(a)?;
        if a == "CAP_ALL" {
            caps = all();
        } else if let Some(i) = ALL_CAPS.iter().position(|c| *c == a)
            && host & (1u64 << i) == 0
        {
            return Err(ContainerError::InvalidOption {
                option: "--cap-add".into(),
                value: a.clone(),
                hint: "this host's bounding set does not include it, so no container can have it"
                    .into(),
            });
        } else if !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

/// Our own capability bounding set (all bits when unreadable).
fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// Builds the OCI runtime spec as JSON (libcontainer reads it from `<bundle>/config.json`).
pub fn build_spec(input: &SpecInput) -> Result<Value, ContainerError> {
    let cfg = input.cfg;
    let caps = capabilities(cfg)?;
    let mut env = cfg.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    env.push(format!("HOSTNAME={}", cfg.hostname));
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", input.user.home));
    }
    if cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let mut args = cfg.args.clone();
    if cfg.host.init {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let rlimits: Vec<Value> = cfg
        .host
        .ulimits
        .iter()
        .map(|u| {
            json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": u.soft, "hard": u.hard})
        })
        .collect();
    let cwd = if cfg.working_dir.is_empty() {
        "/"
    } else {
        &cfg.working_dir
    };
    // As runc's (docker's): the primary group leads the supplementary list.
    let mut gids = vec![input.user.gid];
    for g in input.user.additional_gids.iter().chain(input.group_add) {
        if !gids.contains(g) {
            gids.push(*g);
        }
    }
    let x = &cfg.host.extra;
    let mut process = json!({
        "terminal": cfg.tty,
        "user": {"uid": input.user.uid, "gid": input.user.gid,
                 "additionalGids": gids},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": [], "ambient": []
        },
    });
    // Only when asked: libcontainer loads seccomp before dropping capabilities when the
    // field is absent, and after (needing NNP) when it is present, even as false.
    if cfg.host.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    if x.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(x.oom_score_adj);
    }
    if !x.apparmor.is_empty() && x.apparmor != "unconfined" {
        process["apparmorProfile"] = json!(x.apparmor);
    }

    let shm = if cfg.host.shm_size > 0 {
        cfg.host.shm_size
    } else {
        64 << 20
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if cfg.host.privileged {"rw"} else {"ro"}]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    for (src, dst) in input.etc_files {
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    for (m, src) in cfg.host.mounts.iter().zip(input.mount_sources) {
        let mut opts = vec!["rbind", "rprivate"];
        if m.read_only {
            opts.push("ro");
        }
        if m.kind == "tmpfs" {
            mounts.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec"]}));
        } else {
            mounts.push(
                json!({"destination": m.target, "type": "bind", "source": src, "options": opts}),
            );
        }
    }
    for t in &cfg.host.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
        o.extend(opts.split(',').filter(|s| !s.is_empty()));
        mounts.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    if cfg.host.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": HOST_INIT, "options": ["bind", "ro"]}));
    }

    let mut namespaces = vec![json!({"type": "mount"})];
    // `--uts host` shares the host's name (docker refuses -h with it, see `validate`).
    let own_uts = x.uts_mode != "host";
    if own_uts {
        namespaces.push(json!({"type": "uts"}));
    }
    if resources::cgroupns_private(&cfg.host, input.cgroups) {
        namespaces.push(json!({"type": "cgroup"}));
    }
    for (kind, join) in [("pid", &input.pid), ("ipc", &input.ipc)] {
        match join {
            Join::Own => namespaces.push(json!({"type": kind})),
            Join::Host => {}
            Join::Path(p) => namespaces.push(json!({"type": kind, "path": p})),
        }
    }
    if let Some(ns) = input.netns {
        namespaces.push(json!({"type": "network", "path": ns}));
    }

    let (devices, device_rules) = resources::host_devices(&x.devices)?;
    let resources = resources::linux_resources(&cfg.host, &device_rules, input.cgroups);

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": resources::cgroups_path(cfg),
    });
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }
    if !x.sysctls.is_empty() {
        linux["sysctl"] = json!(x.sysctls);
    }
    if !cfg.host.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    match x.seccomp.as_deref() {
        Some("unconfined") => {}
        Some(profile) => linux["seccomp"] = super::seccomp::from_docker_profile(profile, &caps)?,
        None if cfg.host.privileged => {}
        None => linux["seccomp"] = super::seccomp::default_profile(&caps),
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": input.rootfs, "readonly": cfg.host.read_only},
        "mounts": mounts,
        "linux": linux,
    });
    // Names belong to the UTS namespace: with the host's, the runtime must not set them.
    if own_uts {
        spec["hostname"] = json!(cfg.hostname);
        if !x.domainname.is_empty() {
            spec["domainname"] = json!(x.domainname);
        }
    }
    if !x.annotations.is_empty() {
        spec["annotations"] = json!(x.annotations);
    }
    Ok(spec)
}

/// Docker's entrypoint/cmd rules: `--entrypoint` replaces the image's entrypoint and clears
/// its cmd; command-line args replace the image's cmd.
pub fn resolve_args(
    image_entrypoint: &[String],
    image_cmd: &[String],
    entrypoint_override: Option<&[String]>,
    cmd_override: &[String],
) -> (Vec<String>, Vec<String>) {
    let entrypoint: Vec<String> = match entrypoint_override {
        Some(e) => e.to_vec(),
        None => image_entrypoint.to_vec(),
    };
    let cmd: Vec<String> = if !cmd_override.is_empty() {
        cmd_override.to_vec()
    } else if entrypoint_override.is_some() {
        vec![]
    } else {
        image_cmd.to_vec()
    };
    (entrypoint, cmd)
}

/// A minimal config for unit tests of this module and its neighbours.
#[cfg(test)]
pub(crate) fn tests_config() -> ContainerConfig {
    use super::model::HostConfig;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    ContainerConfig {
        id: "abc".into(),
        name: "n".into(),
        created: String::new(),
        image: String::new(),
        image_id: String::new(),
        layer_dirs: vec![],
        args: s(&["true"]),
        entrypoint: vec![],
        cmd: s(&["true"]),
        env: vec![],
        working_dir: String::new(),
        user: String::new(),
        hostname: "abc".into(),
        labels: Default::default(),
        tty: false,
        open_stdin: false,
        stop_signal: "SIGTERM".into(),
        stop_timeout: 10,
        host: HostConfig {
            memory: 32 << 20,
            pids_limit: 32,
            cap_drop: s(&["net_raw"]),
            cap_add: s(&["SYS_ADMIN"]),
            ..Default::default()
        },
        healthcheck: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_cmd_rules() {
        let (e, c) = resolve_args(&s(&["/ep"]), &s(&["a"]), None, &[]);
        assert_eq!((e, c), (s(&["/ep"]), s(&["a"])));
        let (e, c) = resolve_args(&s(&["/ep"]), &s(&["a"]), None, &s(&["b"]));
        assert_eq!((e, c), (s(&["/ep"]), s(&["b"])));
        let (e, c) = resolve_args(&s(&["/ep"]), &s(&["a"]), Some(&s(&["/x"])), &[]);
        assert_eq!((e, c), (s(&["/x"]), vec![]));
    }

    fn cfg() -> ContainerConfig {
        super::tests_config()
    }

    #[test]
    fn spec_is_valid_oci_with_docker_defaults() {
        let c = cfg();
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let v = build_spec(&SpecInput {
            cfg: &c,
            rootfs: Path::new("/r"),
            user: &user,
            netns: Some(Path::new("/run/x")),
            mount_sources: &[],
            etc_files: &[],
            pid: Join::Own,
            ipc: Join::Host,
            group_add: &[],
            cgroups: CgroupVersion::V1,
        })
        .unwrap();
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        let bounding = caps.bounding().as_ref().unwrap();
        assert_eq!(bounding.len(), 14);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 32);
        assert!(
            v["linux"]["maskedPaths"]
                .to_string()
                .contains("/proc/kcore")
        );
        assert!(
            !v["process"]["capabilities"]["bounding"]
                .to_string()
                .contains("NET_RAW")
        );
    }

    #[test]
    fn bad_capability_is_rejected() {
        let mut c = cfg();
        c.host.cap_add = s(&["FLY"]);
        assert!(capabilities(&c).is_err());
    }
}
