//! Starting the monitor's first process with posix_spawn instead of fork + exec.
//!
//! `up` starts containers from a large, multithreaded process. `fork` copies its page
//! tables and turns every page of its heap copy-on-write until the child execs (each later
//! write by `up` then takes a fault): measured at 100 services, a few ms of CPU per
//! container. glibc's posix_spawn shares the memory with the child until the exec
//! (CLONE_VM | CLONE_VFORK) and does the little the child needs (a new session, stdio on
//! /dev/null, two fds at fixed numbers) itself. Rust's `Command` would use it too, but not
//! with a `pre_exec` hook, which the fixed fd numbers needed.

use std::ffi::{CString, OsStr};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::container::ContainerError;

fn cstring(s: &OsStr) -> Result<CString, ContainerError> {
    CString::new(s.as_bytes()).map_err(|_| ContainerError::Other(format!("{s:?} holds a NUL byte")))
}

fn check(what: &str, rc: libc::c_int) -> Result<(), ContainerError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(ContainerError::Other(format!(
            "{what}: {}",
            std::io::Error::from_raw_os_error(rc)
        )))
    }
}

/// Runs `exe` with `args` in a new session, stdio on /dev/null, the environment of this
/// process, and `fds` (source, number in the child) placed at those numbers; every other fd
/// of ours must be close-on-exec. Returns the child's pid.
pub(super) fn spawn_detached(
    exe: &Path,
    args: &[&OsStr],
    fds: &[(RawFd, RawFd)],
) -> Result<libc::pid_t, ContainerError> {
    let mut argv_owned = vec![cstring(exe.as_os_str())?];
    for a in args {
        argv_owned.push(cstring(a)?);
    }
    let env_owned: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut argv: Vec<*mut libc::c_char> =
        argv_owned.iter().map(|c| c.as_ptr() as *mut _).collect();
    argv.push(std::ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> = env_owned.iter().map(|c| c.as_ptr() as *mut _).collect();
    envp.push(std::ptr::null_mut());
    let dev_null = c"/dev/null";

    // SAFETY: the file actions and attributes are initialised before use and destroyed on
    // every path; the argv/envp pointers stay valid (owned above) until posix_spawn returns.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        check(
            "posix_spawn_file_actions_init",
            libc::posix_spawn_file_actions_init(&mut actions),
        )?;
        if let Err(e) = check(
            "posix_spawnattr_init",
            libc::posix_spawnattr_init(&mut attr),
        ) {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return Err(e);
        }
        let result = (|| {
            for (fd, flags) in [
                (0, libc::O_RDONLY),
                (1, libc::O_WRONLY),
                (2, libc::O_WRONLY),
            ] {
                check(
                    "posix_spawn_file_actions_addopen",
                    libc::posix_spawn_file_actions_addopen(
                        &mut actions,
                        fd,
                        dev_null.as_ptr(),
                        flags,
                        0,
                    ),
                )?;
            }
            for &(src, dst) in fds {
                // dup2 onto another number clears close-on-exec on the copy only.
                debug_assert_ne!(src, dst);
                check(
                    "posix_spawn_file_actions_adddup2",
                    libc::posix_spawn_file_actions_adddup2(&mut actions, src, dst),
                )?;
            }
            // As Rust's Command: an empty signal mask, SIGPIPE back to its default.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            let mut pipe: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            check(
                "posix_spawnattr_setsigmask",
                libc::posix_spawnattr_setsigmask(&mut attr, &empty),
            )?;
            check(
                "posix_spawnattr_setsigdefault",
                libc::posix_spawnattr_setsigdefault(&mut attr, &pipe),
            )?;
            let flags = libc::POSIX_SPAWN_SETSID
                | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
                | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
            check(
                "posix_spawnattr_setflags",
                libc::posix_spawnattr_setflags(&mut attr, flags),
            )?;
            let mut pid: libc::pid_t = 0;
            let rc = libc::posix_spawn(
                &mut pid,
                argv_owned[0].as_ptr(),
                &actions,
                &attr,
                argv.as_ptr(),
                envp.as_ptr(),
            );
            if rc != 0 {
                return Err(ContainerError::io(
                    exe,
                    std::io::Error::from_raw_os_error(rc),
                ));
            }
            Ok(pid)
        })();
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result
    }
}

/// Reaps `pid`, retrying on EINTR.
pub(super) fn wait_pid(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
    {}
}
