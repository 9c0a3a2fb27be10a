//! Resource usage from the container's cgroup, on cgroup v1 (this machine's hybrid layout)
//! and on pure v2 hosts, for `stats` and `top`.

use std::path::PathBuf;

/// One sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Total CPU time, nanoseconds.
    pub cpu_ns: u64,
    pub mem_usage: u64,
    /// Memory limit (the host's memory when unlimited).
    pub mem_limit: u64,
    pub pids: u64,
}

fn read_u64(p: PathBuf) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The container's cgroup v2 directory, if this host is pure v2.
fn v2_dir(id: &str) -> Option<PathBuf> {
    let d = PathBuf::from("/sys/fs/cgroup/rcompose").join(id);
    d.join("cgroup.procs").exists().then_some(d)
}

/// Reads the current usage; `None` when the container has no cgroup (not running).
pub fn sample(id: &str) -> Option<Sample> {
    let host = host_memory();
    if let Some(d) = v2_dir(id) {
        let cpu_us = std::fs::read_to_string(d.join("cpu.stat"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            });
        let limit = std::fs::read_to_string(d.join("memory.max"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(host);
        return Some(Sample {
            cpu_ns: cpu_us.unwrap_or(0) * 1000,
            mem_usage: read_u64(d.join("memory.current")).unwrap_or(0),
            mem_limit: limit.min(host),
            pids: read_u64(d.join("pids.current")).unwrap_or(0),
        });
    }
    let v1 = |ctl: &str, file: &str| {
        PathBuf::from("/sys/fs/cgroup")
            .join(ctl)
            .join("rcompose")
            .join(id)
            .join(file)
    };
    let pids = read_u64(v1("pids", "pids.current"));
    let cpu = read_u64(v1("cpuacct", "cpuacct.usage"));
    if pids.is_none() && cpu.is_none() {
        return None;
    }
    let limit = read_u64(v1("memory", "memory.limit_in_bytes")).unwrap_or(host);
    Some(Sample {
        cpu_ns: cpu.unwrap_or(0),
        mem_usage: read_u64(v1("memory", "memory.usage_in_bytes")).unwrap_or(0),
        mem_limit: limit.min(host),
        pids: pids.unwrap_or(0),
    })
}

/// Host pids of every process in the container.
pub fn pids(id: &str) -> Vec<i32> {
    let candidates = [
        PathBuf::from("/sys/fs/cgroup/rcompose")
            .join(id)
            .join("cgroup.procs"),
        PathBuf::from("/sys/fs/cgroup/pids/rcompose")
            .join(id)
            .join("cgroup.procs"),
        PathBuf::from("/sys/fs/cgroup/memory/rcompose")
            .join(id)
            .join("cgroup.procs"),
    ];
    for c in candidates {
        if let Ok(s) = std::fs::read_to_string(&c) {
            return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    vec![]
}

/// Total CPU time of the host (all CPUs), nanoseconds, from /proc/stat.
pub fn host_cpu_ns() -> u64 {
    let ticks: u64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum()
            })
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no side effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}

pub fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}
