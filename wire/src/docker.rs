//! Docker's options → the engine's, once for `container run/create` (flags) and compose
//! services (`backend/translate.rs`): the `pid`/`ipc` namespace modes, the log driver and
//! its options, `-e`, `-v`, `--mount` and `--ulimit`. The image side (config → `ImageInfo`)
//! is `rcompose_engine::container::ImageInfo::from_record`; sizes and durations are
//! `rcompose_engine::units`.

use std::collections::BTreeMap;

use std::path::PathBuf;

use rcompose_engine::container::model::{HostConfig, LOG_DRIVERS, MountSpec, Ulimit};
use rcompose_engine::container::{ContainerError, ContainerStore};
use rcompose_engine::logs::LogError;

/// Why a docker option cannot be used; the texts are docker's or name the option.
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// A malformed or refused value; the text names the option and what to use instead.
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: no such container: {target}")]
    NoSuchContainer {
        what: String,
        target: String,
        #[source]
        source: Box<ContainerError>,
    },
    #[error("{what}: service {target} has no container; start it first")]
    NoServiceContainer { what: String, target: String },
    #[error(transparent)]
    Container(Box<ContainerError>),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("creating {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

// Boxed: the engine's error is large and these are returned from every parser.
impl From<ContainerError> for OptionError {
    fn from(e: ContainerError) -> Self {
        Self::Container(Box::new(e))
    }
}

type Result<T> = std::result::Result<T, OptionError>;

/// `Err(OptionError::Invalid(format!(…)))`.
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err(OptionError::Invalid(format!($($arg)*)))
    };
}

/// Where a namespace mode comes from, which words its errors and what it may name.
#[derive(Debug, Clone, Copy)]
pub enum Syntax<'a> {
    /// `--pid`/`--ipc` of `container run/create`: `shareable` only for `--ipc`.
    Flag(&'a str),
    /// `pid:`/`ipc:` of a compose service, which may also name `service:<name>`.
    Compose { project: &'a str, key: &'a str },
}

/// `pid`/`ipc` → the engine's mode: the container's own namespace (empty), `host`, or
/// `container:<full id>` of a container that exists (it must run when this one starts), or,
/// in compose, of the first container of `service:<name>` (which the loader made a
/// dependency, so it runs first).
pub fn namespace_mode(
    store: &ContainerStore,
    syntax: Syntax,
    mode: Option<&str>,
) -> Result<String> {
    let what = |m: &str| match syntax {
        Syntax::Flag(flag) => format!("{flag} {m}"),
        Syntax::Compose { key, .. } => format!("{key}: {m}"),
    };
    let shareable = match syntax {
        Syntax::Flag(flag) => flag == "--ipc",
        Syntax::Compose { .. } => true,
    };
    match mode {
        None | Some("") | Some("private") => Ok(String::new()),
        Some("shareable") if shareable => Ok(String::new()),
        Some("host") => Ok("host".into()),
        Some(m) if m.starts_with("container:") => {
            let target = &m["container:".len()..];
            let c = store
                .resolve(target)
                .map_err(|source| OptionError::NoSuchContainer {
                    what: what(m),
                    target: target.to_string(),
                    source: Box::new(source),
                })?;
            Ok(format!("container:{}", c.id))
        }
        Some(m) => match (syntax, m.strip_prefix("service:")) {
            (Syntax::Compose { project, .. }, Some(target)) => {
                let c = crate::backend::netplan::first_container(store, project, target)?
                    .ok_or_else(|| OptionError::NoServiceContainer {
                        what: what(m),
                        target: target.to_string(),
                    })?;
                Ok(format!("container:{}", c.id))
            }
            (Syntax::Flag(flag), _) => {
                invalid!("invalid {flag} {m:?}: use host or container:<name|id>")
            }
            (Syntax::Compose { key, .. }, None) => {
                invalid!("{key}: {m:?} is not host, container:<name> or service:<name>")
            }
        },
    }
}

/// `--log-opt KEY=VALUE` (repeatable), checked here so a bad option creates nothing.
pub fn log_opts(driver: Option<&str>, opts: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for o in opts {
        let Some((k, v)) = o.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            invalid!("invalid --log-opt {o:?}: use KEY=VALUE, e.g. max-size=10m");
        };
        out.insert(k.to_string(), v.to_string());
    }
    let host = HostConfig {
        log_driver: log_driver(driver)?,
        log_opts: out,
        ..Default::default()
    };
    host.log_rotation()?;
    Ok(host.log_opts)
}

/// `--log-driver`: docker's default json-file, or none; other drivers are refused by name.
pub fn log_driver(driver: Option<&str>) -> Result<String> {
    match driver {
        None | Some("json-file") => Ok(String::new()),
        Some(d) if LOG_DRIVERS.contains(&d) => Ok(d.to_string()),
        Some(d) => invalid!(
            "logging driver {d:?} is not supported: use {}",
            LOG_DRIVERS.join(" or ")
        ),
    }
}

/// `KEY=VALUE`, or `KEY` taken from our environment (dropped when unset), as docker does.
pub fn env_entry(e: &str) -> String {
    if e.contains('=') {
        e.to_string()
    } else {
        format!("{e}={}", std::env::var(e).unwrap_or_default())
    }
}

/// docker `-v`: `/ctr` (anonymous), `name:/ctr[:opts]` (named), `/host:/ctr[:opts]` (bind).
pub fn parse_volume(v: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => invalid!("invalid volume specification \"{v}\": use [SOURCE:]TARGET[:ro|rw]"),
    };
    if !dst.starts_with('/') {
        invalid!("invalid volume specification \"{v}\": the container path must be absolute");
    }
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" | "z" | "Z" | "rprivate" | "private" => {}
            other => invalid!("invalid volume option \"{other}\" in \"{v}\": use ro or rw"),
        }
    }
    let (kind, source, anonymous) = if src.is_empty() {
        ("volume", String::new(), true)
    } else if src.starts_with('/') || src.starts_with('.') {
        let p = std::path::absolute(src)?;
        // `-v` creates a missing host directory, as docker does (`--mount` refuses).
        if !p.exists() {
            std::fs::create_dir_all(&p).map_err(|source| OptionError::Create {
                path: p.clone(),
                source,
            })?;
        }
        ("bind", p.display().to_string(), false)
    } else {
        ("volume", src.to_string(), false)
    };
    Ok(MountSpec {
        kind: kind.into(),
        source,
        target: dst.into(),
        read_only,
        anonymous,
    })
}

/// docker `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]`.
pub fn parse_mount(m: &str) -> Result<MountSpec> {
    let mut kind = "volume".to_string();
    let (mut source, mut target, mut read_only) = (String::new(), String::new(), false);
    for kv in m.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        match k {
            "type" => kind = v.into(),
            "source" | "src" => source = v.into(),
            "target" | "destination" | "dst" => target = v.into(),
            "readonly" | "ro" => read_only = v != "false" && v != "0",
            "bind-propagation" | "volume-nocopy" | "consistency" => {}
            other => invalid!("invalid --mount field \"{other}\" in \"{m}\""),
        }
    }
    if !target.starts_with('/') {
        invalid!("invalid --mount \"{m}\": target must be an absolute path");
    }
    match kind.as_str() {
        "bind" => {
            let p = std::path::absolute(&source)?;
            if source.is_empty() || !p.exists() {
                invalid!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                );
            }
            source = p.display().to_string();
        }
        "volume" | "tmpfs" => {}
        other => invalid!("invalid --mount type \"{other}\": use bind, volume or tmpfs"),
    }
    let anonymous = kind == "volume" && source.is_empty();
    Ok(MountSpec {
        kind,
        source,
        target,
        read_only,
        anonymous,
    })
}

/// `name=soft[:hard]`; refuses a hard limit above the host's (raising it fails with EPERM).
pub fn parse_ulimit(u: &str) -> Result<Ulimit> {
    let (name, vals) = u.split_once('=').ok_or_else(|| {
        OptionError::Invalid(format!("invalid --ulimit \"{u}\": use name=soft[:hard]"))
    })?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let p = |s: &str| -> Result<u64> {
        if s == "-1" || s == "unlimited" {
            return Ok(u64::MAX);
        }
        s.parse().map_err(|_| {
            OptionError::Invalid(format!("invalid --ulimit \"{u}\": limits must be numbers"))
        })
    };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard {
        invalid!("invalid --ulimit \"{u}\": soft limit {soft} is above hard limit {hard}");
    }
    let res = match name {
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "core" => libc::RLIMIT_CORE,
        "stack" => libc::RLIMIT_STACK,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "fsize" => libc::RLIMIT_FSIZE,
        "cpu" => libc::RLIMIT_CPU,
        "as" => libc::RLIMIT_AS,
        "data" => libc::RLIMIT_DATA,
        "nice" => libc::RLIMIT_NICE,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "locks" => libc::RLIMIT_LOCKS,
        other => invalid!("invalid --ulimit name \"{other}\""),
    };
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a local struct.
    unsafe { libc::getrlimit(res, &mut cur) };
    if hard > cur.rlim_max {
        invalid!(
            "--ulimit {u}: hard limit {hard} is above the host's hard limit {} for {name}; choose at most that",
            cur.rlim_max
        );
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

/// `--security-opt` / compose `security_opt`, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct Security {
    pub no_new_privileges: bool,
    /// `unconfined`, or the JSON text of a profile file (docker keeps the text).
    pub seccomp: Option<String>,
    pub apparmor: String,
    pub labels: Vec<String>,
}

/// Docker's security options (`key=value` and the older `key:value`): no-new-privileges,
/// seccomp=unconfined|FILE, apparmor=PROFILE, label=…. AppArmor profiles and SELinux labels
/// are refused on hosts without them: applying neither silently would give a weaker
/// container than asked for.
pub fn security_opts(opts: &[String]) -> Result<Security> {
    security(opts, false)
}

/// The security options of docker's API body: docker's client has already read a
/// `seccomp=FILE` and sends `seccomp=<the profile's JSON>` instead of the path.
pub fn security_opts_inline(opts: &[String]) -> Result<Security> {
    security(opts, true)
}

fn security(opts: &[String], inline_profiles: bool) -> Result<Security> {
    let mut s = Security::default();
    for o in opts {
        let (k, v) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        match (k, v) {
            ("no-new-privileges", None | Some("true")) => s.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => s.no_new_privileges = false,
            ("seccomp", Some("unconfined")) => s.seccomp = Some("unconfined".into()),
            ("seccomp", Some(text)) if inline_profiles && !text.is_empty() => {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                    invalid!("security-opt seccomp: the profile is not valid JSON: {e}");
                }
                s.seccomp = Some(compact_json(text));
            }
            ("seccomp", Some(file)) if !file.is_empty() => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    OptionError::Invalid(format!(
                        "security-opt seccomp={file}: cannot read the profile: {e}"
                    ))
                })?;
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
                    invalid!("security-opt seccomp={file}: the profile is not valid JSON: {e}");
                }
                s.seccomp = Some(compact_json(&text));
            }
            ("apparmor", Some(p)) if !p.is_empty() => {
                if p != "unconfined" && !apparmor_enabled() {
                    invalid!(
                        "security-opt apparmor={p}: this host's kernel has no AppArmor, so the profile cannot be applied; use apparmor=unconfined or leave it out"
                    );
                }
                s.apparmor = p.to_string();
            }
            ("label", Some(l)) if !l.is_empty() => {
                if l != "disable" && !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
                    invalid!(
                        "security-opt label={l}: this host has no SELinux, so the label cannot be applied; use label=disable or leave it out"
                    );
                }
                s.labels.push(l.to_string());
            }
            _ => invalid!(
                "invalid security-opt {o:?}: use no-new-privileges, seccomp=unconfined|FILE, apparmor=PROFILE or label=…"
            ),
        }
    }
    Ok(s)
}

/// JSON text without the whitespace between tokens, keys in their order (Go's
/// `json.Compact`, which docker's CLI applies to a seccomp profile before sending it).
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut esc) = (false, false);
    for c in text.chars() {
        if in_str {
            out.push(c);
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Whether the kernel has AppArmor enabled.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

#[cfg(test)]
mod tests {
    #[test]
    fn security_opts_parse_both_separators() {
        let s =
            super::security_opts(&["no-new-privileges:true".into(), "seccomp=unconfined".into()])
                .unwrap();
        assert!(s.no_new_privileges);
        assert_eq!(s.seccomp.as_deref(), Some("unconfined"));
        assert!(super::security_opts(&["label=disable".into()]).is_ok());
        assert_eq!(
            super::compact_json("{ \"a b\": [1, \"x \\\" y\"],\n \"c\" : {} }"),
            "{\"a b\":[1,\"x \\\" y\"],\"c\":{}}"
        );
        assert!(super::security_opts(&["bogus=1".into()]).is_err());
        // The API's body carries the profile itself, compacted by docker's client.
        let s =
            super::security_opts_inline(&[r#"seccomp={"defaultAction": "SCMP_ACT_ALLOW"}"#.into()])
                .unwrap();
        assert_eq!(
            s.seccomp.as_deref(),
            Some(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#)
        );
        assert!(super::security_opts_inline(&["seccomp={nope".into()]).is_err());
        assert!(super::security_opts(&["seccomp=/nonexistent/profile.json".into()]).is_err());
        if !super::apparmor_enabled() {
            let e = super::security_opts(&["apparmor=docker-default".into()]).unwrap_err();
            assert!(e.to_string().contains("AppArmor"), "{e}");
        }
    }

    use super::*;

    #[test]
    fn volumes_and_mounts_in_docker_syntax() {
        let anon = parse_volume("/data").unwrap();
        assert!(anon.anonymous && anon.kind == "volume" && anon.target == "/data");
        let named = parse_volume("cache:/c:ro").unwrap();
        assert_eq!((named.source.as_str(), named.read_only), ("cache", true));
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("made");
        let bind = parse_volume(&format!("{}:/b", src.display())).unwrap();
        assert_eq!(bind.kind, "bind");
        assert!(src.is_dir(), "-v creates a missing host directory");
        assert!(parse_volume("rel:dst").is_err());
        assert!(parse_volume("/a:/b:xx").is_err());

        let m = parse_mount("type=tmpfs,target=/t,readonly").unwrap();
        assert!(m.read_only && m.kind == "tmpfs");
        let err = parse_mount("type=bind,source=/no/such/dir,target=/x").unwrap_err();
        assert!(err.to_string().contains("bind source path does not exist"));
    }

    #[test]
    fn ulimits_and_log_options() {
        let u = parse_ulimit("nofile=64:128").unwrap();
        assert_eq!((u.soft, u.hard), (64, 128));
        assert!(parse_ulimit("nofile=128:64").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert_eq!(log_driver(Some("json-file")).unwrap(), "");
        assert!(log_driver(Some("syslog")).is_err());
        assert!(log_opts(None, &["max-size=10m".into()]).is_ok());
        assert!(log_opts(None, &["=x".into()]).is_err());
    }

    #[test]
    fn namespace_modes_word_errors_by_syntax() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContainerStore::new(dir.path(), dir.path());
        let flag = Syntax::Flag("--pid");
        let compose = Syntax::Compose {
            project: "p",
            key: "pid",
        };
        assert_eq!(namespace_mode(&store, flag, Some("host")).unwrap(), "host");
        assert_eq!(namespace_mode(&store, compose, None).unwrap(), "");
        assert_eq!(
            namespace_mode(&store, flag, Some("bogus"))
                .unwrap_err()
                .to_string(),
            "invalid --pid \"bogus\": use host or container:<name|id>"
        );
        assert_eq!(
            namespace_mode(&store, compose, Some("bogus"))
                .unwrap_err()
                .to_string(),
            "pid: \"bogus\" is not host, container:<name> or service:<name>"
        );
        // `shareable` is an ipc mode only.
        assert!(namespace_mode(&store, flag, Some("shareable")).is_err());
        assert!(namespace_mode(&store, Syntax::Flag("--ipc"), Some("shareable")).is_ok());
        let err = namespace_mode(&store, flag, Some("container:nope")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--pid container:nope: no such container: nope")
        );
    }
}
