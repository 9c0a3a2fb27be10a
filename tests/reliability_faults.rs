//! Issue 15, resource faults and load: an OOM kill reported as docker does (`OOMKilled`), a
//! fork bomb held by `--pids-limit`, a full disk while a container logs, an image builds and
//! an image is pulled from a loopback registry (a small tmpfs state root), the store lock left by a killed process, 50 parallel
//! `run --rm`, 10 parallel `up` of different projects, and `logs -f` of 20 containers
//! writing as fast as they can with no line lost or repeated.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::container::{Env, IMAGE};
use common::reliability::{helpers, kill9, report, size};
use common::{BIN, unmount_under};

#[test]
fn an_oom_kill_is_reported_as_oomkilled() {
    let env = Env::new();
    let o = env.run(&[
        "container",
        "run",
        "--name",
        "oom",
        "--network",
        "none",
        "--memory",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "x=aaaaaaaa; while :; do x=$x$x; done",
    ]);
    let killed = env.inspect("oom", "{{.State.OOMKilled}}");
    let code = env.inspect("oom", "{{.State.ExitCode}}");
    report(
        "OOM kill reported",
        1,
        usize::from(killed == "true"),
        0,
        &format!("exit {code}"),
    );
    assert_eq!(killed, "true", "exit {:?}", o.status.code());
    assert_eq!(code, "137");
}

/// A file of the pids cgroup of a running container, on v1 or v2.
fn pids_file(id: &str, file: &str) -> Option<String> {
    [
        format!("/sys/fs/cgroup/pids/rcompose/{id}/{file}"),
        format!("/sys/fs/cgroup/rcompose/{id}/{file}"),
        format!("/sys/fs/cgroup/unified/rcompose/{id}/{file}"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
}

#[test]
fn a_fork_bomb_is_held_by_the_pids_limit() {
    let env = Env::new();
    let id = env
        .ok(&[
            "container",
            "run",
            "-d",
            "--name",
            "bomb",
            "--network",
            "none",
            "--pids-limit",
            "32",
            IMAGE,
            "sh",
            "-c",
            "(b() { b & b & wait; }; while :; do b; done) 2>/dev/null & exec sleep 300",
        ])
        .trim()
        .to_string();
    // The most processes seen over two seconds, and how often the limit refused a fork.
    let mut most = 0u64;
    for _ in 0..100 {
        if let Some(n) = pids_file(&id, "pids.current").and_then(|t| t.trim().parse().ok()) {
            most = most.max(n);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused: Option<u64> = pids_file(&id, "pids.events").and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
    });
    // The host still forks, and the bomb goes with one command.
    assert!(Command::new("true").status().unwrap().success());
    env.ok(&["container", "rm", "-f", "bomb"]);
    let held = most > 0 && most <= 32 && refused.is_some_and(|r| r > 0);
    report(
        "fork bomb under --pids-limit 32",
        1,
        usize::from(held),
        0,
        &format!("at most {most} processes, {refused:?} forks refused"),
    );
    assert!(
        held,
        "at most {most} processes, {refused:?} forks refused under --pids-limit 32"
    );
}

/// A state root on a small tmpfs of its own, unmounted on drop.
struct SmallRoot {
    tmp: tempfile::TempDir,
}

impl SmallRoot {
    fn new(mib: u32) -> SmallRoot {
        let tmp = tempfile::Builder::new()
            .prefix("rc-full-")
            .tempdir()
            .unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&root)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs for the full-disk test");
        SmallRoot { tmp }
    }
    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .arg("--run-root")
            .arg(self.tmp.path().join("run"))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for SmallRoot {
    fn drop(&mut self) {
        if let Ok(o) = Command::new(BIN)
            .arg("--root")
            .arg(self.root())
            .arg("--run-root")
            .arg(self.tmp.path().join("run"))
            .args(["container", "ps", "-aq"])
            .output()
        {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.run(&["container", "rm", "-f", id]);
            }
        }
        unmount_under(self.tmp.path());
    }
}

#[test]
fn a_full_disk_while_logging_building_and_pulling_fails_cleanly() {
    let small = SmallRoot::new(12);
    common::busybox::busybox_image(Path::new(BIN), &small.root(), "busybox:full");
    let (mut faults, mut survived) = (0, 0);
    let mut problems = vec![];

    // Logging: the container writes far more than the disk holds.
    faults += 1;
    let o = small.run(&[
        "container", "run", "--name", "loud", "--network", "none", "busybox:full", "sh", "-c",
        "i=0; while [ $i -lt 400000 ] ; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; echo done",
    ]);
    let logs = small.run(&["container", "logs", "--tail", "1", "loud"]);
    let rm = small.run(&["container", "rm", "-f", "loud"]);
    if logs.status.success() && rm.status.success() {
        survived += 1;
    } else {
        problems.push(format!(
            "logging: run {:?}, logs {:?} {}, rm {}",
            o.status.code(),
            logs.status.code(),
            String::from_utf8_lossy(&logs.stderr),
            String::from_utf8_lossy(&rm.stderr)
        ));
    }

    // Building: a RUN step fills the disk.
    faults += 1;
    let ctx = small.tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:full\nRUN dd if=/dev/zero of=/big bs=1M count=64\n",
    )
    .unwrap();
    let build = small.run(&[
        "image",
        "build",
        "--network=none",
        "-t",
        "big:1",
        ctx.to_str().unwrap(),
    ]);
    let images = small.run(&["image", "ls"]);
    let after = small.run(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:full",
        "true",
    ]);
    let listed = String::from_utf8_lossy(&images.stdout).contains("big");
    if !build.status.success() && images.status.success() && !listed && after.status.success() {
        survived += 1;
    } else {
        problems.push(format!(
            "build: {:?} {}; image ls lists it: {listed}; run after: {}",
            build.status.code(),
            String::from_utf8_lossy(&build.stderr),
            String::from_utf8_lossy(&after.stderr)
        ));
    }
    // Pulling: an image larger than the disk, from a loopback registry.
    if Path::new("/usr/bin/docker-registry").exists() {
        faults += 1;
        let reg = common::registry::start(common::registry::Auth::None);
        let big = format!("{}/rel/big:1", reg.host());
        let small_img = format!("{}/rel/small:1", reg.host());
        let env = Env::new();
        let fs = env.tmp.path().join("bigfs");
        common::busybox::build_rootfs(&fs);
        // Random bytes: compression cannot shrink them below the disk's size.
        let mut noise = vec![0u8; 16 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(fs.join("noise"), &noise).unwrap();
        env.ok(&["image", "import", fs.to_str().unwrap(), &big]);
        env.ok(&["image", "push", &big]);
        env.ok(&["image", "tag", IMAGE, &small_img]);
        env.ok(&["image", "push", &small_img]);
        let used = || {
            let c = std::ffi::CString::new(small.root().to_str().unwrap()).unwrap();
            // SAFETY: statvfs fills the zeroed struct for a valid C string.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
            (st.f_blocks - st.f_bfree) as u64 * st.f_frsize as u64
        };
        let before = used();
        let pull = small.run(&["image", "pull", "-q", &big]);
        let grown = used().saturating_sub(before);
        let images = small.run(&["image", "ls"]);
        let listed = String::from_utf8_lossy(&images.stdout).contains("rel/big");
        let again = small.run(&["image", "pull", "-q", &small_img]);
        if !pull.status.success() && !listed && grown < (1 << 20) && again.status.success() {
            survived += 1;
        } else {
            problems.push(format!(
                "pull: {:?} {}; listed {listed}; {grown} bytes left behind; small pull after: {}",
                pull.status.code(),
                String::from_utf8_lossy(&pull.stderr),
                String::from_utf8_lossy(&again.stderr)
            ));
        }
    } else {
        println!("skipping the pull on a full disk: /usr/bin/docker-registry is not installed");
    }
    report(
        "disk full (12 MiB tmpfs root) while logging, building and pulling",
        faults,
        survived,
        0,
        "",
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_store_lock_of_a_killed_process_does_not_block() {
    use std::io::BufRead;
    let env = Env::new();
    // One process takes the store's and the containers' locks the way rcompose does (flock),
    // then dies by SIGKILL in the middle of "its" operation.
    for lock in ["store.lock", "containers.lock"] {
        let mut holder = Command::new("python3")
            .args([
                "-c",
                "import fcntl,sys,time\nf=open(sys.argv[1],'a')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(300)",
            ])
            .arg(env.root.join(lock))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");
        kill9(holder.id() as i32);
        let _ = holder.wait();
    }
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "echo",
        "lock-free",
    ]);
    env.ok(&["image", "ls"]);
    report("store lock held by a killed process", 2, 2, 0, "");
    assert!(out.contains("lock-free"));
}

#[test]
fn fifty_parallel_run_rm_all_answer_and_leave_nothing() {
    let env = Env::new();
    let n = size(50, 200);
    let children: Vec<_> = (0..n)
        .map(|i| {
            env.cmd()
                .args([
                    "container",
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    IMAGE,
                    "echo",
                    &format!("hello-{i}"),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut bad = vec![];
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        if !o.status.success() || String::from_utf8_lossy(&o.stdout).trim() != format!("hello-{i}")
        {
            bad.push(format!(
                "{i}: {:?} {} {}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    let left = env.ok(&["container", "ps", "-aq"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(env.tmp.path().to_str().unwrap()))
        .count();
    let procs = helpers(&env.root);
    report(
        "parallel run --rm",
        n,
        n - bad.len(),
        0,
        &format!(
            "{} left, {mounts} mounts, {} helpers",
            left.trim().lines().count(),
            procs.len()
        ),
    );
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(left.trim().is_empty(), "containers left: {left}");
    assert_eq!(mounts, 0);
    assert!(procs.is_empty(), "{procs:#?}");
    // The monitors delete their containers' trees after reporting the exit, in a child that
    // `helpers` waited for: none is left.
    let trees: Vec<_> = [env.root.join("containers"), env.run_root.join("containers")]
        .iter()
        .flat_map(|base| std::fs::read_dir(base).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    assert!(trees.is_empty(), "{trees:#?}");
}

#[test]
fn ten_parallel_ups_of_different_projects_all_converge() {
    let env = Env::new();
    let n = size(10, 30);
    let dirs: Vec<PathBuf> = (0..n)
        .map(|i| {
            let d = env.tmp.path().join(format!("p{i}"));
            std::fs::create_dir(&d).unwrap();
            std::fs::write(
                d.join("compose.yaml"),
                format!(
                    "services:\n  a:\n    image: {IMAGE}\n    command: sleep 300\n    network_mode: none\n  b:\n    image: {IMAGE}\n    command: sleep 300\n    network_mode: none\n    depends_on: [a]\n"
                ),
            )
            .unwrap();
            d
        })
        .collect();
    let project = |i: usize| format!("relup{}x{i}", std::process::id() % 100000);
    let children: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            env.cmd()
                .current_dir(d)
                .args(["-p", &project(i), "up", "-d"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut bad = vec![];
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        if !o.status.success() {
            bad.push(format!("{i}: {}", String::from_utf8_lossy(&o.stderr)));
        }
    }
    let running = env
        .ok(&["container", "ps", "-q"])
        .split_whitespace()
        .count();
    for (i, d) in dirs.iter().enumerate() {
        let o = env
            .cmd()
            .current_dir(d)
            .args(["-p", &project(i), "down", "-t", "0"])
            .output()
            .unwrap();
        if !o.status.success() {
            bad.push(format!("down {i}: {}", String::from_utf8_lossy(&o.stderr)));
        }
    }
    report(
        "parallel up of different projects",
        n,
        n - bad.len().min(n),
        0,
        &format!("{running} containers running"),
    );
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(running, 2 * n);
}

#[test]
fn logs_follow_of_twenty_fast_writers_loses_and_repeats_nothing() {
    let env = Env::new();
    let writers = 20;
    let lines = size(20_000, 200_000);
    // Started first, so the followers see the lines arrive live.
    for i in 0..writers {
        env.ok(&[
            "container",
            "run",
            "-d",
            "--name",
            &format!("w{i}"),
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            &format!("sleep 1; seq 1 {lines}"),
        ]);
    }
    let followers: Vec<_> = (0..writers)
        .map(|i| {
            env.cmd()
                .args(["container", "logs", "-f", &format!("w{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut bad = vec![];
    let mut total = 0;
    for (i, f) in followers.into_iter().enumerate() {
        let o = f.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let got: Vec<&str> = text.lines().collect();
        total += got.len();
        let ok = got.len() == lines
            && got
                .iter()
                .enumerate()
                .all(|(n, l)| l.parse::<usize>().ok() == Some(n + 1));
        if !ok {
            let first_wrong = got
                .iter()
                .enumerate()
                .find(|(n, l)| l.parse::<usize>().ok() != Some(n + 1));
            bad.push(format!(
                "w{i}: {} lines, first out of place {first_wrong:?}",
                got.len()
            ));
        }
    }
    report(
        "logs -f of 20 fast writers",
        writers,
        writers - bad.len(),
        writers * lines - total.min(writers * lines),
        &format!("{lines} lines each"),
    );
    assert!(bad.is_empty(), "{bad:#?}");
}
