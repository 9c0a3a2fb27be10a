//! End-to-end tests of the networking flags of `container run/create` and the container-side
//! network commands (`port`, `network connect/disconnect`), on the busybox test image. Each
//! test has its own state roots, names and 10.242.x.0/24 subnets; a Drop guard removes its
//! containers and networks even when it fails. All traffic stays on loopback and inside the
//! containers' namespaces; the embedded DNS never forwards (RCOMPOSE_DNS_UPSTREAM=none).

mod common;

use common::container_net::{Env, IMAGE, fetch, fetch_once, httpd};
use common::{BIN, free_port, stdout, unique};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rcompose_net::Networks;

fn ip_links() -> String {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_link(links: &str, name: &str) -> bool {
    links.lines().any(|l| {
        l.split(':')
            .nth(1)
            .map(|n| n.trim().split('@').next() == Some(name))
            .unwrap_or(false)
    })
}

fn http_get_host(port: u16) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
            let mut body = String::new();
            if s.read_to_string(&mut body).is_ok() && body.contains("hello") {
                return Some(body);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn names_and_aliases_resolve_per_network_and_connect_is_live() {
    let mut env = Env::new();
    let a = env.network("10.242.11.0/24");
    let b = env.network("10.242.12.0/24");
    let web = env.daemon(
        &[
            "--network",
            &a,
            "--network-alias",
            "www",
            "--ip",
            "10.242.11.50",
        ],
        &httpd("80"),
    );
    let by_name = env.client(&["--network", &a], &fetch(&format!("http://{web}/")));
    assert_eq!(stdout(&by_name).trim(), "hello", "{by_name:?}");
    let by_alias = env.client(&["--network", &a], &fetch("http://www/"));
    assert_eq!(stdout(&by_alias).trim(), "hello", "{by_alias:?}");

    // Another network neither resolves the name nor reaches the address.
    let other = env.client(&["--network", &b], &fetch_once(&format!("http://{web}/")));
    assert!(
        !other.status.success(),
        "{web} resolved from {b}: {other:?}"
    );
    let ip = env
        .nets()
        .get(&a)
        .unwrap()
        .endpoints
        .values()
        .next()
        .unwrap()
        .ip;
    let direct = env.client(&["--network", &b], &fetch_once(&format!("http://{ip}/")));
    assert!(
        !direct.status.success(),
        "{ip} reached from {b}: {direct:?}"
    );

    // Connect the running server to b with an alias: reachable there now, by name and alias.
    env.ok(&["network", "connect", "--alias", "zz", &b, &web]);
    let after = env.client(&["--network", &b], &fetch("http://zz/"));
    assert_eq!(stdout(&after).trim(), "hello", "{after:?}");
    let nets = env.ok(&[
        "container",
        "inspect",
        &web,
        "--format",
        "{{json .NetworkSettings.Networks}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(&nets).unwrap();
    assert_eq!(v[&a]["Aliases"], serde_json::json!(["www"]), "{v}");
    assert_eq!(v[&a]["IPAddress"], "10.242.11.50", "{v}");
    assert_eq!(v[&b]["Aliases"], serde_json::json!(["zz"]), "{v}");
    assert!(
        v[&b]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.242.12."),
        "{v}"
    );
    assert_eq!(v[&b]["Gateway"], "10.242.12.1", "{v}");

    env.ok(&["network", "disconnect", &b, &web]);
    let gone = env.client(&["--network", &b], &fetch_once("http://zz/"));
    assert!(
        !gone.status.success(),
        "zz still resolves after disconnect: {gone:?}"
    );

    // A renamed container answers to its new name.
    let renamed = unique("cc");
    env.containers.push(renamed.clone());
    env.ok(&["container", "rename", &web, &renamed]);
    let out = env.client(&["--network", &a], &fetch(&format!("http://{renamed}/")));
    assert_eq!(stdout(&out).trim(), "hello", "{out:?}");

    // Nothing left behind once the containers and networks are gone.
    let ours = env.host_links();
    assert!(ours.len() >= 3, "expected bridges and a veth: {ours:?}");
    env.ok(&["container", "rm", "-f", &renamed]);
    env.ok(&["network", "rm", &a, &b]);
    let links = ip_links();
    for l in &ours {
        assert!(!has_link(&links, l), "{l} left behind:\n{links}");
    }
    let table = rcompose_net::api::table_name(&env.root());
    let nft = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(
        !nft.status.success(),
        "nft table {table} left behind: {}",
        stdout(&nft)
    );
}

#[test]
fn published_port_serves_the_host_and_a_conflict_creates_nothing() {
    let mut env = Env::new();
    let net = env.network("10.242.13.0/24");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let web = env.daemon(&["--network", &net, "-p", &publish], &httpd("80"));
    let body = http_get_host(port);
    assert!(body.is_some(), "nothing served on 127.0.0.1:{port}");

    let ports = env.ok(&["container", "port", &web]);
    assert_eq!(ports.trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    let one = env.ok(&["container", "port", &web, "80/tcp"]);
    assert_eq!(one.trim(), format!("127.0.0.1:{port}"));
    let ps = env.ok(&["container", "ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let by_port = env.ok(&[
        "container",
        "ps",
        "--filter",
        "publish=80/tcp",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(by_port.trim(), web);
    let by_net = env.ok(&[
        "container",
        "ps",
        "--filter",
        &format!("network={net}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(by_net.trim(), web);
    let other = env.ok(&[
        "container",
        "ps",
        "--filter",
        "publish=81",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(other.trim(), "");
    let inspect = env.ok(&[
        "container",
        "inspect",
        &web,
        "--format",
        "{{json .NetworkSettings.Ports}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["80/tcp"][0]["HostPort"], port.to_string(), "{v}");
    assert_eq!(v["80/tcp"][0]["HostIp"], "127.0.0.1", "{v}");

    // Same host port again: refused before anything is created.
    let second = unique("cc");
    env.containers.push(second.clone());
    let out = env.cli(&[
        "container",
        "run",
        "-d",
        "--name",
        &second,
        "--network",
        &net,
        "-p",
        &publish,
        IMAGE,
        "sleep",
        "60",
    ]);
    assert!(!out.status.success(), "second publisher started: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&port.to_string()) && err.contains(&web),
        "{err}"
    );
    let all = env.ok(&["container", "ps", "-a"]);
    assert!(!all.contains(&second), "{second} was created: {all}");

    // Stopping the publisher frees the port.
    env.ok(&["container", "stop", "-t", "1", &web]);
    let none = env.ok(&["container", "port", &web]);
    assert_eq!(none.trim(), "");
    let nft = Command::new("nft")
        .args([
            "list",
            "table",
            "inet",
            &rcompose_net::api::table_name(&env.root()),
        ])
        .output()
        .unwrap();
    assert!(
        !stdout(&nft).contains(&port.to_string()),
        "{}",
        stdout(&nft)
    );

    // -P publishes exposed ports on random host ports.
    let all = env.daemon(&["--network", &net, "-P", "--expose", "80"], &httpd("80"));
    let mapping = env.ok(&["container", "port", &all, "80"]);
    let random: u16 = mapping
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {mapping:?}"));
    assert!(mapping.starts_with("0.0.0.0:"), "{mapping}");
    assert!(
        http_get_host(random).is_some(),
        "nothing served on {random}"
    );
}

#[test]
fn container_mode_shares_localhost_and_needs_a_running_container() {
    let mut env = Env::new();
    let net = env.network("10.242.14.0/24");
    let web = env.daemon(&["--network", &net], &httpd("127.0.0.1:80"));
    let mode = format!("container:{web}");
    let out = env.client(&["--network", &mode], &fetch("http://127.0.0.1/"));
    assert_eq!(stdout(&out).trim(), "hello", "{out:?}");
    // The joiner resolves like the container it joins (its resolv.conf names the network's DNS).
    let out = env.client(&["--network", &mode], "cat /etc/resolv.conf");
    assert!(stdout(&out).contains("nameserver 10.242.14.1"), "{out:?}");

    let stopped = unique("cc");
    env.containers.push(stopped.clone());
    env.ok(&["container", "create", "--name", &stopped, IMAGE, "true"]);
    let mode = format!("container:{stopped}");
    let out = env.client(&["--network", &mode], "true");
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("non running") && err.contains(&stopped),
        "{err}"
    );
}

#[test]
fn link_on_the_default_bridge_and_no_names_there() {
    let mut env = Env::new();
    let web = env.daemon(&[], &httpd("80"));
    let link = format!("{web}:db");
    let out = env.client(&["--link", &link], &fetch("http://db/"));
    assert_eq!(stdout(&out).trim(), "hello", "{out:?}");
    // The default bridge has no DNS: without --link the name does not resolve.
    let out = env.client(&[], &fetch_once(&format!("http://{web}/")));
    assert!(!out.status.success(), "{out:?}");
    let hosts = env.client(
        &[
            "--link",
            &link,
            "--add-host",
            "extra:10.9.9.9",
            "--dns",
            "10.8.8.8",
            "--dns-option",
            "ndots:2",
        ],
        "cat /etc/hosts /etc/resolv.conf",
    );
    let text = stdout(&hosts);
    assert!(
        text.contains("db") && text.contains("10.9.9.9\textra"),
        "{text}"
    );
    assert!(text.contains("nameserver 10.8.8.8"), "{text}");
    assert!(text.contains("options ndots:2"), "{text}");

    // Docker's legacy link variables: the exposed ports and the linked container's env.
    let db = env.daemon(&["--expose", "5432", "-e", "SECRET=s3"], "exec sleep 300");
    let ip = env
        .ok(&[
            "container",
            "inspect",
            "-f",
            "{{.NetworkSettings.IPAddress}}",
            &db,
        ])
        .trim()
        .to_string();
    let exposed = env.ok(&[
        "container",
        "inspect",
        "-f",
        "{{json .Config.ExposedPorts}}",
        &db,
    ]);
    assert_eq!(exposed.trim(), r#"{"5432/tcp":{}}"#);
    let client = unique("cc");
    let vars = env.cli(&[
        "container",
        "run",
        "--rm",
        "--name",
        &client,
        "--link",
        &format!("{db}:pg-main"),
        IMAGE,
        "env",
    ]);
    let vars = stdout(&vars);
    for want in [
        format!("PG_MAIN_NAME=/{client}/pg-main"),
        format!("PG_MAIN_PORT=tcp://{ip}:5432"),
        format!("PG_MAIN_PORT_5432_TCP_ADDR={ip}"),
        "PG_MAIN_PORT_5432_TCP_PROTO=tcp".to_string(),
        "PG_MAIN_ENV_SECRET=s3".to_string(),
    ] {
        assert!(vars.contains(&want), "{want} missing from:\n{vars}");
    }
    // A link to a stopped container is refused, and nothing is created.
    env.ok(&["container", "stop", "-t", "0", &db]);
    let out = env.cli(&["container", "create", "--link", &format!("{db}:x"), IMAGE]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot link to a non running container"),
        "{out:?}"
    );
}

#[test]
fn bad_network_flags_are_refused_naming_the_problem() {
    let env = Env::new();
    let out = env.cli(&["container", "create", "--network", "nosuchnet", IMAGE]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuchnet"));
    let out = env.cli(&[
        "container",
        "create",
        "--network",
        "host",
        "--ip",
        "10.0.0.2",
        IMAGE,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ip"));
    let out = env.cli(&["container", "create", "-p", "notaport", IMAGE]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("notaport"));
    let all = env.ok(&["container", "ps", "-a", "-q"]);
    assert_eq!(all.trim(), "", "a refused create left a container");
}

#[test]
fn a_container_that_exits_by_itself_gives_back_its_port_address_and_name() {
    let mut env = Env::new();
    let net = env.network("10.242.16.0/24");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let short = unique("cc");
    env.containers.push(short.clone());
    env.ok(&[
        "container",
        "run",
        "-d",
        "--rm",
        "--name",
        &short,
        "--network",
        &net,
        "-p",
        &publish,
        IMAGE,
        "sleep",
        "1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = env.nets().get(&net).unwrap();
        let table = Command::new("nft")
            .args([
                "list",
                "table",
                "inet",
                &rcompose_net::api::table_name(&env.root()),
            ])
            .output()
            .unwrap();
        if n.endpoints.is_empty() && !stdout(&table).contains(&port.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still attached or published after exit: {:?}",
            n.endpoints.keys()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The port and the name are free for the next container.
    let web = env.daemon(&["--network", &net, "-p", &publish], &httpd("80"));
    assert!(http_get_host(port).is_some(), "nothing served on {port}");
    let out = env.client(
        &["--network", &net],
        &fetch_once(&format!("http://{short}/")),
    );
    assert!(!out.status.success(), "{short} still resolves: {out:?}");
    env.ok(&["container", "rm", "-f", &web]);
}

#[test]
fn a_thousand_lookups_under_container_churn_all_succeed() {
    let mut env = Env::new();
    let net = env.network("10.242.21.0/24");
    env.daemon(
        &["--network", &net, "--network-alias", "stable"],
        "sleep 1000",
    );
    // Churn: containers joining and leaving the same network (and the DNS table) while the
    // asker looks a stable name up 1000 times.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, root, run_root, net) = (stop.clone(), env.root(), env.run_root(), net.clone());
        std::thread::spawn(move || {
            let cli = |args: &[&str]| {
                Command::new(BIN)
                    .arg("--root")
                    .arg(&root)
                    .arg("--run-root")
                    .arg(&run_root)
                    .args(args)
                    .env("RCOMPOSE_DNS_UPSTREAM", "none")
                    .stdin(Stdio::null())
                    .output()
                    .expect("run rcompose")
            };
            let nets = Networks::open(&root, &run_root).expect("open networks");
            let mut veths: Vec<String> = vec![];
            while !stop.load(Ordering::SeqCst) {
                let name = unique("churn");
                let run = cli(&[
                    "container",
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "--network",
                    &net,
                    "--network-alias",
                    "stable",
                    IMAGE,
                    "sleep",
                    "1000",
                ]);
                veths.extend(nets.get(&net).ok().into_iter().flat_map(|n| {
                    n.endpoints
                        .values()
                        .filter(|e| e.container_name == name)
                        .map(|e| e.host_ifname.clone())
                        .collect::<Vec<_>>()
                }));
                let rm = cli(&["container", "rm", "-f", &name]);
                assert!(
                    run.status.success() && rm.status.success(),
                    "{run:?} {rm:?}"
                );
            }
            veths
        })
    };
    let script = "ok=0; bad=0; for i in $(seq 1000); do \
        if nslookup -type=a stable >/dev/null 2>&1; then ok=$((ok+1)); else bad=$((bad+1)); fi; \
        done; nslookup -type=a no-such-name >/dev/null 2>&1 && echo control resolved; \
        echo $ok $bad";
    let out = env.client(&["--network", &net], script);
    stop.store(true, Ordering::SeqCst);
    let churned = churn.join().expect("churn thread");
    assert_eq!(stdout(&out).trim(), "1000 0", "ok/failed lookups: {out:?}");
    assert!(!churned.is_empty(), "no churn happened during the lookups");

    // Back to the starting state: no veth (also of the churned containers) or bridge of
    // ours, no table.
    let mut ours = env.host_links();
    ours.extend(churned);
    let names: Vec<String> = env.containers.clone();
    for c in &names {
        env.ok(&["container", "rm", "-f", c]);
    }
    env.ok(&["network", "rm", &net]);
    let links = ip_links();
    for l in &ours {
        assert!(!has_link(&links, l), "{l} left behind");
    }
    let table = rcompose_net::api::table_name(&env.root());
    let nft = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(!nft.status.success(), "nft table {table} left behind");
}
