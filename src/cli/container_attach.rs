//! The terminal side of attaching (foreground `run`, `start -a`, `attach`) and of `exec -t`:
//! raw mode, detach keys (default ctrl-P ctrl-Q), signal proxying, window size; the sessions
//! themselves are `rcompose_engine::monitor::client`.

use std::io::{IsTerminal, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result, bail};
use rcompose_engine::container::model::Status;
use rcompose_engine::monitor::client::{self, AttachEnd};

use super::GlobalOpts;
use super::container::engine;

#[derive(Default)]
pub struct AttachMode {
    /// Forward our stdin.
    pub stdin: bool,
    /// Streams left out (`run -a` naming only some): their output is discarded.
    pub drop_stdout: bool,
    pub drop_stderr: bool,
    pub tty: bool,
    /// Byte sequence that detaches (only checked with stdin attached).
    pub detach_keys: Vec<u8>,
    /// Forward SIGINT/SIGTERM/SIGHUP to the container's init.
    pub sig_proxy: bool,
}

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container (e.g. ctrl-p,ctrl-q)
    #[arg(long = "detach-keys", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

/// Docker's detach-keys syntax: `ctrl-<letter>` and single characters, comma-separated.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut out = vec![];
    for k in s.split(',') {
        let b = if let Some(c) = k.strip_prefix("ctrl-") {
            match c.as_bytes() {
                [c @ b'a'..=b'z'] => c - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("invalid detach key \"{k}\": use ctrl-<letter> or a single character"),
            }
        } else if k.len() == 1 {
            k.as_bytes()[0]
        } else {
            bail!("invalid detach key \"{k}\": use ctrl-<letter> or a single character");
        };
        out.push(b);
    }
    Ok(out)
}

pub fn attach(g: &GlobalOpts, a: AttachArgs) -> Result<ExitCode> {
    let eng = engine(g)?;
    let cfg = eng.store.resolve(&a.container)?;
    let st = eng.observe(&cfg.id)?;
    if st.status != Status::Running {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let sock = eng.store.attach_socket(&cfg.id);
    let stream = rcompose_engine::monitor::connect_unix(&sock).with_context(|| {
        format!(
            "connecting to the monitor of {} (is it still alive?)",
            cfg.name
        )
    })?;
    let mode = AttachMode {
        stdin: !a.no_stdin && cfg.open_stdin,
        tty: cfg.tty,
        detach_keys: parse_detach_keys(&a.detach_keys)?,
        sig_proxy: a.sig_proxy && !cfg.tty,
        ..Default::default()
    };
    match attach_stream(stream, &mode, st.pid)? {
        Some(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        None => Ok(ExitCode::SUCCESS),
    }
}

static PROXY_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = PROXY_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn install_sig_proxy(pid: i32) {
    PROXY_PID.store(pid, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installing a handler that only calls kill(2).
        unsafe { libc::signal(sig, forward_signal as *const () as libc::sighandler_t) };
    }
}

/// Puts our terminal in raw mode for the guard's life.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enable() -> Self {
        if !std::io::stdin().is_terminal() {
            return Self(None);
        }
        // SAFETY: termios calls on fd 0 with local structs.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Self(None);
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Self(Some(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restoring the saved attributes.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

fn window_size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ into a local struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0)
            .then_some((ws.ws_row, ws.ws_col))
    }
}

/// Runs the client until the container exits (`Some(code)`) or the user detaches (`None`).
pub fn attach_stream(stream: UnixStream, mode: &AttachMode, pid: i32) -> Result<Option<i32>> {
    let _raw = if mode.tty && mode.stdin {
        Some(RawMode::enable())
    } else {
        None
    };
    if mode.sig_proxy && pid > 0 {
        install_sig_proxy(pid);
    }
    let window = if mode.tty { window_size() } else { None };
    let input = mode.stdin.then(|| {
        let stdin: Box<dyn Read + Send> = Box::new(std::io::stdin());
        (stdin, mode.detach_keys.clone())
    });
    let mut out: Box<dyn std::io::Write> = if mode.drop_stdout {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout())
    };
    let mut err: Box<dyn std::io::Write> = if mode.drop_stderr {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stderr())
    };
    match client::attach(stream, window, input, &mut *out, &mut *err)? {
        AttachEnd::Exited(code) => Ok(Some(code)),
        AttachEnd::Detached => {
            if mode.tty {
                eprint!("\r\n");
            }
            Ok(None)
        }
        AttachEnd::Lost => bail!(
            "lost the connection to the container's monitor; the container may still be running (see `rcompose container ps`)"
        ),
    }
}

/// Proxies our terminal to an exec'd process's PTY until it exits; returns its exit code.
pub fn proxy_pty(master: std::fs::File, pid: i32, stdin: bool) -> Result<i32> {
    let _raw = RawMode::enable();
    if let Some((rows, cols)) = window_size() {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on the PTY master we hold.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let input = stdin.then(|| Box::new(std::io::stdin()) as Box<dyn Read + Send>);
    client::pump_pty(master, input, &mut std::io::stdout())?;
    Ok(rcompose_engine::container::exec::wait_exec(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        let k = parse_detach_keys("ctrl-p,ctrl-q").unwrap();
        assert_eq!(k, vec![0x10, 0x11]);
        assert!(parse_detach_keys("ctrl-").is_err());
    }
}
