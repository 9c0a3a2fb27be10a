//! The userland port proxy, for the published ports DNAT cannot serve: IPv6 has no
//! `route_localnet`, so a connection to `[::1]:PORT` can never be DNAT-ed into a bridge. For
//! such a binding a small process (`rcompose __port-proxy`, one per binding, like docker-proxy)
//! listens on the host address and copies each TCP connection to the container.
//!
//! Proxies follow the desired state like the firewall does: `reconcile` is handed every
//! binding that needs one, starts the missing ones and stops the rest. Each proxy writes
//! `<run_root>/proxies/<key>.pid` once it listens, and exits by itself when that file goes or
//! names another process, so a removed run root (a test's, or a reboot's) leaves none behind.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden subcommand that runs one proxy.
pub const SUBCOMMAND: &str = "__port-proxy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProxySpec {
    pub listen: SocketAddr,
    pub target: SocketAddr,
}

impl ProxySpec {
    /// The pid file's name: a stable hash of what it serves.
    fn key(&self) -> String {
        let text = format!("{} {}", self.listen, self.target);
        let h = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        format!("{h:016x}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot start the port proxy for {listen} (via {exe}): {source}")]
    Spawn {
        listen: SocketAddr,
        exe: PathBuf,
        source: io::Error,
    },
    #[error("the port proxy for {listen} did not start listening: {why}")]
    NotListening { listen: SocketAddr, why: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A running proxy as its pid file tells it.
struct Running {
    pid: i32,
    spec: Option<ProxySpec>,
    file: PathBuf,
}

fn read_running(dir: &Path) -> Vec<Running> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let mut lines = text.lines();
            let pid = lines
                .next()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0);
            let spec = match (lines.next(), lines.next()) {
                (Some(l), Some(t)) => l
                    .parse()
                    .ok()
                    .zip(t.parse().ok())
                    .map(|(listen, target)| ProxySpec { listen, target }),
                _ => None,
            };
            Running {
                pid,
                spec,
                file: e.path(),
            }
        })
        .collect()
}

/// Whether `pid` is one of our proxies (not a recycled pid of something else).
fn is_proxy(pid: i32) -> bool {
    pid > 0
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == SUBCOMMAND.as_bytes()))
}

/// Starts a proxy for every spec in `wanted` that has none and stops every other one.
pub fn reconcile(dir: &Path, exe: &Path, wanted: &[ProxySpec]) -> Result<(), ProxyError> {
    let running = read_running(dir);
    for r in &running {
        let keep = r.spec.is_some_and(|s| wanted.contains(&s)) && is_proxy(r.pid);
        if !keep {
            // The pid file first: the proxy exits by itself once it is gone.
            let _ = std::fs::remove_file(&r.file);
            if is_proxy(r.pid) {
                // SAFETY: plain kill(2) of a process checked to be our proxy.
                unsafe { libc::kill(r.pid, libc::SIGTERM) };
            }
        }
    }
    for spec in wanted {
        let up = running
            .iter()
            .any(|r| r.spec.as_ref() == Some(spec) && is_proxy(r.pid));
        if !up {
            start(dir, exe, spec)?;
        }
    }
    Ok(())
}

fn start(dir: &Path, exe: &Path, spec: &ProxySpec) -> Result<(), ProxyError> {
    std::fs::create_dir_all(dir).map_err(|source| ProxyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let pidfile = dir.join(format!("{}.pid", spec.key()));
    let _ = std::fs::remove_file(&pidfile);
    let errfile = dir.join(format!("{}.err", spec.key()));
    let err = std::fs::File::create(&errfile).map_err(|source| ProxyError::Io {
        path: errfile.clone(),
        source,
    })?;
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND)
        .arg(spec.listen.to_string())
        .arg(spec.target.to_string())
        .arg(&pidfile)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; it detaches the proxy from our session so that it
    // outlives this command and its terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| ProxyError::Spawn {
        listen: spec.listen,
        exe: exe.to_path_buf(),
        source,
    })?;
    // It forks no further: wait for its pid file (it listens then) or its exit.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if pidfile.exists() {
            let _ = std::fs::remove_file(&errfile);
            // Reaped by init once we exit; waiting here would block on a long-lived process.
            std::mem::forget(child);
            return Ok(());
        }
        if let Ok(Some(_)) = child.try_wait() {
            let why = std::fs::read_to_string(&errfile).unwrap_or_default();
            let _ = std::fs::remove_file(&errfile);
            return Err(ProxyError::NotListening {
                listen: spec.listen,
                why: why.trim().to_string(),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(ProxyError::NotListening {
                listen: spec.listen,
                why: "timed out".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A listening socket; on an unspecified IPv6 address IPv6 only, so that IPv4 traffic to the
/// same port stays with the DNAT rules.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr.ip() {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2); the fd is owned by the TcpListener right away.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd we own.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    let set = |level, name| {
        // SAFETY: setsockopt with a c_int of the right size on our fd.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_REUSEADDR);
    if family == libc::AF_INET6 {
        set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY);
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: bind/listen with a sockaddr of the given length.
    if unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) } != 0
        || unsafe { libc::listen(fd, 128) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is large enough for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The body of `rcompose __port-proxy LISTEN TARGET PIDFILE`: listens, announces itself in the
/// pid file, and copies every connection to the target until the pid file goes.
pub fn serve(listen_on: SocketAddr, target: SocketAddr, pidfile: &Path) -> io::Result<()> {
    run(listen_on, target, pidfile, true)
}

/// `exit_when_gone`: the process exits once its pid file goes (off in unit tests, which run
/// the proxy on a thread of the test binary).
fn run(
    listen_on: SocketAddr,
    target: SocketAddr,
    pidfile: &Path,
    exit_when_gone: bool,
) -> io::Result<()> {
    let listener = listen(listen_on)?;
    let pid = std::process::id();
    let tmp = pidfile.with_extension("tmp");
    std::fs::write(&tmp, format!("{pid}\n{listen_on}\n{target}\n"))?;
    std::fs::rename(&tmp, pidfile)?;
    let watched = pidfile.to_path_buf();
    std::thread::spawn(move || {
        if !exit_when_gone {
            return;
        }
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let ours = std::fs::read_to_string(&watched)
                .is_ok_and(|t| t.lines().next() == Some(pid.to_string().as_str()));
            if !ours {
                std::process::exit(0);
            }
        }
    });
    for conn in listener.incoming() {
        let Ok(client) = conn else { continue };
        std::thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
                return;
            };
            let _ = pipe(client, upstream);
        });
    }
    Ok(())
}

/// Copies both ways until each side has closed its half.
fn pipe(a: TcpStream, b: TcpStream) -> io::Result<()> {
    let (a2, b2) = (a.try_clone()?, b.try_clone()?);
    let back = std::thread::spawn(move || copy_half(b2, a2));
    copy_half(a, b);
    let _ = back.join();
    Ok(())
}

fn copy_half(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        let a = ProxySpec {
            listen: "[::1]:8080".parse().unwrap(),
            target: "[fd00::2]:80".parse().unwrap(),
        };
        let mut b = a;
        b.target = "10.0.0.2:80".parse().unwrap();
        assert_eq!(a.key(), a.key());
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key().len(), 16);
    }

    /// In-process: a proxy on [::1] copies a connection to a server on 127.0.0.1 and back.
    #[test]
    fn serve_copies_both_ways_and_stops_when_its_pid_file_goes() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in server.incoming().flatten() {
                let mut c = c;
                let mut buf = [0u8; 5];
                c.read_exact(&mut buf).unwrap();
                c.write_all(&[b"echo:".as_slice(), &buf].concat()).unwrap();
            }
        });
        let probe = match std::net::TcpListener::bind("[::1]:0") {
            Ok(l) => l,
            Err(e) => {
                eprintln!("skipped: no IPv6 loopback here ({e})");
                return;
            }
        };
        let listen_on = probe.local_addr().unwrap();
        drop(probe);
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("p.pid");
        let pf = pidfile.clone();
        std::thread::spawn(move || run(listen_on, target, &pf, false));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pidfile.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut c = TcpStream::connect(listen_on).unwrap();
        c.write_all(b"hello").unwrap();
        let mut got = String::new();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "echo:hello");
        let text = std::fs::read_to_string(&pidfile).unwrap();
        assert_eq!(text.lines().nth(1), Some(listen_on.to_string().as_str()));
    }
}
