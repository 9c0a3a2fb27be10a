//! Starting the monitor with posix_spawn instead of fork + exec, as an orphan.
//!
//! `up` starts containers from a large, multithreaded process. `fork` copies its page
//! tables and turns every page of its heap copy-on-write until the child execs (each later
//! write by `up` then takes a fault): measured at 100 services, a few ms of CPU per
//! container. glibc's posix_spawn shares the memory with the child until the exec
//! (CLONE_VM | CLONE_VFORK) and does the little the child needs (a new session, stdio on
//! /dev/null, two fds at fixed numbers) itself. Rust's `Command` would use it too, but not
//! with a `pre_exec` hook, which the fixed fd numbers needed.
//!
//! The monitor must not be our child: a long-lived caller (the API server, `up` following
//! logs) would keep it as a zombie once it exits, and a zombie still answers `kill(pid, 0)`
//! as alive. It used to fork itself once started and let its first process exit; that
//! second copy of a freshly exec'd 24 MB binary (its page tables, its exit, its text pages
//! faulted in again) cost about 1 ms of CPU per container. Now a trampoline that shares our
//! memory (CLONE_VM | CLONE_VFORK, like posix_spawn's own child) calls posix_spawn and
//! exits at once: the monitor is the trampoline's child, re-parented to init (or the
//! nearest subreaper) as soon as it exists, and runs exactly as exec'd.

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
/// process, and `fds` (source, number in the new process) placed at those numbers; every
/// other fd of ours must be close-on-exec. The new process is not our child. Returns its pid.
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
            let mut call = SpawnCall {
                path: argv_owned[0].as_ptr(),
                actions: &actions,
                attr: &attr,
                argv: argv.as_ptr(),
                envp: envp.as_ptr(),
                pid: 0,
                rc: 0,
            };
            spawn_from_trampoline(&mut call).map_err(|e| ContainerError::io(exe, e))?;
            if call.rc != 0 {
                return Err(ContainerError::io(
                    exe,
                    std::io::Error::from_raw_os_error(call.rc),
                ));
            }
            if call.pid <= 0 {
                return Err(ContainerError::io(
                    exe,
                    std::io::Error::other("posix_spawn returned no process"),
                ));
            }
            Ok(call.pid)
        })();
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result
    }
}

/// One posix_spawn call, made by the trampoline; it writes the outcome back (`pid`, `rc`)
/// into our memory, which it shares.
struct SpawnCall {
    path: *const libc::c_char,
    actions: *const libc::posix_spawn_file_actions_t,
    attr: *const libc::posix_spawnattr_t,
    argv: *const *mut libc::c_char,
    envp: *const *mut libc::c_char,
    pid: libc::pid_t,
    rc: libc::c_int,
}

extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the SpawnCall of spawn_from_trampoline, whose thread is suspended
    // (CLONE_VFORK) until we exit; its pointers stay valid until then.
    unsafe {
        let call = &mut *(arg as *mut SpawnCall);
        call.rc = libc::posix_spawn(
            &mut call.pid,
            call.path,
            call.actions,
            call.attr,
            call.argv,
            call.envp,
        );
    }
    // Returning ends this process (glibc's clone makes the exit system call): no exit
    // handlers, no flush of buffers that are ours.
    0
}

/// Runs `call` in a short-lived process that shares our memory and exits once the spawned
/// process exists; that process is then nobody's child but init's (or a subreaper's). Every
/// signal is blocked meanwhile, so none of our handlers runs on the trampoline's stack
/// (posix_spawn gives the new process the mask the attributes ask for).
fn spawn_from_trampoline(call: &mut SpawnCall) -> std::io::Result<()> {
    // posix_spawn runs on this stack, and the process it starts gets one of its own.
    const STACK: usize = 256 * 1024;
    // SAFETY: a private anonymous mapping, unmapped below once the trampoline is gone.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: sigset operations on local sets; the old mask is put back before returning.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the trampoline gets a stack of its own (its top, page-aligned, is passed) and
    // only calls posix_spawn with what `call` holds; CLONE_VFORK keeps this thread, and so
    // `call` and the stack, waiting until it has exited.
    let pid = unsafe {
        libc::clone(
            trampoline,
            (stack as *mut u8).add(STACK) as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            call as *mut SpawnCall as *mut libc::c_void,
        )
    };
    let res = if pid < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        match wait_pid(pid) {
            // Killed before it could return from posix_spawn (which reports its own failure
            // in `rc`).
            Some(status) if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 => Err(
                std::io::Error::other("the process that spawns the monitor did not finish"),
            ),
            // Exited (CLONE_VFORK returns only then), reaped here or, when SIGCHLD is ignored
            // (a disposition inherited across exec), by the kernel: `call` tells the outcome.
            _ => Ok(()),
        }
    };
    // SAFETY: restores the mask saved above; the trampoline is gone, so is its use of the
    // stack.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::munmap(stack, STACK);
    }
    res
}

/// Reaps `pid`, retrying on EINTR; its wait status, `None` if it could not be reaped.
fn wait_pid(pid: libc::pid_t) -> Option<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child. __WCLONE is not needed: it exits with SIGCHLD.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Some(status);
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// The spawned process is nobody's child of ours, leads a session of its own, and finds
    /// the descriptor it was given at the number asked for.
    #[test]
    fn spawned_process_is_an_orphan_in_its_own_session() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        // Above the slot it goes to, as `spawn` does, so dup2 cannot clobber it; the original
        // is closed (shadowing would keep it open, and the read below would never end).
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor, owned here.
        let high = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
        assert!(high >= 10);
        drop(w);
        // SAFETY: `high` is ours (above).
        let w = unsafe { OwnedFd::from_raw_fd(high) };
        let script = "read -r _ _ _ _ _ sid _ < /proc/self/stat; echo \"$$ $PPID $sid\" >&3";
        let pid = spawn_detached(
            Path::new("/bin/sh"),
            &["-c".as_ref(), script.as_ref()],
            &[(w.as_raw_fd(), 3)],
        )
        .unwrap();
        drop(w);
        let mut out = String::new();
        File::from(r).read_to_string(&mut out).unwrap();
        let f: Vec<i32> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        assert_eq!(f.len(), 3, "{out:?}");
        assert_eq!(f[0], pid, "the pid returned is the process's own");
        assert_ne!(f[1], std::process::id() as i32, "its parent is not us");
        assert_eq!(f[2], pid, "it leads its own session");
        // Not our child: nothing to reap.
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on a pid that must not be our child.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert_eq!(rc, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ECHILD)
        );
    }

    /// With SIGCHLD ignored (inherited from whoever ran us), the kernel reaps the trampoline
    /// itself: the spawn still succeeds. Run in a copy of this test binary, since the
    /// disposition is process-wide.
    #[test]
    fn spawning_works_with_sigchld_ignored() {
        const INNER: &str = "RCOMPOSE_TEST_SIGCHLD_IGNORED";
        if std::env::var_os(INNER).is_some() {
            // SAFETY: signal(2) in the copy that runs only this test.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
            let pid = spawn_detached(Path::new("/bin/true"), &[], &[]).unwrap();
            assert!(pid > 0);
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "monitor::launch::tests::spawning_works_with_sigchld_ignored",
                "--test-threads=1",
            ])
            .env(INNER, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error() {
        let err = spawn_detached(Path::new("/nonexistent/rcompose-monitor"), &[], &[]);
        assert!(err.is_err());
    }
}
