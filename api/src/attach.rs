//! `POST /containers/{id}/attach` (`docker run` without `-d`, `docker run -it`, `docker
//! attach`): the hijacked connection becomes a client of the container's monitor, as the
//! CLI's `attach` is, so it gets every byte of output (also of a `--rm` container, whose log
//! is deleted at removal), sends stdin, and learns the exit code.
//!
//! `docker run` attaches before it starts the container: the attach then waits in
//! [`Sessions`] until `start` hands it one end of a socket pair whose other end the monitor
//! gets at its start (so nothing written before the first read is lost). A container
//! started elsewhere meanwhile (the CLI) is joined through its attach socket. A client that
//! goes away ends only its session: the container keeps running.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rcompose_engine::container::model::Status;
use rcompose_engine::logs::{self, ReadOptions};
use rcompose_engine::monitor::client::{self, AttachEnd};
use rcompose_engine::monitor::protocol;

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};
use crate::logs::{encode, frame};

/// docker's default detach keys, ctrl-p ctrl-q.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Attach sessions of this server, by container id.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Hijacked connections waiting for the container's start.
    pending: Mutex<HashMap<String, Vec<Sender<UnixStream>>>>,
    /// A writer to the monitor per attached container (resize), while a session lasts.
    live: Mutex<HashMap<String, UnixStream>>,
    /// The window size asked for before the session began.
    sizes: Mutex<HashMap<String, (u16, u16)>>,
    /// Exit codes the sessions saw, for `wait` of a container removed at its exit (`--rm`).
    exits: Mutex<HashMap<String, i32>>,
}

impl Sessions {
    /// The monitor end for `start`, when a client waits for it: the other end goes to that
    /// client's session.
    pub fn take_pending(&self, id: &str) -> Option<OwnedFd> {
        let mut map = self.pending.lock().ok()?;
        let waiting = map.get_mut(id)?;
        while let Some(tx) = waiting.pop() {
            let Ok((ours, theirs)) = UnixStream::pair() else {
                return None;
            };
            if tx.send(ours).is_ok() {
                if waiting.is_empty() {
                    map.remove(id);
                }
                return Some(OwnedFd::from(theirs));
            }
        }
        map.remove(id);
        None
    }

    fn active(&self, id: &str) -> bool {
        self.live.lock().is_ok_and(|m| m.contains_key(id))
            || self.pending.lock().is_ok_and(|m| m.contains_key(id))
    }

    /// The exit code a session saw for `id`, waiting (bounded) while one is still attached:
    /// the monitor removes an `--rm` container before it tells its clients the code.
    pub fn exit_code(&self, id: &str, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(c) = self.exits.lock().ok()?.remove(id) {
                return Some(c);
            }
            if !self.active(id) || Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `POST /containers/{id}/resize`: to the monitor now, or at the session's start.
    pub fn resize(&self, id: &str, rows: u16, cols: u16) {
        if let Ok(mut live) = self.live.lock()
            && let Some(w) = live.get_mut(id)
        {
            let mut p = rows.to_be_bytes().to_vec();
            p.extend_from_slice(&cols.to_be_bytes());
            let _ = protocol::write_frame(w, protocol::RESIZE, &p);
            return;
        }
        if let Ok(mut s) = self.sizes.lock() {
            s.insert(id.to_string(), (rows, cols));
        }
    }
}

/// One of the container's streams on the client's connection: docker's framing without a
/// TTY, raw with one; discarded when the client did not ask for it.
struct Out {
    sock: UnixStream,
    stream: u8,
    tty: bool,
    wanted: bool,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.wanted {
            if self.tty {
                self.sock.write_all(buf)?;
            } else {
                self.sock.write_all(&frame(self.stream, buf))?;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Want {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

/// Whether the client closed its connection (both directions).
fn hung_up(sock: &UnixStream) -> bool {
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::empty())];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// `detachKeys=ctrl-p,ctrl-q` as docker spells them.
fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return Ok(DETACH_KEYS.to_vec());
    };
    spec.split(',')
        .map(|k| match k.strip_prefix("ctrl-").map(str::as_bytes) {
            Some([c @ b'a'..=b'z']) => Ok(c - b'a' + 1),
            Some([b'@']) => Ok(0),
            Some([b'[']) => Ok(27),
            Some([b'\\']) => Ok(28),
            Some([b']']) => Ok(29),
            Some([b'^']) => Ok(30),
            Some([b'_']) => Ok(31),
            None if k.len() == 1 => Ok(k.as_bytes()[0]),
            _ => Err(ApiError::bad_request(format!(
                "Invalid detach keys ({spec}) provided"
            ))),
        })
        .collect()
}

pub fn attach(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let want = Want {
        stdin: req.flag("stdin") && c.open_stdin,
        stdout: req.flag("stdout"),
        stderr: req.flag("stderr"),
        tty: c.tty,
    };
    let keys = detach_keys(req.param("detachKeys"))?;
    let (replay, stream) = (req.flag("logs"), req.flag("stream"));
    // What is logged so far, for `logs=1` (only with a log to read).
    let past = if replay && c.host.keeps_logs() {
        logs::read(&eng.store.log_path(&c.id), &ReadOptions::default())
            .map(|(e, _)| e)
            .unwrap_or_default()
    } else {
        vec![]
    };
    let st = eng.observe(&c.id)?;
    let running = matches!(st.status, Status::Running | Status::Paused);
    // Not running yet: wait for `start` (registered now, before the client can start it).
    let pending = (stream && !running).then(|| {
        let (tx, rx) = mpsc::channel();
        if let Ok(mut m) = ctx.sessions.pending.lock() {
            m.entry(c.id.clone()).or_default().push(tx);
        }
        rx
    });
    let ctx = ctx.clone();
    let hijack = move |mut sock: UnixStream| {
        for e in &past {
            if let Some(b) = encode(e, want.tty, false, want.stdout, want.stderr)
                && sock.write_all(&b).is_err()
            {
                return;
            }
        }
        if !stream {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            return;
        }
        let monitor = match pending {
            Some(rx) => wait_for_start(&ctx, &c.id, &sock, rx),
            None => rcompose_engine::monitor::connect_unix(&eng.store.attach_socket(&c.id)).ok(),
        };
        if let Some(monitor) = monitor {
            session(&ctx, &c.id, monitor, &sock, want, keys);
        }
        let _ = sock.shutdown(std::net::Shutdown::Both);
    };
    Ok(Response::new(101, Body::Hijack(Box::new(hijack))))
}

/// The monitor stream of a container not yet running: handed over by `start`, or its attach
/// socket when something else started it. `None` when the container or the client is gone.
fn wait_for_start(
    ctx: &Context,
    id: &str,
    sock: &UnixStream,
    rx: Receiver<UnixStream>,
) -> Option<UnixStream> {
    let eng = ctx.engine();
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(s) => return Some(s),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let gone = !eng.store.dir(id).exists() || hung_up(sock);
        let started = eng.observe(id).is_ok_and(|st| st.status == Status::Running);
        if gone || started {
            // Off the list: a later `start` must not hand its pair to us.
            if let Ok(mut m) = ctx.sessions.pending.lock() {
                m.remove(id);
            }
            // A start that raced us may have sent already.
            if let Ok(s) = rx.try_recv() {
                return Some(s);
            }
            if gone {
                return None;
            }
            return rcompose_engine::monitor::connect_unix(&eng.store.attach_socket(id)).ok();
        }
    }
}

fn session(
    ctx: &Context,
    id: &str,
    monitor: UnixStream,
    sock: &UnixStream,
    want: Want,
    keys: Vec<u8>,
) {
    let s = &ctx.sessions;
    // Read now: an `--rm` container's config is gone when the session ends.
    let session_cfg = ctx.engine().store.load_config(id).ok();
    if let (Ok(w), Ok(mut live)) = (monitor.try_clone(), s.live.lock()) {
        live.insert(id.to_string(), w);
    }
    let window = s.sizes.lock().ok().and_then(|mut m| m.remove(id));
    let clone = || sock.try_clone();
    let (Ok(o), Ok(e), Ok(i)) = (clone(), clone(), clone()) else {
        return;
    };
    let mut out = Out {
        sock: o,
        stream: 1,
        tty: want.tty,
        wanted: want.stdout,
    };
    let mut err = Out {
        sock: e,
        stream: 2,
        tty: want.tty,
        wanted: want.stderr,
    };
    let input = want
        .stdin
        .then(|| (Box::new(i) as Box<dyn Read + Send>, keys));
    let end = client::attach(monitor, window, input, &mut out, &mut err);
    if let Ok(AttachEnd::Exited(code)) = end {
        if let Ok(mut m) = s.exits.lock() {
            m.insert(id.to_string(), code);
        }
        // A `--rm` container is gone before a poll sees it stopped: its die is ours to tell.
        if let Ok(cfg) = ctx.engine().store.load_config(id) {
            ctx.journal
                .container("die", &cfg, &[("exitCode", code.to_string())]);
        } else if let Some(cfg) = &session_cfg {
            ctx.journal
                .container("die", cfg, &[("exitCode", code.to_string())]);
            ctx.journal.container("destroy", cfg, &[]);
        }
    }
    if let Ok(mut live) = s.live.lock() {
        live.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_as_docker_spells_them() {
        assert_eq!(detach_keys(None).unwrap(), DETACH_KEYS);
        assert_eq!(detach_keys(Some("ctrl-a,x")).unwrap(), [1, b'x']);
        assert_eq!(detach_keys(Some("ctrl-")).unwrap_err().status, 400);
    }

    #[test]
    fn a_pending_attach_gets_the_pair_and_a_gone_one_is_skipped() {
        let s = Sessions::default();
        assert!(s.take_pending("c").is_none());
        let (gone_tx, gone_rx) = mpsc::channel();
        drop(gone_rx);
        let (tx, rx) = mpsc::channel();
        {
            let mut m = s.pending.lock().unwrap();
            m.entry("c".into()).or_default().push(tx);
            m.entry("c".into()).or_default().push(gone_tx);
        }
        let monitor_end = s.take_pending("c").expect("a waiting client");
        let mut ours = rx.try_recv().expect("the client got its end");
        let mut theirs = UnixStream::from(monitor_end);
        theirs.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        ours.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
        assert!(!s.active("c"));
    }

    #[test]
    fn exit_codes_wait_only_while_a_session_is_attached() {
        let s = Sessions::default();
        assert_eq!(s.exit_code("c", Duration::from_secs(5)), None);
        s.exits.lock().unwrap().insert("c".into(), 3);
        assert_eq!(s.exit_code("c", Duration::ZERO), Some(3));
    }
}
