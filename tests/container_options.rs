//! End-to-end: healthchecks, `--init`, `--ulimit`, `--read-only` with `--tmpfs`, hostname,
//! labels and `ps` filters/formats.

mod container_support;

use container_support::{Env, IMAGE, stderr, unique};

#[test]
fn healthcheck_goes_from_starting_to_healthy() {
    let env = Env::new();
    let name = unique("health");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--health-cmd",
        "test -e /tmp/ready",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        IMAGE,
        "sh",
        "-c",
        "sleep 1; touch /tmp/ready; sleep 300",
    ]);
    env.wait_for(&name, "{{.State.Health.Status}}", "unhealthy", 10);
    env.wait_for(&name, "{{.State.Health.Status}}", "healthy", 10);
    let ps = env.ok(&[
        "container",
        "ps",
        "--filter",
        "health=healthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(ps.contains(&name) && ps.contains("(healthy)"), "{ps}");
    env.ok(&["container", "rm", "-f", &name]);
}

#[test]
fn init_ulimit_readonly_hostname_labels() {
    let env = Env::new();
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    assert!(out.starts_with("/sbin/docker-init -- sh"), "{out}");

    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:1024",
        IMAGE,
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "512\n1024\n");
    let o = env.run(&[
        "container",
        "run",
        "--rm",
        "--ulimit",
        "nofile=99999999:99999999",
        IMAGE,
        "true",
    ]);
    assert!(
        stderr(&o).contains("above the host's hard limit"),
        "{}",
        stderr(&o)
    );

    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "--hostname",
        "box1",
        IMAGE,
        "sh",
        "-c",
        "touch /nope 2>/dev/null || echo ro; touch /scratch/yes && echo tmpfs-ok; hostname",
    ]);
    assert_eq!(out, "ro\ntmpfs-ok\nbox1\n");

    let name = unique("labelled");
    env.ok(&[
        "container",
        "create",
        "--name",
        &name,
        "-l",
        "tier=web",
        IMAGE,
        "true",
    ]);
    let ps = env.ok(&[
        "container",
        "ps",
        "-a",
        "--filter",
        "label=tier=web",
        "--format",
        "{{.Names}}|{{.State}}",
    ]);
    assert_eq!(ps.trim(), format!("{name}|created"));
    let ps = env.ok(&["container", "ps", "-a", "--filter", "label=tier=db", "-q"]);
    assert!(ps.trim().is_empty());
    let json = env.ok(&["container", "ps", "-a", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Names"], name.as_str());
    assert_eq!(v["Labels"], "tier=web");
}
