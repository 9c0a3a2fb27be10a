//! End-to-end: `cp` both ways (running and stopped, never escaping through a container
//! symlink), `diff`, `commit` then run the new image, `export`, `top`, `stats`, `pause`.

mod common;

use common::container::{Env, IMAGE};
use common::{stderr, stdout, unique};

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

/// `cp` into and out of volumes and bind mounts lands in them (running and stopped), `-L`
/// follows a symlink source (resolved inside the container, even through a volume), `-a`
/// keeps owners, `:ro` mounts refuse writes.
#[test]
fn cp_volumes_follow_link_and_archive() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let name = unique("cpvol");
    let vol = unique("cpvol-data");
    let rovol = unique("cpvol-ro");
    env.ok(&["volume", "create", &vol]);
    env.ok(&["volume", "create", &rovol]);
    let host = env.tmp.path().join("cphost");
    let bind = env.tmp.path().join("bindsrc");
    let back = env.tmp.path().join("cpback");
    for d in [&host, &bind, &back] {
        std::fs::create_dir_all(d).unwrap();
    }
    // A host file the container must never reach through its own links.
    let secret_dir = env.tmp.path().join("secret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("s"), "host secret\n").unwrap();
    let input = host.join("in.txt");
    std::fs::write(&input, "into volume\n").unwrap();
    std::os::unix::fs::chown(&input, Some(1234), Some(1234)).unwrap();
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{vol}:/data"),
        "-v",
        &format!("{}:/bind", bind.display()),
        "-v",
        &format!("{rovol}:/ro:ro"),
        IMAGE,
        "sleep",
        "300",
    ]);
    let ctr = |p: &str| format!("{name}:{p}");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();

    // Running: into the named volume and the bind mount.
    env.ok(&["container", "cp", &path(&input), &ctr("/data/")]);
    env.ok(&[
        "container",
        "cp",
        "-a",
        &path(&input),
        &ctr("/bind/kept.txt"),
    ]);
    assert_eq!(
        std::fs::read_to_string(bind.join("kept.txt")).unwrap(),
        "into volume\n"
    );
    assert_eq!(
        std::fs::metadata(bind.join("kept.txt")).unwrap().uid(),
        1234
    );
    let out = env.ok(&[
        "container",
        "exec",
        &name,
        "sh",
        "-c",
        "cat /data/in.txt; stat -c %u:%g /data/in.txt",
    ]);
    assert_eq!(out, "into volume\n0:0\n");
    let o = env.run(&["container", "cp", &path(&input), &ctr("/ro/")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));

    // Out of the volume, and -L through links planted in the container.
    env.ok(&[
        "container",
        "exec",
        &name,
        "sh",
        "-c",
        &format!(
            "echo from volume > /data/out.txt; ln -s /data/out.txt /tmp/lnk; \
             ln -s {} /data/esc; ln -s ../../../../../../{} /data/up",
            secret_dir.join("s").display(),
            secret_dir.join("s").display()
        ),
    ]);
    env.ok(&["container", "cp", &ctr("/data/out.txt"), &path(&back)]);
    assert_eq!(
        std::fs::read_to_string(back.join("out.txt")).unwrap(),
        "from volume\n"
    );
    let check_links = |tag: &str| {
        let plain = back.join(format!("plain-{tag}"));
        env.ok(&["container", "cp", &ctr("/tmp/lnk"), &path(&plain)]);
        assert!(
            std::fs::symlink_metadata(&plain)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let followed = back.join(format!("followed-{tag}"));
        env.ok(&["container", "cp", "-L", &ctr("/tmp/lnk"), &path(&followed)]);
        assert_eq!(std::fs::read_to_string(&followed).unwrap(), "from volume\n");
        for l in ["/data/esc", "/data/up"] {
            let dest = back.join(format!("esc-{tag}"));
            let o = env.run(&["container", "cp", "-L", &ctr(l), &path(&dest)]);
            assert!(!o.status.success(), "{tag}: cp -L {l} succeeded");
            assert!(
                std::fs::read_to_string(&dest).map_or(true, |s| !s.contains("secret")),
                "{tag}: cp -L {l} copied a host file"
            );
        }
    };
    check_links("running");

    // A tar stream on stdin lands in the volume, owned by root without -a.
    let tar = std::process::Command::new("tar")
        .args(["--owner=1234", "--group=1234", "-C"])
        .arg(&host)
        .args(["-cf", "-", "in.txt"])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let mut child = env
        .cmd()
        .args(["container", "cp", "-", &ctr("/data/")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &tar.stdout).unwrap();
    assert!(child.wait().unwrap().success());
    let owner = env.ok(&[
        "container",
        "exec",
        &name,
        "stat",
        "-c",
        "%u:%g",
        "/data/in.txt",
    ]);
    assert_eq!(owner, "0:0\n");
    // `SRC/.` copies a directory's content; a file cannot create a missing `DEST/`.
    let contents = back.join("contents");
    env.ok(&["container", "cp", &ctr("/data/."), &path(&contents)]);
    assert_eq!(
        std::fs::read_to_string(contents.join("out.txt")).unwrap(),
        "from volume\n"
    );
    let o = env.run(&[
        "container",
        "cp",
        &ctr("/data/out.txt"),
        &format!("{}/", back.join("missing").display()),
    ]);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    // A name overlayfs would take for a whiteout is refused, not turned into a deletion.
    std::fs::write(host.join(".wh.out.txt"), "x").unwrap();
    let o = env.run(&[
        "container",
        "cp",
        &path(&host.join(".wh.out.txt")),
        &ctr("/tmp/"),
    ]);
    assert!(stderr(&o).contains("not supported yet"), "{}", stderr(&o));

    // Stopped: the same paths still reach the volume and the bind mount.
    env.ok(&["container", "stop", "-t", "0", &name]);
    check_links("stopped");
    std::fs::write(host.join("late.txt"), "while stopped\n").unwrap();
    env.ok(&[
        "container",
        "cp",
        &path(&host.join("late.txt")),
        &ctr("/data/late.txt"),
    ]);
    env.ok(&[
        "container",
        "cp",
        &path(&host.join("late.txt")),
        &ctr("/bind/"),
    ]);
    assert!(bind.join("late.txt").exists());
    let o = env.run(&["container", "cp", &path(&input), &ctr("/ro/")]);
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
    env.ok(&["container", "cp", &ctr("/bind/kept.txt"), &path(&back)]);
    // Without -a the copy on the host belongs to the caller; with -a it keeps its owner.
    assert_eq!(std::fs::metadata(back.join("kept.txt")).unwrap().uid(), 0);
    let kept_a = back.join("kept-a.txt");
    env.ok(&[
        "container",
        "cp",
        "-a",
        &ctr("/bind/kept.txt"),
        &path(&kept_a),
    ]);
    assert_eq!(std::fs::metadata(&kept_a).unwrap().uid(), 1234);
    env.ok(&["container", "rm", &name]);
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/v"),
        IMAGE,
        "cat",
        "/v/in.txt",
        "/v/late.txt",
    ]);
    assert_eq!(out, "into volume\nwhile stopped\n");
}

/// Removes the test's containers, then its network and firewall table (Env's own guard
/// only removes containers).
struct NetGuard<'a> {
    env: &'a Env,
    network: String,
    containers: Vec<String>,
}

impl Drop for NetGuard<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.env.run(&["container", "rm", "-f", c]);
        }
        let _ = self.env.run(&["network", "rm", &self.network]);
        let _ = std::process::Command::new("nft")
            .args([
                "delete",
                "table",
                "inet",
                &rcompose_net::api::table_name(&self.env.root),
            ])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Bytes of a docker size (`1.2kB`, `648B`).
fn parse_size(s: &str) -> f64 {
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '+'))
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unexpected unit {other:?} in {s:?}"),
    };
    n.parse::<f64>()
        .unwrap_or_else(|_| panic!("not a size: {s:?}"))
        * mult
}

/// `NetIO`/`BlockIO` cells: `<size> / <size>`.
fn io_pair(cell: &serde_json::Value) -> (f64, f64) {
    let s = cell.as_str().expect("string cell");
    let (a, b) = s
        .split_once(" / ")
        .unwrap_or_else(|| panic!("not `a / b`: {s:?}"));
    (parse_size(a), parse_size(b))
}

#[test]
fn stats_net_and_block_io() {
    let env = Env::new();
    let net = unique("statsnet");
    let (a, b) = (unique("stats-a"), unique("stats-b"));
    let _guard = NetGuard {
        env: &env,
        network: net.clone(),
        containers: vec![a.clone(), b.clone()],
    };
    let run = |args: &[&str]| {
        let o = env
            .cmd()
            .env("RCOMPOSE_DNS_UPSTREAM", "none")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    run(&["network", "create", "--subnet", "10.247.31.0/24", &net]);
    for (name, ip) in [(&a, "10.247.31.10"), (&b, "10.247.31.11")] {
        run(&[
            "container",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &net,
            "--ip",
            ip,
            IMAGE,
            "sleep",
            "300",
        ]);
    }
    let sample = || -> serde_json::Value {
        let out = run(&["container", "stats", "--no-stream", "--format", "json", &a]);
        serde_json::from_str(out.lines().next().expect("one line")).expect("json")
    };
    let before = sample();
    let (rx0, tx0) = io_pair(&before["NetIO"]);
    io_pair(&before["BlockIO"]);
    run(&[
        "container",
        "exec",
        &b,
        "ping",
        "-c",
        "5",
        "-i",
        "0.2",
        "-s",
        "1000",
        "10.247.31.10",
    ]);
    let after = sample();
    let (rx1, tx1) = io_pair(&after["NetIO"]);
    // Five 1 kB echo requests in, five replies out.
    assert!(
        rx1 >= rx0 + 4000.0 && tx1 >= tx0 + 4000.0,
        "NET I/O did not grow with the traffic: {before} → {after}"
    );
    let line = run(&[
        "container",
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}: {{.NetIO}}",
        &a,
    ]);
    assert!(
        line.starts_with(&format!("{a}: ")) && line.contains(" / "),
        "{line}"
    );
    // The table shows the same columns.
    let table = run(&["container", "stats", "--no-stream", &a]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("NET I/O") && header.contains("BLOCK I/O"),
        "{table}"
    );
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains(after["BlockIO"].as_str().unwrap()) && row.contains(" / "),
        "{table}"
    );
}

/// A `--read-only` container refuses copies into its root filesystem, running or stopped,
/// but its volumes stay writable, as with docker.
#[test]
fn cp_read_only_root_but_writable_volume() {
    let env = Env::new();
    let name = unique("cpro");
    let vol = unique("cpro-data");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--read-only",
        "-v",
        &format!("{vol}:/data"),
        IMAGE,
        "sleep",
        "300",
    ]);
    let file = env.tmp.path().join("f.txt");
    std::fs::write(&file, "x\n").unwrap();
    let file = file.to_str().unwrap();
    for state in ["running", "stopped"] {
        let o = env.run(&["container", "cp", file, &format!("{name}:/tmp/")]);
        assert!(
            stderr(&o).contains("the container rootfs is marked read-only"),
            "{state}: {}",
            stderr(&o)
        );
        env.ok(&[
            "container",
            "cp",
            file,
            &format!("{name}:/data/{state}.txt"),
        ]);
        if state == "running" {
            env.ok(&["container", "stop", "-t", "0", &name]);
        }
    }
    env.ok(&["container", "rm", &name]);
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/v"),
        IMAGE,
        "ls",
        "/v",
    ]);
    assert_eq!(out, "running.txt\nstopped.txt\n");
}

#[test]
fn cp_never_replaces_a_directory_by_a_file_or_a_file_by_a_directory() {
    let env = Env::new();
    let name = unique("cpover");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /app/config && echo keep > /app/config/a && echo f > /app/plain; sleep 300",
    ]);
    let wait = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env
        .run(&["container", "exec", &name, "test", "-f", "/app/plain"])
        .status
        .code()
        != Some(0)
    {
        assert!(
            std::time::Instant::now() < wait,
            "container did not prepare /app"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let host = env.tmp.path().join("over");
    std::fs::create_dir_all(host.join("plain")).unwrap();
    std::fs::write(host.join("config"), "a file\n").unwrap();

    // Each copy is refused with docker's message and what was there stays.
    let dest = format!("{name}:/app/");
    let refused = |src: &str, message: &str, kept: &str, content: &str| {
        let o = env.run(&["container", "cp", host.join(src).to_str().unwrap(), &dest]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(message), "{}", stderr(&o));
        assert_eq!(env.ok(&["container", "exec", &name, "cat", kept]), content);
    };
    // A file named like a directory; a directory named like a file.
    refused(
        "config",
        "cannot overwrite directory",
        "/app/config/a",
        "keep\n",
    );
    refused(
        "plain",
        "cannot overwrite non-directory",
        "/app/plain",
        "f\n",
    );
    env.ok(&["container", "rm", "-f", &name]);
}
