//! docker-compose 1.29 (`/usr/bin/docker-compose`) against the API server: a two-service
//! stack where one service reaches the other by name, brought up, listed, logged and taken
//! down with its volume; the rcompose CLI sees the same project (labels, names), and
//! docker-compose sees a project rcompose brought up. Skips with a message when
//! docker-compose or the docker CLI is not installed.

mod common;

use common::api::Api;

/// `web` serves its hostname; `client` fetches it by the service's name and keeps a file on
/// the named volume. The network has its own subnet (10.226.x.0/24, used nowhere else in
/// tests/).
fn stack(image: &str, octet: u8) -> String {
    format!(
        r#"version: "3.8"
services:
  web:
    image: {image}
    command: ["httpd", "-f", "-p", "8080", "-h", "/etc"]
  client:
    image: {image}
    depends_on: [web]
    volumes: ["data:/data"]
    command: ["sh", "-c", "echo kept > /data/f; until wget -q -O- http://web:8080/hostname; do sleep 0.2; done; echo fetched-by-name; sleep 300"]
volumes:
  data: {{}}
networks:
  default:
    ipam:
      config:
        - subnet: 10.226.{octet}.0/24
"#
    )
}

#[test]
fn docker_compose_up_ps_logs_down_and_the_cli_sees_the_same_project() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let image = api.busybox();
    let dir = api.roots.dir.path().join("stack");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), stack(&image, 1)).unwrap();
    let project = common::unique("rcapicp");
    // Removed by the harness even when an assertion fails.
    api.names
        .extend(["web", "client"].map(|s| format!("{project}_{s}_1")));
    api.networks.push(format!("{project}_default"));
    api.volumes.push(format!("{project}_data"));

    let Some(_) = api.compose_ok(&dir, &project, &["up", "-d"]) else {
        return;
    };
    let ps = api.compose_ok(&dir, &project, &["ps"]).unwrap();
    for s in ["web", "client"] {
        let line = ps
            .lines()
            .find(|l| l.starts_with(&format!("{project}_{s}_1")))
            .unwrap_or_else(|| panic!("{s} missing from docker-compose ps:\n{ps}"));
        assert!(line.contains(" Up"), "{line}");
    }
    // `client` reached `web` by its name on the project's network.
    api.wait_until(30, "client to fetch web's page by name", || {
        api.compose(&dir, &project, &["logs", "client"])
            .is_some_and(|o| common::stdout(&o).contains("fetched-by-name"))
    });
    let logs = api.compose_ok(&dir, &project, &["logs", "client"]).unwrap();
    assert!(logs.contains("client_1"), "{logs}");

    // The CLI sees docker-compose's project: same labels, names, network, volume.
    let ours = api.roots.ok(&["-p", &project, "ps", "--format", "json"]);
    let seen: Vec<String> = ours
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("ps json line"))
        .map(|v| format!("{} {} {}", v["Service"], v["Name"], v["State"]))
        .collect();
    for s in ["web", "client"] {
        let want = format!("\"{s}\" \"{project}_{s}_1\" \"running\"");
        assert!(seen.contains(&want), "{want} not in {seen:?}");
    }
    let vols = api.roots.ok(&["volume", "ls", "-q"]);
    assert!(
        vols.lines().any(|v| v == format!("{project}_data")),
        "{vols}"
    );

    api.compose_ok(&dir, &project, &["down", "-v", "-t", "1"])
        .unwrap();
    let left = api.roots.ok(&["container", "ps", "-a", "-q"]);
    assert_eq!(left.trim(), "", "containers left after down");
    let vols = api.roots.ok(&["volume", "ls", "-q"]);
    assert!(!vols.lines().any(|v| v.starts_with(&project)), "{vols}");
    let nets = api.roots.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n.starts_with(&project)), "{nets}");

    // The reverse: rcompose brings the stack up, docker-compose lists, logs and removes it.
    std::fs::write(dir.join("docker-compose.yml"), stack(&image, 2)).unwrap();
    let rev = common::unique("rcapirv");
    api.names
        .extend(["web", "client"].map(|s| format!("{rev}-{s}-1")));
    api.networks.push(format!("{rev}_default"));
    api.volumes.push(format!("{rev}_data"));
    let up = api
        .roots
        .cmd()
        .current_dir(&dir)
        .args(["-p", &rev, "up", "-d"])
        .output()
        .unwrap();
    common::assert_ok(&["up", "-d"], &up);
    let ps = api.compose_ok(&dir, &rev, &["ps"]).unwrap();
    for s in ["web", "client"] {
        assert!(
            ps.lines()
                .any(|l| l.starts_with(&format!("{rev}-{s}-1")) && l.contains(" Up")),
            "{ps}"
        );
    }
    api.wait_until(30, "client to fetch web's page by name", || {
        api.compose(&dir, &rev, &["logs", "client"])
            .is_some_and(|o| common::stdout(&o).contains("fetched-by-name"))
    });
    api.compose_ok(&dir, &rev, &["down", "-v", "-t", "1"])
        .unwrap();
    let left = api.roots.ok(&["-p", &rev, "ps", "-a", "-q"]);
    assert_eq!(left.trim(), "", "containers left after docker-compose down");
    let vols = api.roots.ok(&["volume", "ls", "-q"]);
    assert!(!vols.lines().any(|v| v.starts_with(&rev)), "{vols}");
}

/// docker-compose's build (the classic builder protocol), `run --rm` and a foreground `up`
/// whose exit code comes from a service.
#[test]
fn docker_compose_build_run_and_foreground_up() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let base = api.busybox();
    let dir = api.roots.dir.path().join("built");
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("app/Dockerfile"),
        format!("FROM {base}\nARG GREETING=none\nRUN echo \"$GREETING\" > /greeting\n"),
    )
    .unwrap();
    let project = common::unique("rcapicb");
    let image = format!("{project}-app:1");
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "3.8"
services:
  app:
    build:
      context: ./app
      args: {{GREETING: built-by-compose}}
    image: {image}
    command: ["sh", "-c", "cat /greeting; exit 3"]
networks:
  default:
    ipam:
      config:
        - subnet: 10.226.4.0/24
"#
        ),
    )
    .unwrap();
    api.names.push(format!("{project}_app_1"));
    api.networks.push(format!("{project}_default"));

    let Some(out) = api.compose_ok(&dir, &project, &["build"]) else {
        return;
    };
    assert!(out.contains("Successfully tagged"), "{out}");
    api.ok(&["image", "inspect", &image]);

    let o = api
        .compose(&dir, &project, &["run", "--rm", "app"])
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", common::stderr(&o));
    assert!(
        common::stdout(&o).contains("built-by-compose"),
        "{}",
        common::stdout(&o)
    );

    let o = api
        .compose(&dir, &project, &["up", "--exit-code-from", "app"])
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", common::stderr(&o));
    assert!(
        common::stdout(&o).contains("built-by-compose"),
        "{}",
        common::stdout(&o)
    );

    api.compose_ok(&dir, &project, &["down", "-v", "-t", "1"])
        .unwrap();
    let left = api.roots.ok(&["container", "ps", "-a", "-q"]);
    assert_eq!(left.trim(), "", "containers left after down");
}

/// docker-compose 1.29's create body for a service with resource, device, namespace and
/// security keys reaches the engine: the values show inside the container and in inspect.
#[test]
fn docker_compose_run_keys_reach_the_container() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let image = api.busybox();
    let dir = api.roots.dir.path().join("extras");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            r#"version: "2.4"
services:
  box:
    image: {image}
    network_mode: none
    command: ["sleep", "300"]
    cpu_shares: 256
    mem_reservation: 16m
    sysctls: {{kernel.shmmax: "987654321"}}
    group_add: ["4343"]
    devices: ["/dev/null:/dev/mynull"]
    domainname: example.org
    security_opt: ["seccomp:unconfined"]
"#
        ),
    )
    .unwrap();
    let project = common::unique("rcapixt");
    let name = format!("{project}_box_1");
    api.names.push(name.clone());
    let Some(_) = api.compose_ok(&dir, &project, &["up", "-d"]) else {
        return;
    };
    let v: serde_json::Value =
        serde_json::from_str(&api.ok(&["inspect", &name])).expect("inspect JSON");
    let h = &v[0]["HostConfig"];
    assert_eq!(h["CpuShares"], 256, "{h}");
    assert_eq!(h["MemoryReservation"], 16 << 20, "{h}");
    assert_eq!(h["GroupAdd"], serde_json::json!(["4343"]), "{h}");
    assert_eq!(h["Devices"][0]["PathInContainer"], "/dev/mynull", "{h}");
    assert_eq!(v[0]["Config"]["Domainname"], "example.org");
    let inside = api.ok(&[
        "exec",
        &name,
        "sh",
        "-c",
        "cat /proc/sys/kernel/shmmax /proc/sys/kernel/domainname; grep Seccomp: /proc/1/status; [ -c /dev/mynull ] && echo dev-ok",
    ]);
    assert_eq!(
        inside.split_whitespace().collect::<Vec<_>>(),
        ["987654321", "example.org", "Seccomp:", "0", "dev-ok"]
    );
    api.compose_ok(&dir, &project, &["down", "-t", "1"])
        .unwrap();
}
