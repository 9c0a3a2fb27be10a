//! Issue 15, the CVE classes that hurt runc, moby and podman, tried against rcompose:
//! `cp` through a symlink swapped under it (CVE-2018-15664), overwriting the runtime binary
//! through /proc/<pid>/exe during `exec` (CVE-2019-5736), leaked descriptors and a host
//! working directory (CVE-2024-21626). Internal networks never forwarding DNS upstream
//! (CVE-2024-29018) is `cargo test -p rcompose-net --test robustness`; hostile layers are
//! the unpack suite and `cargo test -p rcompose-engine --test robustness`.

mod common;

use std::path::Path;

use common::container::{Env, IMAGE};
use common::reliability::{report, size};

/// The binary's bytes, compared whole (no hash crate needed for one comparison).
fn contents(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn cp_through_a_symlink_swapped_under_it_never_touches_the_host() {
    let env = Env::new();
    let victim = env.tmp.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("secret"), "host-secret-15664").unwrap();
    let payload = env.tmp.path().join("payload");
    std::fs::write(&payload, "written-through-the-race").unwrap();
    let out_dir = env.tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // Inside: /w/d flips between a directory (holding a decoy `secret`) and a symlink to the
    // host's victim directory, as fast as the shell can.
    let script = format!(
        "mkdir -p /w; while :; do rm -rf /w/d; mkdir /w/d; echo decoy > /w/d/secret; \
         i=0; while [ $i -lt 50 ]; do i=$((i+1)); done; rm -rf /w/d; ln -s {} /w/d; done",
        victim.display()
    );
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "race",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        &script,
    ]);
    let n = size(100, 1000);
    let mut copied = 0;
    for i in 0..n {
        let o = env.run(&[
            "container",
            "cp",
            payload.to_str().unwrap(),
            &format!("race:/w/d/p{i}"),
        ]);
        copied += usize::from(o.status.success());
        let dest = out_dir.join(format!("s{i}"));
        let _ = env.run(&[
            "container",
            "cp",
            "race:/w/d/secret",
            dest.to_str().unwrap(),
        ]);
    }
    let mut host_writes: Vec<String> = std::fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "secret")
        .collect();
    host_writes.sort();
    let leaked: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("host-secret-15664"))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    report(
        "CVE-2018-15664: cp through a swapped symlink (in and out)",
        2 * n,
        2 * n - host_writes.len() - leaked.len(),
        0,
        &format!("{n} iterations each way, {copied} copies in landed"),
    );
    assert!(copied > 0, "no cp landed at all: the race was never run");
    assert!(
        host_writes.is_empty(),
        "cp wrote on the host: {host_writes:?}"
    );
    assert!(leaked.is_empty(), "cp read the host's file: {leaked:?}");
    assert_eq!(
        std::fs::read_to_string(victim.join("secret")).unwrap(),
        "host-secret-15664"
    );
}

#[test]
fn a_container_cannot_overwrite_the_runtime_through_proc_exe_during_exec() {
    let env = Env::new();
    let bin = Path::new(common::BIN);
    let before = contents(bin);
    // Every process the container can see, its exe opened for writing, over and over: the
    // runtime's process entering the container during `exec` must never be one it reaches.
    let script = "while :; do for p in /proc/[0-9]*; do \
                  [ \"$p\" = /proc/1 ] || echo pwned 2>/dev/null >> $p/exe; done; done";
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "exe",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let n = size(20, 200);
    let mut ran = 0;
    for _ in 0..n {
        if env
            .run(&["container", "exec", "exe", "true"])
            .status
            .success()
        {
            ran += 1;
        }
    }
    let after = contents(bin);
    report(
        "CVE-2019-5736: overwrite the runtime via /proc/<pid>/exe during exec",
        n,
        if after == before { n } else { 0 },
        0,
        &format!("{ran} execs ran"),
    );
    assert!(before == after, "the rcompose binary changed");
    assert!(ran > 0, "no exec ran: the test proves nothing");
}

#[test]
fn no_descriptor_or_working_directory_of_the_host_leaks_into_containers() {
    let env = Env::new();
    let marker = format!("rc-host-marker-{}", std::process::id());
    std::fs::write(env.tmp.path().join(&marker), "x").unwrap();
    let (mut faults, mut leaks) = (0, vec![]);
    // Only 0-2 (and ls's own directory fd) in a new container and in an exec, none pointing
    // outside the container.
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        "fds",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "300",
    ]);
    for (what, out) in [
        (
            "run",
            env.ok(&[
                "container",
                "run",
                "--rm",
                "--network",
                "none",
                IMAGE,
                "ls",
                "-l",
                "/proc/self/fd",
            ]),
        ),
        (
            "exec",
            env.ok(&["container", "exec", "fds", "ls", "-l", "/proc/self/fd"]),
        ),
    ] {
        faults += 1;
        let fds: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(" -> "))
            .filter(|l| {
                let fd = l.split(" -> ").next().unwrap().split_whitespace().last();
                !matches!(fd, Some("0" | "1" | "2" | "3"))
            })
            .collect();
        if !fds.is_empty() || out.contains(env.tmp.path().to_str().unwrap()) {
            leaks.push(format!("{what}: {out}"));
        }
    }
    // runc's leak was a working directory set to /proc/self/fd/N: with none of the host's
    // descriptors in the process, such a directory is the container's own or an error.
    for n in 3..10 {
        for cmd in [
            vec![
                "container".to_string(),
                "run".into(),
                "--rm".into(),
                "--network".into(),
                "none".into(),
                "-w".into(),
                format!("/proc/self/fd/{n}"),
                IMAGE.into(),
                "sh".into(),
                "-c".into(),
                "ls ../../../../../ ../../../../../tmp 2>/dev/null; readlink /proc/self/cwd".into(),
            ],
            vec![
                "container".to_string(),
                "exec".into(),
                "-w".into(),
                format!("/proc/self/fd/{n}"),
                "fds".into(),
                "sh".into(),
                "-c".into(),
                "ls ../../../../../ ../../../../../tmp 2>/dev/null; readlink /proc/self/cwd".into(),
            ],
        ] {
            faults += 1;
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let o = env.run(&args);
            let text = String::from_utf8_lossy(&o.stdout);
            if text.contains(&marker) || text.contains(env.tmp.path().to_str().unwrap()) {
                leaks.push(format!("{:?}: {text}", &args[..2]));
            }
        }
    }
    report(
        "CVE-2024-21626: leaked fds and a host working directory",
        faults,
        faults - leaks.len(),
        0,
        "run and exec, -w /proc/self/fd/3..9",
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// Mount destinations that are symlinks in the image (runc's CVE-2021-30465 class): each
/// resolves inside the container's root, wherever it points. `/data` points out of the root
/// with `..` (resolved in the root it lands on its `/inner`) and `/abs` at an absolute host
/// directory, which the image has too. The host paths they name get no mount, and inside,
/// the volumes are where the in-root resolution put them.
#[test]
fn symlinked_mount_destinations_stay_inside_the_container() {
    let env = Env::new();
    let host = tempfile::Builder::new()
        .prefix("rc-cve-host-")
        .tempdir()
        .unwrap();
    let vol = host.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("f"), "from the volume\n").unwrap();
    let target = host.path().join("target");
    std::fs::create_dir_all(&target).unwrap();

    let fs = host.path().join("rootfs");
    common::busybox::build_rootfs(&fs);
    std::fs::create_dir_all(fs.join("inner")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../inner", fs.join("data")).unwrap();
    std::os::unix::fs::symlink(&target, fs.join("abs")).unwrap();
    std::fs::create_dir_all(fs.join(target.strip_prefix("/").unwrap())).unwrap();
    let image = format!("{}:links", common::unique("cve-links"));
    env.ok(&["image", "import", fs.to_str().unwrap(), &image]);

    let v1 = format!("{}:/data", vol.display());
    let v2 = format!("{}:/abs", vol.display());
    let out = env.ok(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v1,
        "-v",
        &v2,
        &image,
        "/bin/sh",
        "-c",
        &format!("cat /inner/f {}/f", target.display()),
    ]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let on_host: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == "/inner" || *p == target.to_str().unwrap())
        .collect();
    report(
        "symlinked mount destinations (CVE-2021-30465 class)",
        2,
        2 - on_host.len(),
        0,
        "",
    );
    assert_eq!(out, "from the volume\nfrom the volume\n");
    assert!(on_host.is_empty(), "mounted on the host: {on_host:?}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}
