//! End-to-end compose flows as root on busybox stacks: up -d in dependency order, ps, names
//! and aliases over DNS, down -v leaving nothing, volumes surviving down, recreate only what
//! changed, scale, logs -f across restarts and new replicas, run --rm, attached up with
//! --exit-code-from, profiles, secrets/configs, clear errors.

mod common;

use std::process::Stdio;

use common::compose::{Project, names};
use common::{stderr, stdout};

/// web → api → db; db writes to a named volume and becomes healthy once ready (api waits for
/// that); api answers on port 80 with httpd.
const THREE_TIER: &str = r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo web > /www/index.html; httpd -f -p 80 -h /www & wait"]
    depends_on:
      api: {condition: service_started}
  api:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo api-$$GREETING > /www/index.html; httpd -f -p 80 -h /www & wait"]
    environment:
      GREETING: hello
    networks:
      default:
        aliases: [backend]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo boot >> /data/boots; sleep 1; touch /tmp/ready; echo db ready; sleep 1000 & wait"]
    volumes: [dbdata:/data]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 30
volumes:
  dbdata: {}
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#;

#[test]
fn three_tier_up_ps_dns_down() {
    let p = Project::new("tt");
    p.write(THREE_TIER);
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "up failed: {}", stderr(&o));
    let err = stderr(&o);
    // Dependency order: db before api before web.
    let started = |svc: &str| {
        let name = format!("{}-{svc}-1 ", p.name);
        err.lines()
            .position(|l| l.contains(&name) && l.ends_with("Started"))
            .unwrap_or_else(|| panic!("{name} not started in {err}"))
    };
    assert!(started("db") < started("api"), "{err}");
    assert!(started("api") < started("web"), "{err}");
    // api waited for db to be healthy.
    let healthy = err
        .lines()
        .position(|l| l.contains(&format!("{}-db-1 ", p.name)) && l.ends_with("Healthy"))
        .unwrap_or_else(|| panic!("db never reported healthy: {err}"));
    assert!(healthy < started("api"), "{err}");

    let table = p.ok(&["ps"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"
        ]
    );
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.contains(&format!("{}-api-1", p.name)) && table.contains("Up "),
        "{table}"
    );
    let json = p.ps_json();
    assert_eq!(json.len(), 3);
    assert!(
        json.iter()
            .all(|c| c["State"] == "running" && c["Project"] == p.name.as_str())
    );
    // Health in the STATUS column and in the JSON, as docker compose shows it.
    let db_row = table
        .lines()
        .find(|l| l.starts_with(&format!("{}-db-1 ", p.name)))
        .unwrap_or_else(|| panic!("no db row: {table}"));
    assert!(db_row.contains("(healthy)"), "{db_row}");
    let db = json.iter().find(|c| c["Service"] == "db").unwrap();
    assert_eq!(db["Health"], "healthy", "{db}");
    let web = json.iter().find(|c| c["Service"] == "web").unwrap();
    assert_eq!(web["Health"], "", "{web}");

    // Service names and aliases resolve on the project network.
    assert_eq!(
        p.exec_ok("web", "timeout 5 wget -qO- http://api/"),
        "api-hello\n"
    );
    assert_eq!(
        p.exec_ok("web", "timeout 5 wget -qO- http://backend/"),
        "api-hello\n"
    );
    assert_eq!(p.exec_ok("api", "timeout 5 wget -qO- http://web/"), "web\n");

    // Nothing to do on a second up.
    let plan = p.ok(&["--dry-run", "up", "-d"]);
    assert!(
        !plan.contains("create") && !plan.contains("recreate"),
        "{plan}"
    );

    let o = p.run(&["down", "-v", "-t", "2"]);
    assert!(o.status.success(), "down: {}", stderr(&o));
    assert!(names(&p).is_empty());
    let nets = p.ok(&["network", "ls"]);
    assert!(!nets.contains(&format!("{}_default", p.name)), "{nets}");
    let vols: Vec<_> = std::fs::read_dir(p.root.join("volumes"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(vols.is_empty(), "volumes left: {vols:?}");
}

#[test]
fn volume_survives_down_and_env_change_recreates_one_service() {
    let p = Project::new("vol");
    p.write(THREE_TIER);
    p.ok(&["up", "-d"]);
    p.ok(&["down", "-t", "2"]);
    p.ok(&["up", "-d"]);
    assert_eq!(p.exec_ok("db", "cat /data/boots"), "boot\nboot\n");

    let before: Vec<serde_json::Value> = p.ps_json();
    let id_of = |list: &[serde_json::Value], svc: &str| {
        list.iter()
            .find(|c| c["Service"] == svc)
            .map(|c| c["ID"].as_str().unwrap().to_string())
            .unwrap()
    };
    p.write(&THREE_TIER.replace("GREETING: hello", "GREETING: bonjour"));
    let plan = p.ok(&["--dry-run", "up", "-d"]);
    assert!(
        plan.contains(&format!(
            "container {}-api-1: recreate, start (config hash changed: environment.GREETING)",
            p.name
        )),
        "{plan}"
    );
    p.ok(&["up", "-d", "-t", "2"]);
    let after = p.ps_json();
    assert_ne!(id_of(&before, "api"), id_of(&after, "api"));
    assert_eq!(id_of(&before, "db"), id_of(&after, "db"));
    assert_eq!(id_of(&before, "web"), id_of(&after, "web"));
    assert_eq!(
        p.exec_ok("web", "timeout 5 wget -qO- http://api/"),
        "api-bonjour\n"
    );
}

#[test]
fn run_rm_leaves_nothing_and_reaches_dependencies() {
    let p = Project::new("run");
    p.write(THREE_TIER);
    let o = p.run(&[
        "run",
        "--rm",
        "-T",
        "web",
        "sh",
        "-c",
        "echo one-off; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert!(stdout(&o).contains("one-off"));
    // The dependencies are up, the one-off is gone.
    let list = names(&p);
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(!list.iter().any(|n| n.contains("-run-")), "{list:?}");
    let all = p.ok(&["container", "ps", "-a", "--format", "{{.Names}}"]);
    assert!(!all.contains("-run-"), "{all}");
}

#[test]
fn profiles_enable_services() {
    let p = Project::new("prof");
    p.write(
        r#"
services:
  app:
    image: {IMAGE}
    command: ["sleep", "1000"]
  debug:
    image: {IMAGE}
    command: ["sleep", "1000"]
    profiles: [debug]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let plan = p.ok(&["--dry-run", "up", "-d"]);
    assert!(!plan.contains("debug"), "{plan}");
    let plan = p.ok(&["--profile", "debug", "--dry-run", "up", "-d"]);
    assert!(
        plan.contains(&format!("{}-debug-1: create", p.name)),
        "{plan}"
    );

    let services = |p: &Project| {
        let mut v: Vec<String> = p
            .ps_json()
            .iter()
            .map(|c| c["Service"].as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    };
    // Without the profile only app runs; with it, debug joins; naming debug enables it too.
    p.ok(&["up", "-d"]);
    assert_eq!(services(&p), ["app"]);
    p.ok(&["--profile", "debug", "up", "-d"]);
    assert_eq!(services(&p), ["app", "debug"]);
    // Deactivated again: `down` without the profile still removes debug's container.
    p.ok(&["down", "-t", "1"]);
    assert!(services(&p).is_empty(), "{:?}", services(&p));
    p.ok(&["up", "-d", "debug"]);
    assert_eq!(services(&p), ["debug"]);
}

#[test]
fn secrets_and_configs_are_mounted_with_modes() {
    let p = Project::new("sec");
    std::fs::write(p.dir.join("token.txt"), "s3cret\n").unwrap();
    p.write(
        r#"
services:
  app:
    image: {IMAGE}
    command: ["sleep", "1000"]
    network_mode: none
    secrets:
      - token
      - source: inline
        target: renamed
        mode: 0400
    configs:
      - source: conf
        target: /etc/app.conf
        mode: 0440
        uid: "65534"
secrets:
  token:
    file: ./token.txt
  inline:
    environment: SECRET_FROM_ENV
configs:
  conf:
    content: "key=value"
"#,
    );
    let o = p
        .cmd()
        .env("SECRET_FROM_ENV", "from-env")
        .args(["up", "-d"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = p.exec_ok(
        "app",
        "cat /run/secrets/token /run/secrets/renamed /etc/app.conf; echo; stat -c '%a %u' /run/secrets/token /run/secrets/renamed /etc/app.conf",
    );
    assert_eq!(out, "s3cret\nfrom-envkey=value\n444 0\n400 0\n440 65534\n");
}

#[test]
fn clear_errors_before_anything_is_created() {
    let p = Project::new("err");
    p.write(
        r#"
services:
  app:
    image: {IMAGE}
    command: ["sleep", "1000"]
  built:
    build: ./src
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "-d"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("building service \"built\"") && stderr(&o).contains("src"),
        "{}",
        stderr(&o)
    );
    assert!(names(&p).is_empty(), "nothing may be created");

    let o = p.run(&["up", "-d", "nosuch"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("no such service") && err.contains("nosuch"),
        "{err}"
    );

    let o = p.run(&["exec", "-T", "app", "true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
}

#[test]
fn service_healthy_waits_and_unhealthy_dependency_fails_up() {
    let p = Project::new("hc");
    p.write(
        r#"
services:
  db:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1; date +%s%N > /ready; echo db is up; sleep 1000 & wait"]
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 1s
      retries: 30
  api:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    depends_on:
      db: {condition: service_healthy}
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "-d", "-t", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let healthy = err.find("Healthy").expect("db reported healthy");
    let api = err
        .lines()
        .find(|l| l.contains(&format!("{}-api-1 ", p.name)) && l.ends_with("Started"))
        .and_then(|l| err.find(l))
        .expect("api started");
    assert!(healthy < api, "api started before db was healthy:\n{err}");
    p.ok(&["down", "-t", "1"]);

    p.write(
        r#"
services:
  db:
    image: {IMAGE}
    command: ["sh", "-c", "echo db log line; sleep 1000"]
    healthcheck:
      test: ["CMD-SHELL", "echo probe-says-no; exit 1"]
      interval: 1s
      retries: 2
  api:
    image: {IMAGE}
    command: ["sleep", "1000"]
    depends_on:
      db: {condition: service_healthy}
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "-d", "-t", "1"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("service \"db\""), "{err}");
    assert!(err.contains("is unhealthy"), "{err}");
    assert!(err.contains("probe-says-no"), "{err}");
    assert!(err.contains("db log line"), "{err}");
    // Rolled back: this run's containers are gone.
    assert!(names(&p).is_empty(), "{:?}", names(&p));
}

#[test]
fn scale_replicas_resolve_by_service_name_and_down_leaves_no_kernel_state() {
    let p = Project::new("dns");
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    ports: ["127.0.0.1::80"]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    p.ok(&["up", "-d"]);
    p.ok(&["scale", "web=3"]);
    assert_eq!(names(&p).len(), 3);
    let answer = p.exec_ok("web", "nslookup web");
    let addrs = answer
        .lines()
        .filter(|l| l.starts_with("Address:") && !l.contains(":53"))
        .count();
    assert_eq!(addrs, 3, "{answer}");
    // Successive answers rotate the replicas' addresses (round-robin DNS, as docker's).
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let answer = p.exec_ok("web", "nslookup web");
        let first = answer
            .lines()
            .filter(|l| l.starts_with("Address:") && !l.contains(":53"))
            .map(str::to_string)
            .next()
            .unwrap_or_else(|| panic!("no address in {answer}"));
        firsts.insert(first);
    }
    assert!(firsts.len() >= 2, "answers never rotated: {firsts:?}");
    let port = p.ok(&["port", "--index", "2", "web", "80"]);
    assert!(port.trim().starts_with("127.0.0.1:"), "{port}");

    let net = format!("{}_default", p.name);
    let inspect = p.ok(&["network", "inspect", &net]);
    let bridge = inspect
        .split("\"com.docker.network.bridge.name\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("bridge name in network inspect")
        .to_string();
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", &bridge])
        .output()
        .unwrap();
    assert_eq!(stdout(&links).lines().count(), 3, "one veth per replica");

    p.ok(&["down", "-v", "-t", "1"]);
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
    assert!(
        !stdout(&rules).contains(&p.subnet),
        "nft rules for {} left behind",
        p.subnet
    );
}

#[test]
fn recreate_keeps_anonymous_volumes() {
    let p = Project::new("anon");
    let yaml = r#"
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo $$V >> /cache/runs; sleep 1000 & wait"]
    environment: {V: one}
    volumes: [/cache]
    network_mode: none
"#;
    p.write(yaml);
    p.ok(&["up", "-d"]);
    p.write(&yaml.replace("V: one", "V: two"));
    p.ok(&["up", "-d", "-t", "1"]);
    assert_eq!(p.exec_ok("app", "cat /cache/runs"), "one\ntwo\n");
    p.ok(&["down", "-v", "-t", "1"]);
    let vols: Vec<_> = std::fs::read_dir(p.root.join("volumes"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        vols.is_empty(),
        "anonymous volume left after down -v: {vols:?}"
    );
}

#[test]
fn network_mode_service_and_volumes_from_share_with_another_service() {
    let p = Project::new("nms");
    p.write(
        r#"
services:
  side:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: service:main
    volumes_from: [main]
  main:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo shared > /data/f; httpd -f -p 8080 -h /data & wait"]
    volumes: [/data]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Same network namespace: main's httpd is on side's loopback; same volume.
    assert_eq!(
        p.exec_ok("side", "timeout 5 wget -qO- http://127.0.0.1:8080/f"),
        "shared\n"
    );
    assert_eq!(p.exec_ok("side", "cat /data/f"), "shared\n");
}

#[test]
fn concurrent_ups_never_create_duplicates() {
    let p = Project::new("lock");
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
    deploy: {replicas: 2}
"#,
    );
    let children: Vec<_> = (0..3)
        .map(|_| {
            p.cmd()
                .args(["up", "-d"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let mut list = names(&p);
    list.sort();
    assert_eq!(
        list,
        [format!("{}-web-1", p.name), format!("{}-web-2", p.name)]
    );
}

#[test]
fn failing_or_never_healthy_dependency_fails_up_naming_it() {
    let p = Project::new("depf");
    p.write(
        r#"
services:
  migrate:
    image: {IMAGE}
    command: ["sh", "-c", "echo migration failed: no table; exit 4"]
  app:
    image: {IMAGE}
    command: ["sleep", "1000"]
    depends_on:
      migrate: {condition: service_completed_successfully}
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "-d", "-t", "1"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("service \"migrate\""), "{err}");
    assert!(err.contains("exit 4"), "{err}");
    assert!(err.contains("migration failed: no table"), "{err}");
    assert!(names(&p).is_empty(), "rolled back: {:?}", names(&p));

    // Never healthy (failures inside start_period do not count): bounded by --wait-timeout,
    // and the error carries the probe's output.
    p.write(
        r#"
services:
  db:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo db still booting; sleep 1000 & wait"]
    healthcheck:
      test: ["CMD-SHELL", "echo probe-still-failing; exit 1"]
      interval: 1s
      start_period: 1h
  app:
    image: {IMAGE}
    command: ["sleep", "1000"]
    depends_on:
      db: {condition: service_healthy}
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "-d", "-t", "1", "--wait-timeout", "3"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("service \"db\""), "{err}");
    assert!(err.contains("did not become healthy within 3s"), "{err}");
    assert!(err.contains("probe-still-failing"), "{err}");
    assert!(err.contains("db still booting"), "{err}");
    assert!(names(&p).is_empty(), "rolled back: {:?}", names(&p));
}
