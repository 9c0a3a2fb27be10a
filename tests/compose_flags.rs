//! End-to-end compose flags beyond the main flows (tests/compose_e2e.rs): `up -V`,
//! `run -d --rm`, `wait --down-project`, `up --watch` with attached logs, `env_file` in
//! raw format, `logging` keys.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use common::compose::Project;
use common::{stderr, stdout};

fn volume_dirs(p: &Project) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p.root.join("volumes"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn renew_anon_volumes_gives_recreated_containers_empty_ones() {
    let p = Project::new("renew");
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
    let before = volume_dirs(&p);
    assert_eq!(before.len(), 1, "{before:?}");

    // Without -V the data is inherited (tested in compose_e2e); with -V it starts afresh.
    // The replaced volume is kept, dangling, with its data (as compose v2).
    p.write(&yaml.replace("V: one", "V: two"));
    let o = p.run(&["up", "-d", "-t", "1", "-V"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(p.exec_ok("app", "cat /cache/runs"), "two\n");
    let after = volume_dirs(&p);
    assert_eq!(after.len(), 2, "{after:?}");
    let old = p.root.join("volumes").join(&before[0]).join("_data/runs");
    assert_eq!(std::fs::read_to_string(old).unwrap(), "one\n");

    // Nothing changed and no --force-recreate: -V recreates nothing.
    p.ok(&["up", "-d", "-V"]);
    assert_eq!(p.exec_ok("app", "cat /cache/runs"), "two\n");
    p.ok(&[
        "up",
        "-d",
        "-t",
        "1",
        "--renew-anon-volumes",
        "--force-recreate",
    ]);
    assert_eq!(p.exec_ok("app", "cat /cache/runs"), "two\n");
    assert_eq!(volume_dirs(&p).len(), 3, "{:?}", volume_dirs(&p));
}

#[test]
fn run_detached_with_rm_is_removed_when_it_exits() {
    let p = Project::new("rund");
    p.write(
        r#"
services:
  job:
    image: {IMAGE}
    command: ["true"]
    volumes: [/scratch]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&[
        "run",
        "-d",
        "--rm",
        "job",
        "sh",
        "-c",
        "echo one-off > /scratch/f; sleep 1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = stdout(&o).trim().to_string();
    assert!(
        name.starts_with(&format!("{}-job-run-", p.name)),
        "printed {name:?}"
    );
    let all = p.ok(&["container", "ps", "-a", "--format", "{{.Names}}"]);
    assert!(all.contains(&name), "running one-off not listed: {all}");
    p.wait_until(20, "the one-off removed after it exited", || {
        !p.ok(&["container", "ps", "-a", "--format", "{{.Names}}"])
            .contains(&name)
    });
    assert!(volume_dirs(&p).is_empty(), "{:?}", volume_dirs(&p));
}

#[test]
fn wait_down_project_brings_the_project_down_at_the_first_exit() {
    let p = Project::new("waitd");
    p.write(
        r#"
services:
  job:
    image: {IMAGE}
    command: ["sh", "-c", "sleep 2; exit 3"]
  server:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    p.ok(&["up", "-d"]);
    let o = p.run(&["wait", "--down-project"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "3");
    assert!(p.ps_json().is_empty(), "{:?}", p.ps_json());
    let nets = p.ok(&["network", "ls"]);
    assert!(!nets.contains(&format!("{}_default", p.name)), "{nets}");
}

#[test]
fn up_watch_shows_the_logs_while_syncing() {
    let p = Project::new("upw");
    std::fs::create_dir_all(p.dir.join("src")).unwrap();
    std::fs::write(p.dir.join("src/msg.txt"), "first\n").unwrap();
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /app; while true; do test -f /app/msg.txt && cat /app/msg.txt && rm /app/msg.txt; sleep 0.2; done & wait"]
    network_mode: none
    develop:
      watch:
        - action: sync
          path: ./src
          target: /app
          initial_sync: true
"#,
    );
    let mut up = p
        .cmd()
        .args(["up", "--watch", "-t", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let reader = {
        let out = out.clone();
        let stdout = up.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                out.lock().unwrap().push_str(&format!("{line}\n"));
            }
        })
    };
    let seen = |text: &str| {
        out.lock()
            .unwrap()
            .lines()
            .any(|l| l.starts_with("web-1 ") && l.ends_with(&format!("| {text}")))
    };
    p.wait_until(30, "initial sync shown in the attached logs", || {
        seen("first")
    });
    std::fs::write(p.dir.join("src/msg.txt"), "second\n").unwrap();
    p.wait_until(30, "the synced change shown in the attached logs", || {
        seen("second")
    });
    // SAFETY: SIGINT to our own child, as Ctrl-C would.
    unsafe { libc::kill(up.id() as i32, libc::SIGINT) };
    let status = up.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        p.ps_json().iter().all(|c| c["State"] == "exited"),
        "{:?}",
        p.ps_json()
    );
}

#[test]
fn env_file_raw_format_reaches_the_container_literally() {
    let p = Project::new("raw");
    std::fs::write(
        p.dir.join("app.env"),
        "QUOTED=\"a b\" # kept\nDOLLAR=${HOME}\n",
    )
    .unwrap();
    p.write(
        r#"
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
    env_file:
      - path: ./app.env
        format: raw
"#,
    );
    p.ok(&["up", "-d"]);
    assert_eq!(
        p.exec_ok("app", "echo \"$QUOTED|$DOLLAR\""),
        "\"a b\" # kept|${HOME}\n"
    );
}

#[test]
fn logging_keys_the_engine_ignores_are_named_in_warnings() {
    let p = Project::new("logw");
    p.write(
        r#"
services:
  app:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo still logged; sleep 1000 & wait"]
    network_mode: none
    logging:
      driver: json-file
      options: {max-size: 10m, max-file: "3", compress: "true"}
  quiet:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo not kept; sleep 1000 & wait"]
    network_mode: none
    logging:
      driver: none
"#,
    );
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // Rotation is honoured (no warning); the option the engine lacks is named.
    assert!(
        err.contains("service \"app\": logging.options"),
        "no logging.options warning in:\n{err}"
    );
    assert!(
        !err.contains("max-size") && !err.contains("max-file"),
        "{err}"
    );
    let app = format!("{}-app-1", p.name);
    let inspect: serde_json::Value =
        serde_json::from_str(&p.ok(&["container", "inspect", &app])).unwrap();
    assert_eq!(
        inspect[0]["HostConfig"]["LogConfig"]["Config"],
        serde_json::json!({"max-file": "3", "max-size": "10m"})
    );
    // driver none is honoured: nothing to warn about, nothing kept.
    assert!(!err.contains("logging.driver"), "{err}");
    p.wait_until(10, "app's log line", || {
        p.ok(&["logs", "app"]).contains("still logged")
    });
    let quiet = format!("{}-quiet-1", p.name);
    let inspect = p.ok(&["container", "inspect", &quiet]);
    assert!(inspect.contains(r#""Type": "none""#), "{inspect}");
    // Docker's answer for a driver that keeps nothing; the project's logs skip it.
    let o = p.run(&["container", "logs", &quiet]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
    assert!(!p.ok(&["logs", "quiet"]).contains("not kept"));
}

#[test]
fn a_bad_log_rotation_option_fails_up_naming_the_service() {
    let p = Project::new("logbad");
    p.write(
        r#"
services:
  app:
    image: {IMAGE}
    command: ["true"]
    network_mode: none
    logging:
      options: {max-size: lots}
"#,
    );
    let o = p.run(&["up", "-d"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("\"app\"") && err.contains("max-size=\"lots\""),
        "{err}"
    );
    let left = p.ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "a failed up left {left}");
}

#[test]
fn down_after_the_monitor_died_releases_ports_and_the_network() {
    let p = Project::new("deadmon");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    p.write(&format!(
        r#"
services:
  web:
    image: {{IMAGE}}
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h / & wait"]
    ports: ["127.0.0.1:{port}:80"]
networks:
  default:
    ipam:
      config: [{{subnet: "{{SUBNET}}"}}]
"#
    ));
    p.ok(&["up", "-d"]);
    let ruleset = || {
        String::from_utf8_lossy(
            &std::process::Command::new("nft")
                .args(["list", "ruleset"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    assert!(
        ruleset().contains(&format!("dport {port}")),
        "port published"
    );
    // The monitor dies (OOM, kill -9); the container keeps running.
    let id = p.ok(&["ps", "-q", "web"]).trim().to_string();
    let full = p.ok(&["container", "inspect", "-f", "{{.Id}}", &id]);
    let state = std::fs::read_to_string(
        p.root
            .join("containers")
            .join(full.trim())
            .join("state.json"),
    )
    .unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let monitor = state["monitor_pid"].as_i64().unwrap();
    assert!(monitor > 0, "{state}");
    let st = std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.ok(&["down"]);
    assert!(
        !ruleset().contains(&format!("dport {port}")),
        "DNAT rule left behind:\n{}",
        ruleset()
    );
    let nets = p.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(&p.name), "network left behind: {nets}");
}

#[test]
fn pid_and_ipc_host_and_service_are_honoured_without_warnings() {
    let p = Project::new("pidhost");
    p.write(
        r#"
services:
  agent:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
    pid: host
    ipc: host
  owner:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1002 & wait"]
    network_mode: none
  peer:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
    pid: service:owner
    ipc: service:owner
"#,
    );
    let o = p.run(&["up", "-d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        !err.contains("\"agent\": pid") && !err.contains("\"agent\": ipc"),
        "{err}"
    );
    let procs = p.exec_ok("agent", "ls /proc | grep -c '^[0-9]'");
    let procs: usize = procs.trim().parse().unwrap();
    assert!(
        procs > 4,
        "sees {procs} processes: not the host's PID namespace"
    );
    let ipc = p.exec_ok("agent", "readlink /proc/self/ns/ipc");
    let host = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_eq!(ipc.trim(), host.display().to_string());
    // service:owner: peer sees owner's processes and shares its IPC namespace.
    assert!(p.exec_ok("peer", "ps").contains("sleep 1002"));
    assert_eq!(
        p.exec_ok("peer", "readlink /proc/self/ns/ipc"),
        p.exec_ok("owner", "readlink /proc/self/ns/ipc")
    );
    p.ok(&["down", "-t", "0"]);
}

/// COMPOSE_IGNORE_ORPHANS silences the orphan warning (and cannot be combined with
/// --remove-orphans); COMPOSE_STATUS_STDOUT moves the progress lines to stdout (issue 19).
#[test]
fn compose_ignore_orphans_and_status_stdout() {
    let p = Project::new("orph");
    p.write(
        "services:\n  a:\n    image: {IMAGE}\n    command: [\"sleep\", \"600\"]\n    init: true\n",
    );
    p.ok(&["up", "-d"]);
    p.write(
        "services:\n  b:\n    image: {IMAGE}\n    command: [\"sleep\", \"600\"]\n    init: true\n",
    );
    let warned = p.run(&["up", "-d"]);
    assert!(String::from_utf8_lossy(&warned.stderr).contains("Found orphan containers"));
    let quiet = p
        .cmd()
        .env("COMPOSE_IGNORE_ORPHANS", "true")
        .args(["up", "-d"])
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("orphan"),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let both = p
        .cmd()
        .env("COMPOSE_IGNORE_ORPHANS", "1")
        .args(["up", "-d", "--remove-orphans"])
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be combined"));
    let out = p
        .cmd()
        .env("COMPOSE_STATUS_STDOUT", "true")
        .args(["stop", "-t", "0"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Stopped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Stopped"));
}
