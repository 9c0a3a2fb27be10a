//! The compose schema as shape tables, used by the validate stage: every known key of every
//! object, and the shape its value must have.

use super::validate::Shape::{self, *};

const FILE_REF: &[(&str, Shape)] = &[
    ("source", Required(&Str)),
    ("target", Str),
    ("uid", Scalar),
    ("gid", Scalar),
    ("mode", Scalar),
];
const FILE_REFS: Shape = ListOf(&Either(&Str, &Obj(FILE_REF)));
const EXTRA_HOSTS: Shape = Either(&StrList, &Dict);
const ULIMITS: Shape = DictOf(&Either(
    &Int,
    &Obj(&[("soft", Required(&Int)), ("hard", Required(&Int))]),
));

const BUILD: &[(&str, Shape)] = &[
    ("context", Str),
    ("dockerfile", Str),
    ("dockerfile_inline", Str),
    ("entitlements", StrList),
    ("args", ListOrDict),
    ("provenance", Scalar),
    ("sbom", Scalar),
    ("ssh", Either(&StrList, &Dict)),
    ("labels", ListOrDict),
    ("cache_from", StrList),
    ("cache_to", StrList),
    ("no_cache", Bool),
    ("additional_contexts", ListOrDict),
    ("pull", Bool),
    ("extra_hosts", EXTRA_HOSTS),
    ("isolation", Str),
    ("network", Str),
    ("target", Str),
    ("secrets", FILE_REFS),
    ("tags", StrList),
    ("ulimits", ULIMITS),
    ("platforms", StrList),
    ("privileged", Bool),
    ("shm_size", Bytes),
];

const RESOURCE: &[(&str, Shape)] = &[
    ("cpus", Num),
    ("memory", Bytes),
    ("pids", Int),
    ("devices", Any),
    ("generic_resources", Any),
];

const DEPLOY: &[(&str, Shape)] = &[
    ("mode", Str),
    ("replicas", UInt),
    ("labels", ListOrDict),
    ("update_config", Dict),
    ("rollback_config", Dict),
    (
        "resources",
        Obj(&[("limits", Obj(RESOURCE)), ("reservations", Obj(RESOURCE))]),
    ),
    (
        "restart_policy",
        Obj(&[
            ("condition", Str),
            ("delay", Duration),
            ("max_attempts", UInt),
            ("window", Duration),
        ]),
    ),
    ("placement", Dict),
    ("endpoint_mode", Str),
];

const HEALTHCHECK: &[(&str, Shape)] = &[
    ("test", StrOrList),
    ("interval", Duration),
    ("timeout", Duration),
    ("retries", UInt),
    ("start_period", Duration),
    ("start_interval", Duration),
    ("disable", Bool),
];

const SERVICE_NETWORK: &[(&str, Shape)] = &[
    ("aliases", StrList),
    ("driver_opts", Dict),
    ("gw_priority", Int),
    ("interface_name", Str),
    ("ipv4_address", Str),
    ("ipv6_address", Str),
    ("link_local_ips", StrList),
    ("mac_address", Str),
    ("priority", Int),
];

const PORT: &[(&str, Shape)] = &[
    ("name", Str),
    ("mode", Str),
    ("host_ip", Str),
    ("target", Required(&UInt)),
    ("published", Scalar),
    ("protocol", Str),
    ("app_protocol", Str),
];

const SERVICE_VOLUME: &[(&str, Shape)] = &[
    ("type", Str),
    ("source", Str),
    ("target", Required(&Str)),
    ("read_only", Bool),
    ("consistency", Str),
    (
        "bind",
        Obj(&[
            ("propagation", Str),
            ("create_host_path", Bool),
            ("selinux", Str),
            ("recursive", Str),
        ]),
    ),
    (
        "volume",
        Obj(&[("nocopy", Bool), ("subpath", Str), ("labels", ListOrDict)]),
    ),
    ("tmpfs", Obj(&[("size", Bytes), ("mode", Int)])),
    ("image", Dict),
];

pub const SERVICE: &[(&str, Shape)] = &[
    ("annotations", ListOrDict),
    ("attach", Bool),
    ("build", Either(&Str, &Obj(BUILD))),
    ("blkio_config", Dict),
    ("cap_add", StrList),
    ("cap_drop", StrList),
    ("cgroup", Str),
    ("cgroup_parent", Str),
    ("command", StrOrList),
    ("configs", FILE_REFS),
    ("container_name", Str),
    ("cpu_count", Int),
    ("cpu_percent", Num),
    ("cpu_period", Int),
    ("cpu_quota", Int),
    ("cpu_rt_period", Int),
    ("cpu_rt_runtime", Int),
    ("cpu_shares", Int),
    ("cpus", Num),
    ("cpuset", Str),
    ("credential_spec", Dict),
    (
        "depends_on",
        Either(
            &StrList,
            &DictOf(&NullOr(&Obj(&[
                ("condition", Str),
                ("restart", Bool),
                ("required", Bool),
            ]))),
        ),
    ),
    ("deploy", Obj(DEPLOY)),
    ("develop", Dict),
    ("device_cgroup_rules", StrList),
    (
        "devices",
        ListOf(&Either(
            &Str,
            &Obj(&[
                ("source", Required(&Str)),
                ("target", Str),
                ("permissions", Str),
            ]),
        )),
    ),
    ("dns", StrOrList),
    ("dns_opt", StrList),
    ("dns_search", StrOrList),
    ("domainname", Str),
    ("entrypoint", StrOrList),
    (
        "env_file",
        Either(
            &Str,
            &ListOf(&Either(
                &Str,
                &Obj(&[
                    ("path", Required(&Str)),
                    ("required", Bool),
                    ("format", Str),
                ]),
            )),
        ),
    ),
    ("environment", ListOrDict),
    ("expose", StrList),
    (
        "extends",
        Either(&Str, &Obj(&[("service", Str), ("file", Str)])),
    ),
    ("external_links", StrList),
    ("extra_hosts", EXTRA_HOSTS),
    ("gpus", Any),
    ("group_add", StrList),
    ("healthcheck", Obj(HEALTHCHECK)),
    ("hostname", Str),
    ("image", Str),
    ("init", Bool),
    ("ipc", Str),
    ("isolation", Str),
    ("labels", ListOrDict),
    ("label_file", StrOrList),
    ("links", StrList),
    ("logging", Obj(&[("driver", Str), ("options", Dict)])),
    ("mac_address", Str),
    ("mem_limit", Bytes),
    ("mem_reservation", Bytes),
    ("mem_swappiness", Int),
    ("memswap_limit", Bytes),
    ("models", Any),
    ("network_mode", Str),
    (
        "networks",
        Either(&StrList, &DictOf(&NullOr(&Obj(SERVICE_NETWORK)))),
    ),
    ("oom_kill_disable", Bool),
    ("oom_score_adj", Int),
    ("pid", Str),
    ("pids_limit", Int),
    ("platform", Str),
    ("ports", ListOf(&Either(&Scalar, &Obj(PORT)))),
    ("post_start", Any),
    ("pre_stop", Any),
    ("privileged", Bool),
    ("profiles", StrList),
    ("provider", Dict),
    ("pull_policy", Str),
    ("read_only", Bool),
    ("restart", Str),
    ("runtime", Str),
    ("scale", UInt),
    ("secrets", FILE_REFS),
    ("security_opt", StrList),
    ("shm_size", Bytes),
    ("stdin_open", Bool),
    ("stop_grace_period", Duration),
    ("stop_signal", Str),
    ("storage_opt", Dict),
    ("sysctls", ListOrDict),
    ("tmpfs", StrOrList),
    ("tty", Bool),
    ("ulimits", ULIMITS),
    ("use_api_socket", Bool),
    ("user", Str),
    ("userns_mode", Str),
    ("uts", Str),
    ("volume_driver", Str),
    ("volumes", ListOf(&Either(&Str, &Obj(SERVICE_VOLUME)))),
    ("volumes_from", StrList),
    ("working_dir", Str),
];

const EXTERNAL: Shape = Either(&Bool, &Obj(&[("name", Str)]));

const NETWORK: &[(&str, Shape)] = &[
    ("name", Str),
    ("driver", Str),
    ("driver_opts", Dict),
    (
        "ipam",
        Obj(&[
            ("driver", Str),
            (
                "config",
                ListOf(&Obj(&[
                    ("subnet", Str),
                    ("gateway", Str),
                    ("ip_range", Str),
                    ("aux_addresses", Dict),
                ])),
            ),
            ("options", Dict),
        ]),
    ),
    ("external", EXTERNAL),
    ("internal", Bool),
    ("attachable", Bool),
    ("labels", ListOrDict),
    ("enable_ipv4", Bool),
    ("enable_ipv6", Bool),
];

const VOLUME: &[(&str, Shape)] = &[
    ("name", Str),
    ("driver", Str),
    ("driver_opts", Dict),
    ("external", EXTERNAL),
    ("labels", ListOrDict),
];

const FILE_OBJECT: &[(&str, Shape)] = &[
    ("name", Str),
    ("file", Str),
    ("environment", Str),
    ("content", Str),
    ("external", EXTERNAL),
    ("labels", ListOrDict),
    ("driver", Str),
    ("driver_opts", Dict),
    ("template_driver", Str),
];

pub const TOP: &[(&str, Shape)] = &[
    ("version", Any),
    ("name", Str),
    (
        "include",
        ListOf(&Either(
            &Str,
            &Obj(&[
                ("path", Required(&StrOrList)),
                ("project_directory", Str),
                ("env_file", StrOrList),
            ]),
        )),
    ),
    ("services", DictOf(&Obj(SERVICE))),
    ("networks", DictOf(&NullOr(&Obj(NETWORK)))),
    ("volumes", DictOf(&NullOr(&Obj(VOLUME)))),
    ("secrets", DictOf(&Obj(FILE_OBJECT))),
    ("configs", DictOf(&Obj(FILE_OBJECT))),
    ("models", Any),
];
