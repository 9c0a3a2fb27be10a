//! Monitors forked by the fork server (engine/src/monitor/forkserver.rs): a process that
//! starts several containers execs the first monitor and forks the others from one
//! pre-started server. They must be indistinguishable from exec'd ones: command line,
//! session, descriptors, logs, exit codes, network teardown; and the server must not
//! outlive the command that started it.

mod common;

use std::path::Path;

use common::compose::Project;

const YAML: &str = r#"
services:
  s1:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo hello-s1; sleep 1000 & wait"]
  s2:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo hello-s2; sleep 1000 & wait"]
    depends_on: [s1]
  s3:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo hello-s3; sleep 1000 & wait"]
    depends_on: [s1]
  once:
    image: {IMAGE}
    command: ["sh", "-c", "echo hello-once; exit 3"]
    depends_on: [s1]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#;

/// A line of /proc/PID/status (`SigIgn`, `SigBlk`, ...).
fn status_field(pid: i32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap()
}

/// Pids of the monitors that say they were forked, from an `RCOMPOSE_TIMING` trace.
fn forked_pids(trace: &Path) -> Vec<i32> {
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(" monitor.forked"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn monitor_pid(p: &Project, id: &str) -> i32 {
    let state = std::fs::read_to_string(p.root.join("containers").join(id).join("state.json"))
        .expect("state.json");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    state["monitor_pid"].as_i64().unwrap() as i32
}

/// The arguments /proc shows, without the empty ones a rewrite may leave at the end.
fn cmdline(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    while args.last().is_some_and(|a| a.is_empty()) {
        args.pop();
    }
    args
}

/// What the process's descriptors point at (`readlink /proc/PID/fd/*`).
fn fd_links(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

/// What the process's descriptors are, with inode numbers and the container id left out.
fn fd_kinds(pid: i32, id: &str) -> Vec<String> {
    let mut kinds: Vec<String> = fd_links(pid)
        .into_iter()
        .map(|t| {
            let t = t.replace(id, "ID");
            match t.split_once('[') {
                Some((kind, _)) => kind.to_string(),
                None => t,
            }
        })
        .collect();
    kinds.sort();
    kinds
}

/// Inodes of the unix sockets `pid` holds.
fn socket_inodes(pid: i32) -> Vec<String> {
    fd_links(pid)
        .into_iter()
        .filter_map(|t| Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string()))
        .collect()
}

/// Inodes of this network namespace's SEQPACKET unix sockets (/proc/net/unix, type 0005).
fn seqpacket_inodes() -> Vec<String> {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4) == Some(&"0005")).then(|| f.get(6).map(|i| i.to_string()))?
        })
        .collect()
}

/// `up -d` with an `RCOMPOSE_TIMING` trace (and `RCOMPOSE_MONITOR_FORKS=0` unless `forks`);
/// the trace's path.
fn up_traced(p: &Project, forks: bool) -> std::path::PathBuf {
    let trace = p.tmp.path().join("trace");
    let mut cmd = p.cmd();
    cmd.env("RCOMPOSE_TIMING", &trace).args(["up", "-d"]);
    if !forks {
        cmd.env("RCOMPOSE_MONITOR_FORKS", "0");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    trace
}

/// Processes whose command line holds all of `words`.
fn processes_with(words: &[&str]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let args = cmdline(*pid);
            words.iter().all(|w| args.iter().any(|a| a == w))
        })
        .collect()
}

#[test]
fn up_forks_monitors_that_behave_as_exec_ed_ones() {
    let p = Project::new("forks");
    p.write(YAML);
    let trace = up_traced(&p, true);
    let forked = forked_pids(&trace);
    assert_eq!(
        forked.len(),
        3,
        "s1's monitor is exec'd, the other three forked"
    );

    let exe = std::fs::canonicalize(common::BIN).unwrap();
    let root = p.root.display().to_string();
    let run_root = p.run_root.display().to_string();
    let mut seen = vec![];
    for service in ["s1", "s2", "s3"] {
        let id = p.ok(&["ps", "-q", service]).trim().to_string();
        let pid = monitor_pid(&p, &id);
        assert_eq!(forked.contains(&pid), service != "s1", "{service}");
        assert_eq!(
            cmdline(pid),
            [
                exe.display().to_string(),
                "--root".into(),
                root.clone(),
                "--run-root".into(),
                run_root.clone(),
                "container-monitor".into(),
                id.clone(),
            ],
            "monitor of {service}"
        );
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        assert_eq!(
            fields[3],
            pid.to_string(),
            "{service}'s monitor leads its session"
        );
        assert_ne!(fields[1], std::process::id().to_string());
        // Signal dispositions and mask as exec'd: SIGCHLD (bit 16) not ignored.
        let ignored = u64::from_str_radix(&status_field(pid, "SigIgn:"), 16).unwrap();
        assert_eq!(
            ignored & (1 << 16),
            0,
            "{service}'s monitor ignores SIGCHLD"
        );
        // None holds the server's socket (a running monitor has no SEQPACKET socket).
        assert!(
            !seqpacket_inodes()
                .iter()
                .any(|i| socket_inodes(pid).contains(i)),
            "{service}'s monitor holds a SEQPACKET socket"
        );
        let sigs = (status_field(pid, "SigIgn:"), status_field(pid, "SigBlk:"));
        seen.push((service, fd_kinds(pid, &id), sigs));
    }
    let (_, want_fds, want_sigs) = seen[0].clone();
    for (service, fds, sigs) in &seen[1..] {
        assert_eq!(fds, &want_fds, "descriptors of {service}'s forked monitor");
        assert_eq!(sigs, &want_sigs, "signals of {service}'s forked monitor");
    }
    // Logs, exit codes (the monitor waits for its container: SIGCHLD is its own again).
    p.wait_until(20, "`once` to exit", || {
        p.ps_json()
            .iter()
            .any(|c| c["Service"] == "once" && c["State"] == "exited")
    });
    let once = p
        .ps_json()
        .into_iter()
        .find(|c| c["Service"] == "once")
        .unwrap();
    assert_eq!(once["ExitCode"], 3, "{once}");
    let logs = p.ok(&["logs", "--no-color"]);
    for s in ["s1", "s2", "s3", "once"] {
        assert!(logs.contains(&format!("hello-{s}")), "{logs}");
    }

    // The server went with the `up` that started it.
    p.wait_until(10, "the fork server to exit", || {
        processes_with(&["container-monitor-server", &root]).is_empty()
    });

    // Stopping through forked monitors releases the network (the exit hook runs in them).
    p.ok(&["down", "-t", "5"]);
    let nets = p.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(&p.name), "{nets}");
    assert!(
        processes_with(&["container-monitor", &root]).is_empty(),
        "monitors left after down"
    );
}

#[test]
fn monitors_are_exec_ed_when_forks_are_turned_off() {
    let p = Project::new("noforks");
    p.write(YAML);
    let trace = up_traced(&p, false);
    assert!(forked_pids(&trace).is_empty());
    let trace_text = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(
        trace_text
            .lines()
            .filter(|l| l.ends_with(" monitor.main"))
            .count(),
        4,
        "{trace_text}"
    );
    let root = p.root.display().to_string();
    assert!(processes_with(&["container-monitor-server", &root]).is_empty());
    let ps = p.ps_json();
    for s in ["s1", "s2", "s3"] {
        assert!(
            ps.iter()
                .any(|c| c["Service"] == s && c["State"] == "running"),
            "{ps:?}"
        );
    }
}
