//! The rest of docker's `run`/`create` flags: devices, cgroup resources, namespaces, security
//! options, `--cidfile`, `--label-file`, attach options; and the flags rcompose refuses by name
//! (`--runtime`, `--gpus`, …) with the reason. Parsed here into the engine's `RunExtras`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use rcompose_engine::container::model::RunExtras;
use rcompose_engine::units::parse_size;
use rcompose_wire::run_extras::{self, Unsupported};

#[derive(Debug, Args, Default)]
pub struct RunExtraFlags {
    /// Add a host device to the container (HOST[:CONTAINER][:PERMISSIONS])
    #[arg(long = "device", value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list (e.g. 'c 1:3 mr')
    #[arg(long = "device-cgroup-rule", value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Sysctl options (KEY=VALUE)
    #[arg(long = "sysctl", value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "SHARES")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "MEMS")]
    pub cpuset_mems: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "MICROSECONDS")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(
        long = "cpu-quota",
        value_name = "MICROSECONDS",
        allow_hyphen_values = true
    )]
    pub cpu_quota: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100, -1 to inherit)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
    /// Container NIS domain name
    #[arg(long = "domainname", value_name = "NAME")]
    pub domainname: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long = "uts", value_name = "MODE")]
    pub uts: Option<String>,
    /// User namespace to use (host: the engine does no remapping)
    #[arg(long = "userns", value_name = "MODE")]
    pub userns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns", value_name = "MODE")]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub sig_proxy: Option<bool>,
    /// Set platform if server is multi-platform capable (only this machine's)
    #[arg(long = "platform", value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Refused: rcompose has one runtime (youki's libcontainer, built in)
    #[arg(long = "runtime", value_name = "RUNTIME", hide = true)]
    pub runtime: Option<String>,
    /// Refused: overlay upper dirs have no size quota here
    #[arg(long = "storage-opt", value_name = "OPT", hide = true)]
    pub storage_opt: Vec<String>,
    /// Refused: Linux has only the default isolation
    #[arg(long = "isolation", value_name = "ISOLATION", hide = true)]
    pub isolation: Option<String>,
    /// Refused: only the local volume driver exists
    #[arg(long = "volume-driver", value_name = "DRIVER", hide = true)]
    pub volume_driver: Option<String>,
    /// Refused: no GPU device plugins
    #[arg(long = "gpus", value_name = "GPUS", hide = true)]
    pub gpus: Option<String>,
}

impl RunExtraFlags {
    /// Docker's flags that rcompose cannot honour, refused by name with the reason.
    pub fn refuse_unsupported(&self) -> Result<()> {
        Unsupported {
            runtime: self.runtime.as_deref(),
            storage_opt: !self.storage_opt.is_empty(),
            isolation: self.isolation.as_deref(),
            volume_driver: self.volume_driver.as_deref(),
            gpus: self.gpus.as_deref(),
        }
        .refuse()?;
        Ok(())
    }

    /// `--platform`: this machine's own (`linux`, `linux/amd64`, …); images are pulled for it.
    pub fn check_platform(&self) -> Result<()> {
        let Some(p) = &self.platform else {
            return Ok(());
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or_default();
        let a = parts.next();
        if os == "linux" && a.is_none_or(|a| a == arch) {
            return Ok(());
        }
        bail!(
            "--platform {p} is not supported: this engine runs linux/{arch} containers only (no emulation); use --platform linux/{arch}"
        )
    }

    /// The streams `-a` attaches: (stdin, stdout, stderr); all output streams when not given.
    pub fn streams(&self, interactive: bool) -> Result<(bool, bool, bool)> {
        if self.attach.is_empty() {
            return Ok((interactive, true, true));
        }
        let mut s = (false, false, false);
        for a in &self.attach {
            match a.to_ascii_lowercase().as_str() {
                "stdin" => s.0 = true,
                "stdout" => s.1 = true,
                "stderr" => s.2 = true,
                _ => bail!(
                    "invalid argument \"{a}\" for \"-a, --attach\": use stdin, stdout or stderr"
                ),
            }
        }
        Ok(s)
    }

    /// Labels from `--label-file` (one `KEY=VALUE` a line, `#` comments), lower precedence
    /// than `--label`.
    pub fn file_labels(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for f in &self.label_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading --label-file {}", f.display()))?;
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                // docker skips a line without `=` (an env file would read the variable).
                if let Some((k, v)) = line.split_once('=') {
                    out.insert(k.to_string(), v.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The engine's options, checked for syntax (the engine checks the combinations).
    pub fn extras(&self, security_opt: &[String]) -> Result<(RunExtras, bool)> {
        let size = |flag: &str, v: &Option<String>| -> Result<i64> {
            match v.as_deref() {
                None => Ok(0),
                Some("-1") => Ok(-1),
                Some(s) => parse_size(s).map(|n| n as i64).ok_or_else(|| {
                    anyhow!("invalid value \"{s}\" for {flag}: use a size such as 64m or 1g")
                }),
            }
        };
        let sysctls = run_extras::key_values("--sysctl", &self.sysctl)?;
        let annotations = run_extras::key_values("--annotation", &self.annotation)?;
        let devices = run_extras::devices(&self.device)?;
        run_extras::check_cgroup_rules(&self.device_cgroup_rule)?;
        let sec = rcompose_wire::docker::security_opts(security_opt)?;
        let x = RunExtras {
            devices,
            device_cgroup_rules: self.device_cgroup_rule.clone(),
            group_add: self.group_add.clone(),
            sysctls,
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            memory_reservation: size("--memory-reservation", &self.memory_reservation)?,
            memory_swap: size("--memory-swap", &self.memory_swap)?,
            memory_swappiness: self.memory_swappiness.filter(|s| *s != -1),
            oom_score_adj: self.oom_score_adj.unwrap_or(0),
            oom_kill_disable: self.oom_kill_disable,
            blkio_weight: self.blkio_weight.unwrap_or(0),
            domainname: self.domainname.clone().unwrap_or_default(),
            uts_mode: self.uts.clone().unwrap_or_default(),
            userns_mode: self.userns.clone().unwrap_or_default(),
            cgroup_parent: self.cgroup_parent.clone().unwrap_or_default(),
            cgroupns_mode: self.cgroupns.clone().unwrap_or_default(),
            annotations,
            seccomp: sec.seccomp,
            apparmor: sec.apparmor,
            label_opts: sec.labels,
            container_id_file: self
                .cidfile
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            ..Default::default()
        };
        Ok((x, sec.no_new_privileges))
    }
}

/// `--cidfile`: refuses an existing file (as docker does, so two runs never share one).
pub fn check_cidfile(path: &Option<PathBuf>) -> Result<()> {
    if let Some(p) = path
        && p.exists()
    {
        bail!(
            "container ID file found, make sure the other container isn't running or delete {}",
            p.display()
        );
    }
    Ok(())
}

/// Writes the id to `--cidfile`.
pub fn write_cidfile(path: &Option<PathBuf>, id: &str) -> Result<()> {
    if let Some(p) = path {
        std::fs::write(p, id).with_context(|| format!("writing --cidfile {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_flag() {
        let f = RunExtraFlags {
            gpus: Some("all".into()),
            ..Default::default()
        };
        let e = f.refuse_unsupported().unwrap_err().to_string();
        assert!(e.contains("--gpus"), "{e}");
        let f = RunExtraFlags {
            storage_opt: vec!["size=1G".into()],
            ..Default::default()
        };
        assert!(
            f.refuse_unsupported()
                .unwrap_err()
                .to_string()
                .contains("--storage-opt")
        );
        let f = RunExtraFlags {
            platform: Some("windows/amd64".into()),
            ..Default::default()
        };
        assert!(f.check_platform().is_err());
    }

    #[test]
    fn attach_streams() {
        let f = RunExtraFlags {
            attach: vec!["STDOUT".into()],
            ..Default::default()
        };
        assert_eq!(f.streams(false).unwrap(), (false, true, false));
        let f = RunExtraFlags {
            attach: vec!["stdio".into()],
            ..Default::default()
        };
        assert!(f.streams(false).is_err());
    }

    #[test]
    fn swap_and_swappiness_minus_one() {
        let f = RunExtraFlags {
            memory_swap: Some("-1".into()),
            memory_swappiness: Some(-1),
            memory_reservation: Some("32m".into()),
            ..Default::default()
        };
        let (x, _) = f.extras(&[]).unwrap();
        assert_eq!(x.memory_swap, -1);
        assert_eq!(x.memory_swappiness, None);
        assert_eq!(x.memory_reservation, 32 << 20);
    }
}
