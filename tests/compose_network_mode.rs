//! End-to-end `network_mode: service:x` / `container:x` as root on busybox stacks: the joined
//! service shares x's localhost and resolver, follows x when x's container is replaced (and
//! only then), and conflicting keys or a stopped container are clear errors that leave
//! nothing behind. Each test has its own state roots, project name and subnet; the fixture's
//! guard runs `down -v` and removes what is left even when a test fails.

mod common;

use common::compose::Project;
use common::{stderr, stdout};

/// `main` serves "main-$V" on its loopback only; `side` joins its namespace; `other` is a
/// plain service on the same network.
const JOINED: &str = r#"
services:
  side:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: service:main
  main:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo main-$$V > /www/index.html; httpd -f -p 127.0.0.1:8080 -h /www & wait"]
    environment: {V: one}
    dns_opt: ["ndots:3"]
  other:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo other > /www/index.html; httpd -f -p 80 -h /www & wait"]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#;

/// (Id, HostConfig.NetworkMode) of a container.
fn id_and_mode(p: &Project, name: &str) -> (String, String) {
    let out = p.ok(&["container", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
    (
        v[0]["Id"].as_str().unwrap_or_default().to_string(),
        v[0]["HostConfig"]["NetworkMode"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn bridge_of(p: &Project) -> String {
    let net = format!("{}_default", p.name);
    let out = p.ok(&["network", "inspect", &net]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("network inspect JSON");
    v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .expect("bridge name in network inspect")
        .to_string()
}

#[test]
fn joined_service_shares_localhost_and_names_and_follows_a_replaced_target() {
    let p = Project::new("nmj");
    p.write(JOINED);
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "up: {}", stderr(&o));
    let (main, side) = (format!("{}-main-1", p.name), format!("{}-side-1", p.name));
    let (main_id, _) = id_and_mode(&p, &main);
    let (side_id, mode) = id_and_mode(&p, &side);
    assert_eq!(mode, format!("container:{main_id}"));

    // main's loopback-only server is on side's loopback; side resolves service names as main
    // does (its resolv.conf points at the network's DNS).
    let fetch = "timeout 5 wget -qO- http://127.0.0.1:8080/";
    assert_eq!(p.exec_ok("side", fetch), "main-one\n");
    assert_eq!(
        p.exec_ok("side", "timeout 5 wget -qO- http://other/"),
        "other\n"
    );
    let resolv = p.exec_ok("side", "cat /etc/resolv.conf");
    assert!(resolv.contains("options ndots:3"), "{resolv}");
    // A one-off of side joins main's namespace too.
    let o = p.run(&["run", "--rm", "-T", "side", "sh", "-c", fetch]);
    assert_eq!(stdout(&o), "main-one\n", "run --rm side: {}", stderr(&o));
    // side has no interface of its own: the only veths on the bridge are main's and other's.
    let bridge = bridge_of(&p);
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", &bridge])
        .output()
        .unwrap();
    assert_eq!(stdout(&links).lines().count(), 2, "{}", stdout(&links));

    // Unchanged: nothing is recreated.
    p.ok(&["up", "-d"]);
    assert_eq!(id_and_mode(&p, &side).0, side_id);
    assert_eq!(id_and_mode(&p, &main).0, main_id);

    // main changes: its container is replaced, and side with it (joining the new namespace);
    // other stays.
    let (other_id, _) = id_and_mode(&p, &format!("{}-other-1", p.name));
    p.write(&JOINED.replace("{V: one}", "{V: two}"));
    let plan = p.ok(&["--dry-run", "up", "-d"]);
    assert!(
        plan.contains("network_mode service:main: the container of main is replaced"),
        "{plan}"
    );
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "second up: {}", stderr(&o));
    let (new_main, _) = id_and_mode(&p, &main);
    let (new_side, new_mode) = id_and_mode(&p, &side);
    assert_ne!(new_main, main_id, "main was not recreated");
    assert_ne!(new_side, side_id, "side was not recreated with main");
    assert_eq!(new_mode, format!("container:{new_main}"));
    assert_eq!(id_and_mode(&p, &format!("{}-other-1", p.name)).0, other_id);
    assert_eq!(p.exec_ok("side", fetch), "main-two\n");
    // `restart main` restarts side too (the implied dependency has restart: true): side is
    // back in main's namespace.
    p.ok(&["restart", "-t", "1", "main"]);
    assert_eq!(p.exec_ok("side", fetch), "main-two\n");
    // main stopped alone: `up` starts it in a new namespace and recreates the running side
    // to join it.
    p.ok(&["stop", "-t", "1", "main"]);
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "up after stop: {}", stderr(&o));
    assert_eq!(p.exec_ok("side", fetch), "main-two\n");

    // down leaves no bridge and no rule behind.
    p.ok(&["down", "-v", "-t", "1"]);
    assert!(p.ps_json().is_empty());
    let gone = std::process::Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "bridge {bridge} left behind");
    let rules = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    assert!(
        !stdout(&rules).contains(&bridge),
        "nft rules for {bridge} left behind"
    );
}

#[test]
fn ports_on_a_joined_service_are_refused_before_anything_is_created() {
    let p = Project::new("nmp");
    p.write(
        r#"
services:
  side:
    image: {IMAGE}
    command: ["sleep", "1000"]
    network_mode: service:main
    ports: ["127.0.0.1::80"]
  main:
    image: {IMAGE}
    command: ["sleep", "1000"]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "-d"]);
    assert!(!o.status.success(), "up succeeded");
    let err = stderr(&o);
    assert!(
        err.contains("services.side") && err.contains("ports") && err.contains("service:main"),
        "{err}"
    );
    assert!(p.ps_json().is_empty(), "a container was created");
    let nets = p.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(&p.name), "a network was created: {nets}");
}

#[test]
fn joining_a_stopped_container_is_a_clear_error_and_leaves_nothing() {
    let p = Project::new("nms");
    let target = format!("{}-target", p.name);
    p.ok(&[
        "container",
        "create",
        "--name",
        &target,
        common::compose::IMAGE,
        "sleep",
        "1000",
    ]);
    p.write(&format!(
        r#"
services:
  side:
    image: {{IMAGE}}
    command: ["sleep", "1000"]
    network_mode: container:{target}
"#
    ));
    let o = p.run(&["up", "-d"]);
    assert!(!o.status.success(), "up joined a stopped container");
    let err = stderr(&o);
    assert!(
        err.contains("non running") && err.contains(&target),
        "{err}"
    );
    assert!(p.ps_json().is_empty(), "side was left behind");

    // Once the target runs, the same file comes up and shares its namespace.
    p.ok(&["container", "start", &target]);
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "up: {}", stderr(&o));
    let (target_id, _) = id_and_mode(&p, &target);
    let side = format!("{}-side-1", p.name);
    let (side_id, mode) = id_and_mode(&p, &side);
    assert_eq!(mode, format!("container:{target_id}"));

    // Nothing changed: kept. The outside container replaced: the service follows it.
    let plan = p.ok(&["--dry-run", "up", "-d"]);
    assert!(plan.contains("keep"), "{plan}");
    p.ok(&["container", "rm", "-f", &target]);
    p.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &target,
        common::compose::IMAGE,
        "sleep",
        "1000",
    ]);
    let plan = p.ok(&["--dry-run", "up", "-d"]);
    assert!(plan.contains("network_mode"), "{plan}");
    p.ok(&["up", "-d", "-t", "0"]);
    let (new_target, _) = id_and_mode(&p, &target);
    let (new_side, mode) = id_and_mode(&p, &side);
    assert_ne!(new_side, side_id, "side was not recreated");
    assert_eq!(mode, format!("container:{new_target}"));
    p.ok(&["down", "-t", "0"]);
    p.ok(&["container", "rm", "-f", &target]);
}

#[test]
fn network_mode_bridge_uses_the_default_bridge_with_ports_and_mac_address() {
    let p = Project::new("nmb");
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo bridged > /www/index.html; httpd -f -p 80 -h /www & wait"]
    network_mode: bridge
    ports: ["127.0.0.1::80"]
    mac_address: 02:42:ac:11:00:99
"#,
    );
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "up: {}", stderr(&o));
    assert_eq!(
        p.exec_ok("web", "cat /sys/class/net/eth0/address"),
        "02:42:ac:11:00:99\n"
    );
    let port = p.ok(&["port", "web", "80"]);
    let host_port: u16 = port
        .trim()
        .strip_prefix("127.0.0.1:")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("port web 80: {port:?}"));
    let mut body = String::new();
    for _ in 0..50 {
        let out = std::process::Command::new("timeout")
            .args(["5", "busybox", "wget", "-qO-"])
            .arg(format!("http://127.0.0.1:{host_port}/"))
            .output()
            .unwrap();
        body = stdout(&out);
        if out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(body, "bridged\n");
    p.ok(&["down", "-v", "-t", "1"]);
    // The default network outlives the project, as docker's `bridge`, with nothing on it.
    let nets: serde_json::Value =
        serde_json::from_str(&p.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(nets[0]["Containers"], serde_json::json!({}), "{nets}");
}
