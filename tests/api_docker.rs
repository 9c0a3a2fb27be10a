//! The Docker Engine API (`rcompose system service`) driven by Debian's docker CLI 20.10
//! (`/usr/bin/docker`; `/usr/local/bin/docker` may be another, newer client). The client
//! always talks to our socket through `DOCKER_HOST`, never to a Docker daemon on this host.
//! Skips with a message when the client is not installed.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::{busybox, stderr, stdout};

const DOCKER: &str = "/usr/bin/docker";

/// The roots, the service on a socket inside them, and what the test made (removed in Drop,
/// then the service is killed).
struct Api {
    roots: common::Roots,
    server: Child,
    sock: PathBuf,
    names: Vec<String>,
    networks: Vec<String>,
}

impl Api {
    fn start() -> Option<Api> {
        if !Path::new(DOCKER).exists() {
            eprintln!("SKIP: {DOCKER} is missing (Debian package docker.io)");
            return None;
        }
        let roots = common::Roots::new("rc-api-");
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
        })
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            // No config of the host's user (contexts, credential helpers).
            .env("DOCKER_CONFIG", self.roots.dir.path().join("docker-config"))
            .output()
            .expect("running docker")
    }

    fn ok(&self, args: &[&str]) -> String {
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
    fn raw(&self, request: &str) -> (String, String) {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.write_all(request.as_bytes()).unwrap();
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
        let _ = self.server.kill();
        let _ = self.server.wait();
        common::unmount_under(self.roots.dir.path());
    }
}

#[test]
fn docker_cli_drives_containers_images_networks_and_volumes() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let image = common::unique("rcapi-bb");
    let tag = format!("{image}:test");
    busybox::busybox_image(&common::bin(), &api.roots.root(), &tag);
    let name = common::unique("rcapi-c");
    api.names.push(name.clone());

    let v = api.ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), "1.41");

    let images = api.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == tag), "{images}");

    let id = api.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-l",
        "made.by=docker",
        &tag,
        "sh",
        "-c",
        "echo out-line; echo err-line >&2; sleep 60",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");

    let ps = api.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.lines().any(|l| l.starts_with(&format!("{name} Up"))),
        "{ps}"
    );
    // The CLI sees what docker made, with its labels.
    let ours = api
        .roots
        .ok(&["container", "ps", "--format", "{{.Names}} {{.Labels}}"]);
    assert!(
        ours.contains(&name) && ours.contains("made.by=docker"),
        "{ours}"
    );
    let filtered = api.ok(&["ps", "-q", "--no-trunc", "--filter", "label=made.by=docker"]);
    assert_eq!(filtered.trim(), id);

    // Logs: the multiplexed stream keeps stdout and stderr apart.
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let o = api.docker(&["logs", &name]);
        if stdout(&o).contains("out-line") && stderr(&o).contains("err-line") {
            break o;
        }
        assert!(Instant::now() < deadline, "logs never came: {o:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!stdout(&logs).contains("err-line"));

    let state = api.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Config.Labels}}",
        &name,
    ]);
    assert!(state.starts_with("running"), "{state}");

    api.ok(&["stop", "-t", "1", &name]);
    let st = api
        .roots
        .ok(&["container", "inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(st.trim(), "exited");
    api.ok(&["rm", &name]);
    let gone = api.docker(&["inspect", &name]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("No such"), "{}", stderr(&gone));
    let o = api.docker(&["rm", &name]);
    assert!(
        stderr(&o).contains(&format!("No such container: {name}")),
        "{}",
        stderr(&o)
    );

    // `docker run` without -d: attach (hijacked), wait, start; output and exit code.
    let fg = common::unique("rcapi-fg");
    api.names.push(fg.clone());
    let o = api.docker(&[
        "run",
        "--name",
        &fg,
        "--network",
        "none",
        &tag,
        "sh",
        "-c",
        "sleep 0.3; echo fg-out; echo fg-err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "fg-out\n");
    assert!(stderr(&o).contains("fg-err"), "{}", stderr(&o));
    api.ok(&["rm", &fg]);

    // A container made by the rcompose CLI is docker's to stop and remove.
    let other = common::unique("rcapi-cli");
    api.names.push(other.clone());
    api.roots.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &other,
        "--network",
        "none",
        &tag,
        "sleep",
        "60",
    ]);
    let ps = api.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(ps.lines().any(|l| l == other), "{ps}");
    api.ok(&["rm", "-f", &other]);

    // Networks.
    let net = common::unique("rcapi-n");
    api.networks.push(net.clone());
    api.ok(&["network", "create", &net]);
    let ls = api.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls.lines().any(|l| l == net), "{ls}");
    let ours = api.roots.ok(&["network", "ls"]);
    assert!(ours.contains(&net), "{ours}");
    api.ok(&["network", "rm", &net]);
    let ls = api.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.lines().any(|l| l == net), "{ls}");

    // Volumes.
    let vol = common::unique("rcapi-v");
    api.ok(&["volume", "create", "--label", "k=v", &vol]);
    let ls = api.ok(&["volume", "ls", "-q"]);
    assert!(ls.lines().any(|l| l == vol), "{ls}");
    let ours = api
        .roots
        .ok(&["volume", "inspect", "-f", "{{.Labels}}", &vol]);
    assert!(ours.contains('k'), "{ours}");
    api.ok(&["volume", "rm", &vol]);
    assert!(api.roots.run(&["volume", "inspect", &vol]).status.code() != Some(0));

    // Images: tag and remove the tag.
    let retag = format!("{image}:again");
    api.ok(&["tag", &tag, &retag]);
    let out = api.ok(&["rmi", &retag]);
    assert!(out.contains("Untagged"), "{out}");

    // Bad input gets docker's statuses and bodies.
    let (status, body) =
        api.raw("GET /v1.41/nope HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("page not found"), "{body}");
    let (status, body) =
        api.raw("GET /v1.99/_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("is too new"), "{body}");
    let (status, body) = api.raw(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{nope",
    );
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("\"message\""), "{body}");
    api.names.clear();
}
