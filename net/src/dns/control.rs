//! Starting, signalling and waiting for the DNS server process from `rcompose` commands.
//!
//! Files: `<run_root>/dns/generation` (bumped by every network change, under the state lock),
//! `<run_root>/dns/pid`, `<run_root>/dns/loaded` (the generation the server serves),
//! `<run_root>/dns/log` (its stderr).

/// The hidden subcommand that runs the DNS server (`rcompose __dns`).
pub const SUBCOMMAND: &str = "__dns";

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns server: {0}")]
    Io(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the DNS server {exe}: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("the DNS server did not pick up the change within {0:?}; see {1}")]
    NotReady(Duration, PathBuf),
}

pub struct Paths {
    pub dir: PathBuf,
    pub pid: PathBuf,
    pub loaded: PathBuf,
    pub log: PathBuf,
}

impl Paths {
    pub fn new(run_root: &Path) -> Paths {
        let dir = run_root.join("dns");
        Paths {
            pid: dir.join("pid"),
            loaded: dir.join("loaded"),
            log: dir.join("log"),
            dir,
        }
    }
}

/// The generation file lives in the run root (`Paths::dir`), not beside the networks' state:
/// it is rewritten on every attach and detach and only signals the running server, so it
/// has no business on the disk (where each rewrite also cost an inode allocation, slow on
/// ext4 without a journal after much churn).
pub fn read_generation(dns_dir: &Path) -> u64 {
    std::fs::read_to_string(dns_dir.join("generation"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Bumps the generation; call with the state lock held. Returns the new value. Not synced:
/// a server started after a reboot loads everything whatever the number.
pub fn bump_generation(dns_dir: &Path) -> Result<u64, StoreError> {
    let next = read_generation(dns_dir) + 1;
    std::fs::create_dir_all(dns_dir).map_err(|source| StoreError::Io {
        path: dns_dir.to_path_buf(),
        source,
    })?;
    crate::store::write_file(
        &dns_dir.join("generation"),
        next.to_string().as_bytes(),
        false,
    )?;
    Ok(next)
}

/// Upstream resolvers: `RCOMPOSE_DNS_UPSTREAM` (comma-separated, `none` for no forwarding),
/// else the nameservers of the host's /etc/resolv.conf.
pub fn upstreams() -> Vec<SocketAddr> {
    match std::env::var("RCOMPOSE_DNS_UPSTREAM") {
        Ok(v) => parse_upstreams(&v),
        Err(_) => std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| resolv_conf_nameservers(&t))
            .unwrap_or_default()
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .collect(),
    }
}

fn parse_upstreams(v: &str) -> Vec<SocketAddr> {
    if v.trim().eq_ignore_ascii_case("none") {
        return Vec::new();
    }
    v.split(',')
        .filter_map(|s| {
            let s = s.trim();
            s.parse::<SocketAddr>()
                .ok()
                .or_else(|| s.parse().ok().map(|ip| SocketAddr::new(ip, 53)))
        })
        .collect()
}

pub fn resolv_conf_nameservers(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse().ok())
        .collect()
}

/// Prepares the server's command: its own session, no inherited descriptors, and SIGHUP
/// blocked until the server has its handler ([`release_hangup`]).
///
/// The pid file names the server as soon as it is spawned, so another attach (compose creates
/// a project's containers in parallel) sends its reload SIGHUP while the new process is still
/// starting; SIGHUP's default action would kill it, and every container would then be left
/// without DNS until the next network change. Blocked, the signal stays pending across exec and
/// is delivered to the handler once installed (the server loads the state after that anyway).
fn detach_holding_hangup(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls. setsid detaches the server from our session so
    // it outlives this command and ignores the terminal's signals; close_range drops every
    // descriptor the caller may hold without O_CLOEXEC (a container's pty, a lock), which
    // the long-lived server would otherwise keep open forever; sigprocmask blocks SIGHUP
    // (the mask survives exec).
    unsafe {
        cmd.pre_exec(|| {
            // SIGHUP first: closing the descriptors also closes std's exec-report pipe, which
            // lets `spawn` return in the parent, and a reload sent then must find it blocked.
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGHUP);
            if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::setsid();
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
}

/// Unblocks SIGHUP in the server once its handler is installed (see [`detach_holding_hangup`]);
/// a reload signal sent meanwhile is delivered now.
pub(crate) fn release_hangup() -> Result<(), DnsError> {
    // SAFETY: plain sigset manipulation and pthread_sigmask on the calling thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        let rc = libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(DnsError::Io(std::io::Error::from_raw_os_error(rc)));
        }
    }
    Ok(())
}

/// In `Paths::dir`: written before starting a server that watches the generation there. A
/// running server without it was started by an rcompose from before the generation moved to
/// the run root: it watches `<root>/networks/.generation`, which no longer changes, and
/// would never load a new name.
const RUN_GENERATION_MARK: &str = "watches-generation";

/// Stops a server from before the move (see [`RUN_GENERATION_MARK`]) so that a current one
/// can start: once, on the first network change after an upgrade. True once it is gone.
fn retire(pid: i32) -> bool {
    tracing::info!("replacing the DNS server {pid}, started by an older rcompose");
    // SAFETY: kill(2) on a pid whose command line says it is our server.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

pub struct DnsControl {
    pub paths: Paths,
    root: PathBuf,
    run_root: PathBuf,
    exe: PathBuf,
}

impl DnsControl {
    pub fn new(root: &Path, run_root: &Path, exe: PathBuf) -> DnsControl {
        // Absolute, since the server runs from "/".
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        DnsControl {
            paths: Paths::new(&abs(run_root)),
            root: abs(root),
            run_root: abs(run_root),
            exe,
        }
    }

    /// The server's pid if it is alive and really our DNS server.
    pub fn running_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.paths.pid)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let is_ours = cmdline
            .split(|b| *b == 0)
            .any(|a| a == SUBCOMMAND.as_bytes());
        is_ours.then_some(pid)
    }

    /// Whether the pid file names a live process (also true between fork and exec of a
    /// server we just started, when its command line is not yet `__dns`).
    fn alive(&self) -> bool {
        std::fs::read_to_string(&self.paths.pid)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            // SAFETY: signal 0 only checks that the process exists.
            .is_some_and(|pid| pid > 0 && unsafe { libc::kill(pid, 0) } == 0)
    }

    /// After a state change (state lock held): wake the server, or start it if it is needed
    /// and not running. A server that is no longer needed exits on its own, after a short
    /// linger.
    pub fn notify(&self, needed: bool) -> Result<(), DnsError> {
        if let Some(pid) = self.running_pid()
            && (self.paths.dir.join(RUN_GENERATION_MARK).exists() || !retire(pid))
        {
            // SAFETY: plain kill(2) on a pid we verified is our server.
            unsafe { libc::kill(pid, libc::SIGHUP) };
            return Ok(());
        }
        if !needed {
            return Ok(());
        }
        std::fs::create_dir_all(&self.paths.dir).map_err(DnsError::Io)?;
        let _ = std::fs::write(self.paths.dir.join(RUN_GENERATION_MARK), b"");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.paths.log)
            .map_err(DnsError::Io)?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root)
            .arg(SUBCOMMAND)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        cmd.current_dir("/");
        detach_holding_hangup(&mut cmd);
        let child = cmd.spawn().map_err(|source| DnsError::Spawn {
            exe: self.exe.clone(),
            source,
        })?;
        // The server writes its own pid file; record it now too so a second command in the
        // meantime signals instead of starting another one.
        let _ = std::fs::write(&self.paths.pid, child.id().to_string());
        // Reap it in the background if it dies while we still run; we never wait for it.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        Ok(())
    }

    /// Waits until the server serves `generation` (call without the state lock).
    pub fn wait_loaded(&self, generation: u64, timeout: Duration) -> Result<(), DnsError> {
        let start = Instant::now();
        // A running server reloads within a millisecond or two of its SIGHUP: poll finely at
        // first (this wait is on every container start and stop on a network), then every
        // half millisecond (a read of a small file). A longer pause cost more than the reload
        // itself: with pauses doubling up to 10 ms, a reload done after 2 ms was seen after
        // 3.75, on both the start and the removal of each container on a user-defined network.
        let mut pause = Duration::from_micros(250);
        loop {
            let loaded: u64 = std::fs::read_to_string(&self.paths.loaded)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if loaded >= generation {
                return Ok(());
            }
            if !self.alive() {
                // It exited (nothing needs it any more) or could not start: nothing to wait for;
                // a failed start shows up in its log.
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(DnsError::NotReady(timeout, self.paths.log.clone()));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_micros(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse() {
        assert!(parse_upstreams("none").is_empty());
        assert_eq!(
            parse_upstreams("10.0.0.1, 10.0.0.2:5353"),
            vec![
                "10.0.0.1:53".parse().unwrap(),
                "10.0.0.2:5353".parse().unwrap()
            ]
        );
        let ns =
            resolv_conf_nameservers("# x\nsearch a\nnameserver 10.255.255.53\nnameserver ::1\n");
        assert_eq!(ns.len(), 2);
    }

    /// A stand-in for a server: its command line names the subcommand; reaped by a thread
    /// so that it is gone, not a zombie, once it exits. Returns its pid and how it ended.
    fn fake_server() -> (i32, std::sync::mpsc::Receiver<Option<i32>>) {
        use std::os::unix::process::ExitStatusExt;
        let mut child = Command::new("sh")
            .args(["-c", "while :; do sleep 0.05; done", SUBCOMMAND])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // spawn returns while the exec is still under way, before the new command line is
        // in place: wait for it, as a server's is long before any command looks at it.
        let named = || {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == SUBCOMMAND.as_bytes()))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !named() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait().ok().and_then(|s| s.signal()));
        });
        (pid, rx)
    }

    /// After an upgrade, a server from before the generation moved to the run root is
    /// replaced, not signalled (it would keep serving the names it had).
    #[test]
    fn a_server_from_before_the_move_is_stopped_and_a_current_one_is_told() {
        let tmp = tempfile::tempdir().unwrap();
        let ctl = DnsControl::new(
            &tmp.path().join("root"),
            &tmp.path().join("run"),
            PathBuf::from("/nonexistent/rcompose"),
        );
        std::fs::create_dir_all(&ctl.paths.dir).unwrap();
        let (old, ended) = fake_server();
        std::fs::write(&ctl.paths.pid, old.to_string()).unwrap();
        ctl.notify(false).unwrap();
        let signal = ended.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(signal, Some(libc::SIGTERM));

        // A server started with the mark present is woken with SIGHUP (which ends the
        // stand-in, having no handler).
        std::fs::write(ctl.paths.dir.join(RUN_GENERATION_MARK), b"").unwrap();
        let (current, ended) = fake_server();
        std::fs::write(&ctl.paths.pid, current.to_string()).unwrap();
        ctl.notify(false).unwrap();
        let signal = ended.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(signal, Some(libc::SIGHUP));
    }

    /// A SIGHUP sent right after the spawn (another attach's reload) must not kill a server
    /// that has not installed its handler yet: here `sleep`, which never installs one (a
    /// shell would not do: dash clears its signal mask when it starts).
    #[test]
    fn hangup_right_after_spawn_does_not_kill_the_server() {
        let mut cmd = Command::new("sleep");
        cmd.arg("0.3");
        detach_holding_hangup(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }

    #[test]
    fn generation_bumps() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_generation(tmp.path()), 0);
        assert_eq!(bump_generation(tmp.path()).unwrap(), 1);
        assert_eq!(bump_generation(tmp.path()).unwrap(), 2);
    }
}
