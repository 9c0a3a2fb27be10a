//! `exec`: a new process in a running container, started from the calling (single-threaded)
//! command through the runtime. The process is our child (CLONE_PARENT), so the caller waits
//! for it and returns its exit code; with `-t` the caller gets the PTY master to proxy.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use serde_json::Value;

use super::model::Status;
use super::{ContainerError, Containers, proc, user};
use crate::runtime::{ExecRequest, Runtime, Stdio};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
}

/// The started process.
pub struct ExecProcess {
    pub pid: i32,
    /// PTY master with `tty`.
    pub master: Option<File>,
}

/// Stdio for a non-tty exec: the caller's own descriptors (or /dev/null).
pub struct ExecStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Containers {
    pub fn exec(
        &self,
        key: &str,
        opts: &ExecOptions,
        stdio: Option<ExecStdio>,
    ) -> Result<ExecProcess, ContainerError> {
        let cfg = self.store.resolve(key)?;
        let st = self.observe(&cfg.id)?;
        match st.status {
            Status::Running if proc::alive(st.pid, st.pid_start_ticks) => {}
            Status::Paused => return Err(ContainerError::Paused(cfg.name)),
            _ => return Err(ContainerError::NotRunning(cfg.name)),
        }
        if opts.cmd.is_empty() {
            return Err(ContainerError::Other(
                "exec needs a command to run inside the container".into(),
            ));
        }
        let bundle = self.store.bundle_dir(&cfg.id);
        let spec: Value = super::store::read_json(&bundle.join("config.json"))?;
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(opts.cmd);
        process["terminal"] = Value::Bool(opts.tty);
        let mut env: Vec<String> = process["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for e in &opts.env {
            let k = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(k));
            env.push(e.clone());
        }
        process["env"] = serde_json::json!(env);
        if let Some(w) = &opts.working_dir {
            process["cwd"] = Value::String(w.clone());
        }
        if let Some(u) = &opts.user {
            let merged = crate::rootfs::Rootfs::new(self.store.rootfs_dir(&cfg)).merged();
            let r = user::resolve_user(&merged, u)?;
            process["user"] = serde_json::json!({"uid": r.uid, "gid": r.gid, "additionalGids": r.additional_gids});
        }
        // A process.json per exec: unique name from our pid.
        let run_dir = self.store.run_dir(&cfg.id);
        let tag = format!("exec-{}", std::process::id());
        let process_json = run_dir.join(format!("{tag}.json"));
        super::store::write_json_fast(&process_json, &process)?;
        let cleanup = Cleanup(vec![
            process_json.clone(),
            run_dir.join(format!("{tag}.sock")),
        ]);

        let (rt_stdio, listener) = if opts.tty {
            let sock = run_dir.join(format!("{tag}.sock"));
            let l = crate::monitor::bind_unix(&sock).map_err(|e| ContainerError::io(&sock, e))?;
            (Stdio::Console(sock), Some(l))
        } else {
            let s = match stdio {
                Some(s) => s,
                None => null_stdio()?,
            };
            (
                Stdio::Fds {
                    stdin: s.stdin,
                    stdout: s.stdout,
                    stderr: s.stderr,
                },
                None,
            )
        };
        let pid = self.runtime.exec(
            &cfg.id,
            ExecRequest {
                process_json,
                stdio: rt_stdio,
            },
        )?;
        let master = match listener {
            Some(l) => {
                let (conn, _) = l.accept().map_err(|e| ContainerError::io(&run_dir, e))?;
                Some(File::from(
                    crate::monitor::recv_fd(&conn).map_err(|e| ContainerError::io(&run_dir, e))?,
                ))
            }
            None => None,
        };
        drop(cleanup);
        Ok(ExecProcess { pid, master })
    }
}

/// Waits for an exec'd process (our child without exit signal) and returns its exit code.
pub fn wait_exec(pid: i32) -> i32 {
    crate::monitor::wait_code(pid)
}

fn null_stdio() -> Result<ExecStdio, ContainerError> {
    let open = || {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| ContainerError::io(std::path::Path::new("/dev/null"), e))
    };
    Ok(ExecStdio {
        stdin: Some(open()?),
        stdout: open()?,
        stderr: open()?,
    })
}

struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}
