//! A service's devices, cgroup resources, namespaces and security options (compose's
//! `devices`, `cpu_shares`, `sysctls`, `uts`, `security_opt`, …) as the engine's `RunExtras`,
//! the same fields `container run`'s flags fill.

use rcompose_compose::model::Service;
use rcompose_engine::container::model::{DeviceMapping, RunExtras};
use rcompose_engine::container::resources;

use super::translate::TranslateError;
use crate::docker::security_opts;

/// The service's extras, checked as the flags are (a bad value names the service and key).
pub fn extras(svc: &Service) -> Result<(RunExtras, bool), TranslateError> {
    let bad = |key: &str, e: &dyn std::fmt::Display| {
        TranslateError::Invalid(format!("service {:?}: {key}: {e}", svc.name))
    };
    let mut devices = vec![];
    for d in &svc.devices {
        let target = if d.target.is_empty() {
            d.source.clone()
        } else {
            d.target.clone()
        };
        let m = DeviceMapping {
            path_on_host: d.source.clone(),
            path_in_container: target,
            cgroup_permissions: d.permissions.clone().unwrap_or_else(|| "rwm".into()),
        };
        resources::parse_device(&format!(
            "{}:{}:{}",
            m.path_on_host, m.path_in_container, m.cgroup_permissions
        ))
        .map_err(|e| bad("devices", &e))?;
        devices.push(m);
    }
    for r in &svc.device_cgroup_rules {
        resources::device_cgroup_rule(r).map_err(|e| bad("device_cgroup_rules", &e))?;
    }
    let sec = security_opts(&svc.security_opt).map_err(|e| bad("security_opt", &e))?;
    let reservation = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.reservations.as_ref())
        .and_then(|r| r.memory.map(|b| b.0));
    let x = RunExtras {
        devices,
        device_cgroup_rules: svc.device_cgroup_rules.clone(),
        group_add: svc.group_add.clone(),
        sysctls: svc.sysctls.clone(),
        cpu_shares: svc.cpu_shares.unwrap_or(0),
        cpuset_cpus: svc.cpuset.clone().unwrap_or_default(),
        cpu_period: svc.cpu_period.unwrap_or(0),
        cpu_quota: svc.cpu_quota.unwrap_or(0),
        memory_reservation: svc
            .mem_reservation
            .map(|b| b.0)
            .or(reservation)
            .unwrap_or(0),
        memory_swap: svc.memswap_limit.map(|b| b.0).unwrap_or(0),
        memory_swappiness: svc.mem_swappiness.filter(|s| *s != -1),
        oom_score_adj: svc
            .oom_score_adj
            .map(|v| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
            .unwrap_or(0),
        oom_kill_disable: svc.oom_kill_disable,
        domainname: svc.domainname.clone().unwrap_or_default(),
        uts_mode: svc.uts.clone().unwrap_or_default(),
        userns_mode: svc.userns_mode.clone().unwrap_or_default(),
        cgroup_parent: svc.cgroup_parent.clone().unwrap_or_default(),
        cgroupns_mode: svc.cgroup.clone().unwrap_or_default(),
        annotations: svc.annotations.clone(),
        seccomp: sec.seccomp,
        apparmor: sec.apparmor,
        label_opts: sec.labels,
        post_start: super::hooks::parse(svc, "post_start", svc.post_start.as_ref())?,
        pre_stop: super::hooks::parse(svc, "pre_stop", svc.pre_stop.as_ref())?,
        ..Default::default()
    };
    Ok((x, sec.no_new_privileges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_reach_the_engine() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "cpu_shares": 512, "cpuset": "0", "cpu_period": 50000, "cpu_quota": 25000,
            "mem_reservation": 33554432, "mem_swappiness": 10, "oom_score_adj": 200,
            "oom_kill_disable": true, "domainname": "example.org", "uts": "host",
            "group_add": ["audio"], "sysctls": {"net.ipv4.ip_forward": "1"},
            "devices": [{"source": "/dev/fuse", "target": "/dev/fuse", "permissions": "rwm"}],
            "device_cgroup_rules": ["c 42:* rmw"], "cgroup": "private",
            "security_opt": ["no-new-privileges:true", "seccomp:unconfined"],
        }))
        .unwrap();
        let (x, nnp) = extras(&svc).unwrap();
        assert!(nnp);
        assert_eq!(x.cpu_shares, 512);
        assert_eq!(x.cpuset_cpus, "0");
        assert_eq!(x.memory_reservation, 32 << 20);
        assert_eq!(x.memory_swappiness, Some(10));
        assert_eq!(x.oom_score_adj, 200);
        assert_eq!(x.uts_mode, "host");
        assert_eq!(x.cgroupns_mode, "private");
        assert_eq!(x.devices[0].path_in_container, "/dev/fuse");
        assert_eq!(x.seccomp.as_deref(), Some("unconfined"));
        let mut bad: Service = serde_json::from_value(serde_json::json!({
            "device_cgroup_rules": ["z 1:1 r"]
        }))
        .unwrap();
        bad.name = "web".into();
        let e = extras(&bad).unwrap_err().to_string();
        assert!(
            e.contains("web") && e.contains("device_cgroup_rules"),
            "{e}"
        );
    }
}
