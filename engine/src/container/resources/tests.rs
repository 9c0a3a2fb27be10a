use super::*;

fn host() -> HostConfig {
    HostConfig {
        network_mode: "bridge".into(),
        ..Default::default()
    }
}

#[test]
fn device_syntax_is_dockers() {
    let d = parse_device("/dev/fuse").unwrap();
    assert_eq!(
        (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
        ("/dev/fuse", "rwm")
    );
    let d = parse_device("/dev/null:/dev/mynull:r").unwrap();
    assert_eq!(
        (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
        ("/dev/mynull", "r")
    );
    let d = parse_device("/dev/null:rw").unwrap();
    assert_eq!(d.path_in_container, "/dev/null");
    assert!(parse_device("dev/null").is_err());
    assert!(parse_device("/a:/b:xyz").is_err());
}

#[test]
fn device_cgroup_rules_parse_to_oci() {
    let r = device_cgroup_rule("c 1:3 mr").unwrap();
    assert_eq!(r["type"], "c");
    assert_eq!(r["major"], 1);
    assert_eq!(r["minor"], 3);
    assert_eq!(r["access"], "mr");
    let r = device_cgroup_rule("b 8:* rwm").unwrap();
    assert!(r.get("minor").is_none());
    for bad in ["c 1:3", "x 1:3 r", "c 1 r", "c a:3 r", "c 1:3 q"] {
        assert!(device_cgroup_rule(bad).is_err(), "{bad}");
    }
}

#[test]
fn sysctls_must_be_namespaced() {
    let h = host();
    assert!(check_sysctl("net.ipv4.ip_forward", &h).is_ok());
    assert!(check_sysctl("kernel.shmmax", &h).is_ok());
    assert!(check_sysctl("fs.mqueue.msg_max", &h).is_ok());
    assert!(check_sysctl("vm.swappiness", &h).is_err());
    let mut hostnet = host();
    hostnet.network_mode = "host".into();
    assert!(check_sysctl("net.ipv4.ip_forward", &hostnet).is_err());
}

#[test]
fn validate_refuses_what_docker_refuses() {
    let mut h = host();
    h.extra.memory_swap = 10 << 20;
    assert!(validate(&h).is_err(), "swap without memory");
    h.memory = 20 << 20;
    assert!(validate(&h).is_err(), "swap below memory");
    h.extra.memory_swap = 40 << 20;
    assert!(validate(&h).is_ok());
    h.extra.memory_swappiness = Some(101);
    assert!(validate(&h).is_err());
    h.extra.memory_swappiness = Some(60);
    h.extra.oom_score_adj = 1001;
    assert!(validate(&h).is_err());
    h.extra.oom_score_adj = 500;
    h.nano_cpus = 500_000_000;
    h.extra.cpu_quota = 50_000;
    assert!(validate(&h).is_err(), "--cpus with --cpu-quota");
    h.nano_cpus = 0;
    assert!(validate(&h).is_ok());
    h.extra.cpuset_cpus = "1-0".into();
    assert!(validate(&h).is_err());
    h.extra.cpuset_cpus = "0,1-3".into();
    h.extra.blkio_weight = 5;
    assert!(validate(&h).is_err());
    h.extra.blkio_weight = 300;
    h.extra.cgroup_parent = "/a/../b".into();
    assert!(validate(&h).is_err());
    h.extra.cgroup_parent = "mygroup".into();
    assert!(validate(&h).is_ok());
}

#[test]
fn shares_convert_to_weight_as_crun_does() {
    assert_eq!(cpu_weight_from_shares(0), 0);
    assert_eq!(cpu_weight_from_shares(2), 1);
    assert_eq!(cpu_weight_from_shares(1024), 100);
    assert_eq!(cpu_weight_from_shares(262_144), 10_000);
    // Monotonic in between.
    let mut last = 0;
    for s in [3, 10, 100, 512, 1024, 2048, 10_000, 100_000, 262_143] {
        let w = cpu_weight_from_shares(s);
        assert!(w >= last, "{s} → {w}");
        last = w;
    }
    assert!(cpu_weight_from_shares(512) < 100 && cpu_weight_from_shares(2048) > 100);
}

#[test]
fn cgroup_files_on_v1_and_v2() {
    let mut h = host();
    h.memory = 64 << 20;
    h.extra.memory_swap = 96 << 20;
    h.extra.memory_reservation = 32 << 20;
    h.extra.cpu_shares = 512;
    h.extra.cpu_period = 50_000;
    h.extra.cpu_quota = 25_000;
    h.extra.cpuset_cpus = "0".into();
    let find = |v: &[(String, String, String)], f: &str| {
        v.iter().find(|(_, n, _)| n == f).map(|(_, _, x)| x.clone())
    };
    let v1 = cgroup_files(&h, CgroupVersion::V1);
    assert_eq!(find(&v1, "cpu.shares").as_deref(), Some("512"));
    assert_eq!(find(&v1, "cpu.cfs_quota_us").as_deref(), Some("25000"));
    assert_eq!(
        find(&v1, "memory.memsw.limit_in_bytes").as_deref(),
        Some("100663296")
    );
    assert_eq!(
        find(&v1, "memory.soft_limit_in_bytes").as_deref(),
        Some("33554432")
    );
    let v2 = cgroup_files(&h, CgroupVersion::V2);
    assert_eq!(
        find(&v2, "cpu.weight").as_deref(),
        Some(cpu_weight_from_shares(512).to_string().as_str())
    );
    assert_eq!(find(&v2, "cpu.max").as_deref(), Some("25000 100000"));
    assert_eq!(find(&v2, "memory.swap.max").as_deref(), Some("33554432"));
    assert_eq!(find(&v2, "memory.low").as_deref(), Some("33554432"));
    assert!(v2.iter().all(|(c, _, _)| c.is_empty()));
}

#[test]
fn spec_resources_carry_the_options() {
    let mut h = host();
    h.extra.cpu_shares = 256;
    h.extra.cpuset_mems = "0".into();
    h.extra.device_cgroup_rules = vec!["c 42:* rmw".into()];
    h.extra.oom_kill_disable = true;
    h.extra.memory_swappiness = Some(10);
    let r = linux_resources(&h, &[], CgroupVersion::V1);
    assert_eq!(r["cpu"]["shares"], 256);
    assert_eq!(r["cpu"]["mems"], "0");
    assert_eq!(r["memory"]["swappiness"], 10);
    assert_eq!(r["memory"]["disableOOMKiller"], true);
    assert!(r["devices"].to_string().contains("\"major\":42"));
    // v2 has no swappiness nor OOM-killer switch: docker discards both there.
    let r = linux_resources(&h, &[], CgroupVersion::V2);
    assert!(r.get("memory").is_none());
    let spec: Result<oci_spec::runtime::LinuxResources, _> = serde_json::from_value(r);
    assert!(spec.is_ok(), "{spec:?}");
}

#[test]
fn cgroup_parent_places_the_cgroup() {
    let mut c = super::super::spec::tests_config();
    assert_eq!(cgroups_path(&c), "/rcompose/abc");
    c.host.extra.cgroup_parent = "mygroup/".into();
    assert_eq!(cgroups_path(&c), "/mygroup/abc");
}
