//! Facts about the host the engine runs on (`system info`) and the processes of a pid
//! namespace (`top`), read from `/proc`, `/sys` and `/etc`.

use std::path::Path;

/// What `system info` reports about the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    pub kernel_version: String,
    /// `PRETTY_NAME` of /etc/os-release, or `unknown`.
    pub operating_system: String,
    pub hostname: String,
    pub cpus: usize,
    /// Bytes.
    pub mem_total: u64,
    /// 2 on a unified (pure v2) hierarchy; 1 on v1 or hybrid hosts, where the controllers are v1.
    pub cgroup_version: u8,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

impl HostFacts {
    pub fn gather() -> Self {
        let operating_system = read_trim("/etc/os-release")
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let mem_total = read_trim("/proc/meminfo")
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("MemTotal:")
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                })
            })
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        Self {
            kernel_version: read_trim("/proc/sys/kernel/osrelease").unwrap_or_default(),
            operating_system,
            hostname: read_trim("/proc/sys/kernel/hostname").unwrap_or_default(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_total,
            cgroup_version: if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                2
            } else {
                1
            },
        }
    }
}

/// One process as `top` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// The `Uid:` and `PPid:` fields of its status (`?` when unreadable).
    pub uid: String,
    pub pid: i32,
    pub ppid: String,
    pub cmd: String,
}

/// The processes sharing the pid namespace of `pid`, by pid; `None` when `pid` is gone.
pub fn processes_in_pid_namespace_of(pid: i32) -> std::io::Result<Option<Vec<Process>>> {
    let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/pid")) else {
        return Ok(None);
    };
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort();
    let mut out = vec![];
    for pid in pids {
        if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .as_ref()
            != Some(&ns)
        {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("?")
                .to_string()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|x| *x == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push(Process {
            uid: field("Uid:"),
            pid,
            ppid: field("PPid:"),
            cmd,
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_namespace_lists_us() {
        let me = std::process::id() as i32;
        let list = processes_in_pid_namespace_of(me).unwrap().unwrap();
        assert!(list.iter().any(|p| p.pid == me), "{list:?}");
        assert!(processes_in_pid_namespace_of(-1).unwrap().is_none());
        let facts = HostFacts::gather();
        assert!(facts.cpus >= 1 && !facts.kernel_version.is_empty());
    }
}
