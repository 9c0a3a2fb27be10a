//! End-to-end networking as root at the library level: namespaces made by the tests stand in
//! for containers, attached through the `rcompose_net` API to networks made with the CLI (the
//! same checks with real containers are in tests/container_network.rs). All traffic stays inside these namespaces and on loopback; the DNS server
//! never forwards (RCOMPOSE_DNS_UPSTREAM=none).

mod common;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::time::Duration;

use common::network::*;
use rcompose_net::{NetError, ports};

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
