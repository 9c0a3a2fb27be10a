//! The monitor's poll loop while the container runs: container output → log file and attach
//! clients, client input → container stdin, terminal resizes, and the container's exit
//! (seen through a pidfd, since libcontainer's init has no exit signal).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::protocol::{self, Decoder};
use crate::container::{ContainerConfig, ContainerError};
use crate::logs::LogWriter;
use crate::runtime;

/// The container's stdio as the monitor holds it.
pub enum Stdio {
    Pipes {
        out: File,
        err: File,
        stdin: Option<File>,
    },
    Tty {
        master: File,
    },
}

/// Stdio before the runtime ran (the PTY master arrives on the console socket only then).
pub enum Pending {
    Pipes(Stdio),
    Tty(UnixListener, std::path::PathBuf),
}

impl Pending {
    pub fn finish(self) -> Result<Stdio, ContainerError> {
        match self {
            Pending::Pipes(s) => Ok(s),
            Pending::Tty(listener, path) => {
                let (conn, _) = listener
                    .accept()
                    .map_err(|e| ContainerError::io(&path, e))?;
                let _ = std::fs::remove_file(&path);
                let master = recv_fd(&conn).map_err(|e| ContainerError::io(&path, e))?;
                Ok(Stdio::Tty {
                    master: File::from(master),
                })
            }
        }
    }
}

fn pipe() -> Result<(File, OwnedFd), ContainerError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::Other(format!("pipe: {e}")))?;
    Ok((File::from(r), w))
}

/// Creates the pipes (or the console socket for `-t`) for one start.
pub fn make_stdio(
    cfg: &ContainerConfig,
    run_dir: &Path,
) -> Result<(Pending, runtime::Stdio), ContainerError> {
    if cfg.tty {
        let path = run_dir.join("console.sock");
        let _ = std::fs::remove_file(&path);
        let l = bind_unix(&path).map_err(|e| ContainerError::io(&path, e))?;
        return Ok((Pending::Tty(l, path.clone()), runtime::Stdio::Console(path)));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_keep, stdin_give) = if cfg.open_stdin {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| ContainerError::Other(format!("pipe: {e}")))?;
        (Some(File::from(w)), Some(r))
    } else {
        (None, None)
    };
    Ok((
        Pending::Pipes(Stdio::Pipes {
            out: out_r,
            err: err_r,
            stdin: stdin_keep,
        }),
        runtime::Stdio::Fds {
            stdin: stdin_give,
            stdout: out_w,
            stderr: err_w,
        },
    ))
}

pub fn recv_fd(conn: &UnixStream) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just gave us this fd.
            return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd) });
        }
    }
    Err(std::io::Error::other(
        "no terminal received on the console socket",
    ))
}

/// The attach socket; `None` if it cannot be created (attach then reports an error).
pub fn listen(path: &Path) -> Option<UnixListener> {
    if let Some(d) = path.parent() {
        // The container's run directory: 0700, as `prepare` makes it (`store::perms`).
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(d);
    }
    let _ = std::fs::remove_file(path);
    let l = bind_unix(path).ok()?;
    // Attaching is writing to the container's stdin: root only, as docker.sock's owner.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).ok()?;
    l.set_nonblocking(true).ok()?;
    Some(l)
}

struct Client {
    stream: UnixStream,
    dec: Decoder,
}

/// Attached clients.
pub struct Clients {
    list: Vec<Client>,
}

impl Clients {
    pub fn new(first: Option<OwnedFd>) -> Self {
        let mut c = Self { list: vec![] };
        if let Some(fd) = first {
            c.add(UnixStream::from(fd));
        }
        c
    }

    fn add(&mut self, stream: UnixStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        self.list.push(Client {
            stream,
            dec: Decoder::default(),
        });
    }

    fn broadcast(&mut self, kind: u8, data: &[u8]) {
        let frame = protocol::encode(kind, data);
        self.list.retain_mut(|c| c.stream.write_all(&frame).is_ok());
    }

    pub fn send_exit(&mut self, code: i32) {
        self.broadcast(protocol::EXIT, &code.to_be_bytes());
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl flag update on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// What the periodic work (healthchecks) asks of the poll loop: to be called again within
/// `after`, and as soon as one of `fds` (-1 for none) is readable. It must never block: the
/// loop forwards container output only between its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    pub after: Option<Duration>,
    pub fds: [RawFd; 2],
}

impl Wake {
    pub fn idle() -> Self {
        Self {
            after: None,
            fds: [-1, -1],
        }
    }
}

/// Runs until the container's init exits; returns docker's exit code (128+signal if killed).
pub fn serve(
    pid: i32,
    mut stdio: Stdio,
    log: &mut LogWriter,
    clients: &mut Clients,
    listener: Option<&UnixListener>,
    tick: &mut dyn FnMut() -> Wake,
) -> i32 {
    let pidfd = crate::container::proc::pidfd_open(pid);
    let mut outputs: Vec<(Option<File>, bool)> = match &mut stdio {
        Stdio::Pipes { out, err, .. } => {
            vec![(out.try_clone().ok(), false), (err.try_clone().ok(), true)]
        }
        Stdio::Tty { master } => vec![(master.try_clone().ok(), false)],
    };
    for f in outputs.iter().filter_map(|(f, _)| f.as_ref()) {
        set_nonblocking(f.as_raw_fd());
    }
    let mut exited = pidfd.is_none()
        && !crate::container::proc::alive(pid, crate::container::proc::start_ticks(pid));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds: Vec<libc::pollfd> = vec![];
        let pfd = |fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.push(pfd(pidfd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)));
        for (f, _) in &outputs {
            fds.push(pfd(f.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)));
        }
        fds.push(pfd(listener.map(|l| l.as_raw_fd()).unwrap_or(-1)));
        let first_client = fds.len();
        for c in &clients.list {
            fds.push(pfd(c.stream.as_raw_fd()));
        }
        let clients_end = fds.len();
        // Periodic work (healthchecks) runs between polls, and its fds (a running probe's
        // output and pidfd) are polled with ours, so a slow probe never holds up the output.
        let wake = if exited { Wake::idle() } else { tick() };
        fds.extend(wake.fds.iter().map(|&fd| pfd(fd)));
        let timeout = if exited {
            0
        } else {
            // Round up: waking a millisecond early would spin until the deadline.
            wake.after
                .map(|d| d.as_micros().div_ceil(1000).min(1000) as i32)
                .unwrap_or(1000)
        };
        // SAFETY: valid pollfd array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if fds[0].revents != 0 {
            exited = true;
        }
        if pidfd.is_none() && !exited {
            exited = !crate::container::proc::alive(pid, crate::container::proc::start_ticks(pid));
        }
        // Container output.
        let mut got_output = false;
        for (i, (file, is_err)) in outputs.iter_mut().enumerate() {
            if fds[1 + i].revents == 0 && !exited {
                continue;
            }
            let Some(f) = file else { continue };
            loop {
                match f.read(&mut buf) {
                    Ok(0) => {
                        *file = None;
                        break;
                    }
                    Ok(n) => {
                        got_output = true;
                        let _ = log.write(*is_err, &buf[..n]);
                        let kind = if *is_err {
                            protocol::STDERR
                        } else {
                            protocol::STDOUT
                        };
                        clients.broadcast(kind, &buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // EIO: the terminal's last slave closed.
                    Err(_) => {
                        *file = None;
                        break;
                    }
                }
            }
        }
        // New attach clients.
        if let Some(l) = listener
            && fds[first_client - 1].revents != 0
        {
            while let Ok((s, _)) = l.accept() {
                clients.add(s);
            }
        }
        // Client input.
        let mut drop_idx = vec![];
        for (i, pf) in fds[first_client..clients_end].iter().enumerate() {
            if pf.revents == 0 || i >= clients.list.len() {
                continue;
            }
            let c = &mut clients.list[i];
            match c.stream.read(&mut buf) {
                Ok(0) | Err(_) => drop_idx.push(i),
                Ok(n) => {
                    c.dec.push(&buf[..n]);
                    while let Some((kind, payload)) = c.dec.next_frame() {
                        handle_input(&mut stdio, kind, &payload);
                    }
                }
            }
        }
        for i in drop_idx.into_iter().rev() {
            clients.list.remove(i);
        }
        let outputs_done = outputs.iter().all(|(f, _)| f.is_none());
        if exited && (outputs_done || !got_output) {
            break;
        }
    }
    wait_code(pid)
}

fn handle_input(stdio: &mut Stdio, kind: u8, payload: &[u8]) {
    match (stdio, kind) {
        (Stdio::Pipes { stdin: Some(w), .. }, protocol::STDIN) => {
            let _ = w.write_all(payload);
        }
        (Stdio::Pipes { stdin, .. }, protocol::STDIN_EOF) => {
            *stdin = None;
        }
        (Stdio::Tty { master }, protocol::STDIN) => {
            let _ = master.write_all(payload);
        }
        (Stdio::Tty { master }, protocol::RESIZE) if payload.len() == 4 => {
            let ws = libc::winsize {
                ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ with a valid winsize on the PTY master.
            unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
        _ => {}
    }
}

/// Reaps the init (a child of ours through CLONE_PARENT, without exit signal: `__WALL`).
pub fn wait_code(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            // Not our child (should not happen): the exit status is unknown.
            Err(_) => return 255,
        }
    }
}

/// Runs `f` with a short alias of `path` (`/proc/self/fd/<dirfd>/<name>`): socket addresses
/// are limited to 108 bytes, and our state paths (root + 64-hex id) can be longer.
fn with_short_path<T>(
    path: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    if path.as_os_str().len() < 100 {
        return f(path);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("socket path has no file name"))?;
    let d = std::fs::File::open(dir)?;
    let short = Path::new("/proc/self/fd")
        .join(d.as_raw_fd().to_string())
        .join(name);
    f(&short)
}

/// `UnixListener::bind` for paths of any length.
pub fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    with_short_path(path, |p| UnixListener::bind(p))
}

/// `UnixStream::connect` for paths of any length.
pub fn connect_unix(path: &Path) -> std::io::Result<UnixStream> {
    with_short_path(path, |p| UnixStream::connect(p))
}
