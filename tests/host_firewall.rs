//! rcompose next to the host's other firewalls (issue 9). Docker sets the iptables FORWARD
//! policy to DROP, hangs its rules off FORWARD with a DOCKER-USER chain first, and turns on
//! br_netfilter; ufw and firewalld do much the same. These tests build those conditions inside
//! a private network namespace of their own (so the host is never touched), run the real
//! binary in it with `nsenter --net`, and check, with br_netfilter's sysctl on and off:
//! container↔container by name, container→an "outside" namespace through masquerade, a
//! published port reached from that outside namespace, isolation between networks, and that
//! teardown leaves iptables exactly as it was. Where a real `dockerd` runs on the machine, the
//! same scenario also runs in the host's own namespace, next to Docker's real rules.
//!
//! All traffic stays inside namespaces made here (10.249.0.0/16); the embedded DNS never
//! forwards (RCOMPOSE_DNS_UPSTREAM=none).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{BIN, busybox};

const IMAGE: &str = "busybox:fwtest";

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("spawn")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sh_ok(script: &str) {
    let out = run(Command::new("sh").args(["-ec", script]));
    assert!(out.status.success(), "{script}: {}", text(&out));
}

/// Where the scenario runs: a private namespace made to look like a Docker host, or the
/// machine's own namespace next to a real running Docker.
#[derive(Clone, Copy, PartialEq)]
enum Host {
    Private { bridge_nf_call_iptables: bool },
    RealDocker,
}

struct Scenario {
    dir: tempfile::TempDir,
    /// The namespace rcompose runs in (None: the machine's own).
    ns: Option<String>,
    outside: String,
    /// The outside namespace's veth peer on the host side.
    host_veth: String,
    /// Third octet base: link 10.249.B.0/24, networks 10.249.B+1 and B+2.
    base: u8,
    server: Option<Child>,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Scenario {
    fn new(host: Host, base: u8) -> Scenario {
        let id = std::process::id() % 100_000;
        let tag = base / 10;
        let outside = format!("rcfwo{id}x{tag}");
        let ns = match host {
            Host::Private { .. } => Some(format!("rcfwh{id}x{tag}")),
            Host::RealDocker => None,
        };
        let mut s = Scenario {
            dir: tempfile::tempdir().unwrap(),
            ns: ns.clone(),
            outside: outside.clone(),
            host_veth: format!("rcfh{id}x{tag}"),
            base,
            server: None,
            containers: vec![],
            networks: vec![],
        };
        let (h, o) = (s.host_veth.clone(), format!("rcfp{id}x{tag}"));
        let link = format!("10.249.{base}");
        sh_ok(&format!(
            "ip netns add {outside}
             ip -n {outside} link set lo up
             ip link add {h} type veth peer name {o}
             ip link set {o} netns {outside}
             ip -n {outside} addr add {link}.2/24 dev {o}
             ip -n {outside} link set {o} up"
        ));
        let exec = |ns: &Option<String>| {
            ns.as_ref()
                .map(|n| format!("ip netns exec {n} "))
                .unwrap_or_default()
        };
        if let Some(ns) = &ns {
            sh_ok(&format!(
                "ip netns add {ns}; ip -n {ns} link set lo up; ip link set {h} netns {ns}"
            ));
        }
        let x = exec(&ns);
        sh_ok(&format!(
            "{x}ip addr add {link}.1/24 dev {h}; {x}ip link set {h} up"
        ));
        if let (
            Host::Private {
                bridge_nf_call_iptables,
            },
            Some(ns),
        ) = (host, &ns)
        {
            // What Docker leaves on a host, in our private namespace only.
            let v = u8::from(bridge_nf_call_iptables);
            sh_ok(&format!(
                "{x}ip route add default via {link}.2
                 {x}iptables -N DOCKER-USER
                 {x}iptables -A DOCKER-USER -j RETURN
                 {x}iptables -A FORWARD -j DOCKER-USER
                 {x}iptables -P FORWARD DROP
                 ip netns exec {ns} sh -c 'echo {v} > /proc/sys/net/bridge/bridge-nf-call-iptables'"
            ));
        }
        let www = s.dir.path().join("outside-www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "from-outside\n").unwrap();
        s.server = Some(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &outside,
                    busybox::HOST_BUSYBOX,
                    "httpd",
                    "-f",
                ])
                .args(["-p", &format!("{link}.2:8099"), "-h"])
                .arg(&www)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        busybox::busybox_image(BIN.as_ref(), &s.root(), IMAGE);
        s
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn link(&self, host: u8) -> String {
        format!("10.249.{}.{host}", self.base)
    }

    /// The host's iptables filter table as `iptables -S` prints it.
    fn iptables(&self) -> String {
        let mut cmd = self.in_host("iptables");
        text(&run(cmd.args(["-w", "-S"])))
    }

    fn in_host(&self, program: &str) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = self.in_host(BIN);
        cmd.arg("--root")
            .arg(self.root())
            .arg("--run-root")
            .arg(self.dir.path().join("run"))
            .args(args)
            .env("RCOMPOSE_DNS_UPSTREAM", "none");
        run(&mut cmd)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "rcompose {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn network(&mut self, name: &str, third: u8) {
        let subnet = format!("10.249.{third}.0/24");
        self.ok(&["network", "create", "--subnet", &subnet, name]);
        self.networks.push(name.into());
    }

    fn serve(&mut self, name: &str, flags: &[&str], body: &str) {
        let script = format!(
            "mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www"
        );
        let mut args = vec!["container", "run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
        self.ok(&args);
        self.containers.push(name.into());
    }

    /// Runs a throwaway container on `network` that fetches `url` (retrying while servers
    /// start when `retry`), and returns what it printed, or None when the fetch failed.
    fn fetch_from(&self, network: &str, url: &str, retry: bool) -> Option<String> {
        let script = if retry {
            format!(
                "for i in $(seq 50); do timeout 5 wget -qO- {url} && exit 0; sleep 0.2; done; exit 1"
            )
        } else {
            format!("timeout -s KILL 5 wget -qO- {url}; exit $?")
        };
        let out = self.cli(&[
            "container",
            "run",
            "--rm",
            "--network",
            network,
            IMAGE,
            "sh",
            "-c",
            &script,
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Fetches `url` from the outside namespace, as another host on the network would.
    fn fetch_from_outside(&self, url: &str) -> Option<String> {
        for _ in 0..50 {
            let out = run(Command::new("ip").args([
                "netns",
                "exec",
                &self.outside,
                "timeout",
                "5",
                busybox::HOST_BUSYBOX,
                "wget",
                "-qO-",
                url,
            ]));
            if out.status.success() {
                return Some(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        None
    }

    fn teardown(&mut self) {
        for c in std::mem::take(&mut self.containers) {
            let _ = self.cli(&["container", "rm", "-f", &c]);
        }
        for n in std::mem::take(&mut self.networks) {
            let _ = self.cli(&["network", "rm", &n]);
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.teardown();
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let mut nft = self.in_host("nft");
        let table = rcompose_net::api::table_name(&self.root());
        let _ = run(nft
            .args(["delete", "table", "inet", &table])
            .stderr(Stdio::null()));
        let _ = run(Command::new("ip")
            .args(["link", "del", &self.host_veth])
            .stderr(Stdio::null()));
        for ns in self.ns.iter().chain([&self.outside]) {
            let _ = run(Command::new("ip").args(["netns", "del", ns]));
        }
    }
}

fn our_lines(listing: &str, prefix: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| l.contains(prefix))
        .map(str::to_string)
        .collect()
}

fn scenario(host: Host, base: u8) {
    let mut s = Scenario::new(host, base);
    let prefix =
        rcompose_net::firewall::iptables::chain_prefix(&rcompose_net::api::table_name(&s.root()));
    let before = s.iptables();
    let id = std::process::id() % 100_000;
    let (n1, n2) = (format!("fwa{id}x{base}"), format!("fwb{id}x{base}"));
    s.network(&n1, base + 1);
    s.network(&n2, base + 2);
    let (a, b) = (format!("fwa{id}x{base}c"), format!("fwb{id}x{base}c"));
    let port = match host {
        Host::Private { .. } => 8088,
        Host::RealDocker => std::net::TcpListener::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    };
    s.serve(&a, &["--network", &n1], "hello-a");
    s.serve(
        &b,
        &["--network", &n1, "-p", &format!("{port}:80")],
        "hello-b",
    );

    let applied = s.iptables();
    assert!(
        applied.contains(&format!("-A DOCKER-USER -j {prefix}-FORWARD")),
        "our chain is not jumped to from DOCKER-USER:\n{applied}"
    );

    let by_name = s.fetch_from(&n1, &format!("http://{a}/"), true);
    assert_eq!(
        by_name.as_deref(),
        Some("hello-a\n"),
        "container to container by name"
    );

    let out = s.fetch_from(&n1, &format!("http://{}:8099/", s.link(2)), true);
    assert_eq!(
        out.as_deref(),
        Some("from-outside\n"),
        "container to outside (masquerade)"
    );

    let published = s.fetch_from_outside(&format!("http://{}:{port}/", s.link(1)));
    assert_eq!(
        published.as_deref(),
        Some("hello-b\n"),
        "published port from outside"
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["container", "inspect", &a])).unwrap();
    let a_ip = inspect[0]["NetworkSettings"]["Networks"][&n1]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        s.fetch_from(&n2, &format!("http://{a_ip}/"), false)
            .is_none(),
        "a container on another network reached {a_ip}: isolation is broken"
    );

    s.teardown();
    let after = s.iptables();
    assert!(
        our_lines(&after, &prefix).is_empty(),
        "rules left behind:\n{after}"
    );
    if s.ns.is_some() {
        assert_eq!(before, after, "iptables differs after teardown");
    }
}

#[test]
fn next_to_docker_rules_with_br_netfilter_on() {
    scenario(
        Host::Private {
            bridge_nf_call_iptables: true,
        },
        10,
    );
}

#[test]
fn next_to_docker_rules_with_br_netfilter_off() {
    scenario(
        Host::Private {
            bridge_nf_call_iptables: false,
        },
        20,
    );
}

#[test]
fn next_to_a_real_running_docker() {
    let docker_runs = run(Command::new("pgrep").args(["-x", "dockerd"]))
        .status
        .success();
    let has_docker_user = Path::new("/usr/sbin/iptables").exists()
        && text(&run(Command::new("iptables").args([
            "-w",
            "-S",
            "DOCKER-USER",
        ])))
        .contains("-N DOCKER-USER");
    if !docker_runs || !has_docker_user {
        eprintln!("skipped: no dockerd with a DOCKER-USER chain runs on this machine");
        return;
    }
    scenario(Host::RealDocker, 30);
}

/// `doctor` reads the Docker-like host right, reports our accepts missing after another tool
/// flushed them, and `doctor --fix` (like any later network command) puts them back once.
#[test]
fn doctor_reports_flushed_accepts_and_fix_restores_them() {
    let mut s = Scenario::new(
        Host::Private {
            bridge_nf_call_iptables: true,
        },
        40,
    );
    let prefix =
        rcompose_net::firewall::iptables::chain_prefix(&rcompose_net::api::table_name(&s.root()));
    let id = std::process::id() % 100_000;
    let net = format!("fwd{id}");
    s.network(&net, 41);
    s.serve(&format!("fwd{id}c"), &["--network", &net], "hi");
    let firewall = |s: &Scenario, args: &[&str]| {
        let mut full = vec!["doctor", "--format", "json"];
        full.extend_from_slice(args);
        let out = s.cli(&full);
        let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor json: {e}: {}", text(&out)));
        let problems = all.iter().filter(|f| f["level"] == "problem").count();
        assert_eq!(
            out.status.code(),
            Some(i32::from(problems > 0)),
            "exit code: {}",
            text(&out)
        );
        all.into_iter()
            .filter(|f| {
                f["check"] == "firewall" && f["detail"].as_str().unwrap().contains("FORWARD")
            })
            .collect::<Vec<_>>()
    };
    let fine = firewall(&s, &[]);
    assert_eq!(fine.len(), 1, "{fine:?}");
    assert_eq!(fine[0]["level"], "ok", "{fine:?}");
    assert!(
        fine[0]["detail"].as_str().unwrap().contains("Docker"),
        "{fine:?}"
    );

    // A firewall reload by another tool drops our jump.
    let mut flush = s.in_host("iptables");
    assert!(
        run(flush.args(["-w", "-F", "DOCKER-USER"]))
            .status
            .success()
    );
    let broken = firewall(&s, &[]);
    assert_eq!(broken[0]["level"], "problem", "{broken:?}");
    assert!(broken[0]["fix"].as_str().unwrap().contains("--fix"));

    let fixed = firewall(&s, &["--fix"]);
    assert_eq!(fixed[0]["level"], "ok", "{fixed:?}");
    let jumps = s
        .iptables()
        .lines()
        .filter(|l| *l == format!("-A DOCKER-USER -j {prefix}-FORWARD"))
        .count();
    assert_eq!(jumps, 1, "{}", s.iptables());

    // The same after a plain network command: back once, never twice.
    let mut flush = s.in_host("iptables");
    assert!(
        run(flush.args(["-w", "-F", "DOCKER-USER"]))
            .status
            .success()
    );
    s.network(&format!("fwe{id}"), 42);
    s.ok(&[
        "network",
        "create",
        "--subnet",
        "10.249.43.0/24",
        &format!("fwf{id}"),
    ]);
    s.networks.push(format!("fwf{id}"));
    let jumps = s
        .iptables()
        .lines()
        .filter(|l| *l == format!("-A DOCKER-USER -j {prefix}-FORWARD"))
        .count();
    assert_eq!(jumps, 1, "{}", s.iptables());
}

/// A drop that rcompose cannot pass (another nftables table's forward policy, as firewalld's
/// nftables backend or a hand-written nftables.conf set) makes `up` warn once, naming doctor,
/// and doctor report it with a fix.
#[test]
fn up_warns_about_a_foreign_nftables_forward_drop() {
    let s = Scenario::new(
        Host::Private {
            bridge_nf_call_iptables: false,
        },
        50,
    );
    let mut nft = s.in_host("nft");
    let rules = "add table inet rcfwforeign\nadd chain inet rcfwforeign blockfwd { type filter hook forward priority 0; policy drop; }\n";
    std::fs::write(s.dir.path().join("foreign.nft"), rules).unwrap();
    let added = run(nft.arg("-f").arg(s.dir.path().join("foreign.nft")));
    assert!(added.status.success(), "{}", text(&added));
    let project = s.dir.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        format!("services:\n  one:\n    image: {IMAGE}\n    command: [\"sleep\", \"60\"]\n"),
    )
    .unwrap();
    let compose = project.join("compose.yaml");
    let file = compose.to_str().unwrap();
    let name = format!("fwup{}", std::process::id() % 100_000);
    let up = s.cli(&["-f", file, "-p", &name, "up", "-d"]);
    let down = s.cli(&["-f", file, "-p", &name, "down", "-t", "0"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(down.status.success(), "{}", text(&down));
    let stderr = String::from_utf8_lossy(&up.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rcfwforeign"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with("warning: ") && warnings[0].contains("rcompose doctor"),
        "{stderr}"
    );
    let doctor = s.cli(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(1), "{}", text(&doctor));
    let report = text(&doctor);
    assert!(
        report.contains("inet rcfwforeign blockfwd") && report.contains("fix:"),
        "{report}"
    );
}

/// IPv6 (issue 9): on a dual-stack network two containers reach each other by name over IPv6
/// (AAAA from the embedded DNS), a port published on [::1] answers through the userland proxy,
/// one published on all addresses answers over IPv6 from another host (DNAT), a container
/// reaches an IPv6 "outside" through masquerade, all next to an ip6tables FORWARD DROP; and
/// teardown leaves ip6tables as it was and no proxy behind.
#[test]
fn dual_stack_network_by_name_published_on_ipv6_loopback_and_outside() {
    let mut s = Scenario::new(
        Host::Private {
            bridge_nf_call_iptables: true,
        },
        60,
    );
    let ns = s.ns.clone().unwrap();
    let (h, out) = (s.host_veth.clone(), s.outside.clone());
    let peer = text(&run(
        Command::new("ip").args(["-n", &out, "-o", "link", "show", "type", "veth"])
    ));
    let peer = peer
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    sh_ok(&format!(
        "ip -n {ns} addr add fd00:249:60::1/64 dev {h} nodad
         ip -n {out} addr add fd00:249:60::2/64 dev {peer} nodad
         ip -n {ns} -6 route add default via fd00:249:60::2
         ip netns exec {ns} ip6tables -N DOCKER-USER
         ip netns exec {ns} ip6tables -A DOCKER-USER -j RETURN
         ip netns exec {ns} ip6tables -A FORWARD -j DOCKER-USER
         ip netns exec {ns} ip6tables -P FORWARD DROP"
    ));
    let www = s.dir.path().join("outside-www");
    let mut server6 = Command::new("ip")
        .args([
            "netns",
            "exec",
            &out,
            busybox::HOST_BUSYBOX,
            "httpd",
            "-f",
            "-p",
            "[fd00:249:60::2]:8098",
            "-h",
        ])
        .arg(&www)
        .spawn()
        .unwrap();
    let ip6tables = |s: &Scenario| {
        let mut c = s.in_host("ip6tables");
        text(&run(c.args(["-w", "-S"])))
    };
    let before6 = ip6tables(&s);
    let id = std::process::id() % 100_000;
    let net = format!("fw6n{id}");
    s.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.249.61.0/24",
        "--subnet",
        "fd00:249:61::/64",
        &net,
    ]);
    s.networks.push(net.clone());
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["network", "inspect", &net])).unwrap();
    assert_eq!(inspect[0]["EnableIPv6"], true);
    assert_eq!(inspect[0]["IPAM"]["Config"][1]["Gateway"], "fd00:249:61::1");
    let web = format!("fw6w{id}");
    s.serve(
        &web,
        &["--network", &net, "-p", "[::1]:8086:80", "-p", "8087:80"],
        "hello-v6",
    );
    let c: serde_json::Value =
        serde_json::from_str(&s.ok(&["container", "inspect", &web])).unwrap();
    let web_ip6 = c[0]["NetworkSettings"]["Networks"][&net]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(web_ip6.starts_with("fd00:249:61::"), "{c}");

    // By name over IPv6: the AAAA answer, then traffic to it.
    let script = format!(
        "for i in $(seq 50); do nslookup -type=AAAA {web} > /tmp/a && grep -q {web_ip6} /tmp/a && break; sleep 0.2; done
         ping -6 -c1 -W5 {web} >/dev/null || exit 3
         timeout 5 wget -qO- http://[{web_ip6}]/"
    );
    let out_v6 = s.cli(&[
        "container",
        "run",
        "--rm",
        "--network",
        &net,
        IMAGE,
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        out_v6.status.success(),
        "by name over IPv6: {}",
        text(&out_v6)
    );
    assert_eq!(String::from_utf8_lossy(&out_v6.stdout), "hello-v6\n");

    // [::1] on the host goes through the proxy; all addresses reach it over IPv6 by DNAT,
    // from the host itself and from the outside namespace.
    let fetch_host = |url: &str| {
        let mut c = s.in_host("timeout");
        c.args(["5", busybox::HOST_BUSYBOX, "wget", "-qO-", url]);
        (0..50).find_map(|_| {
            let o = run(&mut c);
            if o.status.success() {
                return Some(String::from_utf8_lossy(&o.stdout).into_owned());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            None
        })
    };
    assert_eq!(
        fetch_host("http://[::1]:8086/").as_deref(),
        Some("hello-v6\n"),
        "[::1] published port"
    );
    assert_eq!(
        s.fetch_from_outside("http://[fd00:249:60::1]:8087/")
            .as_deref(),
        Some("hello-v6\n"),
        "published port over IPv6 from outside"
    );
    assert_eq!(
        s.fetch_from(&net, "http://[fd00:249:60::2]:8098/", true)
            .as_deref(),
        Some("from-outside\n"),
        "container to an IPv6 outside (masquerade)"
    );
    let port = s.ok(&["container", "port", &web]);
    assert!(port.contains("80/tcp -> [::1]:8086"), "{port}");

    s.teardown();
    let _ = server6.kill();
    let _ = server6.wait();
    assert_eq!(before6, ip6tables(&s), "ip6tables differs after teardown");
    let proxies = s.dir.path().join("run/proxies");
    let left: Vec<_> = std::fs::read_dir(&proxies)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "proxy files left: {left:?}");
    let procs = run(Command::new("pgrep").args(["-f", &proxies.display().to_string()]));
    assert!(!procs.status.success(), "a port proxy is still running");
}
