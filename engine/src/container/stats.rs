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
    /// Bytes read from and written to block devices (cgroup v1 blkio / v2 io).
    pub blk_read: u64,
    pub blk_write: u64,
}

/// Network bytes received and sent by a container, over all its interfaces but `lo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetIo {
    pub rx: u64,
    pub tx: u64,
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
        let (blk_read, blk_write) = std::fs::read_to_string(d.join("io.stat"))
            .map(|s| parse_io_stat(&s))
            .unwrap_or_default();
        return Some(Sample {
            cpu_ns: cpu_us.unwrap_or(0) * 1000,
            mem_usage: read_u64(d.join("memory.current")).unwrap_or(0),
            mem_limit: limit.min(host),
            pids: read_u64(d.join("pids.current")).unwrap_or(0),
            blk_read,
            blk_write,
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
    // Docker reads the recursive file (the container's cgroup has no children of its own,
    // but a nested runtime could make some).
    let (blk_read, blk_write) = [
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes",
    ]
    .iter()
    .find_map(|f| std::fs::read_to_string(v1("blkio", f)).ok())
    .map(|s| parse_blkio_v1(&s))
    .unwrap_or_default();
    Some(Sample {
        cpu_ns: cpu.unwrap_or(0),
        mem_usage: read_u64(v1("memory", "memory.usage_in_bytes")).unwrap_or(0),
        mem_limit: limit.min(host),
        pids: pids.unwrap_or(0),
        blk_read,
        blk_write,
    })
}

/// Sums `blkio.throttle.io_service_bytes` (`8:0 Read 4096` lines; `Total` lines skipped).
pub fn parse_blkio_v1(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, op, v] = f[..]
            && let Ok(v) = v.parse::<u64>()
        {
            if op.eq_ignore_ascii_case("read") {
                r = r.saturating_add(v);
            } else if op.eq_ignore_ascii_case("write") {
                w = w.saturating_add(v);
            }
        }
    }
    (r, w)
}

/// Sums cgroup v2 `io.stat` (`8:0 rbytes=4096 wbytes=0 rios=1 …` per device).
pub fn parse_io_stat(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for kv in text.split_whitespace() {
        let num = |p: &str| kv.strip_prefix(p).and_then(|v| v.parse::<u64>().ok());
        if let Some(v) = num("rbytes=") {
            r = r.saturating_add(v);
        } else if let Some(v) = num("wbytes=") {
            w = w.saturating_add(v);
        }
    }
    (r, w)
}

/// Sums `/proc/net/dev` counters over every interface but `lo`, as docker does.
pub fn parse_net_dev(text: &str) -> NetIo {
    let mut io = NetIo::default();
    // Two header lines, then `  eth0: rx_bytes rx_packets … (8 rx fields) tx_bytes …`.
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            io.rx = io.rx.saturating_add(f[0]);
            io.tx = io.tx.saturating_add(f[8]);
        }
    }
    io
}

/// The network traffic of the container whose init is `pid` (`pid_ticks` its start time,
/// so a reused pid is never read). A container sharing the host's network namespace
/// reports nothing (zero), as docker does for `--network host`; `None` when the process
/// is gone.
pub fn net_io(pid: i32, pid_ticks: u64) -> Option<NetIo> {
    if pid <= 0 {
        return None;
    }
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    if std::fs::read_link("/proc/self/ns/net").ok().as_ref() == Some(&ns) {
        return Some(NetIo::default());
    }
    // /proc/<pid>/net/dev shows the counters of that process's network namespace.
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    super::proc::alive(pid, pid_ticks).then(|| parse_net_dev(&text))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_block_and_network_counters() {
        let v1 = "8:0 Read 4096\n8:0 Write 1000\n8:0 Sync 5096\n8:16 Read 4\n8:0 Total 5096\nTotal 5100\n";
        assert_eq!(parse_blkio_v1(v1), (4100, 1000));
        let v2 =
            "8:0 rbytes=1200 wbytes=648 rios=3 wios=1 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2\n";
        assert_eq!(parse_io_stat(v2), (1201, 650));
        let dev = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   13440     160    0    0    0     0          0         0    13440     160    0    0    0     0       0          0
  eth0:    1226      11    0    0    0     0          0         0      648       8    0    0    0     0       0          0
  eth1:      10       1    0    0    0     0          0         0        2       1    0    0    0     0       0          0
";
        assert_eq!(parse_net_dev(dev), NetIo { rx: 1236, tx: 650 });
    }
}
