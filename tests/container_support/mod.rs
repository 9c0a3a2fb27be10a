//! Shared fixture for the container e2e tests: a private state root with the busybox image,
//! a helper to run `rcompose`, and a guard that removes every container (killing monitors)
//! and unmounts anything left under the root, even when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "../common/busybox.rs"]
pub mod busybox;

pub const BIN: &str = env!("CARGO_BIN_EXE_rcompose");
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
        // Anything still mounted under our tempdir (a test that failed half-way).
        let base = self.tmp.path().to_string_lossy().into_owned();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&base))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let c = std::ffi::CString::new(p).unwrap();
                // SAFETY: umount2 on a path under our own tempdir.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// A name unique to this process and call site.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

/// Text of a command's stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
