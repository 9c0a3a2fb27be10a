//! End-to-end: `rcompose container run` and the container lifecycle, as root, against the
//! real kernel, with the FROM-scratch busybox image.

mod common;

use common::container::{Env, IMAGE};
use common::{stderr, stdout, unique};

#[test]
fn exit_codes_env_workdir_user_propagate() {
    let env = Env::new();
    let o = env.run(&["container", "run", "--rm", IMAGE, "sh", "-c", "exit 42"]);
    assert_eq!(o.status.code(), Some(42), "stderr: {}", stderr(&o));

    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "-e",
        "GREETING=hi there",
        "-w",
        "/var/www",
        "-u",
        "nobody",
        IMAGE,
        "sh",
        "-c",
        "echo \"$GREETING\"; pwd; id -u; id -g",
    ]);
    assert_eq!(out, "hi there\n/var/www\n65534\n65534\n");

    // Numeric ids need no passwd entry; a missing workdir is created.
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "-u",
        "1234:4321",
        "-w",
        "/made/here",
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g; pwd",
    ]);
    assert_eq!(out, "1234\n4321\n/made/here\n");

    // -i forwards our stdin (and its end) to the container.
    let o = env
        .cmd()
        .args([
            "container",
            "run",
            "-i",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "cat; echo done",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"through stdin\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(stdout(&o), "through stdin\ndone\n");
    let o = env.run(&["container", "run", "--rm", "-u", "ghost", IMAGE, "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unable to find user ghost"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn security_defaults_fds_caps_masked_paths() {
    let env = Env::new();
    let script = "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; \
                  grep CapInh /proc/self/status; grep CapBnd /proc/self/status; \
                  wc -c < /proc/timer_list; [ -s /proc/kcore ] && echo kcore-visible; \
                  echo x > /proc/sys/kernel/hostname 2>/dev/null || echo sys-ro";
    let out = env.ok(&["container", "run", "--rm", IMAGE, "sh", "-c", script]);
    let lines: Vec<&str> = out.lines().collect();
    // 0-2 plus the fd `ls` itself opens on the directory.
    assert_eq!(lines[0].trim(), "0 1 2 3", "fds: {out}");
    assert_eq!(lines[1], "CapInh:\t0000000000000000");
    // Docker's 14 default capabilities.
    assert_eq!(lines[2], "CapBnd:\t00000000a80425fb");
    assert_eq!(lines[3].trim(), "0", "/proc/timer_list must be masked");
    assert!(!out.contains("kcore-visible"));
    assert!(out.contains("sys-ro"));

    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        IMAGE,
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert_eq!(out.trim(), "CapEff:\t0000000000001000");
    let o = env.run(&[
        "container",
        "run",
        "--rm",
        "--cap-add",
        "FLY",
        IMAGE,
        "true",
    ]);
    assert!(stderr(&o).contains("FLY"), "{}", stderr(&o));

    // --privileged: every capability this host allows.
    let host_bnd = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .unwrap()
        .replace("CapBnd:", "CapEff:");
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--privileged",
        IMAGE,
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert_eq!(out.trim(), host_bnd);
}

/// Where `/` is a shared mount (systemd's default), a container's root file system sits under
/// a shared mount. Its start must still pivot into it (the kernel refuses to under a shared
/// parent), and what it mounts inside must not propagate back to the host. The runtime makes
/// every mount of the container's namespace a slave before it looks for a shared parent.
#[test]
fn starts_under_a_shared_mount_and_propagates_nothing_back() {
    let tmp = tempfile::Builder::new()
        .prefix("rc-shared-")
        .tempdir()
        .unwrap();
    let base = tmp.path().join("m");
    std::fs::create_dir_all(&base).unwrap();
    // The state and run roots live on a shared tmpfs; Env's guard removes the containers and
    // unmounts everything under the temporary directory, even when the test fails.
    let env = Env {
        root: base.join("root"),
        run_root: base.join("run"),
        tmp,
    };
    for args in [&["-t", "tmpfs", "rc-shared"][..], &["--make-shared"][..]] {
        let o = std::process::Command::new("mount")
            .args(args)
            .arg(&base)
            .output()
            .unwrap();
        assert!(o.status.success(), "mount {args:?}: {}", stderr(&o));
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(base.to_str().unwrap()))
        .expect("the test's mount");
    assert!(line.contains(" shared:"), "not a shared mount: {line}");

    common::busybox::busybox_image(std::path::Path::new(common::BIN), &env.root, IMAGE);
    let data = env.tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "hello\n").unwrap();
    let vol = format!("{}:/data", data.display());
    let name = unique("shared");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-v",
        &vol,
        IMAGE,
        "sleep",
        "30",
    ]);
    assert_eq!(
        env.ok(&["container", "exec", &name, "cat", "/data/f"]),
        "hello\n"
    );
    // On the host: the container's root (and its namespace file), none of its own mounts.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let inside: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.contains("/merged/"))
        .collect();
    env.ok(&["container", "rm", "-f", &name]);
    assert!(
        inside.is_empty(),
        "the container's mounts reached the host: {inside:?}"
    );
}

#[test]
fn rm_leaves_no_mount_cgroup_or_directory() {
    let env = Env::new();
    let name = unique("gone");
    env.ok(&["container", "run", "--rm", "--name", &name, IMAGE, "true"]);
    // Gone for every command when `run` returns; its trees are deleted right after.
    let o = env.run(&["container", "inspect", &name]);
    assert!(!o.status.success());
    assert_eq!(env.ok(&["container", "ps", "-aq"]), "");
    let entries = || {
        let mut left: Vec<String> = vec![];
        for base in [env.root.join("containers"), env.run_root.join("containers")] {
            for e in std::fs::read_dir(base).into_iter().flatten().flatten() {
                left.push(e.path().display().to_string());
            }
        }
        left
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !entries().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        entries(),
        Vec::<String>::new(),
        "container directory left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(env.tmp.path().to_str().unwrap()),
        "mount left behind"
    );
    // No cgroup left for any container of this root.
    for ctl in ["memory", "pids", "cpu", ""] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(ctl)
            .join("rcompose");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                assert!(
                    !env.container_dir(&id).exists() || id.len() != 64,
                    "cgroup {id} left behind"
                );
            }
        }
    }
}

#[test]
fn detached_logs_follow_and_stop_grace() {
    let env = Env::new();
    let name = unique("ticker");
    let id = env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; echo oops >&2; sleep 0.2; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    // -f returns once the container exits, with every line.
    let o = env.run(&["container", "logs", "-f", &name]);
    assert_eq!(stdout(&o), "line 1\nline 2\nline 3\n");
    assert_eq!(stderr(&o), "oops\noops\noops\n");
    // --tail counts entries of both streams, as docker does.
    let o = env.run(&["container", "logs", "--tail", "2", &name]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("line 3\n", "oops\n")
    );
    // The log file is docker's json-file format.
    let log = std::fs::read_to_string(
        env.container_dir(id.trim())
            .join(format!("{}-json.log", id.trim())),
    )
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "line 1\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    env.wait_for(&name, "{{.State.Status}}", "exited", 10);

    // A PID 1 that ignores SIGTERM is killed after the grace period.
    let stubborn = unique("stubborn");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &stubborn,
        IMAGE,
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.1; done",
    ]);
    let ps = env.ok(&["container", "ps", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.contains(&format!("{stubborn} running")), "{ps}");
    env.ok(&["container", "stop", "-t", "1", &stubborn]);
    assert_eq!(env.inspect(&stubborn, "{{.State.ExitCode}}"), "137");
    let ps = env.ok(&["container", "ps", "-q"]);
    assert!(ps.trim().is_empty(), "{ps}");
    env.ok(&["container", "rm", &stubborn, &name]);
}

#[test]
fn exec_runs_in_the_container_and_returns_its_code() {
    let env = Env::new();
    let name = unique("execd");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "FROM_RUN=1",
        IMAGE,
        "sleep",
        "300",
    ]);
    let o = env.run(&[
        "container",
        "exec",
        &name,
        "sh",
        "-c",
        "echo $FROM_RUN; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stdout(&o), "1\n");
    let out = env.ok(&[
        "container",
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "-e",
        "X=y",
        &name,
        "sh",
        "-c",
        "id -u; pwd; echo $X; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(out, "65534\n/tmp\ny\nsleep 300 ");
    let o = env
        .cmd()
        .args(["container", "exec", "-i", &name, "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"piped input\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(stdout(&o), "piped input\n");
    env.ok(&["container", "kill", &name]);
    let o = env.run(&["container", "exec", &name, "true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
}

#[test]
fn restart_on_failure_three_times() {
    let env = Env::new();
    let name = unique("flaky");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--restart",
        "on-failure:3",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "echo attempt; exit 3",
    ]);
    env.wait_for(&name, "{{.State.Status}} {{.RestartCount}}", "exited 3", 30);
    assert_eq!(env.inspect(&name, "{{.State.ExitCode}}"), "3");
    let o = env.run(&["container", "logs", &name]);
    assert_eq!(stdout(&o).matches("attempt").count(), 4);
}

#[test]
fn killed_monitor_leaves_container_running_and_manageable() {
    let env = Env::new();
    let name = unique("orphan");
    let id = env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sleep",
        "300",
    ]);
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.container_dir(id.trim()).join("state.json")).unwrap(),
    )
    .unwrap();
    let monitor = state["monitor_pid"].as_i64().unwrap() as i32;
    let pid = state["pid"].as_i64().unwrap() as i32;
    assert!(monitor > 0 && pid > 0);
    // SAFETY: signalling the monitor this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let ps = env.ok(&["container", "ps", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.contains(&format!("{name} running")), "{ps}");
    env.ok(&["container", "stop", "-t", "1", &name]);
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "exited");
    env.ok(&["container", "rm", &name]);
    assert!(!env.container_dir(id.trim()).exists());
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing() {
    let env = Env::new();
    let name = unique("dup");
    env.ok(&["container", "create", "--name", &name, IMAGE, "true"]);
    let o = env.run(&["container", "create", "--name", &name, IMAGE, "true"]);
    assert!(
        stderr(&o).contains("is already in use by container"),
        "{}",
        stderr(&o)
    );
    let typo = format!("{}x", name);
    let o = env.run(&["container", "start", &typo]);
    assert!(stderr(&o).contains("did you mean"), "{}", stderr(&o));
    let o = env.run(&["container", "run", IMAGE, "/no/such/binary"]);
    assert!(!o.status.success());
    let o = env.run(&[
        "container",
        "run",
        "--name",
        "bad-mount",
        "--mount",
        "type=bind,source=/no/such/dir,target=/x",
        IMAGE,
        "true",
    ]);
    assert!(
        stderr(&o).contains("bind source path does not exist"),
        "{}",
        stderr(&o)
    );
    let all = env.ok(&["container", "ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), name, "a failed run left a container behind");
    // A missing image is pulled, as docker does; from a closed loopback port (no lookup
    // leaves the machine) that fails with docker's exit code for engine errors.
    let o = env.run(&[
        "container",
        "run",
        "--rm",
        "127.0.0.1:1/nosuchimage:latest",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Unable to find image '127.0.0.1:1/nosuchimage:latest' locally"),
        "{}",
        stderr(&o)
    );
    let o = env.run(&[
        "container",
        "run",
        "--pull=never",
        "--rm",
        "nosuchimage:latest",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("--pull never"), "{}", stderr(&o));
}

#[test]
fn memory_limit_oom_kills_and_pids_limit_holds() {
    let env = Env::new();
    let o = env.run(&[
        "container",
        "run",
        "--name",
        "oom",
        "--memory",
        "32m",
        IMAGE,
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    assert_eq!(o.status.code(), Some(137), "stderr: {}", stderr(&o));
    assert_eq!(env.inspect("oom", "{{.State.OOMKilled}}"), "true");

    let name = unique("forky");
    let id = env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--pids-limit",
        "32",
        IMAGE,
        "sh",
        "-c",
        // The inner shell forks until the limit refuses (and then dies); PID 1 stays.
        "sh -c 'while true; do sleep 30 & done' 2>/dev/null; exec sleep 300",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let id = id.trim();
    let current = [
        format!("/sys/fs/cgroup/pids/rcompose/{id}/pids.current"),
        format!("/sys/fs/cgroup/rcompose/{id}/pids.current"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .expect("the container's pids cgroup");
    let n: u32 = current.trim().parse().unwrap();
    assert!((20..=32).contains(&n), "pids.current = {n}");
    env.ok(&["container", "stop", "-t", "1", &name]);
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "exited");
}
