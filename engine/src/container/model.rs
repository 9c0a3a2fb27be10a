//! The persisted container model: what the user asked for (`ContainerConfig`, written once at
//! create time) and what happened since (`ContainerState`, rewritten on every transition).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ContainerError;

/// Everything needed to (re)start the container, fixed at create time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image reference as the user typed it (or the rootfs directory).
    pub image: String,
    pub image_id: String,
    /// Lower layers, lowest first.
    pub layer_dirs: Vec<PathBuf>,
    /// Final argv (entrypoint + cmd resolved with Docker's rules).
    pub args: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// The user as given (`name`, `uid`, `uid:gid`, `name:group`), empty for root.
    pub user: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: String,
    /// Grace period in seconds before SIGKILL.
    pub stop_timeout: u32,
    pub host: HostConfig,
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
}

impl ContainerConfig {
    /// The container's names for its /etc/hosts line: `host.domain host` with `--domainname`
    /// (as docker writes it), else the host name.
    pub fn fqdn_names(&self) -> String {
        match self.host.extra.domainname.as_str() {
            "" => self.hostname.clone(),
            d => format!("{}.{d} {}", self.hostname, self.hostname),
        }
    }
}

/// Resource and security options (docker's `HostConfig`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostConfig {
    pub auto_remove: bool,
    pub restart: RestartPolicy,
    /// `none` or `host` for now; networks arrive with the networking crate.
    pub network_mode: String,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub no_new_privileges: bool,
    /// Bytes, 0 = unlimited.
    pub memory: i64,
    /// CPUs × 1e9, 0 = unlimited.
    pub nano_cpus: i64,
    /// 0 = unlimited.
    pub pids_limit: i64,
    /// Bytes for /dev/shm.
    pub shm_size: i64,
    pub ulimits: Vec<Ulimit>,
    pub init: bool,
    pub tmpfs: Vec<String>,
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// `json-file` (also when empty: older configs) or `none` (nothing is kept; `logs`
    /// refuses, as docker's does).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_driver: String,
    /// `--pid`: empty (own namespace), `host`, or `container:<full id>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid_mode: String,
    /// `--ipc`: empty (own namespace; docker's private/shareable), `host`, or
    /// `container:<full id>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipc_mode: String,
    /// The driver's options (`--log-opt`): json-file's `max-size` and `max-file`; checked
    /// by [`HostConfig::log_rotation`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_opts: BTreeMap<String, String>,
    /// The rest of docker's `run` surface; every field defaults so configs written before
    /// they existed still load.
    #[serde(default, flatten)]
    pub extra: RunExtras,
}

/// Devices, cgroup resources, namespaces and security options beyond the basics (docker's
/// `--device`, `--cpu-shares`, `--sysctl`, `--uts`, `--security-opt seccomp=…`, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RunExtras {
    /// `--device HOST[:CONTAINER[:PERMS]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule 'c 1:3 mr'`, checked at create.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// `--group-add` names or gids, resolved in the image's /etc/group at start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// cgroup v1 shares (v2: converted to cpu.weight); 0 = the kernel's default.
    pub cpu_shares: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// CFS period and quota in microseconds; 0 = unset.
    pub cpu_period: i64,
    pub cpu_quota: i64,
    /// Soft limit in bytes (v1 memory.soft_limit_in_bytes, v2 memory.low).
    pub memory_reservation: i64,
    /// Memory + swap in bytes as docker counts it; 0 = twice `memory`, -1 = unlimited.
    pub memory_swap: i64,
    /// 0..=100; `None` = inherit (docker's -1).
    pub memory_swappiness: Option<i64>,
    pub oom_score_adj: i32,
    pub oom_kill_disable: bool,
    /// 10..=1000, 0 = unset.
    pub blkio_weight: u16,
    /// `--domainname` (Config.Domainname in docker's inspect).
    pub domainname: String,
    /// `--uts`: empty (own namespace) or `host`.
    pub uts_mode: String,
    /// `--userns`: empty or `host` (the engine does no user-namespace remapping).
    pub userns_mode: String,
    /// `--cgroup-parent`: the cgroup the container's goes under instead of `/rcompose`.
    pub cgroup_parent: String,
    /// `--cgroupns`: `private`, `host`, or empty for the engine's default (see
    /// `resources::cgroupns_private`).
    pub cgroupns_mode: String,
    /// `--annotation KEY=VALUE`: passed to the runtime in the OCI spec.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `--security-opt seccomp=…`: `unconfined`, or a docker-format profile (JSON text, as
    /// docker keeps it) converted to the OCI form at start; `None` = the default profile.
    pub seccomp: Option<String>,
    /// `--security-opt apparmor=…` (only on hosts with AppArmor).
    pub apparmor: String,
    /// `--security-opt label=…` (only `disable` on hosts without SELinux).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label_opts: Vec<String>,
    /// `--cidfile` (docker's HostConfig.ContainerIDFile).
    pub container_id_file: String,
    /// The streams a foreground `run` attached (docker's Config.AttachStdin/out/err).
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `--volumes-from` as given (the mounts themselves are copied at create).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// Compose `post_start` / `pre_stop` hooks, run by the compose backend as execs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<Hook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<Hook>,
}

/// A command run inside the container at a lifecycle point (compose's hooks).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Hook {
    pub command: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub env: Vec<String>,
}

/// A host device made available in the container (docker's `DeviceMapping`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    /// Some of `rwm`.
    pub cgroup_permissions: String,
}

impl HostConfig {
    /// The logging driver in docker's terms.
    pub fn log_driver(&self) -> &str {
        if self.log_driver.is_empty() {
            "json-file"
        } else {
            &self.log_driver
        }
    }

    /// Whether the container's output is kept for `logs`.
    pub fn keeps_logs(&self) -> bool {
        self.log_driver() != "none"
    }

    /// How the json-file log rotates, from `log_opts`; refuses what docker refuses.
    pub fn log_rotation(&self) -> Result<crate::logs::Rotation, crate::logs::LogError> {
        crate::logs::Rotation::from_options(self.log_driver(), &self.log_opts)
    }
}

/// The logging drivers the engine has: docker's default and `none`.
pub const LOG_DRIVERS: [&str; 2] = ["json-file", "none"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// A bind mount or volume attached to the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Host path for binds, volume name for volumes, empty for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// True for anonymous volumes (removed by `rm -v`).
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthConfig {
    /// Docker's form: `["CMD-SHELL", "..."]`, `["CMD", ...]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub start_period_ms: u64,
    pub retries: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Parses docker's `--restart` syntax.
    pub fn parse(s: &str) -> Result<Self, ContainerError> {
        let bad = || ContainerError::InvalidOption {
            option: "--restart".into(),
            value: s.into(),
            hint: "use no, always, unless-stopped or on-failure[:max-retries]".into(),
        };
        match s.split_once(':') {
            None => match s {
                "" | "no" => Ok(Self::No),
                "always" => Ok(Self::Always),
                "unless-stopped" => Ok(Self::UnlessStopped),
                "on-failure" => Ok(Self::OnFailure { max_retries: 0 }),
                _ => Err(bad()),
            },
            Some(("on-failure", n)) => Ok(Self::OnFailure {
                max_retries: n.parse().map_err(|_| bad())?,
            }),
            Some(_) => Err(bad()),
        }
    }

    /// Docker's name for the policy (`inspect` HostConfig.RestartPolicy.Name).
    pub fn name(&self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
            Self::OnFailure { .. } => "on-failure",
        }
    }

    /// Whether a container that exited with `code` should be restarted, given how many times
    /// it has been restarted already and whether the user stopped it.
    pub fn should_restart(&self, code: i32, restarts: u32, user_stopped: bool) -> bool {
        if user_stopped {
            return false;
        }
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max_retries } => {
                code != 0 && (*max_retries == 0 || restarts < *max_retries)
            }
        }
    }
}

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

/// What happened to the container; rewritten atomically on every transition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerState {
    pub status: Status,
    /// Host pid of the container's init while running, else 0.
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/<pid>/stat) so a reused pid is never mistaken.
    pub pid_start_ticks: u64,
    pub monitor_pid: i32,
    #[serde(default)]
    pub monitor_start_ticks: u64,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    #[serde(default)]
    pub health: Option<HealthState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthState {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// The zero time docker prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Now, formatted as docker does (RFC 3339 with nanoseconds, UTC).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_parses_docker_syntax() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
    }

    #[test]
    fn on_failure_counts_retries() {
        let p = RestartPolicy::OnFailure { max_retries: 3 };
        assert!(p.should_restart(1, 2, false));
        assert!(!p.should_restart(1, 3, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(!RestartPolicy::Always.should_restart(1, 0, true));
    }
}
