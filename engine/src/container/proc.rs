//! Host process helpers: identity by (pid, start time) so a reused pid is never signalled,
//! and waiting for any process (not only children) through a pidfd.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Start time (clock ticks since boot, field 22 of /proc/<pid>/stat) and whether the process
/// is a zombie. `None` when there is no such process.
pub fn stat(pid: i32) -> Option<(u64, bool)> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?;
    let ticks = fields.get(19)?.parse().ok()?;
    Some((ticks, *state == "Z" || *state == "X"))
}

pub fn start_ticks(pid: i32) -> u64 {
    stat(pid).map(|s| s.0).unwrap_or(0)
}

/// True when `pid` is the same live (non-zombie) process that had `ticks` as start time.
pub fn alive(pid: i32, ticks: u64) -> bool {
    matches!(stat(pid), Some((t, false)) if t == ticks)
}

/// Sleeps up to `wait`, returning early when the process behind `pidfd` exits; without a
/// pidfd (old kernels) it just sleeps.
pub fn wait_exit_or(pidfd: Option<&OwnedFd>, wait: Duration) {
    match pidfd {
        Some(fd) => {
            use std::os::fd::AsRawFd;
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, wait.as_millis().max(1) as i32) };
        }
        None => std::thread::sleep(wait),
    }
}

pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    if fd < 0 {
        None
    } else {
        // SAFETY: fresh fd we own.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Waits until the process exits (or becomes a zombie); false on timeout.
pub fn wait_gone(pid: i32, ticks: u64, timeout: Duration) -> bool {
    if !alive(pid, ticks) {
        return true;
    }
    let deadline = std::time::Instant::now() + timeout;
    let pidfd = pidfd_open(pid);
    loop {
        if !alive(pid, ticks) {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        let left = (deadline - now).min(Duration::from_millis(50));
        wait_exit_or(pidfd.as_ref(), left);
    }
}

/// Sends `sig` to the process if it is still the one we know.
pub fn signal(pid: i32, ticks: u64, sig: i32) -> bool {
    if !alive(pid, ticks) {
        return false;
    }
    // SAFETY: kill(2) on a verified pid.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Phase timing of the start path for benchmarks: with `RCOMPOSE_TIMING=<file>` in the
/// environment (inherited by the monitor), each call appends `<pid> <unix µs> <label>` to the
/// file; without it, a no-op after the first lookup.
pub fn trace_phase(label: &str) {
    use std::io::Write;
    static PATH: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    let Some(path) = PATH.get_or_init(|| std::env::var_os("RCOMPOSE_TIMING")) else {
        return;
    };
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        // One write(2), so lines of concurrent processes never interleave.
        let line = format!("{} {us} {label}\n", std::process::id());
        let _ = f.write_all(line.as_bytes());
    }
}

/// Parses `SIGTERM`, `TERM`, `term` or a number.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return None,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_signals_parse() {
        let me = std::process::id() as i32;
        let t = start_ticks(me);
        assert!(alive(me, t));
        assert!(!alive(me, t + 1));
        assert_eq!(parse_signal("SIGKILL"), Some(9));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }
}
