//! Fixture for the compose e2e tests: a private state root with the busybox image, a project
//! directory, a unique project name and subnet, and a guard that runs `down -v`, removes any
//! container left (killing monitors) and unmounts leftovers, even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::busybox;
use super::{BIN, unmount_under};
pub const IMAGE: &str = "busybox:compose";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Project {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    /// A /24 no other test uses at the same time: `10.<a>.<b>.0/24`.
    pub subnet: String,
}

impl Project {
    pub fn new(tag: &str) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("rc-compose-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().join("root");
        let run_root = tmp.path().join("run");
        let dir = tmp.path().join("proj");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        busybox::busybox_image(Path::new(BIN), &root, IMAGE);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("e2e{tag}{}x{n}", pid % 100_000);
        let subnet = format!("10.{}.{}.0/24", 200 + (pid % 50), (n * 5 + pid / 50) % 250);
        Self {
            tmp,
            root,
            run_root,
            dir,
            name,
            subnet,
        }
    }

    /// Writes compose.yaml (`{IMAGE}` and `{SUBNET}` are substituted).
    pub fn write(&self, yaml: &str) {
        let text = yaml
            .replace("{IMAGE}", IMAGE)
            .replace("{SUBNET}", &self.subnet);
        std::fs::write(self.dir.join("compose.yaml"), text).unwrap();
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(&self.dir)
            .env("RCOMPOSE_DNS_UPSTREAM", "none")
            .env("NO_COLOR", "1")
            .arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root)
            .arg("-p")
            .arg(&self.name);
        c
    }

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

    /// Container names of the project from `ps -a --format json`.
    pub fn ps_json(&self) -> Vec<serde_json::Value> {
        self.ok(&["ps", "-a", "--format", "json"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("ps json line"))
            .collect()
    }

    /// Polls `f` until it returns true (panics with `what` after `secs`).
    pub fn wait_until(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `exec -T service sh -c script`, retried until it succeeds (DNS settles right after
    /// start); returns stdout.
    pub fn exec_ok(&self, service: &str, script: &str) -> String {
        let mut last = None;
        for _ in 0..30 {
            let o = self.run(&["exec", "-T", service, "sh", "-c", script]);
            if o.status.success() {
                return String::from_utf8_lossy(&o.stdout).into_owned();
            }
            last = Some(o);
            std::thread::sleep(Duration::from_millis(100));
        }
        let o = last.unwrap();
        panic!(
            "exec {service} {script:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "-t", "0", "--remove-orphans"]);
        let o = self.run(&["container", "ps", "-aq", "--no-trunc"]);
        if o.status.success() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.run(&["container", "rm", "-f", id]);
            }
        }
        super::prune_default_bridge(&self.root, &self.run_root);
        unmount_under(self.tmp.path());
    }
}

/// Container names of the project (`ps -a`).
pub fn names(p: &Project) -> Vec<String> {
    p.ps_json()
        .iter()
        .map(|c| c["Name"].as_str().unwrap_or_default().to_string())
        .collect()
}
