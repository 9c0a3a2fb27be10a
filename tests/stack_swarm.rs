//! `rcompose stack deploy/ls/services/ps/rm` against a real one-node Docker Swarm.
//!
//! The swarm runs in a private dockerd the test starts (its own data root, exec root, pid
//! file, socket, containerd namespaces and cgroup parent; a default bridge of its own, no iptables
//! rules, its `docker_gwbridge` on a bridge of its own name), so the host's dockerd and its
//! firewall are never touched. The busybox test image goes in through `rcompose image save`
//! and `docker load`. Skipped with a message when dockerd or the docker CLI is absent.
//!
//! Without IPVS in the kernel (as on this CI machine) a service's virtual IP does not route,
//! so the service that is reached by name uses `endpoint_mode: dnsrr`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Roots, busybox::busybox_image, free_port, stderr, stdout, unique};

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A dockerd of the test's own. `Drop` stops it and removes everything it made.
struct PrivateDockerd {
    dir: PathBuf,
    docker: PathBuf,
    child: Option<Child>,
    id: String,
    bridge: String,
    /// The private dockerd's default bridge (made by the fixture, so the host's docker0 stays).
    default_bridge: String,
}

impl PrivateDockerd {
    fn sock(&self) -> String {
        format!("unix://{}", self.dir.join("sock").display())
    }

    /// Starts it; `None` (after printing why) when dockerd or docker is missing.
    fn start() -> Option<Self> {
        let Some(dockerd) = find(&["/usr/sbin/dockerd", "/usr/bin/dockerd"]) else {
            eprintln!("SKIP: dockerd is missing (Debian package docker.io)");
            return None;
        };
        let Some(docker) = find(&["/usr/bin/docker", "/usr/local/bin/docker"]) else {
            eprintln!("SKIP: the docker CLI is missing (Debian package docker.io)");
            return None;
        };
        // Short: the socket path must fit in a sockaddr_un, the bridge name in 15 bytes.
        let id = unique("rcsw");
        let dir = PathBuf::from(format!("/tmp/{id}"));
        std::fs::create_dir_all(&dir).expect("private dockerd directory");
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        // A default bridge of its own: with `--bridge none` dockerd deletes the host's
        // `docker0` at start (moby's removeDefaultBridgeInterface), i.e. the host dockerd's.
        let default_bridge = format!("db{}", &id[4..]);
        let octet = std::process::id() % 200 + 20;
        for args in [
            vec!["link", "add", &default_bridge, "type", "bridge"],
            vec![
                "addr",
                "add",
                &format!("10.217.{octet}.1/24"),
                "dev",
                &default_bridge,
            ],
            vec!["link", "set", &default_bridge, "up"],
        ] {
            assert!(
                Command::new("ip").args(&args).status().unwrap().success(),
                "ip {args:?}"
            );
        }
        let p = |x: &str| dir.join(x).display().to_string();
        let child = Command::new(dockerd)
            .args(["--config-file", &p("daemon.json")])
            .args(["--data-root", &p("data"), "--exec-root", &p("exec")])
            .args(["--pidfile", &p("dockerd.pid")])
            .args(["-H", &format!("unix://{}", p("sock"))])
            .args(["--bridge", &default_bridge])
            .args(["--iptables=false", "--ip-masq=false"])
            .args(["--ip-forward=false", "--userland-proxy=false"])
            .args(["--containerd-namespace", &id])
            .args(["--containerd-plugins-namespace", &format!("{id}p")])
            .args(["--cgroup-parent", &id])
            // Swarm tasks pull their image first unless told not to: no registry traffic.
            .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let d = PrivateDockerd {
            bridge: format!("gw{}", &id[4..]),
            default_bridge,
            dir,
            docker,
            child: Some(child),
            id,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the private dockerd did not start:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        Some(d)
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(&self.docker)
            .arg("-H")
            .arg(self.sock())
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .output()
            .expect("running docker")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed:\n{}\ndockerd log:\n{}",
            stderr(&o),
            self.log()
        );
        stdout(&o)
    }

    /// A swarm of this one node, its addresses in 10.218.0.0/16 (docker_gwbridge in
    /// 10.219.x.0/24), its ports on loopback. The gossip port (7946) cannot be chosen: when
    /// another swarm daemon on this host holds it on 127.0.0.1, this one advertises another
    /// loopback address.
    fn init_swarm(&self) {
        let addr = if std::net::TcpListener::bind("127.0.0.1:7946").is_ok() {
            "127.0.0.1".to_string()
        } else {
            format!("127.0.{}.1", 1 + std::process::id() % 250)
        };
        let gw_subnet = format!("10.219.{}.0/24", std::process::id() % 250);
        self.docker_ok(&[
            "network",
            "create",
            "--subnet",
            &gw_subnet,
            "--opt",
            &format!("com.docker.network.bridge.name={}", self.bridge),
            "--opt",
            "com.docker.network.bridge.enable_icc=false",
            "--opt",
            "com.docker.network.bridge.enable_ip_masquerade=false",
            "docker_gwbridge",
        ]);
        let data_port = (20000 + std::process::id() % 20000).to_string();
        self.docker_ok(&[
            "swarm",
            "init",
            "--advertise-addr",
            &addr,
            "--listen-addr",
            &format!("{addr}:{}", free_port()),
            "--default-addr-pool",
            "10.218.0.0/16",
            "--data-path-port",
            &data_port,
        ]);
    }

    /// `rcompose stack …` against this daemon.
    fn stack(&self, args: &[&str], cwd: &Path) -> Output {
        Command::new(common::BIN)
            .arg("stack")
            .args(args)
            .current_dir(cwd)
            .env("DOCKER_HOST", self.sock())
            .output()
            .expect("running rcompose stack")
    }

    fn stack_ok(&self, args: &[&str], cwd: &Path) -> Output {
        let o = self.stack(args, cwd);
        assert!(
            o.status.success(),
            "rcompose stack {args:?} failed:\nstdout: {}\nstderr: {}\ndockerd log:\n{}",
            stdout(&o),
            stderr(&o),
            self.log()
        );
        o
    }

    fn wait_until(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\ndockerd log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        let _ = self.docker(&["swarm", "leave", "--force"]);
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of the child this fixture spawned.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // What a dockerd leaves on the host: its bridge, its containerd namespaces, cgroups.
        for bridge in [&self.bridge, &self.default_bridge] {
            if !bridge.is_empty() {
                let _ = Command::new("ip")
                    .args(["link", "del", bridge])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // A task stopped half-way through its setup can leave a veth pair in the host's
        // namespace. Docker derives a container's MAC from its address, so ours are the ones
        // with addresses in this test's ranges (10.218.0.0/16, 10.219.0.0/16).
        if let Ok(links) = std::fs::read_dir("/sys/class/net") {
            for l in links.flatten() {
                let name = l.file_name().to_string_lossy().into_owned();
                let mac = std::fs::read_to_string(l.path().join("address")).unwrap_or_default();
                if name.starts_with("veth")
                    && (mac.starts_with("02:42:0a:da:") || mac.starts_with("02:42:0a:db:"))
                {
                    let _ = Command::new("ip").args(["link", "del", &name]).status();
                }
            }
        }
        if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
            for c in controllers.flatten() {
                let parent = c.path().join(&self.id);
                if let Ok(children) = std::fs::read_dir(&parent) {
                    for child in children.flatten().filter(|e| e.path().is_dir()) {
                        let _ = std::fs::remove_dir(child.path());
                    }
                }
                let _ = std::fs::remove_dir(&parent);
            }
        }
        common::unmount_under(&self.dir);
        let dir = self.dir.to_string_lossy();
        if dir.starts_with("/tmp/rcsw") && dir.len() > "/tmp/rcsw".len() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

const STACK: &str = r#"
services:
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    configs:
      - {source: page, target: /www/index.html}
    volumes: ["data:/data"]
    networks: [front]
    environment: {GREETING: hello}
    labels: {com.example.container: "web"}
    deploy:
      endpoint_mode: dnsrr
      replicas: 1
      labels: {com.example.service: "web"}
      resources:
        limits: {memory: 64M}
      restart_policy: {condition: any, delay: 1s}
      update_config: {parallelism: 1, delay: 1s, order: stop-first}
  client:
    image: IMAGE
    build: .
    depends_on: [web]
    command: ["sh", "-c", "while true; do sleep 1; done"]
    networks: [front]
    secrets: [token]
    stop_grace_period: 1s
networks:
  front: {}
volumes:
  data: {}
secrets:
  token: {file: ./token.txt}
configs:
  page: {file: ./index.html}
"#;

/// The one container of a service's running task.
fn task_container(d: &PrivateDockerd, service: &str) -> Option<String> {
    let o = d.docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ]);
    stdout(&o).lines().next().map(str::to_string)
}

fn replicas(d: &PrivateDockerd, ns: &str, cwd: &Path) -> Vec<(String, String)> {
    let o = d.stack_ok(&["services", ns, "--format", "json"], cwd);
    stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["Name"].as_str().unwrap_or_default().to_string(),
                v["Replicas"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn stack_deploys_updates_and_removes_on_a_private_swarm() {
    let Some(d) = PrivateDockerd::start() else {
        return;
    };
    let roots = Roots::new("stack-swarm");
    let tag = format!("{}:1", unique("stackbb"));
    busybox_image(&common::bin(), &roots.root(), &tag);
    let tar = d.dir.join("busybox.tar");
    roots.ok(&["image", "save", "-o", tar.to_str().unwrap(), &tag]);
    d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);

    let work = d.dir.join("project");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("token.txt"), "t0ken\n").unwrap();
    let page = format!("served by {}\n", d.id);
    std::fs::write(work.join("index.html"), &page).unwrap();
    std::fs::write(work.join("compose.yaml"), STACK.replace("IMAGE", &tag)).unwrap();
    let ns = unique("st");

    // Not a manager yet: refused before anything is made.
    let o = d.stack(&["deploy", "-c", "compose.yaml", &ns], &work);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("this node is not a swarm manager"),
        "{}",
        stderr(&o)
    );
    d.init_swarm();

    // The daemon's refusal surfaces with its message, and what the deploy made is removed.
    let bad = unique("bad");
    std::fs::write(
        work.join("bad.yaml"),
        format!(
            "services:\n  a:\n    image: {tag}\n    deploy:\n      placement:\n        constraints: [\"node.role\"]\n"
        ),
    )
    .unwrap();
    let o = d.stack(&["deploy", "-c", "bad.yaml", &bad], &work);
    assert!(!o.status.success(), "{}", stdout(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(err.contains("Error response from daemon:"), "{err}");
    assert!(err.contains("constraint"), "{err}");
    assert!(
        out.contains(&format!("Creating network {bad}_default")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Removing network {bad}_default")),
        "{out}"
    );
    let left = d.docker_ok(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={bad}"),
    ]);
    assert_eq!(left.trim(), "", "the failed deploy left its network");

    let o = d.stack_ok(&["deploy", "-c", "compose.yaml", &ns], &work);
    let out = stdout(&o);
    for line in [
        format!("Creating secret {ns}_token"),
        format!("Creating config {ns}_page"),
        format!("Creating network {ns}_front"),
        format!("Creating service {ns}_web"),
        format!("Creating service {ns}_client"),
    ] {
        assert!(out.contains(&line), "no {line:?} in:\n{out}");
    }
    assert!(
        stderr(&o).contains("Ignoring unsupported options: build, depends_on (service client)"),
        "{}",
        stderr(&o)
    );

    d.wait_until(120, "both services to converge", || {
        let r = replicas(&d, &ns, &work);
        r.len() == 2 && r.iter().all(|(_, x)| x == "1/1")
    });
    let ls = stdout(&d.stack_ok(&["ls"], &work));
    assert!(
        ls.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [ns.as_str(), "2"]),
        "{ls}"
    );
    let ps = stdout(&d.stack_ok(&["ps", &ns], &work));
    assert!(ps.starts_with("ID"), "{ps}");
    for task in [format!("{ns}_web.1"), format!("{ns}_client.1")] {
        assert!(
            ps.lines()
                .any(|l| l.contains(&task) && l.contains("Running")),
            "{task} not running in:\n{ps}"
        );
    }
    let services = stdout(&d.stack_ok(&["services", &ns], &work));
    assert!(
        services.contains(&format!("{ns}_web")) && services.contains("replicated"),
        "{services}"
    );

    // The objects carry docker's names and labels.
    let labels = d.docker_ok(&[
        "service",
        "inspect",
        &format!("{ns}_web"),
        "--format",
        "{{json .Spec.Labels}} {{json .Spec.TaskTemplate.ContainerSpec.Labels}}",
    ]);
    assert!(
        labels.contains(&format!("\"com.docker.stack.namespace\":\"{ns}\""))
            && labels.contains("\"com.example.service\":\"web\"")
            && labels.contains("\"com.example.container\":\"web\""),
        "{labels}"
    );
    let nets = d.docker_ok(&[
        "network",
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={ns}"),
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    assert_eq!(nets.trim(), format!("{ns}_front overlay swarm"));

    // One service reaches the other by name over the overlay network; the secret is there.
    let client = task_container(&d, &format!("{ns}_client")).expect("client container");
    d.wait_until(60, "the client to fetch the web page by name", || {
        let o = d.docker(&[
            "exec",
            &client,
            "timeout",
            "5",
            "wget",
            "-q",
            "-O",
            "-",
            "http://web/",
        ]);
        let ok = stdout(&o) == page;
        if !ok {
            eprintln!("wget from the client: {}{}", stdout(&o), stderr(&o));
        }
        ok
    });
    let secret = d.docker_ok(&["exec", &client, "cat", "/run/secrets/token"]);
    assert_eq!(secret, "t0ken\n");

    // Re-deploy with a change: the existing service is updated, not re-created.
    let id_before = d.docker_ok(&[
        "service",
        "inspect",
        &format!("{ns}_web"),
        "--format",
        "{{.ID}}",
    ]);
    let changed = STACK
        .replace("IMAGE", &tag)
        .replace("replicas: 1", "replicas: 2")
        .replace("GREETING: hello", "GREETING: again");
    std::fs::write(work.join("compose.yaml"), changed).unwrap();
    // This time the command waits until the services have converged.
    let o = d.stack_ok(
        &[
            "deploy",
            "--detach=false",
            "--timeout",
            "120",
            "-c",
            "compose.yaml",
            &ns,
        ],
        &work,
    );
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "Updating service {ns}_web (id: {})",
            id_before.trim()
        )),
        "{out}"
    );
    assert!(!out.contains("Creating"), "{out}");
    assert!(
        stderr(&o).contains(&format!("{ns}_web: converged")),
        "{}",
        stderr(&o)
    );
    assert!(
        replicas(&d, &ns, &work).contains(&(format!("{ns}_web"), "2/2".to_string())),
        "{:?}",
        replicas(&d, &ns, &work)
    );
    // The API's filters pass through: only the tasks meant to run, only the web service.
    let running = stdout(&d.stack_ok(
        &[
            "ps",
            &ns,
            "-f",
            "desired-state=running",
            "--format",
            "{{.Name}}",
        ],
        &work,
    ));
    let mut names: Vec<&str> = running.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("{ns}_client.1"),
            format!("{ns}_web.1"),
            format!("{ns}_web.2")
        ],
        "{running}"
    );
    let only_web = stdout(&d.stack_ok(
        &["services", &ns, "-f", &format!("name={ns}_web"), "-q"],
        &work,
    ));
    assert_eq!(only_web.lines().count(), 1, "{only_web}");
    // Both running containers are of the new spec.
    let web = d.docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={ns}_web"),
    ]);
    let ids: Vec<&str> = web.lines().collect();
    assert_eq!(ids.len(), 2, "{web}");
    for id in ids {
        let env = d.docker_ok(&["inspect", id, "--format", "{{json .Config.Env}}"]);
        assert!(env.contains("GREETING=again"), "{env}");
    }

    let o = d.stack_ok(&["rm", &ns], &work);
    let out = stdout(&o);
    for line in [
        format!("Removing service {ns}_client"),
        format!("Removing service {ns}_web"),
        format!("Removing secret {ns}_token"),
        format!("Removing config {ns}_page"),
        format!("Removing network {ns}_front"),
    ] {
        assert!(out.contains(&line), "no {line:?} in:\n{out}");
    }
    let filter = format!("label=com.docker.stack.namespace={ns}");
    for kind in ["service", "secret", "config", "network"] {
        let left = d.docker_ok(&[kind, "ls", "-q", "--filter", &filter]);
        assert_eq!(left.trim(), "", "{kind}s of the stack left after stack rm");
    }
    let ls = stdout(&d.stack_ok(&["ls"], &work));
    assert!(!ls.contains(&ns), "{ls}");
    let o = d.stack_ok(&["rm", &ns], &work);
    assert!(stderr(&o).contains(&format!("Nothing found in stack: {ns}")));
}

#[test]
fn a_daemon_that_is_not_there_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(common::BIN)
        .args(["stack", "ls"])
        .env(
            "DOCKER_HOST",
            format!("unix://{}/none.sock", dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot connect to the Docker daemon at unix://"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(common::BIN)
        .args(["stack", "ls", "-H", "ssh://me@manager"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ssh:// are not supported"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(common::BIN)
        .args(["stack", "ls"])
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{}", free_port()))
        .env("DOCKER_TLS_VERIFY", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("DOCKER_TLS_VERIFY is set"),
        "{}",
        stderr(&o)
    );
}
