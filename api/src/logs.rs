//! `GET /containers/{id}/logs`: the json-file log read as `rcompose container logs` reads it,
//! sent in docker's multiplexed framing when the container has no TTY (an 8-byte header per
//! frame: stream 1 = stdout, 2 = stderr, three zero bytes, big-endian length), raw with one.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rcompose_engine::container::Containers;
use rcompose_engine::container::model::Status;
use rcompose_engine::logs::{self, LogEntry, Position, ReadOptions};
use rcompose_engine::units::time::format_rfc3339;

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};

/// One frame of docker's stdcopy format.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// docker's `since`/`until`: Unix seconds, with an optional fraction.
fn unix_bound(v: Option<&str>) -> Option<String> {
    let v = v.filter(|v| !v.is_empty() && *v != "0")?;
    let (secs, frac) = v.split_once('.').unwrap_or((v, "0"));
    let secs: i64 = secs.parse().ok()?;
    let nanos: u32 = format!("{frac:0<9}")[..9].parse().unwrap_or(0);
    Some(format_rfc3339(secs, nanos))
}

/// Whether the container may still write to its log.
fn alive(eng: &Containers, id: &str) -> bool {
    // A removed container's state reads as `Created`.
    eng.store.dir(id).exists()
        && eng.observe(id).is_ok_and(|st| {
            matches!(
                st.status,
                Status::Running | Status::Paused | Status::Restarting | Status::Created
            )
        })
}

/// As the CLI's `logs -f`: entries after `pos` until the log is gone or the container
/// stopped. A log that does not exist yet (attach before start) is waited for.
fn follow(
    eng: &Containers,
    id: &str,
    path: &Path,
    mut pos: Position,
    opts: ReadOptions,
    send: &mut dyn FnMut(&[LogEntry]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    loop {
        let (more, next) = match logs::read_from(path, pos, &opts) {
            Ok(r) => r,
            Err(_) if alive(eng, id) && !path.exists() => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(_) => return Ok(()),
        };
        pos = next;
        send(&more)?;
        if more.is_empty() {
            if !alive(eng, id) {
                // One last read: the monitor flushes before recording the exit.
                if let Ok((last, _)) = logs::read_from(path, pos, &opts) {
                    send(&last)?;
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What one entry becomes on the wire.
pub(crate) fn encode(
    e: &LogEntry,
    tty: bool,
    timestamps: bool,
    stdout: bool,
    stderr: bool,
) -> Option<Vec<u8>> {
    let is_err = e.stream == "stderr";
    if (is_err && !stderr) || (!is_err && !stdout) {
        return None;
    }
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    Some(if tty {
        text.into_bytes()
    } else {
        frame(if is_err { 2 } else { 1 }, text.as_bytes())
    })
}

pub fn logs(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    if !c.host.keeps_logs() {
        return Err(ApiError::bad_request(format!(
            "configured logging driver does not support reading: container {} runs with log driver {}",
            c.name,
            c.host.log_driver()
        )));
    }
    let (stdout, stderr) = (req.flag("stdout"), req.flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match req.param("tail") {
        None | Some("all") | Some("") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => None,
        },
    };
    let opts = ReadOptions {
        tail,
        since: unix_bound(req.param("since")),
        until: unix_bound(req.param("until")),
    };
    let (following, timestamps, tty) = (req.flag("follow"), req.flag("timestamps"), c.tty);
    let path = eng.store.log_path(&c.id);
    // Read before answering, so a missing log is an error status rather than a cut stream.
    let (first, pos) = match logs::read(&path, &opts) {
        Ok(r) => r,
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let ctype = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        let send = |w: &mut dyn Write, entries: &[LogEntry]| -> std::io::Result<()> {
            for e in entries {
                if let Some(b) = encode(e, tty, timestamps, stdout, stderr) {
                    w.write_all(&b)?;
                }
            }
            // Also when nothing came: a follower whose client left stops here.
            w.flush()
        };
        send(w, &first)?;
        if !following {
            return Ok(());
        }
        follow(
            &eng,
            &c.id,
            &path,
            pos,
            ReadOptions { tail: None, ..opts },
            &mut |e| send(w, e),
        )
    };
    Ok(Response::new(200, Body::Stream(ctype, Box::new(stream))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_stream_and_length() {
        assert_eq!(frame(2, b"hi"), [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        let e = LogEntry {
            log: "x\n".into(),
            stream: "stdout".into(),
            time: "t".into(),
        };
        assert_eq!(encode(&e, true, true, true, false).unwrap(), b"t x\n");
        assert!(encode(&e, false, false, false, true).is_none());
    }

    #[test]
    fn since_is_unix_seconds() {
        assert_eq!(unix_bound(Some("0")), None);
        assert!(
            unix_bound(Some("1700000000.5"))
                .unwrap()
                .starts_with("2023-11-14T22:13:20.5")
        );
    }
}
