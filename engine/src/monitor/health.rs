//! Healthchecks (image `HEALTHCHECK` or `--health-*`): the monitor execs the test in the
//! container every interval, with a timeout, and records starting/healthy/unhealthy with the
//! last five results in the container's state, as docker does.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::container::model::{HealthConfig, HealthLog, HealthState, now_rfc3339};
use crate::container::proc;
use crate::runtime::{ExecRequest, Libcontainer, Runtime, Stdio};

pub struct Health {
    argv: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    retries: u32,
    started: Instant,
    next: Instant,
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
        })
    }

    pub fn initial_state() -> HealthState {
        HealthState {
            status: "starting".into(),
            failing_streak: 0,
            log: vec![],
        }
    }

    /// Time until the next check.
    pub fn until_next(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// Runs the check if it is due; returns true when `state` changed.
    pub fn tick(
        &mut self,
        runtime: &Libcontainer,
        id: &str,
        bundle: &Path,
        run_dir: &Path,
        state: &mut HealthState,
    ) -> bool {
        if Instant::now() < self.next {
            return false;
        }
        let start = now_rfc3339();
        let (code, output) = self
            .check(runtime, id, bundle, run_dir)
            .unwrap_or_else(|e| (-1, e));
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
        true
    }

    fn check(
        &self,
        runtime: &Libcontainer,
        id: &str,
        bundle: &Path,
        run_dir: &Path,
    ) -> Result<(i32, String), String> {
        let spec: serde_json::Value =
            crate::container::store::read_json(&bundle.join("config.json"))
                .map_err(|e| e.to_string())?;
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(self.argv);
        process["terminal"] = serde_json::Value::Bool(false);
        let pj = run_dir.join("health.json");
        crate::container::store::write_json_fast(&pj, &process).map_err(|e| e.to_string())?;
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
        let devnull = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
        let w2 = w.try_clone().map_err(|e| e.to_string())?;
        let pid = runtime
            .exec(
                id,
                ExecRequest {
                    process_json: pj,
                    stdio: Stdio::Fds {
                        stdin: Some(devnull.into()),
                        stdout: w,
                        stderr: w2,
                    },
                },
            )
            .map_err(|e| e.to_string())?;
        let ticks = proc::start_ticks(pid);
        let mut out = std::fs::File::from(r);
        // Read while waiting, so a chatty check cannot block on a full pipe.
        let deadline = Instant::now() + self.timeout;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                timed_out = true;
                break;
            }
            let mut p = libc::pollfd {
                fd: out.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, left.as_millis().min(1000) as i32) };
            if p.revents != 0 {
                match out.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) if buf.len() < 4096 => buf.extend_from_slice(&chunk[..n]),
                    Ok(_) => {}
                }
            }
        }
        if timed_out {
            proc::signal(pid, ticks, libc::SIGKILL);
        }
        let code = super::wait_code(pid);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if timed_out {
            return Ok((
                -1,
                format!("Health check exceeded timeout ({:?})", self.timeout),
            ));
        }
        Ok((code, text))
    }
}
