//! `docker run`'s resource, device, namespace and security flags through the Docker Engine
//! API (`rcompose system service`), driven by Debian's docker CLI 20.10 (`common::api`).
//! Skips with a message when the client is not installed.

mod common;

use common::api::Api;
use common::{cgroup_dir, stderr, stdout};

/// `docker run`'s resource, device, namespace and security flags reach the engine through
/// the create body: their effect shows inside the container and in `docker inspect`; the
/// options rcompose cannot honour are refused by name.
#[test]
fn docker_run_extras_reach_the_container() {
    use rcompose_engine::container::model::HostConfig;
    use rcompose_engine::container::resources::{CgroupVersion, cgroup_files};
    use serde_json::Value;

    let Some(mut api) = Api::start() else {
        return;
    };
    let tag = api.busybox();
    let name = common::unique("rcapi-xtra");
    api.names.push(name.clone());
    api.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--cpu-shares",
        "512",
        "--memory-reservation",
        "32m",
        "--sysctl",
        "kernel.shmmax=123456789",
        "--group-add",
        "4242",
        "--device",
        "/dev/null:/dev/mynull",
        "--security-opt",
        "seccomp=unconfined",
        &tag,
        "sleep",
        "120",
    ]);
    let v: Value = serde_json::from_str(&api.ok(&["inspect", &name])).expect("inspect JSON");
    let h = &v[0]["HostConfig"];
    assert_eq!(h["CpuShares"], 512, "{h}");
    assert_eq!(h["MemoryReservation"], 32 << 20, "{h}");
    assert_eq!(h["Sysctls"]["kernel.shmmax"], "123456789", "{h}");
    assert_eq!(h["GroupAdd"], serde_json::json!(["4242"]), "{h}");
    assert_eq!(
        h["SecurityOpt"],
        serde_json::json!(["seccomp=unconfined"]),
        "{h}"
    );
    assert_eq!(h["Devices"][0]["PathOnHost"], "/dev/null", "{h}");
    assert_eq!(h["Devices"][0]["PathInContainer"], "/dev/mynull", "{h}");
    assert_eq!(h["Devices"][0]["CgroupPermissions"], "rwm", "{h}");

    // Inside: the sysctl in the container's IPC namespace, the device node, usable.
    let inside = api.ok(&[
        "exec",
        &name,
        "sh",
        "-c",
        "cat /proc/sys/kernel/shmmax; [ -c /dev/mynull ] && echo x > /dev/mynull && echo dev-ok",
    ]);
    assert_eq!(inside, "123456789\ndev-ok\n");
    // The main process: the extra group, no seccomp filter (mode 0; the default profile's is 2).
    let pid = v[0]["State"]["Pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "{}", v[0]["State"]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert!(field("Groups:").contains(&"4242".to_string()), "{status}");
    assert_eq!(field("Seccomp:"), ["0"], "{status}");
    let confined = api.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &tag,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status",
    ]);
    assert_eq!(
        confined.split_whitespace().collect::<Vec<_>>(),
        ["Seccomp:", "2"]
    );
    // A profile file: docker's client sends its JSON text, which the engine applies.
    let profile = api.roots.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = api.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &opt,
        &tag,
        "sh",
        "-c",
        "mkdir /made && echo made; echo done",
    ]);
    assert_eq!(stdout(&o), "done\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("mkdir"), "{}", stderr(&o));
    // The cgroup files the engine's mapping writes for these flags hold their values.
    let mut host = HostConfig::default();
    host.extra.cpu_shares = 512;
    host.extra.memory_reservation = 32 << 20;
    let version = CgroupVersion::host();
    let files: Vec<_> = cgroup_files(&host, version)
        .into_iter()
        .filter(|(ctl, f, _)| {
            version == CgroupVersion::V2
                || std::path::Path::new("/sys/fs/cgroup")
                    .join(ctl)
                    .join(f)
                    .exists()
        })
        .collect();
    assert!(!files.is_empty());
    for (ctl, file, want) in files {
        let path = cgroup_dir(pid, &ctl).join(&file);
        let got = std::fs::read_to_string(&path).unwrap();
        assert_eq!(got.trim(), want, "{}", path.display());
    }

    // Refused by name, nothing left behind.
    for (flags, named) in [
        (vec!["--runtime", "x"], "--runtime x"),
        (vec!["--storage-opt", "size=1G"], "--storage-opt"),
        (vec!["--gpus", "all"], "--gpus all"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags);
        args.extend([tag.as_str(), "true"]);
        let o = api.docker(&args);
        assert!(!o.status.success(), "{args:?} ran");
        assert!(stderr(&o).contains(named), "{args:?}: {}", stderr(&o));
    }
    // Only ours: the refused ones were never created (the `--rm` run is being removed).
    api.wait_until(10, "only the extras container left", || {
        api.ok(&["ps", "-a", "-q"]).lines().count() == 1
    });
}
