//! The default seccomp profile. Docker's profile is an allow-list of ~370 syscalls whose
//! effect is to refuse the calls below (unless the matching capability was added); we express
//! the same outcome as a deny-list, which is shorter to load and to audit.

use serde_json::{Value, json};

use super::ContainerError;

/// Always refused (kernel modules, kexec, keyrings, accounting, clock, swap, reboot, ...).
const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "move_pages",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "uselib",
    "userfaultfd",
    "ustat",
];

/// Refused unless CAP_SYS_ADMIN was granted (as docker's profile does).
const SYS_ADMIN: &[&str] = &[
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "name_to_handle_at",
    "fsopen",
    "fsmount",
    "fsconfig",
    "move_mount",
    "open_tree",
];

/// Profile for a container holding `caps`.
pub fn default_profile(caps: &[String]) -> Value {
    let mut names: Vec<&str> = DENIED.to_vec();
    if !caps.iter().any(|c| c == "CAP_SYS_ADMIN") {
        names.extend_from_slice(SYS_ADMIN);
    }
    if caps.iter().any(|c| c == "CAP_SYS_PTRACE") {
        names.retain(|n| !matches!(*n, "ptrace" | "process_vm_readv" | "process_vm_writev"));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })
}

/// A `--security-opt seccomp=FILE` profile (its JSON text) in the OCI form: docker's format
/// (`archMap`, rules with `includes`/`excludes` of capabilities and architectures) is resolved
/// for this machine and the container's capabilities, as dockerd does; an OCI profile passes
/// through unchanged.
pub fn from_docker_profile(text: &str, caps: &[String]) -> Result<Value, ContainerError> {
    let bad = |why: String| ContainerError::InvalidOption {
        option: "--security-opt seccomp".into(),
        value: text.chars().take(40).collect(),
        hint: why,
    };
    let p: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not a JSON profile: {e}")))?;
    let default_action = p["defaultAction"]
        .as_str()
        .ok_or_else(|| bad("the profile has no defaultAction".into()))?;
    let arch = native_arch();
    let mut out = json!({"defaultAction": default_action});
    if let Some(n) = p["defaultErrnoRet"].as_u64() {
        out["defaultErrnoRet"] = json!(n);
    }
    let mut arches: Vec<Value> = vec![];
    if let Some(map) = p["archMap"].as_array() {
        for m in map.iter().filter(|m| m["architecture"] == arch) {
            arches.push(m["architecture"].clone());
            arches.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    } else if let Some(a) = p["architectures"].as_array() {
        arches = a.clone();
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    let has_cap = |c: &Value| c.as_str().is_some_and(|c| caps.iter().any(|h| h == c));
    let has_arch = |a: &Value| a.as_str() == Some(arch);
    let mut rules = vec![];
    for r in p["syscalls"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let inc = &r["includes"];
        let exc = &r["excludes"];
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        if !list(&inc["caps"]).iter().all(has_cap)
            || (!list(&inc["arches"]).is_empty() && !list(&inc["arches"]).iter().any(has_arch))
            || list(&exc["caps"]).iter().any(has_cap)
            || list(&exc["arches"]).iter().any(has_arch)
        {
            continue;
        }
        let mut names = list(&r["names"]);
        if let Some(n) = r["name"].as_str() {
            names.push(json!(n));
        }
        let action = r["action"]
            .as_str()
            .ok_or_else(|| bad("a syscalls entry has no action".into()))?;
        let mut rule = json!({"names": names, "action": action});
        if let Some(a) = r["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = json!(a);
        }
        if let Some(n) = r["errnoRet"].as_u64() {
            rule["errnoRet"] = json!(n);
        }
        rules.push(rule);
    }
    out["syscalls"] = json!(rules);
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| bad(format!("not a valid seccomp profile: {e}")))?;
    Ok(out)
}

/// libseccomp's name for this machine's architecture.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_profile_resolves_caps_and_arches() {
        let text = r#"{
          "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
          "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                      {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
          "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": []},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_FOWNER"]}}
          ]}"#;
        let p = from_docker_profile(text, &["CAP_CHOWN".into()]).unwrap();
        let s = p.to_string();
        assert!(s.contains("\"read\""));
        assert!(!s.contains("mount"), "{s}");
        assert!(s.contains("chmod"));
        assert_eq!(p["architectures"][0], native_arch());
        let p = from_docker_profile(text, &["CAP_SYS_ADMIN".into(), "CAP_FOWNER".into()]).unwrap();
        let s = p.to_string();
        assert!(s.contains("mount") && !s.contains("chmod"), "{s}");
        assert!(from_docker_profile("{}", &[]).is_err());
        assert!(from_docker_profile("not json", &[]).is_err());
    }
}
