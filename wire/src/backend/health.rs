//! Health probes run by the orchestrator while it waits for `service_healthy`, for as long as
//! the engine's monitor does not record health itself (its `ContainerState.health` stays
//! `None`). Each probe is `rcompose container exec <id> <test>` in a child process (the
//! runtime's exec forks, so it must not run inside this multi-threaded process), bounded by
//! the check's timeout; `retries` consecutive failures make the container unhealthy, as in
//! Docker. Once the engine reports health, its answer wins.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rcompose_engine::container::model::HealthConfig;

#[derive(Default)]
struct ProbeState {
    last: Option<Instant>,
    started: Option<Instant>,
    failing: u32,
    status: String,
    outputs: Vec<String>,
}

#[derive(Default)]
pub struct Prober {
    states: Mutex<HashMap<String, ProbeState>>,
}

pub struct ProbeTarget<'a> {
    pub exe: &'a PathBuf,
    pub root: &'a PathBuf,
    pub run_root: &'a PathBuf,
    pub id: &'a str,
    pub check: &'a HealthConfig,
}

impl Prober {
    /// `starting`, `healthy` or `unhealthy`, probing when the interval has passed.
    pub fn status(&self, t: &ProbeTarget) -> String {
        let due = {
            let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
            let st = states
                .entry(t.id.to_string())
                .or_insert_with(|| ProbeState {
                    status: "starting".into(),
                    started: Some(Instant::now()),
                    ..Default::default()
                });
            // The first probe runs soon after start (Docker waits one interval; waiting less
            // only makes `up` quicker and never reports healthy early: the test decides).
            let interval = Duration::from_millis(t.check.interval_ms.clamp(200, 5_000));
            st.last.is_none_or(|l| l.elapsed() >= interval)
        };
        if due {
            let (ok, output) = probe(t);
            let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
            let st = states.entry(t.id.to_string()).or_default();
            st.last = Some(Instant::now());
            st.outputs.push(output);
            if st.outputs.len() > 5 {
                st.outputs.remove(0);
            }
            let in_start_period = st
                .started
                .is_some_and(|s| s.elapsed() < Duration::from_millis(t.check.start_period_ms));
            if ok {
                st.failing = 0;
                st.status = "healthy".into();
            } else if !in_start_period {
                st.failing += 1;
                if st.failing >= t.check.retries.max(1) {
                    st.status = "unhealthy".into();
                }
            }
        }
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states
            .get(t.id)
            .map(|s| s.status.clone())
            .unwrap_or_else(|| "starting".into())
    }

    pub fn outputs(&self, id: &str) -> Vec<String> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states
            .get(id)
            .map(|s| s.outputs.clone())
            .unwrap_or_default()
    }
}

/// Runs the test once; returns success and its combined output.
fn probe(t: &ProbeTarget) -> (bool, String) {
    let argv: Vec<String> = match t.check.test.first().map(String::as_str) {
        Some("CMD") => t.check.test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), t.check.test[1..].join(" ")],
        _ => return (true, String::new()),
    };
    let child = Command::new(t.exe)
        .arg("--root")
        .arg(t.root)
        .arg("--run-root")
        .arg(t.run_root)
        .args(["container", "exec", t.id])
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return (false, "cannot start the health probe".into());
    };
    let timeout = Duration::from_millis(t.check.timeout_ms.clamp(500, 60_000));
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return (
                    false,
                    format!("health check timed out after {}ms", timeout.as_millis()),
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return (false, e.to_string()),
        }
    }
    match child.wait_with_output() {
        Ok(o) => {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.success(), text)
        }
        Err(e) => (false, e.to_string()),
    }
}
