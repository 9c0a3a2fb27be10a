//! Shared fixture for the container e2e tests: a private state root with the busybox image,
//! a helper to run `rcompose`, and a guard that removes every container (killing monitors)
//! and unmounts anything left under the root, even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::busybox;
use super::{BIN, unmount_under};
pub const IMAGE: &str = "busybox:ctest";

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub run_root: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("rc-ctr-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().join("root");
        let run_root = tmp.path().join("run");
        std::fs::create_dir_all(&root).unwrap();
        busybox::busybox_image(Path::new(BIN), &root, IMAGE);
        Self {
            tmp,
            root,
            run_root,
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root);
        c
    }

    /// Runs `rcompose <args>` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("running rcompose")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "rcompose {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn inspect(&self, name: &str, tpl: &str) -> String {
        self.ok(&["container", "inspect", "-f", tpl, name])
            .trim()
            .to_string()
    }

    /// Polls `inspect` until `tpl` renders `want` (or panics after `secs`).
    pub fn wait_for(&self, name: &str, tpl: &str, want: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.inspect(name, tpl);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {tpl} is {got:?}, expected {want:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(o) = self
            .cmd()
            .args(["container", "ps", "-aq", "--no-trunc"])
            .output()
        {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd().args(["container", "rm", "-f", id]).output();
            }
        }
        super::prune_default_bridge(&self.root, &self.run_root);
        // Anything still mounted under our tempdir (a test that failed half-way).
        unmount_under(self.tmp.path());
    }
}

/// A command driven through a pseudo-terminal, as a user at a terminal would.
pub struct Pty {
    pub master: std::fs::File,
    pub child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    pub fn spawn(cmd: Command) -> Self {
        Self::spawn_sized(cmd, None)
    }

    /// [`Self::spawn`] on a terminal of `rows` × `cols` from the start.
    pub fn spawn_sized(mut cmd: Command, size: Option<(u16, u16)>) -> Self {
        use std::os::fd::FromRawFd;
        let (mut m, mut s) = (0, 0);
        let ws = size.map(|(rows, cols)| libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        // SAFETY: openpty fills two fresh fds; the size is read from a local.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                ws.as_ref()
                    .map_or(std::ptr::null(), |w| w as *const libc::winsize),
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: fds just returned by openpty.
        let (master, slave) =
            unsafe { (std::fs::File::from_raw_fd(m), std::fs::File::from_raw_fd(s)) };
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid + TIOCSCTTY in the child so the PTY is its controlling terminal.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawning under a pty");
        drop(cmd);
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let out = output.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            master,
            child,
            output,
        }
    }

    pub fn send(&mut self, data: &[u8]) {
        use std::io::Write;
        self.master.write_all(data).unwrap();
    }

    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `want`.
    pub fn expect(&self, want: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.output().contains(want) {
            assert!(
                Instant::now() < deadline,
                "never saw {want:?}; output so far: {:?}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the command to exit and returns its code.
    pub fn wait(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "command under pty did not exit; output: {:?}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
