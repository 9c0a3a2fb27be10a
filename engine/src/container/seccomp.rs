//! The default seccomp profile. Docker's profile is an allow-list of ~370 syscalls whose
//! effect is to refuse the calls below (unless the matching capability was added); we express
//! the same outcome as a deny-list, which is shorter to load and to audit.

use serde_json::{Value, json};

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
