//! End-to-end: `cp` both ways (running and stopped, never escaping through a container
//! symlink), `diff`, `commit` then run the new image, `export`, `top`, `stats`, `pause`.

mod container_support;

use container_support::{Env, IMAGE, stderr, stdout, unique};

#[test]
fn cp_both_ways_and_never_out_of_the_root() {
    let env = Env::new();
    let name = unique("files");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sleep",
        "300",
    ]);
    let host = env.tmp.path().join("h");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("dir/sub/f.txt"), "nested\n").unwrap();
    std::fs::write(host.join("one.txt"), "one\n").unwrap();

    env.ok(&[
        "container",
        "cp",
        host.join("one.txt").to_str().unwrap(),
        &format!("{name}:/tmp/"),
    ]);
    env.ok(&[
        "container",
        "cp",
        host.join("dir").to_str().unwrap(),
        &format!("{name}:/tmp/dir"),
    ]);
    let out = env.ok(&[
        "container",
        "exec",
        &name,
        "cat",
        "/tmp/one.txt",
        "/tmp/dir/sub/f.txt",
    ]);
    assert_eq!(out, "one\nnested\n");

    // A symlink planted in the container pointing at a host path is resolved inside it.
    env.ok(&[
        "container",
        "exec",
        &name,
        "sh",
        "-c",
        "echo secret > /root/s; ln -s /root /tmp/link; ln -s /etc/passwd /tmp/pw",
    ]);
    let back = env.tmp.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    env.ok(&[
        "container",
        "cp",
        &format!("{name}:/tmp/link/s"),
        back.join("s").to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(back.join("s")).unwrap(), "secret\n");
    env.ok(&[
        "container",
        "cp",
        &format!("{name}:/tmp/pw"),
        back.to_str().unwrap(),
    ]);
    assert!(
        std::fs::symlink_metadata(back.join("pw"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Writing through the container's symlink lands in the container, not on the host.
    let marker = env.tmp.path().join("marker-dir");
    std::fs::create_dir_all(&marker).unwrap();
    env.ok(&[
        "container",
        "exec",
        &name,
        "ln",
        "-s",
        marker.to_str().unwrap(),
        "/tmp/evil",
    ]);
    // (It fails: the link's target does not exist inside the container.)
    let _ = env.run(&[
        "container",
        "cp",
        host.join("one.txt").to_str().unwrap(),
        &format!("{name}:/tmp/evil/"),
    ]);
    assert!(
        !marker.join("one.txt").exists(),
        "cp followed a container symlink onto the host"
    );

    let o = env.run(&[
        "container",
        "cp",
        &format!("{name}:/no/such"),
        back.to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("Could not find the file /no/such"),
        "{}",
        stderr(&o)
    );

    // Stopped containers too, and tar streams with `-`.
    env.ok(&["container", "stop", "-t", "0", &name]);
    env.ok(&[
        "container",
        "cp",
        &format!("{name}:/tmp/one.txt"),
        back.join("again.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(back.join("again.txt")).unwrap(),
        "one\n"
    );
    let tar = env.run(&["container", "cp", &format!("{name}:/tmp/dir"), "-"]);
    assert!(tar.status.success());
    assert!(tar.stdout.windows(7).any(|w| w == b"nested\n"));
}

#[test]
fn diff_commit_run_export() {
    let env = Env::new();
    let name = unique("committer");
    env.ok(&[
        "container",
        "run",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "echo baked > /baked.txt; rm /etc/group",
    ]);
    let diff = env.ok(&["container", "diff", &name]);
    assert!(diff.contains("A /baked.txt"), "{diff}");
    assert!(diff.contains("D /etc/group"), "{diff}");
    assert!(
        !diff.contains("/etc/hosts"),
        "runtime mount points leaked into diff: {diff}"
    );

    let tag = format!("committed-{}:v1", std::process::id());
    let id = env.ok(&[
        "container",
        "commit",
        "-m",
        "bake",
        "-c",
        "CMD [\"cat\", \"/baked.txt\"]",
        &name,
        &tag,
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = env.ok(&["container", "run", "--rm", &tag]);
    assert_eq!(out, "baked\n");
    let o = env.run(&["container", "run", "--rm", &tag, "cat", "/etc/group"]);
    assert!(!o.status.success(), "the deletion was not committed");

    let export = env.tmp.path().join("fs.tar");
    env.ok(&["container", "export", "-o", export.to_str().unwrap(), &name]);
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&export)
        .output()
        .unwrap();
    let listing = stdout(&listing);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_end_matches('/') == "baked.txt"),
        "{listing}"
    );
    assert!(listing.lines().any(|l| l.starts_with("bin/busybox")));

    env.ok(&["container", "rm", &name]);
    let o = env.run(&["container", "commit", &name]);
    assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));
}

#[test]
fn top_stats_pause() {
    let env = Env::new();
    let name = unique("watched");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--memory",
        "64m",
        IMAGE,
        "sleep",
        "300",
    ]);
    let top = env.ok(&["container", "top", &name]);
    assert!(top.contains("sleep 300"), "{top}");
    let stats = env.ok(&[
        "container",
        "stats",
        "--no-stream",
        "--format",
        "json",
        &name,
    ]);
    let v: serde_json::Value = serde_json::from_str(stats.lines().next().unwrap()).unwrap();
    assert_eq!(v["Name"], name.as_str());
    assert_eq!(v["PIDs"], "1");
    assert!(
        v["MemUsage"].as_str().unwrap().ends_with("/ 64.00MiB"),
        "{v}"
    );
    env.ok(&["container", "pause", &name]);
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "paused");
    let state = std::fs::read_to_string(format!(
        "/proc/{}/status",
        env.inspect(&name, "{{.State.Pid}}")
    ))
    .unwrap();
    assert!(
        state
            .lines()
            .any(|l| l.starts_with("State:") && (l.contains("D") || l.contains("S")))
    );
    env.ok(&["container", "unpause", &name]);
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "running");
    env.ok(&["container", "rename", &name, &format!("{name}-2")]);
    env.ok(&["container", "rm", "-f", &format!("{name}-2")]);
}
