//! The Docker Engine API server (`rcompose system service`) on a socket inside the test's
//! own roots, and Debian's clients pointed at it through `DOCKER_HOST`: the docker CLI 20.10
//! (`/usr/bin/docker`; `/usr/local/bin/docker` may be another, newer client) and
//! docker-compose 1.29. Never a Docker daemon of this host.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use super::{stderr, stdout};

pub const DOCKER: &str = "/usr/bin/docker";
pub const COMPOSE: &str = "/usr/bin/docker-compose";

/// The roots, the service on a socket inside them, and what the test made (removed in Drop,
/// then the service is killed).
pub struct Api {
    pub roots: super::Roots,
    server: Child,
    pub sock: PathBuf,
    /// Containers, networks and volumes to remove at the end.
    pub names: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Api {
    pub fn start() -> Option<Api> {
        if !Path::new(DOCKER).exists() {
            eprintln!("SKIP: {DOCKER} is missing (Debian package docker.io)");
            return None;
        }
        let roots = super::Roots::new("rc-api-");
        let sock = roots.dir.path().join("docker.sock");
        let server = roots
            .cmd()
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", sock.display()))
            .spawn()
            .expect("starting rcompose system service");
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "the API socket never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Api {
            roots,
            server,
            sock,
            names: vec![],
            networks: vec![],
            volumes: vec![],
        })
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            // No config of the host's user (contexts, credential helpers).
            .env("DOCKER_CONFIG", self.roots.dir.path().join("docker-config"))
            .output()
            .expect("running docker")
    }

    /// `docker <args>` with `input` on its stdin.
    pub fn docker_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.roots.dir.path().join("docker-config"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running docker");
        let mut stdin = child.stdin.take().expect("docker's stdin");
        stdin.write_all(input).expect("writing docker's stdin");
        drop(stdin);
        child.wait_with_output().expect("waiting for docker")
    }

    /// `docker <args>` left running (the caller kills it).
    pub fn docker_spawn(&self, args: &[&str]) -> Child {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.roots.dir.path().join("docker-config"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running docker")
    }

    /// The busybox test image under a unique `<name>:test` tag.
    pub fn busybox(&self) -> String {
        let tag = format!("{}:test", super::unique("rcapi-bb"));
        super::busybox::busybox_image(&super::bin(), &self.roots.root(), &tag);
        tag
    }

    /// `docker-compose -p <project> <args>` in `dir`, against the socket; `None` (with a
    /// message) when docker-compose is not installed.
    pub fn compose(&self, dir: &Path, project: &str, args: &[&str]) -> Option<Output> {
        if !Path::new(COMPOSE).exists() {
            eprintln!("SKIP: {COMPOSE} is missing (Debian package docker-compose)");
            return None;
        }
        let o = Command::new(COMPOSE)
            .current_dir(dir)
            .arg("-p")
            .arg(project)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.roots.dir.path().join("docker-config"))
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .output()
            .expect("running docker-compose");
        Some(o)
    }

    /// [`Self::compose`], asserting success; returns stdout and stderr (docker-compose
    /// reports progress on stderr).
    pub fn compose_ok(&self, dir: &Path, project: &str, args: &[&str]) -> Option<String> {
        let o = self.compose(dir, project, args)?;
        assert!(
            o.status.success(),
            "docker-compose {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        Some(format!("{}{}", stdout(&o), stderr(&o)))
    }

    /// Polls `f` for up to `secs` seconds; panics naming `what` when it never holds.
    pub fn wait_until(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// One raw HTTP request on the socket; returns the status line and the body.
    pub fn raw(&self, request: &str) -> (String, String) {
        self.raw_bytes(request.as_bytes())
    }

    /// [`Self::raw`] of a request with a binary body.
    pub fn raw_bytes(&self, request: &[u8]) -> (String, String) {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.lines().next().unwrap_or_default().to_string();
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (status, body)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.roots.run(&["container", "rm", "-f", n]);
        }
        for n in &self.networks {
            let _ = self.roots.run(&["network", "rm", n]);
        }
        for n in &self.volumes {
            let _ = self.roots.run(&["volume", "rm", "-f", n]);
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        super::unmount_under(self.roots.dir.path());
    }
}
