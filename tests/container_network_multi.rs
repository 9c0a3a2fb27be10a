//! End-to-end tests of containers on several networks at once, IPv6 per network, and
//! internal networks (split from `container_network.rs`, whose fixture they share:
//! `common::container_net`). Each test has its own state roots, names and 10.242.x.0/24
//! subnets; all traffic stays inside the containers' namespaces.

mod common;

use common::container_net::{Env, IMAGE, fetch, fetch_once, httpd};
use common::{stdout, unique};

#[test]
fn several_networks_and_a_mac_address() {
    let mut env = Env::new();
    let a = env.network("10.242.17.0/24");
    let b = env.network("10.242.18.0/24");
    let mac = "02:42:0a:f2:11:aa";
    let on_b = format!("name={b},alias=bee");
    let web = env.daemon(
        &["--network", &a, "--network", &on_b, "--mac-address", mac],
        &httpd("80"),
    );
    // Reachable by name on both networks, by the per-network alias on b.
    for (net, host) in [(&a, web.as_str()), (&b, web.as_str()), (&b, "bee")] {
        let out = env.client(&["--network", net], &fetch(&format!("http://{host}/")));
        assert_eq!(stdout(&out).trim(), "hello", "{host} from {net}: {out:?}");
    }
    // --mac-address applies to the first network (eth0), as docker.
    let addr = env.ok(&[
        "container",
        "exec",
        &web,
        "cat",
        "/sys/class/net/eth0/address",
        "/sys/class/net/eth1/address",
    ]);
    let lines: Vec<&str> = addr.lines().collect();
    assert_eq!(lines.len(), 2, "two interfaces: {addr}");
    assert_eq!(lines[0], mac);
    assert_ne!(lines[1], mac);
    let nets = env.ok(&[
        "container",
        "inspect",
        &web,
        "--format",
        "{{json .NetworkSettings.Networks}}",
    ]);
    let v: serde_json::Value = serde_json::from_str(&nets).unwrap();
    assert_eq!(v[&a]["MacAddress"], mac, "{v}");
    assert_eq!(v[&b]["Aliases"], serde_json::json!(["bee"]), "{v}");

    // Bad combinations are refused before anything is created.
    let late = unique("cc");
    env.containers.push(late.clone());
    for (flags, want) in [
        (
            vec!["--network", &a, "--network", "host"],
            "conflicting options",
        ),
        (
            vec!["--network", &a, "--network", &a],
            "specified multiple times",
        ),
        (
            vec!["--network", &a, "--mac-address", "01:00:5e:00:00:01"],
            "unicast",
        ),
        (
            vec!["--network", &a, "--mac-address", mac],
            "already in use",
        ),
        (
            vec!["--network", "name=x,link-local-ip=fe80::1"],
            "not supported yet",
        ),
        (
            vec!["--network", "none", "--mac-address", mac],
            "--mac-address",
        ),
    ] {
        let mut args = vec!["container", "create", "--name", &late];
        args.extend(flags.iter().copied());
        args.push(IMAGE);
        let out = env.cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{flags:?}: {err}"
        );
    }
    let all = env.ok(&["container", "ps", "-a", "--format", "{{.Names}}"]);
    assert!(!all.contains(&late), "a refused create left {late}: {all}");
}

/// As Docker: an interface on an IPv4-only network has no IPv6 address (not even a
/// link-local one), one on a dual-stack network has its addresses; host-side ports make none
/// (each port's link-local announcements were flooded to every other port of the bridge).
#[test]
fn ipv6_addresses_only_where_the_network_has_ipv6() {
    let mut env = Env::new();
    let v4 = env.network("10.242.21.0/24");
    let dual = env.network_with(
        &["--ipv6", "--subnet", "fd00:242:21::/64"],
        "10.242.22.0/24",
    );
    let web = env.daemon(&["--network", &v4, "--network", &dual], &httpd("80"));
    let addrs = |dev: &str| {
        env.ok(&[
            "container",
            "exec",
            &web,
            "ip",
            "-6",
            "addr",
            "show",
            "dev",
            dev,
        ])
    };
    let eth0 = addrs("eth0");
    assert!(
        !eth0.contains("inet6"),
        "eth0 is on an IPv4-only network: {eth0}"
    );
    let eth1 = addrs("eth1");
    assert!(
        eth1.contains("fd00:242:21::") && eth1.contains("fe80::"),
        "{eth1}"
    );
    for net in [&v4, &dual] {
        let id = env.ok(&["network", "inspect", net, "--format", "{{.Id}}"]);
        let brif = format!("/sys/class/net/br-{}/brif", &id.trim()[..12]);
        let ports: Vec<String> = std::fs::read_dir(&brif)
            .unwrap_or_else(|e| panic!("{brif}: {e}"))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(ports.len(), 1, "{brif}: {ports:?}");
        let mode = std::fs::read_to_string(format!(
            "/proc/sys/net/ipv6/conf/{}/addr_gen_mode",
            ports[0]
        ));
        assert_eq!(
            mode.unwrap().trim(),
            "1",
            "{} on {net} makes no address",
            ports[0]
        );
    }
}

#[test]
fn internal_network_has_no_route_out_and_unknown_names_are_nxdomain() {
    let mut env = Env::new();
    let inner = env.network_with(&["--internal"], "10.242.19.0/24");
    let outer = env.network("10.242.20.0/24");
    let target = env.daemon(&["--network", &outer], &httpd("80"));
    let ip = env
        .nets()
        .get(&outer)
        .unwrap()
        .endpoints
        .values()
        .next()
        .unwrap()
        .ip;
    // No default route (/proc/net/route lists none with destination 0), and the other
    // network's container cannot be reached even by address.
    let routes = env.client(&["--network", &inner], "cat /proc/net/route");
    let text = stdout(&routes);
    assert!(text.contains("eth0"), "{routes:?}");
    assert!(
        !text
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some("00000000")),
        "internal network has a default route: {text}"
    );
    let out = env.client(
        &["--network", &inner],
        &fetch_once(&format!("http://{ip}/")),
    );
    assert!(!out.status.success(), "{target} reached from {inner}");
    // Local names resolve there; others are refused (no forwarding on internal networks).
    let peer = env.daemon(&["--network", &inner], "sleep 1000");
    let out = env.client(&["--network", &inner], &format!("nslookup {peer}"));
    assert!(stdout(&out).contains("10.242.19."), "{out:?}");
    let out = env.client(&["--network", &inner], "nslookup example.org; true");
    assert!(stdout(&out).contains("REFUSED"), "{out:?}");
    // On a plain network an unknown name is NXDOMAIN (the test's DNS never forwards).
    let out = env.client(&["--network", &outer], "nslookup no-such-name.test; true");
    assert!(stdout(&out).contains("NXDOMAIN"), "{out:?}");
}
