//! End-to-end: a slow healthcheck probe never holds up the container's output. The monitor
//! forwards output and runs probes in one poll loop; a probe that blocked it would leave
//! gaps in the log as long as the probe (lines stamped late, all at once).

mod common;

use common::container::{Env, IMAGE};
use common::unique;

/// Seconds since midnight of an RFC 3339 timestamp (`2026-01-02T03:04:05.123456789Z`).
fn seconds_of_day(ts: &str) -> f64 {
    let time = ts
        .split_once('T')
        .map(|(_, t)| t.trim_end_matches('Z'))
        .unwrap_or_else(|| panic!("not a timestamp: {ts:?}"));
    let mut parts = time.split(':');
    let mut next = || -> f64 {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("not a timestamp: {ts:?}"))
    };
    next() * 3600.0 + next() * 60.0 + next()
}

#[test]
fn slow_probe_does_not_delay_logs() {
    let env = Env::new();
    let name = unique("slowprobe");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "sleep 1",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "10s",
        IMAGE,
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
    ]);
    env.wait_for(&name, "{{.State.Health.Status}}", "healthy", 20);
    // Let a few more probes run while the container prints.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let probes = env.inspect(&name, "{{json .State.Health.Log}}");
    let logs = env.ok(&["container", "logs", "-t", &name]);
    env.ok(&["container", "rm", "-f", &name]);

    let mut last: Option<(f64, u64)> = None;
    let mut worst = 0f64;
    let mut count = 0;
    for line in logs.lines() {
        let (ts, text) = line.split_once(' ').expect("timestamped line");
        let n: u64 = text
            .strip_prefix("line ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected log line {line:?}"));
        let mut t = seconds_of_day(ts);
        if let Some((prev_t, prev_n)) = last {
            assert_eq!(n, prev_n + 1, "a line was lost before {line:?}:\n{logs}");
            if t < prev_t {
                t += 86_400.0; // midnight passed
            }
            worst = worst.max(t - prev_t);
        }
        last = Some((t, n));
        count += 1;
    }
    assert!(count >= 20, "too few lines ({count}):\n{logs}");
    assert!(
        probes.matches("\"ExitCode\":0").count() >= 2,
        "expected several successful probes, health log: {probes}"
    );
    // Lines come every 100 ms; a probe (1 s) holding up the loop leaves a gap of a second.
    assert!(
        worst < 0.8,
        "log lines were held up for {worst:.3}s while a probe ran:\n{logs}"
    );
}

#[test]
fn probe_over_its_timeout_is_killed_and_counts_as_failure() {
    let env = Env::new();
    let name = unique("hangprobe");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "2",
        IMAGE,
        "sleep",
        "300",
    ]);
    env.wait_for(&name, "{{.State.Health.Status}}", "unhealthy", 20);
    let log = env.inspect(&name, "{{json .State.Health.Log}}");
    assert!(log.contains("Health check exceeded timeout"), "{log}");
    assert!(log.contains("\"ExitCode\":-1"), "{log}");
    // Timed-out probes are killed, not left running beside the next ones.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let top = env.ok(&["container", "top", &name]);
    let probes = top
        .lines()
        .filter(|l| l.trim_end().ends_with(" sleep 30"))
        .count();
    assert!(probes <= 1, "probes pile up:\n{top}");
    env.ok(&["container", "rm", "-f", &name]);
}

/// Probes keep running while the container is paused (and fail, as docker's exec would):
/// their results must not overwrite the paused status `pause` recorded.
#[test]
fn health_results_keep_the_paused_status() {
    let env = Env::new();
    let name = unique("pausedhealth");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        IMAGE,
        "sleep",
        "300",
    ]);
    env.wait_for(&name, "{{.State.Health.Status}}", "healthy", 20);
    env.ok(&["container", "pause", &name]);
    env.wait_for(&name, "{{.State.Health.Status}}", "unhealthy", 20);
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "paused");
    let log = env.inspect(&name, "{{json .State.Health.Log}}");
    assert!(log.contains("is paused"), "{log}");
    env.ok(&["container", "unpause", &name]);
    env.wait_for(&name, "{{.State.Health.Status}}", "healthy", 20);
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "running");
    env.ok(&["container", "rm", "-f", &name]);
}

/// A probe in flight holds nothing of the container's: closing the stdin of a `run -i`
/// container reaches it at once, not when a (slow) probe ends.
#[test]
fn running_probe_does_not_hold_stdin_open() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let env = Env::new();
    let name = unique("stdinprobe");
    let mut child = env
        .cmd()
        .args([
            "container",
            "run",
            "-i",
            "--name",
            &name,
            "--health-cmd",
            "sleep 60",
            "--health-interval",
            "100ms",
            "--health-timeout",
            "120s",
            IMAGE,
            "sh",
            "-c",
            "cat; echo done",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hi\n").unwrap();
    // Long enough for a probe to be running when the input ends.
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    env.ok(&["container", "rm", "-f", &name]);
    assert!(
        status.is_some_and(|s| s.success()),
        "the container never saw the end of its input while a probe ran: {out:?}"
    );
    assert_eq!(out, "hi\ndone\n");
}
