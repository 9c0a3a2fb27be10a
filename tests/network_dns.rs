//! End-to-end tests of the embedded DNS and of endpoints: answers under churn, TCP queries,
//! names on several networks, the server's lifetime and linger, re-attaching after a crash.
//! Namespaces stand in for containers; every test has its own state root and cleans up on
//! failure.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::network::*;
use rcompose_net::NetError;

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
fn dns_server_lingers_for_the_next_container_then_exits() {
    setup();
    let root = Root::new();
    let net = unique("rclinger");
    create(&root, &["--subnet", "10.231.31.0/24", &net]);
    let nets = root.nets();
    let alive = |pid: i32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    let first = Ns::new();
    first.attach(&nets, &net, "first", &[]);
    let pid = root
        .dns_pid()
        .expect("a DNS server for the first container");
    nets.detach(&net, &first.id_for("first")).unwrap();
    // Nothing to serve now, but a container that comes right after is served by the same
    // server instead of waiting for a new one to start.
    let second = Ns::new();
    let me = second.attach(&nets, &net, "second", &[]);
    assert_eq!(root.dns_pid(), Some(pid), "the server was replaced");
    let answer = in_netns(&second.path(), move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        ask(&sock, me.gateway, 1, "second")
    });
    assert!(matches!(answer, Ok((0, 1))), "{answer:?}");
    // Once nothing needs it for its linger, it exits by itself.
    nets.detach(&net, &second.id_for("second")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "DNS server {pid} still runs with nothing to serve"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(root.dns_pid(), None);
}
