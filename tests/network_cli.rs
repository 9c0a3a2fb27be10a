//! End-to-end tests of `rcompose network create|ls|inspect|rm|prune`, the default bridge's
//! lifetime, and subnet choice across state roots (never a subnet another root or the host
//! routes already use).

mod common;

use std::net::Ipv4Addr;

use common::network::*;

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
fn default_bridge_stays_after_its_containers_until_prune_and_has_no_dns() {
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
    // As docker0: the next container finds it ready.
    assert!(link_exists(&bridge), "idle default bridge {bridge} deleted");
    assert!(table_exists(&root.table()));
    // `network prune` takes the idle bridge and its rules; the network itself stays.
    let pruned = root.cli(&["network", "prune", "-f"]);
    assert!(pruned.status.success(), "{}", text(&pruned));
    assert!(
        !link_exists(&bridge),
        "default bridge {bridge} left after prune"
    );
    assert!(!table_exists(&root.table()));
    assert!(
        nets.get("bridge").is_ok(),
        "prune removed the default network"
    );
}

/// A state root removed by hand leaves its idle default bridge; the next root that creates
/// its own collects it, with its nftables table and iptables chain.
#[test]
fn the_default_bridge_of_a_removed_root_is_collected() {
    setup();
    let gone = Root::new();
    let gone_bridge = rcompose_net::api::default_bridge_name(&gone.root());
    let gone_table = gone.table();
    let a = Ns::new();
    a.attach(&gone.nets(), "bridge", "first", &[]);
    gone.nets().detach_all(&a.id_for("first")).unwrap();
    assert!(
        link_exists(&gone_bridge),
        "default bridge {gone_bridge} missing"
    );
    let chain = rcompose_net::firewall::iptables::chain_prefix(&gone_table);
    assert!(iptables_has(&chain), "no iptables chain {chain}");
    // Removed as a user's `rm -rf` would: no command ran on it.
    std::fs::remove_dir_all(gone.root()).unwrap();

    let next = Root::new();
    // `doctor` names it and what to do.
    let doctor = next.cli(&["system", "doctor"]);
    let report = text(&doctor);
    assert!(
        report.contains(&gone_bridge) && report.contains("no longer exists"),
        "{report}"
    );
    let b = Ns::new();
    b.attach(&next.nets(), "bridge", "second", &[]);
    assert!(
        !link_exists(&gone_bridge),
        "orphan {gone_bridge} not collected"
    );
    assert!(!table_exists(&gone_table), "orphan table {gone_table} left");
    assert!(!iptables_has(&chain), "orphan chain {chain} left");
    // Only the orphan: the live root's bridge is there.
    let own = rcompose_net::api::default_bridge_name(&next.root());
    assert!(link_exists(&own));
}

fn iptables_has(chain: &str) -> bool {
    let out = std::process::Command::new("iptables")
        .arg("-S")
        .output()
        .expect("iptables -S");
    String::from_utf8_lossy(&out.stdout).contains(chain)
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

/// A bridge name that is already an interface on the host (Docker's `docker0`, say) is never
/// adopted: `network rm` would then delete someone else's interface.
#[test]
fn a_bridge_name_taken_by_a_host_interface_is_refused_and_left_alone() {
    setup();
    let root = Root::new();
    let ifname = format!("rcf{}", std::process::id() % 100_000);
    let add = std::process::Command::new("ip")
        .args(["link", "add", &ifname, "type", "bridge"])
        .status()
        .unwrap();
    assert!(add.success());
    let out = root.cli(&[
        "network",
        "create",
        "--subnet",
        "10.231.29.0/24",
        "-o",
        &format!("com.docker.network.bridge.name={ifname}"),
        &unique("rcf"),
    ]);
    let kept = link_exists(&ifname);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &ifname])
        .status();
    assert!(!out.status.success(), "adopted a host interface");
    assert!(
        text(&out).contains("already exists on this host"),
        "{}",
        text(&out)
    );
    assert!(kept, "the host's interface was removed");
}

/// `network inspect bridge | head -0`: a reader that has gone ends the CLI as a pipeline's
/// writer ends (status 141, or 0 when it wrote first), never with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    setup();
    let root = Root::new();
    assert!(root.cli(&["network", "ls"]).status.success());
    for _ in 0..5 {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(common::BIN)
            .arg("--root")
            .arg(root.root())
            .arg("--run-root")
            .arg(root.run_root())
            .args(["network", "inspect", "bridge"])
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            matches!(out.status.code(), Some(141 | 0)),
            "{:?}: {err}",
            out.status
        );
    }
}
