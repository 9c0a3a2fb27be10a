//! `docker exec`: `POST /containers/{id}/exec` records an exec instance, `POST
//! /exec/{id}/start` runs it and `GET /exec/{id}/json` reports it (the client reads the exit
//! code there once the stream ends).
//!
//! The process is started by `rcompose container exec` as a child of this server, not by
//! the engine in-process: the runtime forks, and this server is multi-threaded (see
//! DESIGN.md, the runtime is called only from single-threaded processes). The child's
//! stdout and stderr come back on pipes and go to the hijacked connection in docker's
//! multiplexed framing (raw with a TTY); the connection's input goes to the child's stdin.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcompose_engine::container::model::Status;
use serde::Deserialize;
use serde_json::json;

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};
use crate::logs::frame;

/// docker's `ExecConfig` (the fields we honour).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub env: Option<Vec<String>>,
    pub working_dir: String,
    pub cmd: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct ExecRecord {
    container_id: String,
    config: ExecConfig,
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: u32,
    /// The terminal size the client asked for (`POST /exec/{id}/resize`).
    size: Option<(u16, u16)>,
}

/// The exec instances this server made.
#[derive(Debug, Default)]
pub struct Execs(Mutex<HashMap<String, ExecRecord>>);

impl Execs {
    fn get(&self, id: &str) -> Result<ExecRecord, ApiError> {
        let map = self
            .0
            .lock()
            .map_err(|_| ApiError::internal("exec table poisoned"))?;
        map.get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut ExecRecord)) {
        if let Ok(mut map) = self.0.lock()
            && let Some(r) = map.get_mut(id)
        {
            f(r);
        }
    }
}

fn not_running(ctx: &Context, container: &str) -> Result<String, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(container)?;
    let st = eng.observe(&c.id)?;
    match st.status {
        Status::Running => Ok(c.id),
        Status::Paused => Err(ApiError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        ))),
        _ => Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id
        ))),
    }
}

/// `POST /containers/{id}/exec`.
pub fn create(ctx: &Context, req: &Request, container: &str) -> Result<Response, ApiError> {
    let config: ExecConfig = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("invalid exec config: {e}")))?;
    if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if config.privileged {
        return Err(ApiError::not_implemented("exec --privileged"));
    }
    let container_id = not_running(ctx, container)?;
    let id = rcompose_engine::container::new_id()?;
    let rec = ExecRecord {
        container_id,
        config,
        started: false,
        running: false,
        exit_code: None,
        pid: 0,
        size: None,
    };
    ctx.execs
        .0
        .lock()
        .map_err(|_| ApiError::internal("exec table poisoned"))?
        .insert(id.clone(), rec);
    Ok(Response::json(201, json!({ "Id": id })))
}

/// `GET /exec/{id}/json`.
pub fn inspect(ctx: &Context, id: &str) -> Result<Response, ApiError> {
    let r = ctx.execs.get(id)?;
    let cmd = r.config.cmd.clone().unwrap_or_default();
    Ok(Response::json(
        200,
        json!({
            "ID": id,
            "Running": r.running,
            "ExitCode": r.exit_code,
            "ProcessConfig": {
                "tty": r.config.tty,
                "entrypoint": cmd.first(),
                "arguments": cmd.get(1..).unwrap_or_default(),
                "privileged": false,
                "user": r.config.user,
            },
            "OpenStdin": r.config.attach_stdin,
            "OpenStderr": r.config.attach_stderr,
            "OpenStdout": r.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": r.container_id,
            "DetachKeys": "",
            "Pid": r.pid,
        }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartConfig {
    detach: bool,
    tty: Option<bool>,
}

/// `rcompose container exec` with the instance's options.
fn command(ctx: &Context, r: &ExecRecord, tty: bool, detach: bool) -> std::process::Command {
    let mut c = ctx.cli();
    c.args(["container", "exec"]);
    if detach {
        c.arg("-d");
    }
    if r.config.attach_stdin && !detach {
        c.arg("-i");
    }
    if tty && !detach {
        c.arg("-t");
    }
    for e in r.config.env.iter().flatten() {
        c.arg("-e").arg(e);
    }
    if !r.config.user.is_empty() {
        c.arg("-u").arg(&r.config.user);
    }
    if !r.config.working_dir.is_empty() {
        c.arg("-w").arg(&r.config.working_dir);
    }
    c.arg(&r.container_id);
    c.args(r.config.cmd.iter().flatten());
    c
}

/// `POST /exec/{id}/start`: hijacked unless detached.
pub fn start(ctx: &Context, req: &Request, id: &str) -> Result<Response, ApiError> {
    let start: StartConfig = if req.body.is_empty() {
        StartConfig::default()
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid exec start config: {e}")))?
    };
    let r = ctx.execs.get(id)?;
    if r.started {
        return Err(ApiError::conflict(format!(
            "Error: Exec command {id} has already run"
        )));
    }
    not_running(ctx, &r.container_id)?;
    let tty = start.tty.unwrap_or(r.config.tty);
    ctx.execs.update(id, |r| r.started = true);
    if tty && !start.detach {
        return Ok(start_tty(ctx, id, r));
    }
    let mut cmd = command(ctx, &r, tty, start.detach);
    cmd.stdin(if r.config.attach_stdin && !start.detach {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::internal(format!("starting {}: {e}", ctx.exe.display())))?;
    ctx.execs.update(id, |r| {
        r.started = true;
        r.running = true;
        r.pid = child.id();
    });
    let (execs, id) = (ctx.execs.clone(), id.to_string());
    if start.detach {
        // `container exec -d` returns once the process runs; its failure is the start's.
        let out = child
            .wait_with_output()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        execs.update(&id, |r| r.running = false);
        if !out.status.success() {
            return Err(ApiError::internal(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        return Ok(Response::empty(200));
    }
    let hijack = move |sock: UnixStream| {
        let code = match sock.try_clone() {
            Ok(s) => pump(child, s, tty),
            Err(_) => child.wait().ok().and_then(|s| s.code()).unwrap_or(126),
        };
        execs.update(&id, |r| {
            r.running = false;
            r.exit_code = Some(code);
        });
        // Only now: the client inspects the instance as soon as its stream ends.
        let _ = sock.shutdown(std::net::Shutdown::Both);
    };
    Ok(Response::new(101, Body::Hijack(Box::new(hijack))))
}

/// `POST /exec/{id}/resize?h=&w=`: the size the exec's terminal starts with (the client
/// sends it right after the start; later changes are not passed on, see [`start_tty`]).
pub fn resize(ctx: &Context, req: &Request, id: &str) -> Result<Response, ApiError> {
    ctx.execs.get(id)?;
    let dim = |k: &str| req.param(k).and_then(|v| v.parse::<u16>().ok());
    let (Some(h), Some(w)) = (dim("h"), dim("w")) else {
        return Err(ApiError::bad_request("resize needs numeric h and w"));
    };
    ctx.execs.update(id, |r| r.size = Some((h, w)));
    Ok(Response::empty(200))
}

/// How long a TTY exec waits for the client's first resize: docker's client sends it as
/// soon as the connection is hijacked; one without a terminal never does.
const FIRST_SIZE_WAIT: Duration = Duration::from_millis(300);

/// A TTY exec: the child `container exec -t` gets a terminal of ours (sized as the client
/// asked) as its stdio, so the container's terminal starts with that size; its output is
/// the raw stream.
fn start_tty(ctx: &Context, id: &str, r: ExecRecord) -> Response {
    let (execs, id, ctx) = (ctx.execs.clone(), id.to_string(), ctx.clone());
    let hijack = move |sock: UnixStream| {
        let deadline = Instant::now() + FIRST_SIZE_WAIT;
        let size = loop {
            let size = execs.get(&id).ok().and_then(|r| r.size);
            if size.is_some() || Instant::now() > deadline {
                break size;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let ws = size.map(|(rows, cols)| nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let code = match run_on_pty(&ctx, &r, ws.as_ref(), &sock, |pid| {
            execs.update(&id, |r| {
                r.started = true;
                r.running = true;
                r.pid = pid;
            })
        }) {
            Ok(code) => code,
            Err(e) => {
                let _ = (&sock).write_all(format!("rcompose: exec failed: {e}\r\n").as_bytes());
                126
            }
        };
        execs.update(&id, |r| {
            r.started = true;
            r.running = false;
            r.exit_code = Some(code);
        });
        let _ = sock.shutdown(std::net::Shutdown::Both);
    };
    Response::new(101, Body::Hijack(Box::new(hijack)))
}

fn run_on_pty(
    ctx: &Context,
    r: &ExecRecord,
    ws: Option<&nix::pty::Winsize>,
    sock: &UnixStream,
    started: impl FnOnce(u32),
) -> std::io::Result<i32> {
    let pty = nix::pty::openpty(ws, None).map_err(std::io::Error::from)?;
    let slave = std::fs::File::from(pty.slave);
    let mut cmd = command(ctx, r, true, false);
    cmd.stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave);
    let mut child = cmd.spawn()?;
    // The child's copies only: the master reads EIO once the last one is closed.
    drop(cmd);
    started(child.id());
    let mut master = std::fs::File::from(pty.master);
    if r.config.attach_stdin {
        let (mut from, mut to) = (sock.try_clone()?, master.try_clone()?);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
        });
    }
    let mut out = sock.try_clone()?;
    let mut buf = [0u8; 32 * 1024];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            // A client gone: keep draining so the process is not blocked on its terminal.
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
            }
        }
    }
    Ok(child.wait()?.code().unwrap_or(126))
}

/// Copies the child's output to the connection and the connection's input to the child until
/// the child's output ends; returns its exit code. The caller closes the connection.
fn pump(mut child: Child, sock: UnixStream, tty: bool) -> i32 {
    let out = Arc::new(Mutex::new(sock));
    let input = child.stdin.take();
    let read_side = out.lock().ok().and_then(|s| s.try_clone().ok());
    if let (Some(mut stdin), Some(mut from)) = (input, read_side) {
        std::thread::spawn(move || {
            // Ends at the client's half-close (end of its stdin) or at our shutdown.
            let _ = std::io::copy(&mut from, &mut stdin);
        });
    }
    let copy = |mut src: Box<dyn Read + Send>, stream: u8, dst: Arc<Mutex<UnixStream>>| {
        move || {
            let mut buf = [0u8; 32 * 1024];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let bytes = if tty {
                    buf[..n].to_vec()
                } else {
                    frame(stream, &buf[..n])
                };
                let Ok(mut s) = dst.lock() else { return };
                // A client gone: keep draining so the process is not blocked on a pipe.
                let _ = s.write_all(&bytes);
            }
        }
    };
    let err_thread = child
        .stderr
        .take()
        .map(|e| std::thread::spawn(copy(Box::new(e), 2, out.clone())));
    if let Some(o) = child.stdout.take() {
        copy(Box::new(o), 1, out.clone())();
    }
    if let Some(t) = err_thread {
        let _ = t.join();
    }
    child.wait().ok().and_then(|s| s.code()).unwrap_or(126)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_config_reads_dockers_body() {
        let c: ExecConfig = serde_json::from_str(
            r#"{"User":"","Privileged":false,"Tty":true,"AttachStdin":true,"AttachStderr":true,
                "AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["A=1"],"WorkingDir":"/tmp",
                "Cmd":["sh","-c","echo hi"]}"#,
        )
        .unwrap();
        assert!(c.tty && c.attach_stdin);
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), ["A=1"]);
        assert_eq!(c.working_dir, "/tmp");
    }

    #[test]
    fn the_command_is_the_clis_exec_with_the_instances_options() {
        let ctx = Context::new("/r".into(), "/rr".into(), "/bin/rcompose".into());
        let rec = ExecRecord {
            container_id: "abc".into(),
            config: ExecConfig {
                user: "1000".into(),
                attach_stdin: true,
                env: Some(vec!["A=1".into()]),
                working_dir: "/w".into(),
                cmd: Some(vec!["ls".into(), "-l".into()]),
                ..Default::default()
            },
            started: false,
            running: false,
            exit_code: None,
            pid: 0,
            size: None,
        };
        let c = command(&ctx, &rec, true, false);
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--root",
                "/r",
                "--run-root",
                "/rr",
                "container",
                "exec",
                "-i",
                "-t",
                "-e",
                "A=1",
                "-u",
                "1000",
                "-w",
                "/w",
                "abc",
                "ls",
                "-l"
            ]
        );
    }

    #[test]
    fn unknown_instances_are_404() {
        let ctx = Context::new("/r".into(), "/rr".into(), "/bin/false".into());
        let Err(e) = inspect(&ctx, "nope") else {
            panic!("an unknown exec instance was found")
        };
        assert_eq!(
            (e.status, e.message.as_str()),
            (404, "No such exec instance: nope")
        );
    }
}
