//! Healthchecks (image `HEALTHCHECK` or `--health-*`): the monitor execs the test in the
//! container every interval, with a timeout, and records starting/healthy/unhealthy with the
//! last five results in the container's state, as docker does.
//!
//! A probe never blocks the monitor: a forked copy of the monitor (the helper) execs the test
//! in the container (the runtime's exec forks and waits for the new process to start, tens
//! of milliseconds) and waits for it with the timeout. The monitor's own poll loop only
//! watches the probe's output pipe and the helper's pidfd (see `Health::wake`), so container
//! output keeps flowing to the log and attach clients at its own pace meanwhile.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::io_loop::Wake;
use crate::container::model::{HealthConfig, HealthLog, HealthState, now_rfc3339};
use crate::container::{ContainerStore, proc};
use crate::runtime::{ExecRequest, Libcontainer, Runtime, Stdio};

/// Docker keeps at most this much of a probe's output.
const MAX_OUTPUT: usize = 4096;
/// Without a pidfd (old kernels) a running probe's exit is checked this often.
const FALLBACK_POLL: Duration = Duration::from_millis(50);
/// How long past the check's timeout the helper may take (exec start-up, reaping) before the
/// monitor kills it.
const HELPER_GRACE: Duration = Duration::from_secs(5);

pub struct Health {
    argv: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    retries: u32,
    started: Instant,
    next: Instant,
    /// The probe's process description, written once per run of the container.
    process_json: Option<std::path::PathBuf>,
    running: Option<Probe>,
    /// A result not yet saved (the container's lock was busy).
    unsaved: bool,
    /// Killed probes that had not died yet (frozen): reaped on later ticks.
    unreaped: Vec<i32>,
}

/// A probe in flight, run by a helper process.
struct Probe {
    helper: i32,
    helper_ticks: u64,
    pidfd: Option<OwnedFd>,
    /// The test's stdout and stderr; `None` once it reached end of file.
    out: Option<File>,
    /// The helper's verdict (see `Verdict::parse`), written just before it exits.
    verdict: File,
    buf: Vec<u8>,
    start: String,
    /// The helper applies the check's timeout itself; past this later deadline (a helper
    /// stuck on a frozen probe) it is killed.
    deadline: Instant,
    reaped: bool,
}

/// How a probe ended, as the helper reports it.
#[derive(Debug, PartialEq)]
enum Verdict {
    Exited(i32),
    TimedOut,
    Failed(String),
}

impl Verdict {
    fn encode(&self) -> String {
        match self {
            Verdict::Exited(c) => format!("exited {c}"),
            Verdict::TimedOut => "timeout".into(),
            Verdict::Failed(e) => format!("failed {e}"),
        }
    }

    fn parse(text: &str) -> Verdict {
        if let Some(c) = text
            .strip_prefix("exited ")
            .and_then(|c| c.trim().parse().ok())
        {
            Verdict::Exited(c)
        } else if text == "timeout" {
            Verdict::TimedOut
        } else if let Some(e) = text.strip_prefix("failed ") {
            Verdict::Failed(e.to_string())
        } else {
            Verdict::Failed("the health check helper exited without a result".into())
        }
    }
}

impl Probe {
    /// Reads what the probe wrote so far without blocking.
    fn drain(&mut self) {
        let Some(f) = self.out.as_mut() else { return };
        let mut chunk = [0u8; 4096];
        loop {
            match f.read(&mut chunk) {
                Ok(0) => {
                    self.out = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.out = None;
                    return;
                }
            }
        }
    }

    /// The verdict once the helper exited (reaping it), without blocking.
    fn try_exit(&mut self) -> Option<Verdict> {
        loop {
            match waitpid(Pid::from_raw(self.helper), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return None,
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => break,
                Ok(_) => return None,
                Err(nix::Error::EINTR) => continue,
                // Not our child any more (reaped elsewhere): read what it left.
                Err(_) => break,
            }
        }
        self.reaped = true;
        let mut text = String::new();
        let _ = self.verdict.read_to_string(&mut text);
        Some(Verdict::parse(&text))
    }

    /// SIGKILL the helper and reap it, waiting only a moment; returns its pid if it still
    /// has to be reaped later.
    fn kill(&mut self) -> Option<i32> {
        if self.reaped {
            return None;
        }
        proc::signal(self.helper, self.helper_ticks, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_millis(50);
        while self.try_exit().is_none() {
            if Instant::now() >= deadline {
                self.reaped = true;
                return Some(self.helper);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

impl Drop for Probe {
    /// A probe left behind (the container exited meanwhile) has its helper killed and
    /// reaped, so no zombie outlives its check.
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

impl Health {
    /// `None` when there is no check (or it is disabled with `NONE`).
    pub fn new(cfg: Option<&HealthConfig>) -> Option<Self> {
        let cfg = cfg?;
        let argv = match cfg.test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), cfg.test.get(1)?.clone()],
            Some("CMD") => cfg.test[1..].to_vec(),
            _ => return None,
        };
        if argv.is_empty() {
            return None;
        }
        let ms = |v: u64, d: u64| Duration::from_millis(if v == 0 { d } else { v });
        let interval = ms(cfg.interval_ms, 30_000);
        let now = Instant::now();
        Some(Self {
            argv,
            interval,
            timeout: ms(cfg.timeout_ms, 30_000),
            start_period: Duration::from_millis(cfg.start_period_ms),
            retries: if cfg.retries == 0 { 3 } else { cfg.retries },
            started: now,
            next: now + interval,
            process_json: None,
            running: None,
            unsaved: false,
            unreaped: vec![],
        })
    }

    pub fn initial_state() -> HealthState {
        HealthState {
            status: "starting".into(),
            failing_streak: 0,
            log: vec![],
        }
    }

    /// When the poll loop must call `tick` again: at the next check, at a running probe's
    /// timeout, or as soon as the probe writes or exits.
    pub fn wake(&self) -> Wake {
        let now = Instant::now();
        match &self.running {
            None => Wake {
                after: Some(self.next.saturating_duration_since(now)),
                fds: [-1, -1],
            },
            Some(p) => {
                let fd = |f: Option<RawFd>| f.unwrap_or(-1);
                let mut after = p.deadline.saturating_duration_since(now);
                if p.pidfd.is_none() {
                    after = after.min(FALLBACK_POLL);
                }
                Wake {
                    after: Some(after),
                    fds: [
                        fd(p.out.as_ref().map(|f| f.as_raw_fd())),
                        fd(p.pidfd.as_ref().map(|f| f.as_raw_fd())),
                    ],
                }
            }
        }
    }

    /// Starts a due check, or advances the one running, and saves a new result into the
    /// container's state; never blocks on the probe.
    pub fn tick(
        &mut self,
        runtime: &Libcontainer,
        store: &ContainerStore,
        id: &str,
        bundle: &Path,
        run_dir: &Path,
        state: &mut HealthState,
    ) {
        if self.advance(runtime, store, id, bundle, run_dir, state) {
            self.unsaved = true;
        }
        if self.unsaved && save(store, id, state) {
            self.unsaved = false;
        }
        self.unreaped.retain(|&pid| {
            matches!(
                waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive) | Err(nix::Error::EINTR)
            )
        });
    }

    /// The check's work proper; true when `state` changed.
    fn advance(
        &mut self,
        runtime: &Libcontainer,
        store: &ContainerStore,
        id: &str,
        bundle: &Path,
        run_dir: &Path,
        state: &mut HealthState,
    ) -> bool {
        if self.running.is_none() {
            if Instant::now() < self.next {
                return false;
            }
            let start = now_rfc3339();
            // As docker: a paused container cannot be exec'd into, which counts as a
            // failure (and a probe would stay frozen in its cgroup).
            if store
                .load_state(id)
                .is_ok_and(|s| s.status == crate::container::Status::Paused)
            {
                let msg = format!("Container {id} is paused, unpause the container before exec");
                self.record(state, start, -1, msg);
                return true;
            }
            match self.spawn(runtime, id, bundle, run_dir, start.clone()) {
                Ok(p) => self.running = Some(p),
                Err(e) => {
                    self.record(state, start, -1, e);
                    return true;
                }
            }
        }
        let Some(p) = self.running.as_mut() else {
            return false;
        };
        p.drain();
        let timed_out = format!("Health check exceeded timeout ({:?})", self.timeout);
        if let Some(verdict) = p.try_exit() {
            p.drain();
            let start = std::mem::take(&mut p.start);
            let (code, output) = match verdict {
                Verdict::Exited(c) => (c, p.output()),
                Verdict::TimedOut => (-1, timed_out),
                Verdict::Failed(e) => (-1, e),
            };
            self.running = None;
            self.record(state, start, code, output);
            return true;
        }
        if Instant::now() >= p.deadline {
            self.unreaped.extend(p.kill());
            let start = std::mem::take(&mut p.start);
            self.running = None;
            self.record(state, start, -1, timed_out);
            return true;
        }
        false
    }

    /// Applies one result to the state, as docker does: a failure during the start period
    /// does not count while the container has not been healthy yet.
    fn record(&mut self, state: &mut HealthState, start: String, code: i32, output: String) {
        self.next = Instant::now() + self.interval;
        let in_start_period = self.started.elapsed() < self.start_period;
        if code == 0 {
            state.status = "healthy".into();
            state.failing_streak = 0;
        } else if !(in_start_period && state.status == "starting") {
            state.failing_streak += 1;
            if state.failing_streak >= self.retries {
                state.status = "unhealthy".into();
            }
        }
        state.log.push(HealthLog {
            start,
            end: now_rfc3339(),
            exit_code: code,
            output,
        });
        let excess = state.log.len().saturating_sub(5);
        state.log.drain(..excess);
    }

    fn spawn(
        &mut self,
        runtime: &Libcontainer,
        id: &str,
        bundle: &Path,
        run_dir: &Path,
        start: String,
    ) -> Result<Probe, String> {
        let pj = match &self.process_json {
            Some(p) => p.clone(),
            None => {
                let spec: serde_json::Value =
                    crate::container::store::read_json(&bundle.join("config.json"))
                        .map_err(|e| e.to_string())?;
                let mut process = spec["process"].clone();
                process["args"] = serde_json::json!(self.argv);
                process["terminal"] = serde_json::Value::Bool(false);
                let pj = run_dir.join("health.json");
                crate::container::store::write_json_fast(&pj, &process)
                    .map_err(|e| e.to_string())?;
                self.process_json = Some(pj.clone());
                pj
            }
        };
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        let (out_r, out_w) = nix::unistd::pipe2(flags).map_err(|e| e.to_string())?;
        let (verdict_r, verdict_w) = nix::unistd::pipe2(flags).map_err(|e| e.to_string())?;
        // The probe's end must block as a normal stdout would.
        clear_nonblocking(out_w.as_raw_fd());
        // SAFETY: the monitor is single-threaded, so the child is a consistent copy; it only
        // runs `helper_main`, which ends with `_exit`.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                drop(out_r);
                drop(verdict_r);
                // The monitor's other fds stay with the monitor: a copy of the container's
                // stdin pipe here would delay its end of file, the attach socket would
                // outlive a dead monitor.
                close_fds_except(&[out_w.as_raw_fd(), verdict_w.as_raw_fd()]);
                helper_main(runtime, id, pj, out_w, self.timeout, File::from(verdict_w))
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                let helper = child.as_raw();
                Ok(Probe {
                    helper,
                    helper_ticks: proc::start_ticks(helper),
                    pidfd: proc::pidfd_open(helper),
                    out: Some(File::from(out_r)),
                    verdict: File::from(verdict_r),
                    buf: Vec::new(),
                    start,
                    deadline: Instant::now() + self.timeout + HELPER_GRACE,
                    reaped: false,
                })
            }
            Err(e) => Err(format!("starting the health check: {e}")),
        }
    }
}

/// Closes every fd above stderr but `keep`.
fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd > 2).collect();
    keep.sort_unstable();
    let mut lo: u32 = 3;
    for fd in keep.iter().map(|&fd| fd as u32).chain([u32::MAX]) {
        if fd > lo {
            close_range(lo, fd - 1);
        }
        lo = fd.saturating_add(1);
    }
}

fn close_range(lo: u32, hi: u32) {
    // SAFETY: close_range only closes descriptors.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
    if r == 0 {
        return;
    }
    // Kernels before 5.9: close what /proc lists in the range.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| (lo..=hi).contains(fd))
        .collect();
    for fd in fds {
        // SAFETY: closing an fd of this (forked, single-threaded) process.
        unsafe { libc::close(fd as RawFd) };
    }
}

/// The helper's whole life: exec the test, wait for it (killing it at the timeout), report
/// the verdict, exit without running the monitor's destructors.
fn helper_main(
    runtime: &Libcontainer,
    id: &str,
    process_json: std::path::PathBuf,
    out: OwnedFd,
    timeout: Duration,
    mut verdict: File,
) -> ! {
    let v = match exec_and_wait(runtime, id, process_json, out, timeout) {
        Ok(Some(code)) => Verdict::Exited(code),
        Ok(None) => Verdict::TimedOut,
        Err(e) => Verdict::Failed(e),
    };
    let _ = verdict.write_all(v.encode().as_bytes());
    // SAFETY: ends this forked process at once.
    unsafe { libc::_exit(0) }
}

/// Runs the test in the container; its exit code, or `None` when it was killed at the
/// timeout. Runs in the helper, where blocking is fine.
fn exec_and_wait(
    runtime: &Libcontainer,
    id: &str,
    process_json: std::path::PathBuf,
    out: OwnedFd,
    timeout: Duration,
) -> Result<Option<i32>, String> {
    let devnull = File::open("/dev/null").map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let pid = runtime
        .exec(
            id,
            ExecRequest {
                process_json,
                stdio: Stdio::Fds {
                    stdin: Some(devnull.into()),
                    stdout: out,
                    stderr: err,
                },
            },
        )
        .map_err(|e| e.to_string())?;
    let ticks = proc::start_ticks(pid);
    let pidfd = proc::pidfd_open(pid);
    // The test is our child (the runtime clones it as one), without exit signal: __WALL.
    let flags = WaitPidFlag::WNOHANG | WaitPidFlag::__WALL;
    loop {
        match waitpid(Pid::from_raw(pid), Some(flags)) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(Some(c)),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(Some(128 + s as i32)),
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(format!("waiting for the health check: {e}")),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            proc::signal(pid, ticks, libc::SIGKILL);
            // A probe frozen with its paused container dies at the thaw; the monitor kills
            // this helper first if that takes too long.
            let _ = super::wait_code(pid);
            return Ok(None);
        }
        let wait = left.min(if pidfd.is_some() {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(10)
        });
        proc::wait_exit_or(pidfd.as_ref(), wait);
    }
}

/// Writes `health` into the container's saved state, re-read under the container's lock so
/// what short-lived commands wrote meanwhile (`pause` sets the status) is kept. The lock is
/// only tried: a command holding it must never stall the monitor's loop, and the caller
/// retries on its next tick. False when not saved.
fn save(store: &ContainerStore, id: &str, health: &HealthState) -> bool {
    let Ok(lock) = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(store.dir(id).join("lock"))
    else {
        return false;
    };
    // SAFETY: flock on an fd we own; released when `lock` is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    let Ok(mut st) = store.load_state(id) else {
        return false;
    };
    st.health = Some(health.clone());
    store.save_state(id, &st).is_ok()
}

fn clear_nonblocking(fd: RawFd) {
    // SAFETY: fcntl flag update on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: test.iter().map(|s| s.to_string()).collect(),
            interval_ms: 0,
            timeout_ms: 0,
            start_period_ms: 0,
            retries: 0,
        }
    }

    #[test]
    fn idle_check_wakes_at_the_interval_and_watches_nothing() {
        let h = Health::new(Some(&cfg(&["CMD-SHELL", "true"]))).unwrap();
        let w = h.wake();
        assert_eq!(w.fds, [-1, -1]);
        assert!(w.after.unwrap() <= Duration::from_secs(30));
        assert!(Health::new(Some(&cfg(&["NONE"]))).is_none());
        assert!(Health::new(Some(&cfg(&["CMD"]))).is_none());
    }

    #[test]
    fn results_follow_docker_rules() {
        let mut h = Health::new(Some(&cfg(&["CMD", "x"]))).unwrap();
        let mut st = Health::initial_state();
        for i in 0..3 {
            h.record(&mut st, String::new(), 1, format!("fail {i}"));
        }
        assert_eq!(st.status, "unhealthy");
        assert_eq!(st.failing_streak, 3);
        h.record(&mut st, String::new(), 0, String::new());
        assert_eq!((st.status.as_str(), st.failing_streak), ("healthy", 0));
        for _ in 0..4 {
            h.record(&mut st, String::new(), 0, String::new());
        }
        assert_eq!(st.log.len(), 5);
    }

    #[test]
    fn verdicts_round_trip() {
        for v in [
            Verdict::Exited(0),
            Verdict::Exited(137),
            Verdict::TimedOut,
            Verdict::Failed("exec failed: no such container".into()),
        ] {
            assert_eq!(Verdict::parse(&v.encode()), v);
        }
        assert!(matches!(Verdict::parse(""), Verdict::Failed(_)));
    }
}
