//! Issue 13, item 5: docker's `run` flags beyond the basics (devices, cgroup resources,
//! sysctls, namespaces, security options, attach options, cidfile, label-file), run the same
//! way under rcompose and, when a Docker daemon is reachable here (`/usr/bin/docker`), under
//! Docker: the effect on the container (its cgroup files, read from the host; /proc, `id`,
//! `hostname` inside it) and the `inspect` fields must agree. Without Docker the effects are checked against what the
//! flags ask for (cgroup values through the engine's v1/v2 mapping). Also docker's exit codes
//! (125/126/127) and the flags rcompose refuses by name.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::container::{Env, IMAGE};
use common::{cgroup_dir, stderr, stdout, unique};
use rcompose_engine::container::model::HostConfig;
use rcompose_engine::container::resources::{CgroupVersion, cgroup_files};
use serde_json::Value;

const DOCKER: &str = "/usr/bin/docker";

/// Docker with our busybox image loaded under a unique tag; removes its containers and the
/// image on drop. `None` (with a SKIP line) when no daemon answers.
struct Docker {
    tag: String,
    config: tempfile::TempDir,
    names: std::cell::RefCell<Vec<String>>,
}

impl Docker {
    fn start(env: &Env) -> Option<Docker> {
        if !Path::new(DOCKER).exists() {
            eprintln!("SKIP docker comparison: {DOCKER} is missing");
            return None;
        }
        let config = tempfile::tempdir().unwrap();
        let d = Docker {
            tag: format!("{}:flags", unique("rcflags")),
            config,
            names: Default::default(),
        };
        if !d
            .run(&["info", "--format", "{{.ServerVersion}}"])
            .status
            .success()
        {
            eprintln!("SKIP docker comparison: no Docker daemon answers");
            return None;
        }
        env.ok(&["image", "tag", IMAGE, &d.tag]);
        let tar = env.tmp.path().join("busybox.tar");
        env.ok(&["image", "save", "-o", tar.to_str().unwrap(), &d.tag]);
        let o = d.run(&["load", "-i", tar.to_str().unwrap()]);
        assert!(o.status.success(), "docker load: {}", stderr(&o));
        Some(d)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .env_remove("DOCKER_HOST")
            .output()
            .expect("running docker")
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for n in self.names.borrow().iter() {
            let _ = self.run(&["rm", "-f", n]);
        }
        let _ = self.run(&["rmi", "-f", &self.tag]);
    }
}

/// One `run` to compare: flags, a script printing their effect, what it must print (from the
/// flags' values), and the inspect fields (JSON pointers) both engines must agree on.
struct Case {
    flags: Vec<String>,
    script: String,
    expect: Option<String>,
    fields: Vec<&'static str>,
    /// Docker 20.10 lacks the flag (e.g. --annotation): rcompose only.
    docker: bool,
    /// cgroup files read from the host while the container runs (neither engine's container
    /// may write its own cgroup): `(controller, file, line)`, printing the file's first line,
    /// or 1/0 for whether `line` is one of its lines. Empty controller: cgroup v2.
    host_files: Vec<(String, String, Option<String>)>,
}

fn case(flags: &[&str], script: &str, expect: Option<String>, fields: &[&'static str]) -> Case {
    Case {
        flags: flags.iter().map(|s| s.to_string()).collect(),
        script: script.to_string(),
        expect,
        fields: fields.to_vec(),
        docker: true,
        host_files: vec![],
    }
}

/// What `c.host_files` holds for the running container `pid`.
fn read_host_files(pid: i64, c: &Case) -> String {
    c.host_files
        .iter()
        .map(|(ctl, file, line)| {
            let text = std::fs::read_to_string(cgroup_dir(pid, ctl).join(file)).unwrap();
            match line {
                Some(l) => (text.lines().any(|x| x == l) as u8).to_string(),
                None => text.lines().next().unwrap_or_default().to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `case` in the foreground under one engine; returns (stdout, inspect JSON).
fn run_case(run: &dyn Fn(&[&str]) -> Output, image: &str, name: &str, c: &Case) -> (String, Value) {
    let detached = !c.host_files.is_empty();
    let mut args: Vec<&str> = vec!["run", "--name", name, "--network", "none"];
    if detached {
        args.push("-d");
    }
    args.extend(c.flags.iter().map(String::as_str));
    args.extend([image, "sh", "-c", &c.script]);
    let o = run(&args);
    assert!(
        o.status.success(),
        "{args:?} failed ({:?}): {}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    let i = run(&["inspect", name]);
    assert!(i.status.success(), "inspect {name}: {}", stderr(&i));
    let v: Value = serde_json::from_slice(&i.stdout).expect("inspect JSON");
    let out = if detached {
        let pid = v[0]["State"]["Pid"].as_i64().unwrap_or(0);
        assert!(pid > 0, "{name} is not running: {}", v[0]["State"]);
        read_host_files(pid, c)
    } else {
        stdout(&o).trim().to_string()
    };
    let _ = run(&["rm", "-f", name]);
    (out, v[0].clone())
}

/// Reads the cgroup files the engine's mapping names for `host`, and what they must hold.
fn cgroup_case(flags: &[&str], host: &HostConfig, fields: &[&'static str]) -> Case {
    let v = CgroupVersion::host();
    let files: Vec<_> = cgroup_files(host, v)
        .into_iter()
        // A v1 file the host kernel lacks (e.g. memsw without swap accounting) is one docker
        // discards with a warning too.
        .filter(|(ctl, f, _)| {
            v == CgroupVersion::V2 || Path::new("/sys/fs/cgroup").join(ctl).join(f).exists()
        })
        .collect();
    assert!(!files.is_empty(), "nothing to read for {flags:?}");
    let expect = files
        .iter()
        .map(|(_, _, val)| val.clone())
        .collect::<Vec<_>>()
        .join("\n");
    let mut c = case(flags, "sleep 60", Some(expect), fields);
    c.host_files = files
        .into_iter()
        .map(|(ctl, f, _)| (ctl, f, None))
        .collect();
    c
}

fn host_stat(path: &str) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(path).unwrap().rdev();
    (libc::major(rdev) as u64, libc::minor(rdev) as u64)
}

/// A `--cgroup-parent` the test made: its (empty) directories in every hierarchy are removed
/// on drop, as neither engine removes a parent.
struct CgroupParent(String);

impl Drop for CgroupParent {
    fn drop(&mut self) {
        assert!(!self.0.is_empty() && !self.0.contains('/'));
        let mut dirs = vec![Path::new("/sys/fs/cgroup").join(&self.0)];
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            dirs.extend(rd.flatten().map(|e| e.path().join(&self.0)));
        }
        for d in dirs {
            // remove_dir only: a cgroup directory is removed empty or not at all.
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn run_flags_match_docker() {
    let env = Env::new();
    let docker = Docker::start(&env);
    let v1 = CgroupVersion::host() == CgroupVersion::V1;
    let mut cases = vec![];

    let mut h = HostConfig::default();
    h.extra.cpu_shares = 512;
    h.extra.cpu_period = 50_000;
    h.extra.cpu_quota = 25_000;
    h.extra.cpuset_cpus = "0".into();
    cases.push(cgroup_case(
        &[
            "--cpu-shares",
            "512",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "--cpuset-cpus",
            "0",
        ],
        &h,
        &[
            "/HostConfig/CpuShares",
            "/HostConfig/CpuPeriod",
            "/HostConfig/CpuQuota",
            "/HostConfig/CpusetCpus",
        ],
    ));
    let mut h = HostConfig::default();
    h.extra.cpuset_mems = "0".into();
    cases.push(cgroup_case(
        &["--cpuset-mems", "0"],
        &h,
        &["/HostConfig/CpusetMems"],
    ));
    let mut h = HostConfig {
        memory: 64 << 20,
        ..Default::default()
    };
    h.extra.memory_reservation = 32 << 20;
    h.extra.memory_swap = 96 << 20;
    if v1 {
        h.extra.memory_swappiness = Some(10);
    }
    let mut flags = vec![
        "-m",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swap",
        "96m",
    ];
    if v1 {
        flags.extend(["--memory-swappiness", "10"]);
    }
    cases.push(cgroup_case(
        &flags,
        &h,
        &[
            "/HostConfig/Memory",
            "/HostConfig/MemoryReservation",
            "/HostConfig/MemorySwap",
            "/HostConfig/MemorySwappiness",
        ],
    ));
    if v1 {
        let mut h = HostConfig {
            memory: 64 << 20,
            ..Default::default()
        };
        h.extra.oom_kill_disable = true;
        let mut c = cgroup_case(&["-m", "64m", "--oom-kill-disable"], &h, &[]);
        // Only the file's first line: the rest counts OOM events.
        c.fields = vec!["/HostConfig/OomKillDisable"];
        cases.push(c);
    }
    cases.push(case(
        &["--oom-score-adj", "300"],
        "cat /proc/self/oom_score_adj",
        Some("300".into()),
        &["/HostConfig/OomScoreAdj"],
    ));
    let blkio = Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists();
    let mut c = case(
        &["--blkio-weight", "300"],
        "true",
        None,
        &["/HostConfig/BlkioWeight"],
    );
    if blkio {
        c.script = "sleep 60".into();
        c.expect = Some("300".into());
        c.host_files = vec![("blkio".into(), "blkio.weight".into(), None)];
    }
    cases.push(c);
    cases.push(case(
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=123456789",
        ],
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
        Some("1\n123456789".into()),
        &["/HostConfig/Sysctls"],
    ));
    cases.push(case(
        &["--group-add", "nobody", "--group-add", "4242"],
        "id -G",
        // The kernel keeps supplementary groups sorted.
        Some("0 4242 65534".into()),
        &["/HostConfig/GroupAdd"],
    ));
    cases.push(case(
        &["--domainname", "example.org", "-h", "box"],
        "cat /proc/sys/kernel/domainname; hostname",
        Some("example.org\nbox".into()),
        &["/Config/Domainname", "/Config/Hostname"],
    ));
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    cases.push(case(
        &["--uts", "host"],
        "hostname",
        Some(host_name.clone()),
        &["/HostConfig/UTSMode"],
    ));
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap();
    cases.push(case(
        &["--userns", "host"],
        "cat /proc/self/uid_map",
        Some(uid_map.trim().to_string()),
        &["/HostConfig/UsernsMode"],
    ));
    cases.push(case(
        &["--cgroupns", "private"],
        "grep -vc ':/$' /proc/self/cgroup || true",
        Some("0".into()),
        &["/HostConfig/CgroupnsMode"],
    ));
    let parent = CgroupParent(unique("rcparent"));
    let parent_flag = format!("/{}", parent.0);
    cases.push(case(
        &["--cgroupns", "host", "--cgroup-parent", &parent_flag],
        &format!("grep -q ':{parent_flag}/' /proc/self/cgroup && echo under-parent"),
        Some("under-parent".into()),
        &["/HostConfig/CgroupParent", "/HostConfig/CgroupnsMode"],
    ));
    let (maj, min) = host_stat("/dev/kmsg");
    cases.push(case(
        &["--device", "/dev/kmsg:/dev/xkmsg:r"],
        "stat -c '%t:%T' /dev/xkmsg",
        Some(format!("{maj:x}:{min:x}")),
        &["/HostConfig/Devices"],
    ));
    if v1 {
        let mut c = case(
            &["--device-cgroup-rule", "c 42:* rmw"],
            "sleep 60",
            Some("1".into()),
            &["/HostConfig/DeviceCgroupRules"],
        );
        c.host_files = vec![(
            "devices".into(),
            "devices.list".into(),
            Some("c 42:* rwm".into()),
        )];
        cases.push(c);
    }
    cases.push(case(
        &["--security-opt", "seccomp=unconfined"],
        "grep '^Seccomp:' /proc/self/status",
        Some("Seccomp:\t0".into()),
        &["/HostConfig/SecurityOpt"],
    ));
    let profile = env.tmp.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let seccomp = format!("seccomp={}", profile.display());
    cases.push(case(
        &["--security-opt", &seccomp],
        "grep '^Seccomp:' /proc/self/status; mkdir /tmp/x 2>/dev/null && echo made || echo refused",
        Some("Seccomp:\t2\nrefused".into()),
        &["/HostConfig/SecurityOpt"],
    ));
    cases.push(case(
        &["--security-opt", "no-new-privileges"],
        "grep '^NoNewPrivs:' /proc/self/status",
        Some("NoNewPrivs:\t1".into()),
        &["/HostConfig/SecurityOpt"],
    ));
    cases.push(case(
        &["--security-opt", "label=disable"],
        "true",
        None,
        &["/HostConfig/SecurityOpt"],
    ));
    let labels = env.tmp.path().join("labels");
    std::fs::write(&labels, "# ours\norg.example.a=1\norg.example.b\n").unwrap();
    cases.push(case(
        &[
            "--label-file",
            labels.to_str().unwrap(),
            "-l",
            "org.example.a=2",
        ],
        "true",
        None,
        &["/Config/Labels"],
    ));
    let mut ann = case(&["--annotation", "org.example.k=v"], "true", None, &[]);
    ann.docker = false;
    cases.push(ann);

    for (i, c) in cases.iter().enumerate() {
        let name = unique("rcflag");
        let ours = |args: &[&str]| env.run(&[&["container"][..], args].concat());
        let (out, ins) = run_case(&ours, IMAGE, &name, c);
        if let Some(want) = &c.expect {
            assert_eq!(&out, want, "case {i} {:?}: effect under rcompose", c.flags);
        }
        if c.flags[0] == "--annotation" {
            assert_eq!(ins["HostConfig"]["Annotations"]["org.example.k"], "v");
        }
        if c.flags[0] == "--label-file" {
            let l = &ins["Config"]["Labels"];
            assert_eq!(
                (l["org.example.a"].as_str(), l["org.example.b"].as_str()),
                (Some("2"), None)
            );
        }
        let Some(d) = docker.as_ref().filter(|_| c.docker) else {
            continue;
        };
        d.names.borrow_mut().push(name.clone());
        let theirs = |args: &[&str]| d.run(args);
        let (dout, dins) = run_case(&theirs, &d.tag, &name, c);
        assert_eq!(
            out, dout,
            "case {i} {:?}: effect, rcompose vs docker",
            c.flags
        );
        for f in &c.fields {
            let (a, b) = (ins.pointer(f), dins.pointer(f));
            // A seccomp profile's text included: docker keeps it compacted, as we do.
            assert_eq!(
                a, b,
                "case {i} {:?}: inspect {f}, rcompose vs docker",
                c.flags
            );
        }
    }
}

#[test]
fn attach_cidfile_and_exit_codes_match_docker() {
    let env = Env::new();
    let docker = Docker::start(&env);
    type Run<'a> = Box<dyn Fn(&[&str]) -> Output + 'a>;
    let mut engines: Vec<(&str, Run, String)> = vec![(
        "rcompose",
        Box::new(|a: &[&str]| env.run(&[&["container"][..], a].concat())),
        IMAGE.to_string(),
    )];
    if let Some(d) = &docker {
        engines.push(("docker", Box::new(|a: &[&str]| d.run(a)), d.tag.clone()));
    }
    for (who, run, image) in &engines {
        let img = image.as_str();
        let base = ["run", "--rm", "--network", "none"];
        let with = |extra: &[&str]| -> Output { run(&[&base[..], extra].concat()) };
        // -a: only the named stream reaches us.
        let o = with(&["-a", "stderr", img, "sh", "-c", "echo out; echo err >&2"]);
        assert!(o.status.success(), "{who}: {}", stderr(&o));
        assert_eq!(
            (stdout(&o).as_str(), stderr(&o).trim()),
            ("", "err"),
            "{who} -a stderr"
        );
        let o = with(&[
            "--attach",
            "stdout",
            img,
            "sh",
            "-c",
            "echo out; echo err >&2",
        ]);
        assert_eq!(
            (stdout(&o).trim(), stderr(&o).as_str()),
            ("out", ""),
            "{who} -a stdout"
        );
        // --sig-proxy=false and --detach-keys are accepted; a bad detach key is refused.
        let o = with(&[
            "--sig-proxy=false",
            "--detach-keys",
            "ctrl-x,x",
            img,
            "echo",
            "ok",
        ]);
        assert_eq!(stdout(&o).trim(), "ok", "{who}: {}", stderr(&o));
        // Exit codes: the container's own, 126 not executable, 127 not found, 125 engine side.
        assert_eq!(
            with(&[img, "sh", "-c", "exit 3"]).status.code(),
            Some(3),
            "{who}"
        );
        assert_eq!(with(&[img, "/etc"]).status.code(), Some(126), "{who}");
        assert_eq!(
            with(&[img, "/no/such/cmd"]).status.code(),
            Some(127),
            "{who}"
        );
        let missing = format!("{}:nope", unique("rcnosuch"));
        let o = with(&["--pull", "never", &missing, "true"]);
        assert_eq!(o.status.code(), Some(125), "{who}: {}", stderr(&o));
        assert_eq!(
            with(&["--no-such-flag", img]).status.code(),
            Some(125),
            "{who}"
        );
        assert_eq!(
            with(&["--device-cgroup-rule", "z 1 r", img, "true"])
                .status
                .code(),
            Some(125),
            "{who}"
        );
        // Config.Attach*/StdinOnce: what a foreground run or a create would attach.
        let attach_fields = |args: &[&str]| -> String {
            let name = unique("rcatt");
            let o = run(&[args, &["--name", &name, "--network", "none", img, "true"]].concat());
            assert!(o.status.success(), "{who} {args:?}: {}", stderr(&o));
            let i = run(&["inspect", &name]);
            let v: Value = serde_json::from_slice(&i.stdout).unwrap();
            let _ = run(&["rm", "-f", &name]);
            let c = &v[0]["Config"];
            format!(
                "{} {} {} {}",
                c["AttachStdin"], c["AttachStdout"], c["AttachStderr"], c["StdinOnce"]
            )
        };
        assert_eq!(
            attach_fields(&["create", "-i"]),
            "true true true true",
            "{who}"
        );
        assert_eq!(attach_fields(&["create"]), "false true true false", "{who}");
        assert_eq!(
            attach_fields(&["run", "-d", "-i"]),
            "false false false false",
            "{who}"
        );
        // --cidfile: the id, and a second run refusing the existing file.
        let cid = env.tmp.path().join(format!("{who}.cid"));
        let name = unique("rccid");
        let o = run(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "--cidfile",
            cid.to_str().unwrap(),
            img,
            "sleep",
            "30",
        ]);
        assert!(o.status.success(), "{who}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(&cid).unwrap(),
            stdout(&o).trim(),
            "{who}"
        );
        let again = with(&["--cidfile", cid.to_str().unwrap(), img, "true"]);
        assert_eq!(again.status.code(), Some(125), "{who}");
        assert!(
            stderr(&again).contains("container ID file found"),
            "{who}: {}",
            stderr(&again)
        );
        let _ = run(&["rm", "-f", &name]);
    }
    // Refused by name, with the reason (docker has these; rcompose cannot honour them).
    for (flag, value) in [
        ("--runtime", "kata"),
        ("--storage-opt", "size=1G"),
        ("--isolation", "hyperv"),
        ("--volume-driver", "convoy"),
        ("--gpus", "all"),
        ("--platform", "windows/amd64"),
    ] {
        let o = env.run(&["container", "run", "--rm", flag, value, IMAGE, "true"]);
        assert_eq!(o.status.code(), Some(125), "{flag}");
        assert!(stderr(&o).contains(flag), "{flag}: {}", stderr(&o));
    }
    // What docker refuses at create, so do we, and nothing is left behind.
    for bad in [
        &["--memory-swap", "32m"][..],
        &["-m", "64m", "--memory-swap", "32m"],
        &["--cpus", "1", "--cpu-quota", "50000"],
        &["--sysctl", "vm.swappiness=1"],
        &["--uts", "host", "-h", "x"],
        &["--oom-score-adj", "2000"],
    ] {
        let o = env.run(
            &[
                &["container", "run", "--rm", "--network", "none"][..],
                bad,
                &[IMAGE, "true"],
            ]
            .concat(),
        );
        assert_eq!(o.status.code(), Some(125), "{bad:?}: {}", stderr(&o));
    }
    assert_eq!(env.ok(&["container", "ps", "-aq"]).trim(), "");
}
