//! Issue 13: the study guide's command sequence (`../shared/reference/docker-study-guide.txt`:
//! images, containers, volumes, commit, networks), typed as the guide types it, through a
//! `docker` symlink to rcompose found on PATH, against images from a local docker-registry on
//! 127.0.0.1; then `docker-compose` and `docker compose` through theirs. The guide's images
//! (nginx, tomcat, centos) are stood in for by the busybox test image under their roles
//! (`httpd` serves as nginx); its subnet 192.168.0.0/16 by a unique /24.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::registry::{self, Auth};
use common::{busybox, free_port, stderr, stdout, unique};

/// The roots, a PATH directory holding `docker` and `docker-compose` links to the binary,
/// and what the test made outside containers (networks, volumes), removed on drop.
struct Guide {
    roots: common::Roots,
    links: tempfile::TempDir,
    docker_config: tempfile::TempDir,
    networks: std::cell::RefCell<Vec<String>>,
}

impl Guide {
    fn new() -> Guide {
        let links = tempfile::tempdir().unwrap();
        for name in ["docker", "docker-compose"] {
            std::os::unix::fs::symlink(common::bin(), links.path().join(name)).unwrap();
        }
        Guide {
            roots: common::Roots::new("rc-guide-"),
            links,
            docker_config: tempfile::tempdir().unwrap(),
            networks: Default::default(),
        }
    }

    /// `prog args…` as a user types it: the program is found on PATH.
    fn cmd(&self, prog: &str, dir: &Path) -> Command {
        let path = format!(
            "{}:{}",
            self.links.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(prog);
        c.current_dir(dir)
            .env("PATH", path)
            .env("RCOMPOSE_ROOT", self.roots.root())
            .env("RCOMPOSE_RUN_ROOT", self.roots.run_root())
            .env("RCOMPOSE_DNS_UPSTREAM", "none")
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env(
                "RCOMPOSE_REGISTRY_CONFIG",
                self.roots.dir.path().join("no-such-config.json"),
            )
            .env("NO_COLOR", "1");
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.cmd("docker", self.roots.dir.path())
            .args(args)
            .output()
            .expect("running docker (the link)")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}):\n{}{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(!o.status.success(), "docker {args:?} should fail");
        stderr(&o)
    }
}

impl Drop for Guide {
    fn drop(&mut self) {
        let o = self.roots.run(&["container", "ps", "-aq", "--no-trunc"]);
        for id in stdout(&o).split_whitespace() {
            let _ = self.roots.run(&["container", "rm", "-f", id]);
        }
        for n in self.networks.borrow().iter() {
            let _ = self.roots.run(&["network", "rm", n]);
        }
        common::unmount_under(self.roots.dir.path());
    }
}

/// GET / on 127.0.0.1:port, retried while the server starts.
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut body = String::new();
            if s.read_to_string(&mut body).is_ok() && body.starts_with("HTTP/1") {
                return body;
            }
        }
        assert!(Instant::now() < deadline, "nothing answers on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn id_of(g: &Guide, obj: &str, tpl: &str) -> String {
    g.ok(&["inspect", "-f", tpl, obj]).trim().to_string()
}

#[test]
fn study_guide_commands_through_docker_links() {
    let reg = registry::start(Auth::None);
    let g = Guide::new();
    // The registry's images, as the guide's `docker pull` finds them on a hub.
    let img = format!("{}/busybox", reg.host());
    let pusher = common::Roots::new("rc-guide-push-");
    busybox::busybox_image(&common::bin(), &pusher.root(), &format!("{img}:latest"));
    pusher.ok(&[
        "image",
        "tag",
        &format!("{img}:latest"),
        &format!("{img}:1.0"),
    ]);
    for t in ["latest", "1.0"] {
        let o = pusher
            .cmd()
            .env(
                "RCOMPOSE_REGISTRY_CONFIG",
                pusher.dir.path().join("none.json"),
            )
            .args(["image", "push", &format!("{img}:{t}")])
            .output()
            .unwrap();
        assert!(o.status.success(), "push: {}", stderr(&o));
    }

    // ---- images: version, info, search (with the guide's filter), pull, images, rmi.
    assert!(g.ok(&["version"]).contains("Version"));
    g.ok(&["info"]);
    let found = g.ok(&["search", &format!("{}/busy", reg.host())]);
    assert!(found.contains(&img), "{found}");
    let starred = g.ok(&[
        "search",
        &format!("{}/busy", reg.host()),
        "--filter=STARS=3000",
    ]);
    assert!(!starred.contains(&img), "a catalog has no stars: {starred}");
    g.ok(&["pull", &img]);
    g.ok(&["pull", &format!("{img}:1.0")]);
    let images = g.ok(&["images"]);
    assert!(images.contains(&img) && images.contains("1.0"), "{images}");
    g.ok(&["rmi", &format!("{img}:1.0")]);
    assert!(!g.ok(&["images"]).contains("1.0"));

    // ---- containers: run -i --rm, run -d -p, ps, exec, cp, stop/start/restart/kill, rm.
    let mut child = g
        .cmd("docker", g.roots.dir.path())
        .args(["run", "-i", "--rm", &img, "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from stdin\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "from stdin\n");
    let port = free_port();
    let nginx01 = unique("nginx01-");
    g.ok(&[
        "run",
        "-d",
        "--name",
        &nginx01,
        "-p",
        &format!("{port}:80"),
        &img,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/var/www",
    ]);
    assert!(g.ok(&["ps"]).contains(&nginx01));
    g.ok(&[
        "exec",
        &nginx01,
        "sh",
        "-c",
        "echo hello from nginx01 > /var/www/index.html",
    ]);
    assert!(http_get(port).contains("hello from nginx01"));
    let host_dir = g.roots.dir.path().join("copied");
    std::fs::create_dir_all(&host_dir).unwrap();
    g.ok(&[
        "cp",
        &format!("{nginx01}:/var/www/index.html"),
        host_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host_dir.join("index.html")).unwrap(),
        "hello from nginx01\n"
    );
    let running = |n: &str| id_of(&g, n, "{{.State.Running}}");
    g.ok(&["stop", &nginx01]);
    assert_eq!(running(&nginx01), "false");
    g.ok(&["start", &nginx01]);
    assert_eq!(running(&nginx01), "true");
    g.ok(&["restart", &nginx01]);
    assert!(http_get(port).contains("hello from nginx01"));
    g.ok(&["kill", &nginx01]);
    assert_eq!(running(&nginx01), "false");
    let id = id_of(&g, &nginx01, "{{.Id}}");
    g.ok(&["start", &nginx01]);
    assert!(g.fails(&["rm", &nginx01]).contains("running"));
    g.ok(&["rm", "-f", &id[..12]]);
    assert!(!g.ok(&["ps", "-a"]).contains(&nginx01));

    // ---- commit: a changed container becomes tomcat02:1.0 with message and author.
    let tomcat01 = unique("tomcat01-");
    g.ok(&["run", "-d", "--name", &tomcat01, &img, "sleep", "300"]);
    g.ok(&[
        "exec",
        &tomcat01,
        "sh",
        "-c",
        "mkdir -p /webapps && echo app > /webapps/app.txt",
    ]);
    let tomcat02 = format!("{}:1.0", unique("tomcat02-"));
    g.ok(&["commit", "-m=add webapps", "-a=guide", &tomcat01, &tomcat02]);
    assert!(
        g.ok(&["images"])
            .contains(tomcat02.split(':').next().unwrap())
    );
    assert_eq!(
        g.ok(&["run", "--rm", &tomcat02, "cat", "/webapps/app.txt"]),
        "app\n"
    );
    let meta = g.ok(&[
        "inspect",
        "--type",
        "image",
        "-f",
        "{{.Author}}|{{.Comment}}",
        &tomcat02,
    ]);
    assert_eq!(meta.trim(), "guide|add webapps");

    // ---- volumes: bind, named read-only, anonymous, --volumes-from, --privileged=true.
    let ceshi = g.roots.dir.path().join("ceshi");
    std::fs::create_dir_all(&ceshi).unwrap();
    let v1 = unique("v1-");
    g.ok(&[
        "run",
        "-d",
        "--name",
        &v1,
        "-v",
        &format!("{}:/home", ceshi.display()),
        &img,
        "sleep",
        "300",
    ]);
    g.ok(&["exec", &v1, "sh", "-c", "echo synced > /home/test.java"]);
    assert_eq!(
        std::fs::read_to_string(ceshi.join("test.java")).unwrap(),
        "synced\n"
    );
    let mounts = g.ok(&["inspect", "-f", "{{json .Mounts}}", &v1]);
    assert!(mounts.contains(&ceshi.display().to_string()), "{mounts}");
    let vol = unique("juming-nginx-");
    let nginx02 = unique("nginx02-");
    g.ok(&[
        "run",
        "-d",
        "-P",
        "--name",
        &nginx02,
        "-v",
        &format!("{vol}:/etc/nginx/:ro"),
        &img,
        "sleep",
        "300",
    ]);
    assert!(g.ok(&["volume", "ls"]).contains(&vol));
    assert!(g.ok(&["volume", "inspect", &vol]).contains("Mountpoint"));
    let ro = g.docker(&["exec", &nginx02, "touch", "/etc/nginx/x"]);
    assert!(!ro.status.success(), "a :ro volume is writable");
    let docker01 = unique("docker01-");
    g.ok(&[
        "run",
        "-d",
        "--name",
        &docker01,
        "-v",
        "/volume01",
        &img,
        "sleep",
        "300",
    ]);
    g.ok(&[
        "exec",
        &docker01,
        "sh",
        "-c",
        "echo shared > /volume01/data",
    ]);
    let docker02 = unique("docker02-");
    g.ok(&[
        "run",
        "-d",
        "--name",
        &docker02,
        "--volumes-from",
        &docker01,
        &img,
        "sleep",
        "300",
    ]);
    g.ok(&["rm", "-f", &docker01]);
    assert_eq!(
        g.ok(&["exec", &docker02, "cat", "/volume01/data"]),
        "shared\n"
    );
    let caps = g.ok(&[
        "run",
        "--rm",
        "--privileged=true",
        &img,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(
        !caps.contains("00000000a80425fb"),
        "privileged has the default caps: {caps}"
    );

    // ---- networks: ls, create with subnet and gateway, inspect, containers by name.
    let nets = g.ok(&["network", "ls"]);
    for n in ["bridge", "host", "none"] {
        assert!(nets.contains(n), "{nets}");
    }
    let third = std::process::id() % 250;
    let subnet = format!("10.253.{third}.0/24");
    let gateway = format!("10.253.{third}.1");
    let mynet = unique("mynet");
    g.networks.borrow_mut().push(mynet.clone());
    g.ok(&[
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        &subnet,
        "--gateway",
        &gateway,
        &mynet,
    ]);
    let net = g.ok(&["network", "inspect", &mynet]);
    assert!(net.contains(&subnet) && net.contains(&gateway), "{net}");
    let c1 = unique("container1-");
    let c2 = unique("container2-");
    for c in [&c1, &c2] {
        g.ok(&["run", "-d", "--name", c, "--network", &mynet, &img, "top"]);
    }
    let ping = g.ok(&["exec", &c1, "ping", "-c", "1", "-W", "5", &c2]);
    assert!(ping.contains("1 packets received"), "{ping}");
    let c3 = unique("container3-");
    // On the default bridge (the guide's docker0), then connected to mynet as well.
    g.ok(&["run", "-d", "--name", &c3, &img, "sleep", "300"]);
    g.ok(&["network", "connect", &mynet, &c3]);
    assert!(
        g.ok(&["exec", &c3, "ping", "-c", "1", "-W", "5", &c1])
            .contains("1 packets received")
    );
    assert_eq!(
        g.docker(&["run", "--rm", &img, "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );

    // ---- compose: `docker-compose up -d` and `docker compose` through their links.
    let proj = g.roots.dir.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let web_port = free_port();
    std::fs::write(
        proj.join("docker-compose.yml"),
        format!(
            "services:\n  web:\n    image: {img}\n    command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/var/www\"]\n    ports: [\"{web_port}:80\"]\n    networks: [front]\nnetworks:\n  front:\n    ipam:\n      config: [{{subnet: \"10.253.{}.0/24\"}}]\n",
            (third + 1) % 250
        ),
    )
    .unwrap();
    let project = unique("guide");
    let compose = |prog: &str, args: &[&str]| {
        let mut c = g.cmd(prog, &proj);
        if prog == "docker" {
            c.arg("compose");
        }
        let o = c.args(["-p", &project]).args(args).output().unwrap();
        assert!(o.status.success(), "{prog} {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    compose("docker-compose", &["up", "-d"]);
    let ps = compose("docker", &["ps"]);
    assert!(ps.contains("web"), "{ps}");
    compose(
        "docker",
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "echo composed > /var/www/index.html",
        ],
    );
    assert!(http_get(web_port).contains("composed"));
    compose("docker", &["down"]);
    assert!(!compose("docker-compose", &["ps", "-a"]).contains("web-1"));
}
