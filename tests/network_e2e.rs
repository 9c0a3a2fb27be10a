//! End-to-end networking as root at the library level: namespaces made by the tests stand in
//! for containers, attached through the `rcompose_net` API to networks made with the CLI (the
//! same checks with real containers are in tests/container_network.rs). All traffic stays inside these namespaces and on loopback; the DNS server
//! never forwards (RCOMPOSE_DNS_UPSTREAM=none).

mod network_util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::Once;
use std::time::Duration;

use network_util::*;
use rcompose_net::{NetError, ports};

fn setup() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any thread of ours reads the environment.
    ONCE.call_once(|| unsafe { std::env::set_var("RCOMPOSE_DNS_UPSTREAM", "none") });
}

fn create(root: &Root, args: &[&str]) {
    let mut full = vec!["network", "create"];
    full.extend_from_slice(args);
    let out = root.cli(&full);
    assert!(
        out.status.success(),
        "network create {args:?}: {}",
        text(&out)
    );
}

#[test]
fn same_network_reaches_by_name_and_alias_other_network_is_isolated() {
    setup();
    let root = Root::new();
    let (net_a, net_b) = (unique("rca"), unique("rcb"));
    create(&root, &["--subnet", "10.231.11.0/24", &net_a]);
    create(&root, &["--subnet", "10.231.12.0/24", &net_b]);
    let nets = root.nets();
    let mut alpha = Ns::new();
    let beta = Ns::new();
    let gamma = Ns::new();
    let a1 = alpha.attach(&nets, &net_a, "alpha", &["web"]);
    let b1 = beta.attach(&nets, &net_a, "beta", &[]);
    let g1 = gamma.attach(&nets, &net_b, "gamma", &[]);
    assert_eq!(a1.ip, Ipv4Addr::new(10, 231, 11, 2));
    assert_eq!(
        (a1.ifname.as_str(), a1.gateway),
        ("eth0", Ipv4Addr::new(10, 231, 11, 1))
    );
    for ns in [&beta, &gamma] {
        let nets_of = if ns.name == gamma.name {
            vec![net_b.clone()]
        } else {
            vec![net_a.clone()]
        };
        ns.set_resolv_conf(&nets.resolv_conf_for(&nets_of, &[], &[], &[]).unwrap());
    }
    let dir = root.dir.path().join("www");
    alpha.httpd(8080, "hello from alpha", &dir);

    // By address, by name, by alias, through the resolver path (/etc/resolv.conf).
    let ping = beta.busybox(&["ping", "-c", "1", "-W", "2", &a1.ip.to_string()]);
    assert!(ping.status.success(), "ping: {}", text(&ping));
    for name in ["alpha", "web", "ALPHA"] {
        let out = beta.busybox(&["nslookup", name, "10.231.11.1"]);
        assert!(
            text(&out).contains("10.231.11.2"),
            "nslookup {name}: {}",
            text(&out)
        );
        let page = beta.busybox(&["wget", "-q", "-O", "-", &format!("http://{name}:8080/")]);
        assert_eq!(
            String::from_utf8_lossy(&page.stdout),
            "hello from alpha",
            "{}",
            text(&page)
        );
    }
    let ptr = beta.busybox(&["nslookup", "10.231.11.2", "10.231.11.1"]);
    assert!(
        text(&ptr).contains("alpha"),
        "reverse lookup: {}",
        text(&ptr)
    );
    let unknown = beta.busybox(&["nslookup", "no-such-name", "10.231.11.1"]);
    assert!(
        !unknown.status.success() && text(&unknown).contains("NXDOMAIN"),
        "{}",
        text(&unknown)
    );

    // From the other network: names do not resolve and TCP fails, although routing would
    // carry it (forwarding is on, as for any non-internal network).
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );
    let hidden = gamma.busybox(&["nslookup", "alpha", "10.231.12.1"]);
    assert!(
        !text(&hidden).contains("10.231.11.2"),
        "alpha visible from {net_b}: {}",
        text(&hidden)
    );
    let tcp = gamma.busybox(&["nc", "-w", "2", &a1.ip.to_string(), "8080"]);
    assert!(
        !tcp.status.success(),
        "TCP across networks succeeded: {}",
        text(&tcp)
    );
    let same = gamma.busybox(&["ping", "-c", "1", "-W", "2", &g1.gateway.to_string()]);
    assert!(
        same.status.success(),
        "gamma reaches its own gateway: {}",
        text(&same)
    );

    // rm refuses a network in use, naming the container.
    let busy = root.cli(&["network", "rm", &net_a]);
    assert!(
        !busy.status.success() && text(&busy).contains("active endpoints (alpha, beta)"),
        "{}",
        text(&busy)
    );

    // Teardown through the API, then nothing is left: links, table, DNS server.
    let links = [b1.ifname.clone()];
    drop(links);
    let hosts: Vec<String> = nets
        .list()
        .unwrap()
        .iter()
        .flat_map(|n| n.endpoints.values().map(|e| e.host_ifname.clone()))
        .collect();
    let bridges: Vec<String> = nets
        .list()
        .unwrap()
        .iter()
        .map(|n| n.bridge.clone())
        .collect();
    for (ns, name, net) in [
        (&alpha, "alpha", &net_a),
        (&beta, "beta", &net_a),
        (&gamma, "gamma", &net_b),
    ] {
        nets.detach(net, &ns.id_for(name)).unwrap();
    }
    for n in [&net_a, &net_b] {
        let out = root.cli(&["network", "rm", n]);
        assert!(out.status.success(), "{}", text(&out));
    }
    for l in hosts.iter().chain(bridges.iter()) {
        assert!(!link_exists(l), "{l} left behind");
    }
    assert!(
        !table_exists(&root.table()),
        "nft table {} left behind",
        root.table()
    );
    wait_dns_gone(&root);
}

fn wait_dns_gone(root: &Root) {
    for _ in 0..100 {
        let alive = root
            .dns_pid()
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the DNS server did not stop after the last network went");
}

#[test]
fn internal_network_has_no_route_out_and_refuses_outside_names() {
    setup();
    let root = Root::new();
    let (inner, outer) = (unique("rci"), unique("rco"));
    create(&root, &["--internal", "--subnet", "10.231.13.0/24", &inner]);
    create(&root, &["--subnet", "10.231.14.0/24", &outer]);
    let nets = root.nets();
    let mut target = Ns::new();
    let prisoner = Ns::new();
    let t = target.attach(&nets, &outer, "target", &[]);
    let p = prisoner.attach(&nets, &inner, "prisoner", &[]);
    target.httpd(8081, "outer", &root.dir.path().join("www"));

    let routes = prisoner.exec(&["ip", "route"]);
    assert!(
        !text(&routes).contains("default"),
        "internal network got a default route: {}",
        text(&routes)
    );
    let direct = prisoner.busybox(&["nc", "-w", "2", &t.ip.to_string(), "8081"]);
    assert!(
        !direct.status.success(),
        "reached outside without a route: {}",
        text(&direct)
    );
    // Even with a route added by hand, the firewall keeps the network in.
    let add = prisoner.exec(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        &p.gateway.to_string(),
    ]);
    assert!(add.status.success(), "{}", text(&add));
    let forced = prisoner.busybox(&["nc", "-w", "2", &t.ip.to_string(), "8081"]);
    assert!(
        !forced.status.success(),
        "internal network escaped through the firewall: {}",
        text(&forced)
    );
    // It still reaches its gateway, where DNS answers local names and refuses the rest.
    let own = prisoner.busybox(&["nslookup", "prisoner", &p.gateway.to_string()]);
    assert!(text(&own).contains(&p.ip.to_string()), "{}", text(&own));
    let outside = prisoner.busybox(&["nslookup", "example.org", &p.gateway.to_string()]);
    assert!(text(&outside).contains("REFUSED"), "{}", text(&outside));
}

#[test]
fn published_port_serves_loopback_and_conflicts_fail_before_anything_changes() {
    setup();
    let root = Root::new();
    let net = unique("rcp");
    create(&root, &["--subnet", "10.231.15.0/24", &net]);
    let nets = root.nets();
    let mut web = Ns::new();
    let other = Ns::new();
    web.attach(&nets, &net, "web", &[]);
    other.attach(&nets, &net, "other", &[]);
    web.httpd(80, "published!", &root.dir.path().join("www"));

    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = ports::parse(&format!("127.0.0.1:{free}:80")).unwrap();
    let bound = nets.publish_ports(&net, &web.id_for("web"), &spec).unwrap();
    assert_eq!(bound[0].to_string(), format!("80/tcp -> 127.0.0.1:{free}"));
    assert_eq!(nets.ports_of(&web.id_for("web")).unwrap(), bound);
    assert_eq!(http_get(free).as_deref(), Ok("published!"));

    // A second container asking for the same port: refused by the pre-check, state unchanged.
    let state = std::fs::read(root.root().join(format!("networks/{net}.json"))).unwrap();
    match nets.check_ports(&spec) {
        Err(NetError::Port(e)) => assert!(
            e.to_string().contains("already published by container web"),
            "{e}"
        ),
        other => panic!("expected a port conflict, got {other:?}"),
    }
    let again = nets.publish_ports(&net, &other.id_for("other"), &spec);
    assert!(again.is_err(), "publishing a taken port succeeded");
    assert_eq!(
        std::fs::read(root.root().join(format!("networks/{net}.json"))).unwrap(),
        state
    );
    // A port held by a host process is reported with its holder.
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let err = nets
        .check_ports(&ports::parse(&format!("127.0.0.1:{held}:80")).unwrap())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("port {held}/tcp on 127.0.0.1 is already in use")),
        "{err}"
    );

    nets.unpublish(&web.id_for("web")).unwrap();
    assert!(
        http_get(free).is_err(),
        "port still forwarded after unpublish"
    );
}

fn http_get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(3),
    )
    .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    resp.split("\r\n\r\n")
        .nth(1)
        .map(str::to_string)
        .ok_or(resp)
}

#[test]
fn a_thousand_queries_under_churn_all_succeed() {
    setup();
    let root = Root::new();
    let net = unique("rcd");
    create(&root, &["--subnet", "10.231.16.0/24", &net]);
    let nets = root.nets();
    let stable = Ns::new();
    let asker = Ns::new();
    stable.attach(&nets, &net, "stable", &["svc"]);
    let me = asker.attach(&nets, &net, "asker", &[]);
    let gw = me.gateway;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, root_dir, run_dir, net) =
            (stop.clone(), root.root(), root.run_root(), net.clone());
        std::thread::spawn(move || -> Result<usize, String> {
            let nets = rcompose_net::Networks::open(&root_dir, &run_dir)
                .map_err(|e| e.to_string())?
                .with_helper_exe(BIN);
            let mut cycles = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let ns = Ns::new();
                ns.attach(&nets, &net, "churn", &["svc"]);
                nets.detach(&net, &ns.id_for("churn"))
                    .map_err(|e| e.to_string())?;
                cycles += 1;
            }
            Ok(cycles)
        })
    };
    let failures = in_netns(&asker.path(), move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut failures = Vec::new();
        for i in 0..1000u16 {
            let name = if i % 2 == 0 { "stable" } else { "svc" };
            match ask(&sock, gw, i, name) {
                Ok((0, n)) if n >= 1 => {}
                other => failures.push(format!("query {i} ({name}): {other:?}")),
            }
        }
        match ask(&sock, gw, 5000, "nosuch") {
            Ok((3, 0)) => {}
            other => failures.push(format!("unknown name: {other:?} (want NXDOMAIN)")),
        }
        failures
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let cycles = churn.join().unwrap().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed queries, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(cycles >= 1, "no churn happened during the queries");
}

#[test]
fn cli_create_ls_inspect_rm_prune_and_errors() {
    setup();
    let root = Root::new();
    let (n1, n2) = (unique("rcc"), unique("rcc"));
    create(
        &root,
        &[
            "--subnet",
            "10.231.17.0/24",
            "--ip-range",
            "10.231.17.128/25",
            "--label",
            "team=a",
            &n1,
        ],
    );
    create(
        &root,
        &[
            "--subnet",
            "10.231.18.0/24",
            "--gateway",
            "10.231.18.254",
            "--internal",
            &n2,
        ],
    );

    let ls = root.cli(&["network", "ls"]);
    let out = text(&ls);
    assert!(out.starts_with("NETWORK ID"), "{out}");
    for name in ["bridge", "host", "none", &n1, &n2] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name} missing: {out}"
        );
    }
    let filtered = text(&root.cli(&[
        "network",
        "ls",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Name}}",
    ]));
    assert_eq!(filtered.trim(), n1);
    let json_line = text(&root.cli(&[
        "network",
        "ls",
        "--filter",
        &format!("name={n2}"),
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(json_line.trim()).unwrap();
    assert_eq!(
        (v["Name"].as_str(), v["Internal"].as_str()),
        (Some(n2.as_str()), Some("true"))
    );

    let inspect = root.cli(&["network", "inspect", &n2]);
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.231.18.254");
    assert_eq!(v[0]["Internal"], true);
    let n1_json: serde_json::Value =
        serde_json::from_slice(&root.cli(&["network", "inspect", &n1]).stdout).unwrap();
    assert_eq!(
        n1_json[0]["IPAM"]["Config"][0]["IPRange"],
        "10.231.17.128/25"
    );
    assert_eq!(n1_json[0]["Labels"]["team"], "a");

    for (args, want) in [
        (
            vec!["--subnet", "10.231.17.64/26", "x1"],
            format!("overlaps with network \"{n1}\""),
        ),
        (
            vec![
                "--subnet",
                "10.231.19.0/24",
                "--gateway",
                "10.231.20.1",
                "x2",
            ],
            "outside subnet".to_string(),
        ),
        (
            vec!["--subnet", "10.231.19.0/24", &n1],
            "already exists".to_string(),
        ),
        (
            vec!["--subnet", "nonsense", "x3"],
            "invalid subnet".to_string(),
        ),
        (
            vec!["-d", "overlay", "x4"],
            "unsupported driver".to_string(),
        ),
    ] {
        let mut full = vec!["network", "create"];
        full.extend(args.iter().copied());
        let out = root.cli(&full);
        assert!(
            !out.status.success() && text(&out).contains(&want),
            "{args:?}: {}",
            text(&out)
        );
    }
    let rm_missing = root.cli(&["network", "rm", "no-such-net"]);
    assert!(
        !rm_missing.status.success() && text(&rm_missing).contains("network no-such-net not found")
    );
    let connect = root.cli(&["network", "connect", &n1, "c1"]);
    assert!(
        !connect.status.success() && text(&connect).contains("No such container: c1"),
        "{}",
        text(&connect)
    );

    let pruned = root.cli(&["network", "prune", "-f", "--filter", "label=team"]);
    assert_eq!(text(&pruned), format!("Deleted Networks:\n{n1}\n"));
    let rm = root.cli(&["network", "rm", &n2]);
    assert_eq!(text(&rm).trim(), n2);
    assert!(!table_exists(&root.table()));
}

#[test]
fn port_on_all_addresses_is_reachable_via_host_addresses_and_from_other_containers() {
    setup();
    let root = Root::new();
    let (net, far) = (unique("rcq"), unique("rcf"));
    create(&root, &["--subnet", "10.231.21.0/24", &net]);
    create(&root, &["--subnet", "10.231.22.0/24", &far]);
    let nets = root.nets();
    let mut web = Ns::new();
    let neighbour = Ns::new();
    let stranger = Ns::new();
    let w = web.attach(&nets, &net, "web", &[]);
    neighbour.attach(&nets, &net, "neighbour", &[]);
    let s = stranger.attach(&nets, &far, "stranger", &[]);
    web.httpd(80, "all addresses", &root.dir.path().join("www"));
    let bound = nets
        .publish_ports(&net, &web.id_for("web"), &ports::parse("80").unwrap())
        .unwrap();
    let port = bound[0].host_port.to_string();
    assert!(bound[0].host_ip.is_unspecified() && bound[0].host_port != 0);

    assert_eq!(http_get(bound[0].host_port).as_deref(), Ok("all addresses"));
    // The host's address on the bridge is one of "the host's other addresses".
    let via_host_addr = format!("http://{}:{port}/", w.gateway);
    let local = std::process::Command::new("timeout")
        .args(["5", "busybox", "wget", "-q", "-O", "-", &via_host_addr])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&local.stdout),
        "all addresses",
        "{}",
        text(&local)
    );
    // A container on the same network through the host address (hairpin NAT) …
    let hairpin = neighbour.busybox(&["wget", "-q", "-O", "-", &via_host_addr]);
    assert_eq!(
        String::from_utf8_lossy(&hairpin.stdout),
        "all addresses",
        "{}",
        text(&hairpin)
    );
    // … and one on another network through its own gateway, which is a host address too,
    // although it cannot reach the container directly.
    let direct = stranger.busybox(&["nc", "-w", "2", &w.ip.to_string(), "80"]);
    assert!(
        !direct.status.success(),
        "isolation broken: {}",
        text(&direct)
    );
    let published = stranger.busybox(&[
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{}:{port}/", s.gateway),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&published.stdout),
        "all addresses",
        "{}",
        text(&published)
    );
}

#[test]
fn default_bridge_comes_and_goes_with_its_containers_and_has_no_dns() {
    setup();
    let root = Root::new();
    let nets = root.nets();
    let a = Ns::new();
    let b = Ns::new();
    let att = a.attach(&nets, "bridge", "first", &[]);
    b.attach(&nets, "bridge", "second", &[]);
    let bridge = rcompose_net::api::default_bridge_name(&root.root());
    assert!(link_exists(&bridge), "default bridge {bridge} missing");
    assert!(!att.dns, "the default bridge must not offer DNS");
    let ping = b.busybox(&["ping", "-c", "1", "-W", "2", &att.ip.to_string()]);
    assert!(ping.status.success(), "{}", text(&ping));
    let resolv = nets
        .resolv_conf_for(&["bridge".to_string()], &[], &[], &[])
        .unwrap();
    assert!(!resolv.contains(&att.gateway.to_string()), "{resolv}");
    let inspect = nets.inspect("bridge").unwrap();
    assert_eq!(inspect["Containers"].as_object().unwrap().len(), 2);
    nets.detach_all(&a.id_for("first")).unwrap();
    nets.detach_all(&b.id_for("second")).unwrap();
    assert!(!link_exists(&bridge), "default bridge {bridge} left behind");
    assert!(!table_exists(&root.table()));
}

#[test]
fn dns_over_tcp_and_names_on_several_networks() {
    setup();
    let root = Root::new();
    let (front, back) = (unique("rcx"), unique("rcy"));
    create(&root, &["--subnet", "10.231.23.0/24", &front]);
    create(&root, &["--subnet", "10.231.24.0/24", &back]);
    let nets = root.nets();
    let proxy = Ns::new();
    let db = Ns::new();
    let p = proxy.attach(&nets, &front, "proxy", &[]);
    let p2 = proxy.attach(&nets, &back, "proxy", &["gateway-svc"]);
    assert_eq!(p2.ifname, "eth1");
    db.attach(&nets, &back, "db", &[]);
    // proxy asks front's server (its first network) and still sees db on back.
    let out = proxy.busybox(&["nslookup", "db", &p.gateway.to_string()]);
    assert!(text(&out).contains("10.231.24.3"), "{}", text(&out));
    let gw = p.gateway;
    let reply = in_netns(&proxy.path(), move || {
        let mut s = TcpStream::connect_timeout(&(gw, 53).into(), Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let q = dns_query(7, "proxy", 1);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        s.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), 7);
    assert_eq!(
        (reply[3] & 0x0f, u16::from_be_bytes([reply[6], reply[7]])),
        (0, 1)
    );
    // proxy's address on front ends the reply.
    assert_eq!(&reply[reply.len() - 4..], &p.ip.octets());
}

#[test]
fn a_container_that_died_without_detaching_can_attach_again() {
    setup();
    let root = Root::new();
    let net = unique("rcr");
    create(&root, &["--subnet", "10.231.25.0/24", &net]);
    let nets = root.nets();
    let first = Ns::new();
    let att = first.attach(&nets, &net, "phoenix", &[]);
    // Attaching the live container twice is an error.
    let twice = nets.attach(
        &net,
        rcompose_net::AttachRequest {
            container_id: first.id_for("phoenix"),
            container_name: "phoenix".into(),
            netns_path: first.path(),
            ..Default::default()
        },
    );
    assert!(
        matches!(twice, Err(NetError::AlreadyAttached { .. })),
        "{twice:?}"
    );
    // The namespace dies (its veth with it) without a detach; the restarted container, in a
    // new namespace, gets its old address back.
    let id = first.id_for("phoenix");
    drop(first);
    let second = Ns::new();
    let again = nets
        .attach(
            &net,
            rcompose_net::AttachRequest {
                container_id: id.clone(),
                container_name: "phoenix".into(),
                netns_path: second.path(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(again.ip, att.ip);
    let inspect = nets.inspect(&net).unwrap();
    assert_eq!(inspect["Containers"].as_object().unwrap().len(), 1);
    nets.detach(&net, &id).unwrap();
}

#[test]
fn udp_port_is_published_and_taken_addresses_are_refused() {
    setup();
    let root = Root::new();
    let net = unique("rcu");
    create(&root, &["--subnet", "10.231.26.0/24", &net]);
    let nets = root.nets();
    let echo = Ns::new();
    let att = echo.attach(&nets, &net, "echo", &[]);
    // A UDP echo server inside the namespace, on a thread that entered it.
    let ns_file = std::fs::File::open(echo.path()).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        assert_eq!(
            unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        let sock = UdpSocket::bind("0.0.0.0:9999").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], peer);
        }
    });
    ready_rx.recv().unwrap();
    let free = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = ports::parse(&format!("127.0.0.1:{free}:9999/udp")).unwrap();
    nets.publish_ports(&net, &echo.id_for("echo"), &spec)
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .send_to(b"udp through DNAT", ("127.0.0.1", free))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client
        .recv_from(&mut buf)
        .expect("no UDP echo through the published port");
    assert_eq!(&buf[..n], b"udp through DNAT");
    server.join().unwrap();

    // An address already held on the network is refused, naming the holder.
    let other = Ns::new();
    let taken = nets.attach(
        &net,
        rcompose_net::AttachRequest {
            container_id: other.id_for("late"),
            container_name: "late".into(),
            netns_path: other.path(),
            ip: Some(att.ip),
            ..Default::default()
        },
    );
    let err = taken.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "address {} is already in use on network {net} (by echo)",
            att.ip
        )
    );
    let links = other.exec(&["ip", "-o", "link"]);
    assert_eq!(
        text(&links).lines().count(),
        1,
        "a refused attach created links: {}",
        text(&links)
    );
}

#[test]
fn a_subnet_used_by_another_root_is_refused_naming_the_host_route() {
    setup();
    let (first, second) = (Root::new(), Root::new());
    let net = unique("rch");
    create(&first, &["--subnet", "10.231.27.0/24", &net]);
    let bridge = first.nets().get(&net).unwrap().bridge;
    let out = second.cli(&["network", "create", "--subnet", "10.231.27.128/25", "clash"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!(
            "overlaps with the host route 10.231.27.0/24 on device {bridge}"
        )),
        "{}",
        text(&out)
    );
    // Without --subnet the second root picks a pool that is free on the host.
    let auto = second.cli(&["network", "create", "auto"]);
    assert!(auto.status.success(), "{}", text(&auto));
    let subnet = second.nets().get("auto").unwrap().subnet;
    assert!(!subnet.contains(&"10.231.27.1".parse::<Ipv4Addr>().unwrap()));
}

#[test]
fn roots_choosing_default_pools_at_once_never_share_a_subnet() {
    setup();
    let roots: Vec<Root> = (0..4).map(|_| Root::new()).collect();
    // (network address, prefix length) pairs.
    let mask = |p: u8| u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
    let overlap = |a: &(Ipv4Addr, u8), b: &(Ipv4Addr, u8)| {
        let m = mask(a.1.min(b.1));
        u32::from(a.0) & m == u32::from(b.0) & m
    };
    // Custom networks without --subnet, created by every root at the same moment.
    let barrier = std::sync::Barrier::new(roots.len());
    let created: Vec<(Ipv4Addr, u8)> = std::thread::scope(|s| {
        let handles: Vec<_> = roots
            .iter()
            .map(|r| {
                let barrier = &barrier;
                s.spawn(move || {
                    let nets = r.nets();
                    barrier.wait();
                    nets.create(rcompose_net::CreateRequest {
                        name: "auto".into(),
                        ..Default::default()
                    })
                    .map(|n| (n.subnet.network(), n.subnet.prefix_len()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("create without --subnet"))
            .collect()
    });
    // The default bridge of every root, made by a first attach at the same moment.
    let spaces: Vec<Ns> = roots.iter().map(|_| Ns::new()).collect();
    let barrier = std::sync::Barrier::new(roots.len());
    let defaults: Vec<(Ipv4Addr, u8)> = std::thread::scope(|s| {
        let handles: Vec<_> = roots
            .iter()
            .zip(&spaces)
            .map(|(r, ns)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let nets = r.nets();
                    barrier.wait();
                    let att = ns.attach(&nets, "bridge", "first", &[]);
                    let net = Ipv4Addr::from(u32::from(att.ip) & mask(att.prefix));
                    (net, att.prefix)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<(Ipv4Addr, u8)> = created.iter().chain(&defaults).copied().collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(
                !overlap(a, b),
                "two roots share address space: {a:?} and {b:?} (all: {all:?})"
            );
        }
    }
    for (r, ns) in roots.iter().zip(&spaces) {
        r.nets().detach_all(&ns.id_for("first")).unwrap();
    }
}

#[test]
fn dns_server_stops_when_its_state_root_disappears() {
    setup();
    let root = Root::new();
    let net = unique("rcgone");
    create(&root, &["--subnet", "10.231.28.0/24", &net]);
    let nets = root.nets();
    let ns = Ns::new();
    ns.attach(&nets, &net, "lonely", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Some(pid) = root.dns_pid() {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no DNS server started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let alive = |pid: i32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive(pid));
    // As when a test's temporary root is deleted under a running server: nothing could
    // signal it any more, so it must notice by itself.
    let networks = root.root().join("networks");
    let moved = root.root().join("networks.gone");
    std::fs::rename(&networks, &moved).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "DNS server {pid} outlived its state root"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Put the state back so that the usual clean-up finds the bridge and the endpoint.
    std::fs::rename(&moved, &networks).unwrap();
    drop(ns);
}
