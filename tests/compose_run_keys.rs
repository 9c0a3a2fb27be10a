//! Issue 13, item 5 for compose: the service keys that map onto docker's run flags reach the
//! container (cpu_shares, sysctls, domainname, group_add, security_opt), `external_links`
//! names a container outside the project, and the `post_start` / `pre_stop` hooks run inside
//! the container at start and before a stop (a failing hook fails `up`, naming the hook).

mod common;

use common::compose::Project;
use common::{stderr, unique};

/// Removes what the test made outside compose (the external container and network), after
/// taking the project down so the network is free.
struct Outside<'a> {
    p: &'a Project,
    container: String,
    network: String,
}

impl Drop for Outside<'_> {
    fn drop(&mut self) {
        let _ = self.p.run(&["down", "-t", "0"]);
        let _ = self.p.run(&["container", "rm", "-f", &self.container]);
        let _ = self.p.run(&["network", "rm", &self.network]);
    }
}

#[test]
fn service_run_keys_external_links_and_hooks() {
    let p = Project::new("keys");
    let out = Outside {
        p: &p,
        container: unique("rcext"),
        network: unique("rcextnet"),
    };
    p.ok(&["network", "create", "--subnet", &p.subnet, &out.network]);
    p.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &out.container,
        "--network",
        &out.network,
        common::compose::IMAGE,
        "sleep",
        "300",
    ]);
    let ins: serde_json::Value =
        serde_json::from_str(&p.ok(&["container", "inspect", &out.container])).unwrap();
    let ext_ip = ins[0]["NetworkSettings"]["Networks"][&out.network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!ext_ip.is_empty());
    std::fs::create_dir_all(p.dir.join("out")).unwrap();
    p.write(&format!(
        r#"
services:
  app:
    image: {{IMAGE}}
    command: sleep 300
    networks: [ext]
    external_links: ["{c}:extalias"]
    cpu_shares: 512
    sysctls:
      net.ipv4.ip_forward: "1"
    domainname: example.org
    group_add: [nobody]
    security_opt: ["seccomp:unconfined"]
    volumes: ["./out:/out"]
    post_start:
      - command: echo started > /tmp/started
    pre_stop:
      - command: ["sh", "-c", "echo stopping by $$WHO > /out/pre_stop"]
        environment:
          WHO: hook
networks:
  ext:
    name: {n}
    external: true
"#,
        c = out.container,
        n = out.network
    ));
    let up = p.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", stderr(&up));
    // None of these keys is reported as ignored any more.
    for key in [
        "cpu_shares",
        "sysctls",
        "domainname",
        "group_add",
        "external_links",
        "post_start",
        "pre_stop",
        "security_opt",
    ] {
        assert!(!stderr(&up).contains(key), "{key} warned: {}", stderr(&up));
    }
    assert_eq!(p.exec_ok("app", "cat /tmp/started").trim(), "started");
    let hosts = p.exec_ok("app", "grep -w extalias /etc/hosts");
    assert!(hosts.starts_with(&ext_ip), "{hosts}");
    assert_eq!(
        p.exec_ok(
            "app",
            "cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward; grep ^Seccomp: /proc/self/status; id -G"
        ),
        "example.org\n1\nSeccomp:\t0\n0 65534\n"
    );
    let name = format!("{}-app-1", p.name);
    assert_eq!(
        p.ok(&[
            "container",
            "inspect",
            "-f",
            "{{.HostConfig.CpuShares}}",
            &name
        ])
        .trim(),
        "512"
    );
    p.ok(&["stop", "-t", "5"]);
    assert_eq!(
        std::fs::read_to_string(p.dir.join("out/pre_stop")).unwrap(),
        "stopping by hook\n"
    );
    p.ok(&["down", "-t", "0"]);

    // A hook that fails fails `up`, naming it; an unknown external container too.
    p.write(&format!(
        r#"
services:
  app:
    image: {{IMAGE}}
    command: sleep 300
    networks: [ext]
    post_start:
      - command: exit 3
networks:
  ext:
    name: {n}
    external: true
"#,
        n = out.network
    ));
    let up = p.run(&["up", "-d"]);
    assert!(!up.status.success());
    assert!(
        stderr(&up).contains("post_start hook") && stderr(&up).contains("status 3"),
        "{}",
        stderr(&up)
    );
    p.ok(&["down", "-t", "0"]);
    p.write(
        r#"
services:
  app:
    image: {IMAGE}
    command: sleep 300
    external_links: [no-such-container-here]
"#,
    );
    let up = p.run(&["up", "-d"]);
    assert!(!up.status.success());
    assert!(stderr(&up).contains("external_links"), "{}", stderr(&up));
}
