//! End-to-end tests of the compose verbs around a running project: logs -f across restarts,
//! attached up (--exit-code-from, --abort-on-container-exit, Ctrl-C), --wait, restart of
//! dependents, --dry-run of every verb, events, cp/commit/top/ls/images, watch.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::compose::{Project, names};
use common::{stderr, stdout};

#[test]
fn logs_follow_sees_restart_and_new_replicas() {
    let p = Project::new("logs");
    let yaml = r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo hello from $$HOSTNAME round $$ROUND; sleep 1000 & wait"]
    environment: {ROUND: one}
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#;
    p.write(yaml);
    p.ok(&["up", "-d"]);
    let mut follower = p
        .cmd()
        .args(["logs", "-f", "--no-color"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.ok(&["restart", "-t", "2", "web"]);
    p.ok(&["scale", "web=3"]);
    // Wait until the new replicas have written their line.
    p.wait_until(10, "three replicas logging", || {
        let o = p.ok(&["logs", "--no-color"]);
        o.lines().filter(|l| l.contains("hello from")).count() >= 4
    });
    // Re-creation (a changed environment) replaces all three: still followed.
    p.write(&yaml.replace("ROUND: one", "ROUND: two"));
    p.ok(&["up", "-d", "-t", "1", "--scale", "web=3"]);
    p.wait_until(15, "recreated replicas logging", || {
        let o = p.ok(&["logs", "--no-color"]);
        o.lines().filter(|l| l.ends_with("round two")).count() >= 3
    });
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: SIGINT to our own child: the follower stops cleanly.
    unsafe { libc::kill(follower.id() as i32, libc::SIGINT) };
    let status = follower.wait().unwrap();
    let mut out = String::new();
    follower
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "logs -f exit: {status:?}");
    let web1 = out
        .lines()
        .filter(|l| l.starts_with("web-1 | hello from") && l.ends_with("round one"))
        .count();
    assert_eq!(web1, 2, "restart of web-1 not followed:\n{out}");
    for n in 1..=3 {
        assert!(
            out.lines().any(
                |l| l.starts_with(&format!("web-{n} | hello from")) && l.ends_with("round two")
            ),
            "re-created web-{n} not followed:\n{out}"
        );
    }
    assert!(
        out.lines().any(|l| l.starts_with("web-2 | hello from")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("web-3 | hello from")),
        "{out}"
    );

    // Scale back down removes the highest numbers.
    p.ok(&["up", "-d", "-t", "1", "--scale", "web=1"]);
    assert_eq!(names(&p), [format!("{}-web-1", p.name)]);
}

#[test]
fn exit_code_from_and_abort_on_container_exit() {
    let p = Project::new("exit");
    p.write(
        r#"
services:
  job:
    image: {IMAGE}
    command: ["sh", "-c", "sleep 0.5; echo job done; exit 7"]
  server:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let o = p.run(&["up", "--exit-code-from", "job", "-t", "2"]);
    assert_eq!(o.status.code(), Some(7), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("job-1 ") && l.ends_with("| job done")),
        "{out}"
    );
    assert!(out.contains("job-1 exited with code 7"), "{out}");
    // Everything was stopped.
    assert!(
        p.ps_json().iter().all(|c| c["State"] == "exited"),
        "{:?}",
        p.ps_json()
    );

    p.ok(&["rm", "-f"]);
    let o = p.run(&["up", "--abort-on-container-exit", "-t", "2"]);
    assert_eq!(o.status.code(), Some(7), "stderr: {}", stderr(&o));
}

#[test]
fn attached_up_stops_on_ctrl_c_and_wait_waits_for_health() {
    let p = Project::new("att");
    p.write(
        r#"
services:
  a:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo a started; sleep 1000 & wait"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#,
    );
    let mut up = p
        .cmd()
        .args(["up", "-t", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_until(15, "a running", || {
        p.ps_json().iter().any(|c| c["State"] == "running")
    });
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: SIGINT to our own child, as Ctrl-C would.
    unsafe { libc::kill(up.id() as i32, libc::SIGINT) };
    let status = up.wait().unwrap();
    let mut out = String::new();
    up.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(status.code(), Some(130), "stdout: {out}");
    assert!(out.contains("a-1 | a started"), "{out}");
    assert!(
        p.ps_json().iter().all(|c| c["State"] == "exited"),
        "{:?}",
        p.ps_json()
    );
    let logs = p.ok(&["logs", "--no-log-prefix"]);
    assert!(logs.contains("got TERM"), "graceful stop expected: {logs}");

    let o = p.run(&["up", "-d", "--wait", "--wait-timeout", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ps = p.ps_json();
    assert_eq!(ps[0]["Health"], "healthy", "{ps:?}");
}

#[test]
fn restart_of_a_dependency_restarts_dependents_with_restart_true() {
    let p = Project::new("rst");
    p.write(
        r#"
services:
  db:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
  api:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo api start; sleep 1000 & wait"]
    network_mode: none
    depends_on:
      db: {condition: service_started, restart: true}
  other:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; echo other start; sleep 1000 & wait"]
    network_mode: none
    depends_on: [db]
"#,
    );
    p.ok(&["up", "-d"]);
    p.ok(&["restart", "-t", "1", "db"]);
    p.wait_until(10, "api restarted", || {
        p.ok(&["logs", "api"]).matches("api start").count() == 2
    });
    assert_eq!(p.ok(&["logs", "other"]).matches("other start").count(), 1);
}

#[test]
fn dry_run_changes_nothing() {
    let p = Project::new("dry");
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
"#,
    );
    p.ok(&["up", "-d"]);
    for args in [
        &["--dry-run", "down", "-v"][..],
        &["--dry-run", "stop"],
        &["--dry-run", "kill"],
        &["--dry-run", "rm", "-f", "-s"],
        &["--dry-run", "run", "--rm", "web", "true"],
    ] {
        let out = p.ok(args);
        assert!(out.contains("container "), "{args:?}: {out}");
    }
    let ps = p.ps_json();
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0]["State"], "running");
}

#[test]
fn events_json_reports_start_and_die() {
    let p = Project::new("ev");
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
"#,
    );
    p.ok(&["up", "-d"]);
    let mut events = p
        .cmd()
        .args(["events", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.ok(&["restart", "-t", "1"]);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: SIGINT to our own child.
    unsafe { libc::kill(events.id() as i32, libc::SIGINT) };
    events.wait().unwrap();
    let mut out = String::new();
    events
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let actions: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json event"))
        .map(|v| {
            assert_eq!(v["service"], "web");
            v["action"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(actions, ["die", "start"], "{out}");
}

#[test]
fn cp_commit_top_ls_images() {
    let p = Project::new("misc");
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    network_mode: none
"#,
    );
    p.ok(&["up", "-d"]);
    let src = p.dir.join("hello.txt");
    std::fs::write(&src, "copied\n").unwrap();
    p.ok(&["cp", src.to_str().unwrap(), "web:/hello.txt"]);
    assert_eq!(p.exec_ok("web", "cat /hello.txt"), "copied\n");
    let back = p.dir.join("back.txt");
    p.ok(&["cp", "web:/hello.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied\n");

    let top = p.ok(&["top"]);
    assert!(top.contains("sleep 1000"), "{top}");
    let ls = p.ok(&["ls", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|x| x["Name"] == p.name.as_str() && x["Status"] == "running(1)"),
        "{ls}"
    );
    let images = p.ok(&["images"]);
    assert!(
        images.contains("busybox") && images.contains("compose"),
        "{images}"
    );

    let tag = format!("{}-snap:1", p.name);
    p.ok(&["commit", "web", &tag]);
    let img = p.ok(&["image", "ls"]);
    assert!(img.contains(&format!("{}-snap", p.name)), "{img}");
}

#[test]
fn watch_syncs_changed_files_into_the_container() {
    let p = Project::new("watch");
    std::fs::create_dir_all(p.dir.join("src/sub")).unwrap();
    std::fs::write(p.dir.join("src/a.txt"), "one\n").unwrap();
    std::fs::write(p.dir.join("src/skip.tmp"), "no\n").unwrap();
    p.write(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /app; sleep 1000 & wait"]
    network_mode: none
    develop:
      watch:
        - action: sync
          path: ./src
          target: /app
          initial_sync: true
          ignore: ["*.tmp"]
"#,
    );
    let mut watch = p
        .cmd()
        .args(["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_until(20, "initial sync", || {
        p.run(&["exec", "-T", "web", "cat", "/app/a.txt"])
            .status
            .success()
    });
    std::fs::write(p.dir.join("src/sub/new.txt"), "fresh\n").unwrap();
    std::fs::write(p.dir.join("src/skip2.tmp"), "no\n").unwrap();
    p.wait_until(20, "new file synced", || {
        p.run(&["exec", "-T", "web", "cat", "/app/sub/new.txt"])
            .status
            .success()
    });
    std::fs::remove_file(p.dir.join("src/a.txt")).unwrap();
    p.wait_until(20, "deleted file removed", || {
        !p.run(&["exec", "-T", "web", "test", "-e", "/app/a.txt"])
            .status
            .success()
    });
    // SAFETY: SIGINT to our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let status = watch.wait().unwrap();
    assert!(status.success());
    assert_eq!(p.exec_ok("web", "cat /app/sub/new.txt"), "fresh\n");
    assert_eq!(p.exec_ok("web", "ls /app | grep -c tmp || true"), "0\n");
}
