//! A container that exits gives its network resources back in two steps: its address, name
//! and ports before the exit is reported (the next container can take them at once), the
//! kernel's objects (its veth) afterwards, in the background. The default bridge stays for the
//! next container, as docker0 does, until `network prune`.

mod common;

use common::container::{Env, IMAGE};
use common::network::{link_exists, table_exists};

fn eth0_address(env: &Env) -> String {
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}'",
    ]);
    let addr = out.trim().to_string();
    assert!(addr.contains('/'), "no IPv4 address on eth0: {out:?}");
    addr
}

#[test]
fn bridged_run_rm_frees_its_address_at_once_and_leaves_nothing_behind() {
    let env = Env::new();
    let bridge = rcompose_net::api::default_bridge_name(&env.root);
    let table = rcompose_net::api::table_name(&env.root);

    // Back to back: the second run gets the address the first one had, so it was free when
    // the first `run --rm` returned (the lowest free address is handed out).
    let first = eth0_address(&env);
    let second = eth0_address(&env);
    assert_eq!(first, second, "the first run's address was not free yet");

    // The idle default bridge and its rules stay for the next container.
    assert!(link_exists(&bridge), "idle default bridge {bridge} deleted");
    assert!(table_exists(&table), "nft table {table} deleted");

    // A removal leaves nothing of its container behind when it returns.
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "rel-a",
        IMAGE,
        "sleep",
        "60",
    ]);
    let veth = {
        let nets = rcompose_net::Networks::open(&env.root, &env.run_root).unwrap();
        let net = nets.get("bridge").unwrap();
        let ep = net.endpoints.values().next().expect("an endpoint").clone();
        ep.host_ifname
    };
    assert!(
        link_exists(&veth),
        "{veth} missing while the container runs"
    );
    // A short-lived container on the same bridge exits meanwhile: the bridge stays in use.
    let third = eth0_address(&env);
    assert_ne!(third, first, "an address in use was handed out again");
    env.ok(&["container", "rm", "-f", "rel-a"]);
    assert!(!link_exists(&veth), "{veth} left after rm -f");
    assert!(
        link_exists(&bridge),
        "default bridge {bridge} deleted by rm -f"
    );
    // Only an idle bridge is pruned, then with its rules.
    env.ok(&["network", "prune", "-f"]);
    assert!(
        !link_exists(&bridge),
        "default bridge {bridge} left after prune"
    );
    assert!(!table_exists(&table), "nft table {table} left after prune");
}
