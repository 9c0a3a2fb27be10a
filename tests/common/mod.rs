//! The one end-to-end harness. Every test file starts with `mod common;` and uses what it
//! needs: the binary and its state roots (here), the busybox test image (`busybox`), the
//! fixtures of the compose tests (`compose::Project`), the container tests
//! (`container::Env`, `container::Pty`), the Debian base image (`debian`), the network tests (`network::Root`, `network::Ns`)
//! and a loopback registry (`registry`). Every fixture has its own `--root`/`--run-root` and
//! unique names, and cleans up in `Drop`, even when the test fails.

#![allow(dead_code)]

pub mod api;
pub mod busybox;
pub mod compose;
pub mod container;
pub mod container_net;
pub mod debian;
pub mod network;
pub mod registry;
pub mod reliability;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rcompose");

pub fn bin() -> PathBuf {
    PathBuf::from(BIN)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call: `<prefix><pid>x<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A loopback TCP port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Text of a command's stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Text of a command's stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that `rcompose <args>` succeeded; returns its stdout.
pub fn assert_ok(args: &[&str], o: &Output) -> String {
    assert!(
        o.status.success(),
        "rcompose {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Runs `rcompose --root <root> <args>` (image commands need no run root).
pub fn rc(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run rcompose")
}

/// [`rc`], asserting success; returns stdout.
pub fn rc_ok(root: &Path, args: &[&str]) -> String {
    assert_ok(args, &rc(root, args))
}

/// A state root and a run root in a temporary directory of their own.
pub struct Roots {
    pub dir: tempfile::TempDir,
}

impl Roots {
    pub fn new(prefix: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        Self { dir }
    }
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    pub fn run_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    /// `rcompose --root … --run-root …`, with the embedded DNS never forwarding.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(self.root())
            .arg("--run-root")
            .arg(self.run_root())
            .env("RCOMPOSE_DNS_UPSTREAM", "none");
        c
    }
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run rcompose")
    }
    /// [`Self::run`], asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        assert_ok(args, &self.run(args))
    }
}

/// Deletes the idle default bridge of a test's state root (and its firewall rules) with
/// `network prune`: it outlives the root's containers, as docker0 does, and a root that is
/// about to be removed must not leave it on the host. No-op when there is none.
#[allow(dead_code)]
pub fn prune_default_bridge(root: &Path, run_root: &Path) {
    let bridge = rcompose_net::api::default_bridge_name(root);
    if !Path::new("/sys/class/net").join(&bridge).exists() {
        return;
    }
    let _ = Command::new(BIN)
        .arg("--root")
        .arg(root)
        .arg("--run-root")
        .arg(run_root)
        .args(["network", "prune", "-f"])
        .output();
}

impl Drop for Roots {
    fn drop(&mut self) {
        prune_default_bridge(&self.root(), &self.run_root());
    }
}

/// Unmounts (lazily) everything still mounted under `base`, deepest first: what a test that
/// failed half-way left behind.
pub fn unmount_under(base: &Path) {
    let base = base.to_string_lossy().into_owned();
    if base.len() < 2 {
        return;
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&base))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: umount2 on a path under a temporary directory of the test.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// The cgroup directory of `pid` for one v1 controller (`""`: the v2 unified one), from
/// /proc/<pid>/cgroup.
#[allow(dead_code)]
pub fn cgroup_dir(pid: i64, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let hit = if controller.is_empty() {
            ctls.is_empty()
        } else {
            ctls.split(',').any(|c| c == controller)
        };
        if hit {
            return Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'));
        }
    }
    panic!("no {controller:?} cgroup for pid {pid}: {text}");
}
