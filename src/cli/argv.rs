//! The command line as tutorials type it, turned into rcompose's before clap sees it:
//!
//! - Invoked as `docker` (a link named so) or as `rcompose docker …`, the words are docker's:
//!   its short verbs (`run`, `ps`, `images`, `rmi`, `inspect`, …) map onto rcompose's
//!   management groups, `docker compose …` onto the compose verbs. Invoked as
//!   `docker-compose`, rcompose is the compose CLI it already is.
//! - Booleans written `--flag=true` / `--flag=false` (Go's flag package accepts them, so docker
//!   does) become `--flag` / nothing, for flags that take no value.
//!
//! Pure functions over strings and the clap tree, so every mapping is unit-tested.

use clap::Command;

/// Docker's global flags that rcompose has an equivalent for, or can ignore safely.
fn docker_global(flag: &str) -> Option<Option<&'static str>> {
    match flag {
        "-D" | "--debug" => Some(Some("-v")),
        "-h" | "--help" => Some(Some("--help")),
        "-v" | "--version" => Some(Some("--version")),
        // One engine on this host: a context or host other than the default cannot be honoured.
        _ => None,
    }
}

/// A docker verb and the rcompose words it becomes.
const DOCKER_VERBS: &[(&str, &[&str])] = &[
    ("run", &["container", "run"]),
    ("create", &["container", "create"]),
    ("start", &["container", "start"]),
    ("stop", &["container", "stop"]),
    ("restart", &["container", "restart"]),
    ("kill", &["container", "kill"]),
    ("rm", &["container", "rm"]),
    ("ps", &["container", "ps"]),
    ("logs", &["container", "logs"]),
    ("exec", &["container", "exec"]),
    ("attach", &["container", "attach"]),
    ("wait", &["container", "wait"]),
    ("pause", &["container", "pause"]),
    ("unpause", &["container", "unpause"]),
    ("rename", &["container", "rename"]),
    ("cp", &["container", "cp"]),
    ("diff", &["container", "diff"]),
    ("export", &["container", "export"]),
    ("commit", &["container", "commit"]),
    ("top", &["container", "top"]),
    ("stats", &["container", "stats"]),
    ("port", &["container", "port"]),
    ("update", &["container", "update"]),
    ("images", &["image", "ls"]),
    ("rmi", &["image", "rm"]),
    ("pull", &["image", "pull"]),
    ("push", &["image", "push"]),
    ("tag", &["image", "tag"]),
    ("save", &["image", "save"]),
    ("load", &["image", "load"]),
    ("history", &["image", "history"]),
    ("import", &["image", "import"]),
    ("search", &["image", "search"]),
    ("build", &["image", "build"]),
    ("info", &["system", "info"]),
    ("version", &["version", "--engine"]),
    ("login", &["login"]),
    ("logout", &["logout"]),
    ("inspect", &["inspect"]),
    ("container", &["container"]),
    ("image", &["image"]),
    ("network", &["network"]),
    ("volume", &["volume"]),
    ("system", &["system"]),
    ("builder", &["image"]),
    ("stack", &["stack"]),
];

/// Docker's argv (without the program name) as rcompose's, or an error naming what to type.
pub fn docker_to_rcompose(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    // `-H`: only `stack` talks to a daemon (the swarm manager); it takes the host itself.
    let mut host: Option<(String, String)> = None;
    while let Some(a) = args.get(i).filter(|a| a.starts_with('-')) {
        if (a == "-H" || a == "--host") && args.get(i + 1).is_some() {
            host = Some((a.clone(), args[i + 1].clone()));
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix("--host=") {
            host = Some(("--host".into(), v.to_string()));
            i += 1;
            continue;
        }
        match docker_global(a) {
            Some(Some(ours)) => out.push(ours.to_string()),
            Some(None) => {}
            None => {
                return Err(format!(
                    "docker's global option {a} is not supported by rcompose (one local engine, no contexts or remote hosts)"
                ));
            }
        }
        i += 1;
    }
    let Some(verb) = args.get(i) else {
        return Err(
            "docker: a command is needed, e.g. `docker run`, `docker ps`, `docker compose up`"
                .into(),
        );
    };
    let rest = &args[i + 1..];
    if let Some((flag, value)) = host {
        if verb != "stack" {
            return Err(format!(
                "docker's global option {flag} is not supported by rcompose for `docker {verb}` (one local engine; only `docker stack` talks to a daemon)"
            ));
        }
        out.extend(["stack".to_string(), "-H".into(), value]);
        out.extend(rest.iter().cloned());
        return Ok(out);
    }
    if verb == "compose" {
        out.extend(rest.iter().cloned());
        return Ok(out);
    }
    match DOCKER_VERBS.iter().find(|(v, _)| v == verb) {
        Some((_, ours)) => {
            out.extend(ours.iter().map(|s| s.to_string()));
            out.extend(rest.iter().cloned());
            Ok(out)
        }
        None => {
            let closest = DOCKER_VERBS
                .iter()
                .map(|(v, _)| *v)
                .chain(["compose"])
                .min_by_key(|v| strsim::levenshtein(v, verb))
                .unwrap_or("run");
            Err(format!(
                "docker: '{verb}' is not a docker command (or not one rcompose provides); did you mean `docker {closest}`?"
            ))
        }
    }
}

/// The words rcompose parses for this process's argv: docker's translated when invoked as
/// `docker` or `rcompose docker`, booleans rewritten; Err with the message for docker words
/// that have no rcompose equivalent. `args[0]` is the program as invoked.
pub fn normalize<'a>(
    args: &[String],
    root: impl FnOnce() -> &'a Command,
) -> Result<Vec<String>, String> {
    let Some(program) = args.first() else {
        return Ok(Vec::new());
    };
    let invoked_as = std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = vec![program.clone()];
    let rest = if invoked_as == "docker" {
        docker_to_rcompose(&args[1..])?
    } else if args.get(1).is_some_and(|a| a == "docker") {
        docker_to_rcompose(&args[2..])?
    } else {
        args[1..].to_vec()
    };
    // Building clap's tree costs a little: only when a boolean may be written Go's way, or a
    // command may begin with a dash (`run IMAGE -c …`, where docker stops at the image).
    let go_style = rest.iter().any(|a| {
        a.starts_with("--") && a.split_once('=').is_some_and(|(_, v)| go_bool(v).is_some())
    });
    let dash_command = rest
        .iter()
        .any(|a| matches!(a.as_str(), "run" | "create" | "exec"))
        && rest.iter().skip(1).any(|a| a.starts_with('-'));
    out.extend(if go_style || dash_command {
        rewrite_bools(&rest, root())
    } else {
        rest
    });
    Ok(out)
}

/// Go's strconv.ParseBool.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Rewrites `--flag=true|false` of flags that take no value, walking the clap tree along the
/// subcommands given. Stops at the first positional argument of a command without
/// subcommands (`run IMAGE CMD…`: what follows belongs to the container) and after `--`;
/// there, when the command's words begin with a dash, puts a `--` before them, since docker
/// parses no flag after the image (`run IMAGE -c x` runs `-c x`) while clap would.
///
/// Walks the unbuilt tree by reference: building or cloning it (every subcommand of the
/// docker-compatible CLI) cost more than the rest of a `container run`'s argument handling.
/// What building would add and the walk needs, the ancestors' global flags (`stack`'s
/// `-H HOST` after a subcommand), it looks up itself.
pub fn rewrite_bools(args: &[String], root: &Command) -> Vec<String> {
    let mut cmd = root;
    let mut globals: Vec<&clap::Arg> = root.get_arguments().filter(|a| a.is_global_set()).collect();
    let mut out = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            out.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let arg = cmd
                .get_arguments()
                .chain(globals.iter().copied())
                .find(|x| {
                    x.get_long() == Some(name)
                        || x.get_all_aliases().is_some_and(|al| al.contains(&name))
                });
            match (arg, value) {
                (Some(x), Some(v)) if !x.get_action().takes_values() => match go_bool(v) {
                    Some(true) => out.push(format!("--{name}")),
                    Some(false) => {}
                    None => out.push(a.clone()),
                },
                (Some(x), None) if x.get_action().takes_values() && !x.is_require_equals_set() => {
                    out.push(a.clone());
                    if let Some(next) = args.get(i + 1) {
                        out.push(next.clone());
                        i += 1;
                    }
                }
                _ => out.push(a.clone()),
            }
        } else if a.len() > 1 && a.starts_with('-') {
            // A cluster such as -it or -p8080:80: only its last letter may take a value.
            out.push(a.clone());
            let last = a.chars().last().unwrap_or('-');
            let takes = cmd
                .get_arguments()
                .chain(globals.iter().copied())
                .find(|x| x.get_short() == Some(last))
                .is_some_and(|x| x.get_action().takes_values());
            if takes && a.len() == 2 {
                if let Some(next) = args.get(i + 1) {
                    out.push(next.clone());
                    i += 1;
                }
            }
        } else {
            match cmd.find_subcommand(a) {
                Some(sub) => {
                    out.push(a.clone());
                    globals.extend(
                        cmd.get_arguments()
                            .filter(|x| x.is_global_set() && !std::ptr::eq(cmd, root)),
                    );
                    cmd = sub;
                }
                None => {
                    out.push(a.clone());
                    let pos: Vec<_> = cmd.get_positionals().collect();
                    let trailing = pos.len() == 2 && pos[1].is_trailing_var_arg_set();
                    if trailing
                        && args
                            .get(i + 1)
                            .is_some_and(|n| n.starts_with('-') && n != "--")
                    {
                        out.push("--".into());
                    }
                    out.extend(args[i + 1..].iter().cloned());
                    break;
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn docker_verbs_map_onto_the_management_groups() {
        let t = |v: &[&str]| docker_to_rcompose(&s(v)).unwrap();
        assert_eq!(
            t(&["run", "-d", "--name", "nginx01", "-p", "3344:80", "nginx"]),
            s(&[
                "container",
                "run",
                "-d",
                "--name",
                "nginx01",
                "-p",
                "3344:80",
                "nginx"
            ])
        );
        assert_eq!(t(&["images"]), s(&["image", "ls"]));
        assert_eq!(t(&["rmi", "-f", "x"]), s(&["image", "rm", "-f", "x"]));
        assert_eq!(t(&["compose", "up", "-d"]), s(&["up", "-d"]));
        assert_eq!(t(&["-D", "ps", "-a"]), s(&["-v", "container", "ps", "-a"]));
        assert_eq!(t(&["network", "ls"]), s(&["network", "ls"]));
        assert_eq!(t(&["info"]), s(&["system", "info"]));
        assert_eq!(
            t(&[
                "-H",
                "unix:///m.sock",
                "stack",
                "deploy",
                "-c",
                "a.yml",
                "x"
            ]),
            s(&[
                "stack",
                "-H",
                "unix:///m.sock",
                "deploy",
                "-c",
                "a.yml",
                "x"
            ])
        );
        assert_eq!(t(&["stack", "ls"]), s(&["stack", "ls"]));
    }

    #[test]
    fn unknown_verbs_name_the_closest_and_remote_hosts_are_refused() {
        let e = docker_to_rcompose(&s(&["imgaes"])).unwrap_err();
        assert!(e.contains("did you mean `docker images`"), "{e}");
        let e = docker_to_rcompose(&s(&["-H", "tcp://x", "ps"])).unwrap_err();
        assert!(e.contains("-H") && e.contains("not supported"), "{e}");
        assert!(docker_to_rcompose(&[]).is_err());
    }

    #[test]
    fn go_style_booleans_become_plain_flags_but_container_arguments_are_kept() {
        let root = crate::cli::Cli::command();
        let got = rewrite_bools(
            &s(&[
                "container",
                "run",
                "--privileged=true",
                "--rm=false",
                "-it",
                "--name=x",
                "-e",
                "A=1",
                "img",
                "tool",
                "--verbose=true",
            ]),
            &root,
        );
        assert_eq!(
            got,
            s(&[
                "container",
                "run",
                "--privileged",
                "-it",
                "--name=x",
                "-e",
                "A=1",
                "img",
                "tool",
                "--verbose=true"
            ])
        );
        // A value that is not a boolean is left for clap to refuse with its own message.
        let kept = rewrite_bools(
            &s(&["container", "run", "--privileged=maybe", "img"]),
            &root,
        );
        assert_eq!(kept[2], "--privileged=maybe");
        // After `--` nothing is touched.
        let dashdash = rewrite_bools(&s(&["container", "run", "--", "--rm=true"]), &root);
        assert_eq!(dashdash[3], "--rm=true");
    }

    #[test]
    fn a_command_beginning_with_a_dash_is_the_containers() {
        let root = crate::cli::Cli::command();
        // docker stops at the image: `-c` is the command's, not --cpu-shares.
        let got = rewrite_bools(
            &s(&[
                "container",
                "run",
                "--sig-proxy",
                "-e",
                "A=1",
                "img",
                "-c",
                "x",
            ]),
            &root,
        );
        assert_eq!(
            got,
            s(&[
                "container",
                "run",
                "--sig-proxy",
                "-e",
                "A=1",
                "img",
                "--",
                "-c",
                "x"
            ])
        );
        let plain = rewrite_bools(&s(&["container", "run", "img", "ls", "-l"]), &root);
        assert_eq!(plain, s(&["container", "run", "img", "ls", "-l"]));
        let words = normalize(&s(&["docker", "run", "--rm", "img", "-a"]), || &root).unwrap();
        assert_eq!(words[words.len() - 2..], s(&["--", "-a"]));
    }
}
