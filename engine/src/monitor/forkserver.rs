//! Monitors forked from one pre-started process instead of each exec'd from scratch.
//!
//! Exec'ing the 24 MB `rcompose` binary for each monitor costs about 1.3 ms of CPU before
//! the monitor does anything: the kernel's exec, the dynamic loader relocating the binary,
//! glibc probing the CPU's caches (each `cpuid` traps to the hypervisor in a VM) and some
//! 470 page faults (`perf record` of `up -d` of 100 services: a tenth of a start's CPU).
//! A process that starts more than one monitor (`up`, `start` of a project, the API server)
//! therefore starts, on its second monitor, a fork server: the same binary, exec'd once,
//! that waits on a socket and forks a monitor per request. A fork of that small,
//! single-threaded process costs a fraction of an exec, and what it already did (the
//! loader, the CPU probing of glibc and of Rust's std) its children inherit done.
//!
//! The monitor it forks is what `spawn` would have exec'd: in a session of its own, stdio
//! on /dev/null, the handshake and attach descriptors at their fixed numbers and no other,
//! the default SIGCHLD disposition, and the same command line (`ps` shows
//! `container-monitor ID`, written over the server's argument space). It is the server's
//! child, reaped by the kernel while the server lives (SIGCHLD ignored there) and
//! re-parented to init when it exits, as a spawned monitor is from the start.
//!
//! What forking gives up: the monitors of one server share its address-space layout (ASLR
//! offsets, stack canary), as the children of Android's zygote do. Each command's server is
//! exec'd afresh, so the layout differs from one command to the next.
//!
//! The server lives as long as the socket's other end: it exits when the process that
//! started it does. Whenever the server cannot be started or reached, `spawn` execs the
//! monitor itself, as before; `RCOMPOSE_MONITOR_FORKS=0` turns the server off.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

use super::{ATTACH_FD, ExitHook, SUBCOMMAND, SYNC_FD};

/// The server's hidden subcommand: `--root R --run-root RR container-monitor-server ROOM`.
pub const SERVER_SUBCOMMAND: &str = "container-monitor-server";
/// The server's last argument: room in its argument space for a monitor's command line
/// (`container-monitor`, a 64-hex id and `--attach` take 92 bytes more than the subcommand
/// above).
const ROOM: &str =
    "--argv-room=................................................................................";
/// Where the server finds its socket (moved out of the way of the monitors' fixed numbers
/// before anything else).
const SERVER_FD: RawFd = 3;

enum State {
    /// No monitor started by this process yet.
    Unused,
    /// One started: the next start brings up the server.
    OneSpawned,
    Ready {
        sock: OwnedFd,
        exe: PathBuf,
        root: PathBuf,
        run_root: PathBuf,
    },
    /// Turned off, or failed once: every monitor is exec'd.
    Off,
}

static STATE: Mutex<State> = Mutex::new(State::Unused);

/// Asks the fork server for a monitor of `id`, handing it `fds` (the handshake's write end,
/// then the attach client's). `false` when the caller should exec the monitor itself: the
/// first monitor of this process, the server off or gone, another root.
pub(super) fn request(exe: &Path, root: &Path, run_root: &Path, id: &str, fds: &[RawFd]) -> bool {
    let Ok(mut state) = STATE.lock() else {
        return false;
    };
    if matches!(*state, State::Unused) {
        let off = std::env::var_os("RCOMPOSE_MONITOR_FORKS").is_some_and(|v| v == "0");
        *state = if off { State::Off } else { State::OneSpawned };
        return false;
    }
    if matches!(*state, State::OneSpawned) {
        *state = match start(exe, root, run_root) {
            Some(sock) => State::Ready {
                sock,
                exe: exe.to_path_buf(),
                root: root.to_path_buf(),
                run_root: run_root.to_path_buf(),
            },
            None => State::Off,
        };
    }
    let State::Ready {
        sock,
        exe: e,
        root: r,
        run_root: rr,
    } = &*state
    else {
        return false;
    };
    if e != exe || r != root || rr != run_root {
        return false;
    }
    let mut msg = id.as_bytes().to_vec();
    if fds.len() > 1 {
        msg.extend_from_slice(b"\0attach");
    }
    let iov = [std::io::IoSlice::new(&msg)];
    let rights = [ControlMessage::ScmRights(fds)];
    match sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &rights,
        MsgFlags::MSG_NOSIGNAL,
        None,
    ) {
        Ok(_) => true,
        Err(e) => {
            // The server is gone (killed, or failed at start): exec from now on.
            tracing::debug!("monitor fork server unreachable: {e}");
            *state = State::Off;
            false
        }
    }
}

/// Starts the server; our end of its socket.
fn start(exe: &Path, root: &Path, run_root: &Path) -> Option<OwnedFd> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ok()?;
    // Above the number it goes to, so the dup2 of posix_spawn cannot clobber anything.
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor, owned here.
    let high = unsafe { libc::fcntl(theirs.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if high < 0 {
        return None;
    }
    drop(theirs);
    // SAFETY: `high` is ours (above).
    let theirs = unsafe { OwnedFd::from_raw_fd(high) };
    let args: [&OsStr; 6] = [
        "--root".as_ref(),
        root.as_os_str(),
        "--run-root".as_ref(),
        run_root.as_os_str(),
        SERVER_SUBCOMMAND.as_ref(),
        ROOM.as_ref(),
    ];
    match super::launch::spawn_detached(exe, &args, &[(theirs.as_raw_fd(), SERVER_FD)]) {
        Ok(_) => Some(ours),
        Err(e) => {
            tracing::debug!("monitor fork server did not start: {e}");
            None
        }
    }
}

/// Body of the server's subcommand: forks a monitor per request until the socket closes.
/// Returns the exit code.
pub fn serve(root: &Path, run_root: &Path, on_exit: Option<ExitHook>) -> i32 {
    // SAFETY: our socket, handed over at SERVER_FD by `start`; moved above the numbers the
    // monitors' descriptors go to.
    let sock = unsafe {
        let n = libc::fcntl(SERVER_FD, libc::F_DUPFD_CLOEXEC, 10);
        if n < 0 {
            return 1;
        }
        libc::close(SERVER_FD);
        OwnedFd::from_raw_fd(n)
    };
    // Children are reaped by the kernel: none stays a zombie (that still looks alive to
    // `kill(pid, 0)`) while we live. Each child puts the default back first thing.
    // SAFETY: signal(2); this process is single-threaded.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // Done once here instead of in each monitor's container process (memchr asks).
    #[cfg(target_arch = "x86_64")]
    let _ = std::is_x86_feature_detected!("avx2");
    let mut buf = [0u8; 256];
    loop {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let (len, fds) = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => {
                let mut fds = vec![];
                for c in m.cmsgs().into_iter().flatten() {
                    if let ControlMessageOwned::ScmRights(got) = c {
                        // SAFETY: the kernel just gave us these descriptors.
                        fds.extend(got.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                    }
                }
                (m.bytes, fds)
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 0,
        };
        if len == 0 && fds.is_empty() {
            // Our client is gone.
            return 0;
        }
        let msg = &buf[..len];
        let (id, attach) = match msg.strip_suffix(b"\0attach") {
            Some(id) => (id, true),
            None => (msg, false),
        };
        let Ok(id) = std::str::from_utf8(id) else {
            continue;
        };
        if fds.len() != 1 + usize::from(attach) {
            // Dropping them closes the handshake: the client reports the start as failed.
            continue;
        }
        // SAFETY: fork(2) of this single-threaded process; the child only runs the monitor
        // (which starts no thread before its own forks are done) and exits.
        match unsafe { libc::fork() } {
            0 => {
                let code = become_monitor(root, run_root, id, attach, sock, fds, on_exit);
                std::process::exit(code);
            }
            // Failed (-1) or forked: either way the descriptors are the child's or dropped,
            // and the client sees the handshake end without "ok" if there is no child.
            _ => drop(fds),
        }
    }
}

/// In the forked child: what `spawn_detached` gives an exec'd monitor, then the monitor.
fn become_monitor(
    root: &Path,
    run_root: &Path,
    id: &str,
    attach: bool,
    sock: OwnedFd,
    fds: Vec<OwnedFd>,
    on_exit: Option<ExitHook>,
) -> i32 {
    // SAFETY: process-wide settings of this new, single-threaded process; dup2 onto the
    // fixed numbers from copies above them, so no source is clobbered, and the copies (like
    // the originals, and the server's socket) are closed: the monitor holds nothing else.
    unsafe {
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::setsid();
        drop(sock);
        let high: Vec<RawFd> = fds
            .iter()
            .map(|f| libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10))
            .collect();
        drop(fds);
        for (fd, slot) in high.into_iter().zip([SYNC_FD, ATTACH_FD]) {
            if fd < 0 || libc::dup2(fd, slot) < 0 {
                return 1;
            }
            libc::close(fd);
        }
    }
    let mut argv: Vec<OsString> = vec![
        std::env::current_exe()
            .map(PathBuf::into_os_string)
            .unwrap_or_else(|_| "rcompose".into()),
        "--root".into(),
        root.into(),
        "--run-root".into(),
        run_root.into(),
        SUBCOMMAND.into(),
        id.into(),
    ];
    if attach {
        argv.push("--attach".into());
    }
    set_command_line(&argv);
    super::proc::trace_phase("monitor.forked");
    super::main(root, run_root, id, attach, on_exit)
}

/// Writes `argv` over this process's argument space (what /proc/PID/cmdline shows, as
/// setproctitle does), zero-filling the rest; leaves it alone if it does not fit.
fn set_command_line(argv: &[OsString]) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces) start at field 3; arg_start
    // and arg_end are fields 48 and 49.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (Some(start), Some(end)) = (
        f.get(45).and_then(|v| v.parse::<usize>().ok()),
        f.get(46).and_then(|v| v.parse::<usize>().ok()),
    ) else {
        return;
    };
    let mut bytes: Vec<u8> = vec![];
    for a in argv {
        bytes.extend_from_slice(a.clone().into_vec().as_slice());
        bytes.push(0);
    }
    if start == 0 || end <= start || bytes.len() > end - start {
        return;
    }
    // SAFETY: [arg_start, arg_end) is this process's own argument area on its stack, mapped
    // and writable; nothing of ours reads the old strings any more (the server's arguments
    // were parsed before the fork). The prctl only moves the end of that area back (it
    // needs CAP_SYS_RESOURCE; without it /proc shows the zeroes left as empty arguments).
    unsafe {
        let p = start as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        std::ptr::write_bytes(p.add(bytes.len()), 0, end - start - bytes.len());
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_ARG_END as libc::c_ulong,
            (start + bytes.len()) as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The room left for a monitor's command line covers the longest one.
    #[test]
    fn the_server_arguments_leave_room_for_a_monitor() {
        let server = SERVER_SUBCOMMAND.len() + 1 + ROOM.len() + 1;
        let monitor = SUBCOMMAND.len() + 1 + 64 + 1 + "--attach".len() + 1;
        assert!(server >= monitor, "{server} < {monitor}");
    }

    /// A command line written over the argument space is what /proc shows, in a child (the
    /// change is process-wide).
    #[test]
    fn the_command_line_is_rewritten_in_place() {
        // SAFETY: fork of the test process; the child only rewrites, reads /proc and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let want: Vec<OsString> = vec!["x".into(), "y z".into()];
            set_command_line(&want);
            let got = std::fs::read("/proc/self/cmdline").unwrap_or_default();
            // Without CAP_SYS_RESOURCE the area keeps its length: zeroes after the arguments.
            let ok = got.starts_with(b"x\0y z\0") && got[6..].iter().all(|b| *b == 0);
            // SAFETY: _exit in the forked child: no unwinding into the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
