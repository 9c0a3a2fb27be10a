//! Shared pieces of the reliability suite (`tests/reliability_*.rs`, `scripts/reliability.sh`):
//! the figures each test reports, the fast/long sizes, a seeded random source, and the checks
//! that nothing of a state root is left on the host (mounts, netns, veths, nft rules,
//! cgroups, helper processes).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// `RCOMPOSE_RELIABILITY=long` (or a number in `RCOMPOSE_RELIABILITY_POINTS`) runs the long
/// mode; CI runs the fast one.
pub fn long() -> bool {
    std::env::var("RCOMPOSE_RELIABILITY").is_ok_and(|v| v == "long")
}

/// `fast` or `long_n` by mode, overridden by `RCOMPOSE_RELIABILITY_POINTS`.
pub fn size(fast: usize, long_n: usize) -> usize {
    std::env::var("RCOMPOSE_RELIABILITY_POINTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if long() { long_n } else { fast })
}

/// One line of the suite's table. Printed, and appended to the file named by
/// `RCOMPOSE_RELIABILITY_REPORT` (tab-separated) for `scripts/reliability.sh`.
pub fn report(suite: &str, faults: usize, survived: usize, lost: usize, note: &str) {
    let line = format!("{suite}\t{faults}\t{survived}\t{lost}\t{note}");
    println!("reliability: {line}");
    if let Ok(path) = std::env::var("RCOMPOSE_RELIABILITY_REPORT")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// xorshift64*, seeded from `RCOMPOSE_RELIABILITY_SEED` or the clock; the seed is printed so
/// a failing run can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = std::env::var("RCOMPOSE_RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("reliability: seed {seed} (RCOMPOSE_RELIABILITY_SEED={seed} replays it)");
        Rng(seed)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// What a state root left on the host after everything of it was removed; empty when clean.
/// `ids` are every container id the test saw, `ifnames` every host-side veth it saw.
pub fn leftovers(tmp: &Path, root: &Path, ids: &[String], ifnames: &[String]) -> Vec<String> {
    let mut out = vec![];
    let base = tmp.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in info.lines() {
        if let Some(p) = l.split(' ').nth(4)
            && p.starts_with(&base)
        {
            out.push(format!("mount {p}"));
        }
    }
    for i in ifnames {
        if Path::new("/sys/class/net").join(i).exists() {
            out.push(format!("veth {i}"));
        }
    }
    for id in ids {
        for h in cgroup_dirs() {
            let d = Path::new(&h).join("rcompose").join(id);
            if d.exists() {
                out.push(format!("cgroup {}", d.display()));
            }
        }
    }
    let table = rcompose_net::api::table_name(root);
    if let Ok(o) = std::process::Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        for l in text.lines() {
            let l = l.trim();
            // Rules that name a bridge or an address are a network's; base chains are not.
            if l.contains("br-") || l.contains("10.253.") || l.contains("dnat") {
                out.push(format!("nft {table}: {l}"));
            }
        }
    }
    out.extend(helpers(root).into_iter().map(|p| format!("process {p}")));
    out
}

/// Processes started for this root (monitors, DNS server, port proxies), waiting a moment
/// for helpers that exit by themselves once nothing needs them.
pub fn helpers(root: &Path) -> Vec<String> {
    let needle = root.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                (cmd.contains(&needle) && pid as u32 != std::process::id())
                    .then(|| format!("{pid} {cmd}"))
            })
            .collect();
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pids of the helpers of `root` (monitors, DNS, proxies).
pub fn helper_pids(root: &Path) -> Vec<i32> {
    let needle = root.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (String::from_utf8_lossy(&cmd).contains(&needle) && pid as u32 != std::process::id())
                .then_some(pid)
        })
        .collect()
}

fn cgroup_dirs() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fs = post.split(' ').next()?;
            matches!(fs, "cgroup" | "cgroup2").then(|| pre.split(' ').nth(4).map(String::from))?
        })
        .collect()
}

/// Every host-side veth named in the root's network files.
pub fn veths(root: &Path) -> Vec<String> {
    let mut out = vec![];
    for f in std::fs::read_dir(root.join("networks"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("\"veth") {
            let tail = &rest[i + 1..];
            let end = tail.find('"').unwrap_or(tail.len());
            out.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    out
}

/// `kill -9` of one pid this test started.
pub fn kill9(pid: i32) {
    // SAFETY: a plain signal to a process the test itself started or found under its root.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}
