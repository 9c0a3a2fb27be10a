//! End-to-end: healthchecks, `--init`, `--ulimit`, `--read-only` with `--tmpfs`, hostname,
//! labels, `ps` filters/formats, logging drivers and json-file log rotation.

mod common;

use common::container::{Env, IMAGE};
use common::{stderr, unique};

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
    let labels = v["Labels"].as_str().unwrap();
    assert!(labels.split(',').any(|l| l == "tier=web"), "{labels}");
}

/// What a reboot does to our containers: every process gone, every mount gone, the run root
/// emptied; the state root stays.
fn simulate_reboot(env: &Env) {
    for entry in std::fs::read_dir(env.root.join("containers"))
        .unwrap()
        .flatten()
    {
        let Ok(state) = std::fs::read(entry.path().join("state.json")) else {
            continue;
        };
        let st: serde_json::Value = serde_json::from_slice(&state).unwrap();
        for key in ["monitor_pid", "pid"] {
            let pid = st[key].as_i64().unwrap_or(0) as i32;
            if pid > 0 {
                // SAFETY: processes this test started (checked by their state file).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let base = env.tmp.path().to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for mp in info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&base))
    {
        let c = std::ffi::CString::new(mp).unwrap();
        // SAFETY: mounts under our own tempdir.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    std::fs::remove_dir_all(&env.run_root).unwrap();
}

#[test]
fn boot_restarts_always_and_unless_stopped() {
    let env = Env::new();
    let run = |name: &str, policy: &str| {
        env.ok(&[
            "container",
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            IMAGE,
            "sleep",
            "300",
        ]);
    };
    run("always", "always");
    run("unless", "unless-stopped");
    run("stopped", "unless-stopped");
    run("never", "no");
    env.ok(&["container", "stop", "-t", "0", "stopped"]);
    simulate_reboot(&env);
    let ps = env.ok(&["container", "ps", "-q"]);
    assert!(ps.trim().is_empty(), "still running after the reboot: {ps}");
    let started = env.ok(&["container", "boot"]);
    let mut started: Vec<&str> = started.lines().collect();
    started.sort();
    assert_eq!(started, ["always", "unless"]);
    let ps = env.ok(&["container", "ps", "--format", "{{.Names}}"]);
    let mut running: Vec<&str> = ps.lines().collect();
    running.sort();
    assert_eq!(running, ["always", "unless"]);
    let out = env.ok(&["container", "exec", "always", "echo", "alive"]);
    assert_eq!(out, "alive\n");
    // The reboot took the runtime's state but (simulated) not the cgroups of the containers
    // that stayed down: removing them removes those too.
    let ids = env.ok(&["container", "ps", "-aq", "--no-trunc"]);
    assert_eq!(ids.lines().count(), 4, "{ids}");
    for id in ids.lines() {
        env.ok(&["container", "rm", "-f", id]);
        for ctl in ["memory", "pids", "devices", "unified", ""] {
            let dir = std::path::Path::new("/sys/fs/cgroup")
                .join(ctl)
                .join("rcompose")
                .join(id);
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
}

#[test]
fn prune_removes_stopped_and_crash_leftovers_only() {
    let env = Env::new();
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "keep",
        IMAGE,
        "sleep",
        "300",
    ]);
    env.ok(&["container", "run", "--name", "done", IMAGE, "true"]);
    // What a crash between mkdir and the first write of the config leaves.
    let orphan = env.root.join("containers").join("ab".repeat(32));
    std::fs::create_dir_all(orphan.join("upper")).unwrap();
    let out = env.ok(&["container", "prune", "-f"]);
    assert!(out.contains(&"ab".repeat(32)), "{out}");
    assert!(!orphan.exists());
    let all = env.ok(&["container", "ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "keep");
}

#[test]
fn log_driver_none_keeps_nothing_and_logs_says_so() {
    let env = Env::new();
    let name = unique("nolog");
    // The output still has to be drained: a chatty container must not block on a full pipe.
    let out = env.ok(&[
        "container",
        "run",
        "--name",
        &name,
        "--log-driver",
        "none",
        IMAGE,
        "sh",
        "-c",
        "seq 1 20000; echo done",
    ]);
    assert!(
        out.contains("done"),
        "attached output still reaches the terminal"
    );
    let o = env.run(&["container", "logs", &name]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
    let t = env.ok(&[
        "container",
        "inspect",
        "-f",
        "{{.HostConfig.LogConfig.Type}}|{{.LogPath}}|",
        &name,
    ]);
    assert_eq!(t.trim(), "none||");
    env.ok(&["container", "rm", &name]);

    let o = env.run(&[
        "container",
        "run",
        "--rm",
        "--log-driver",
        "syslog",
        IMAGE,
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("logging driver \"syslog\" is not supported"),
        "{}",
        stderr(&o)
    );
}

/// Line numbers of `line N …` lines, in the order printed.
fn line_numbers(out: &str) -> Vec<u32> {
    out.lines()
        .filter_map(|l| l.strip_prefix("line "))
        .map(|rest| {
            rest.split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected log line {rest:?}"))
        })
        .collect()
}

fn assert_consecutive(numbers: &[u32], what: &str) {
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "{what}: line numbers not consecutive: {numbers:?}"
    );
}

#[test]
fn json_file_log_rotates_with_max_size_and_max_file() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let env = Env::new();
    let name = unique("rotlog");
    let sig = env.tmp.path().join("sig");
    std::fs::create_dir_all(&sig).unwrap();
    let total = 3000;
    // ~300 KB of output (~100 bytes a line, ~500 KB as json-file entries: about ten files
    // of 50k), in bursts so that a follower polling every 50 ms stays within the two older
    // files kept; it starts once the test created /sig/go.
    let script = format!(
        "echo ready; while [ ! -e /sig/go ]; do sleep 0.05; done; i=0; \
         while [ $i -lt {total} ]; do i=$((i+1)); \
         echo \"line $i $(printf '%088d' 0)\"; \
         [ $((i % 50)) -eq 0 ] && sleep 0.05; done; echo finished"
    );
    let mount = format!("{}:/sig", sig.display());
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--log-opt",
        "max-size=50k",
        "--log-opt",
        "max-file=3",
        "-v",
        &mount,
        IMAGE,
        "sh",
        "-c",
        &script,
    ]);
    let id = env.inspect(&name, "{{.Id}}");
    let config: serde_json::Value =
        serde_json::from_str(&env.ok(&["container", "inspect", &name])).unwrap();
    assert_eq!(
        config[0]["HostConfig"]["LogConfig"]["Config"],
        serde_json::json!({"max-file": "3", "max-size": "50k"})
    );

    // The follower is running (it printed "ready") before the container writes the rest.
    let mut follower = env
        .cmd()
        .args(["container", "logs", "-f", &name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut followed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut go_sent = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => followed.extend(chunk),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if !go_sent && followed.starts_with(b"ready\n") {
            std::fs::write(sig.join("go"), b"").unwrap();
            go_sent = true;
        }
        if Instant::now() > deadline {
            let _ = follower.kill();
            let _ = follower.wait();
            panic!(
                "logs -f did not end within 60 s; it printed:\n{}",
                String::from_utf8_lossy(&followed)
            );
        }
    }
    reader.join().unwrap();
    let status = follower.wait().unwrap();
    assert!(status.success(), "logs -f failed: {status:?}");
    let followed = String::from_utf8_lossy(&followed).into_owned();
    assert!(followed.ends_with("finished\n"), "{followed}");
    let numbers = line_numbers(&followed);
    assert_eq!(
        numbers.first(),
        Some(&1),
        "the follower started before line 1"
    );
    assert_eq!(numbers.last(), Some(&total));
    assert_consecutive(&numbers, "logs -f");

    // At most max-file files, each within max-size (plus one entry, as docker allows).
    let dir = env.container_dir(&id);
    let current = dir.join(format!("{id}-json.log"));
    let mut files = vec![current.clone()];
    for n in 1..10 {
        let f = dir.join(format!("{id}-json.log.{n}"));
        if f.exists() {
            files.push(f);
        }
    }
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(!dir.join(format!("{id}-json.log.3")).exists());
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 50 * 1024 + 300, "{f:?} has {len} bytes");
    }

    // `logs` reads the files oldest first: the newest lines, in order, up to the last.
    let all = env.ok(&["container", "logs", &name]);
    assert!(all.ends_with("finished\n"), "{all}");
    let numbers = line_numbers(&all);
    assert_eq!(numbers.last(), Some(&total));
    assert!(numbers[0] > 1, "the oldest lines were rotated away");
    assert_consecutive(&numbers, "logs");
    let tail = env.ok(&["container", "logs", "--tail", "4", &name]);
    let want: Vec<u32> = (total - 2..=total).collect();
    assert_eq!(line_numbers(&tail), want);
    assert!(tail.ends_with("finished\n"), "{tail}");

    env.ok(&["container", "rm", &name]);
    assert!(!dir.exists(), "rm leaves the rotated files behind");
}

#[test]
fn bad_log_options_are_refused_before_create() {
    let env = Env::new();
    let name = unique("badlogopt");
    for (opts, want) in [
        (&["max-size=ten"][..], "max-size=\"ten\""),
        (&["max-size=0"][..], "max-size"),
        (&["max-size=1m", "max-file=0"][..], "max-file=\"0\""),
        (
            &["max-file=3"][..],
            "max-file can only be used with max-size",
        ),
        (
            &["max-size=1m", "compress=true"][..],
            "unknown log option \"compress\"",
        ),
        (&["max-size"][..], "use KEY=VALUE"),
    ] {
        let mut args = vec!["container", "create", "--name", &name];
        for o in opts {
            args.extend(["--log-opt", o]);
        }
        args.extend([IMAGE, "true"]);
        let o = env.run(&args);
        assert!(!o.status.success(), "{opts:?} accepted");
        assert!(stderr(&o).contains(want), "{opts:?}: {}", stderr(&o));
    }
    let o = env.run(&[
        "container",
        "create",
        "--log-driver",
        "none",
        "--log-opt",
        "max-size=1m",
        IMAGE,
        "true",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("\"max-size\""), "{}", stderr(&o));
    let all = env.ok(&["container", "ps", "-aq"]);
    assert!(all.trim().is_empty(), "a refused create left {all}");
}

#[test]
fn pid_and_ipc_modes_host_and_container() {
    let env = Env::new();
    let ns_of = |path: &str| std::fs::read_link(path).unwrap().display().to_string();
    // Own namespaces by default: only the container's processes, its own IPC namespace.
    let own = env.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "ls /proc | grep -c '^[0-9]'; readlink /proc/self/ns/ipc",
    ]);
    let mut lines = own.lines();
    let procs: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(procs <= 4, "{own}");
    assert_ne!(lines.next().unwrap(), ns_of("/proc/self/ns/ipc"));
    // host: the host's processes and IPC namespace.
    let host = env.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "host",
        "--ipc",
        "host",
        IMAGE,
        "sh",
        "-c",
        "ls /proc | grep -c '^[0-9]'; readlink /proc/self/ns/ipc",
    ]);
    let mut lines = host.lines();
    let procs: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(procs > 4, "{host}");
    assert_eq!(lines.next().unwrap(), ns_of("/proc/self/ns/ipc"));

    // container:<name>: the other container's processes and IPC namespace.
    let name = unique("nsowner");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        IMAGE,
        "sleep",
        "301",
    ]);
    let theirs = env.ok(&["container", "exec", &name, "readlink", "/proc/self/ns/ipc"]);
    let pid_mode = format!("container:{name}");
    let joined = env.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        &pid_mode,
        "--ipc",
        &pid_mode,
        IMAGE,
        "sh",
        "-c",
        "ps; readlink /proc/self/ns/ipc",
    ]);
    assert!(joined.contains("sleep 301"), "{joined}");
    assert!(joined.ends_with(&theirs), "{joined} vs {theirs}");
    let mode = env.ok(&["container", "create", "--pid", &pid_mode, IMAGE, "true"]);
    let inspect = env.ok(&[
        "container",
        "inspect",
        "-f",
        "{{.HostConfig.PidMode}}",
        mode.trim(),
    ]);
    assert!(inspect.trim().starts_with("container:"), "{inspect}");
    env.ok(&["container", "rm", mode.trim()]);

    // Its owner stopped: refused, naming it; an unknown one: refused before create.
    env.ok(&["container", "stop", "-t", "0", &name]);
    let o = env.run(&[
        "container",
        "run",
        "--rm",
        "--pid",
        &pid_mode,
        IMAGE,
        "true",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
    let o = env.run(&[
        "container",
        "create",
        "--ipc",
        "container:nosuch-xyz",
        IMAGE,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no such container"), "{}", stderr(&o));
    env.ok(&["container", "rm", "-f", &name]);
}
