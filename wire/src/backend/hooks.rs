//! Compose's `post_start` and `pre_stop` hooks: parsed from the service (the compose model
//! keeps them as raw values), stored in the container's config, and run as execs by the
//! backend right after a start and right before a stop, as docker compose does.

use std::os::fd::OwnedFd;

use rcompose_compose::model::{Any, Service};
use rcompose_engine::container::Containers;
use rcompose_engine::container::exec::{ExecOptions, ExecStdio, wait_exec};
use rcompose_engine::container::model::Hook;

use super::translate::TranslateError;

/// The hooks of `key` (`post_start` or `pre_stop`) of `svc`; refuses what cannot be run.
pub fn parse(svc: &Service, key: &str, value: Option<&Any>) -> Result<Vec<Hook>, TranslateError> {
    let bad = |i: usize, why: &str| {
        TranslateError::Invalid(format!("service {:?}: {key}[{i}]: {why}", svc.name))
    };
    let Some(v) = value else {
        return Ok(vec![]);
    };
    let list = v
        .as_array()
        .ok_or_else(|| bad(0, "must be a list of hooks, each with a command"))?;
    let mut out = vec![];
    for (i, h) in list.iter().enumerate() {
        let command = match &h["command"] {
            Any::String(s) => vec!["/bin/sh".to_string(), "-c".into(), s.clone()],
            Any::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(i, "command must be a string or a list of strings"))?,
            _ => return Err(bad(i, "a hook needs a command")),
        };
        if command.is_empty() {
            return Err(bad(i, "a hook needs a command"));
        }
        if h["privileged"].as_bool() == Some(true) && !svc.privileged {
            return Err(bad(
                i,
                "privileged hooks are not supported (rcompose's exec cannot raise privileges); make the service privileged or drop privileged: true",
            ));
        }
        let env = match &h["environment"] {
            Any::Object(m) => m
                .iter()
                .map(|(k, v)| match v {
                    Any::String(s) => format!("{k}={s}"),
                    Any::Null => k.clone(),
                    other => format!("{k}={other}"),
                })
                .collect(),
            Any::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        out.push(Hook {
            command,
            user: h["user"].as_str().unwrap_or_default().to_string(),
            working_dir: h["working_dir"].as_str().unwrap_or_default().to_string(),
            env,
        });
    }
    Ok(out)
}

/// Runs `hooks` in the running container `id` one after the other; the first that fails
/// (cannot start, or exits non-zero) is the error, with its output.
pub fn run(eng: &Containers, id: &str, which: &str, hooks: &[Hook]) -> Result<(), String> {
    for h in hooks {
        let out_path = eng
            .store
            .run_dir(id)
            .join(format!("{which}-hook.{}", std::process::id()));
        let file = std::fs::File::create(&out_path)
            .map_err(|e| format!("{which} hook: {}: {e}", out_path.display()))?;
        let dup = |f: &std::fs::File| f.try_clone().map(OwnedFd::from);
        let stdio = (|| -> std::io::Result<ExecStdio> {
            Ok(ExecStdio {
                stdin: Some(OwnedFd::from(std::fs::File::open("/dev/null")?)),
                stdout: dup(&file)?,
                stderr: dup(&file)?,
            })
        })()
        .map_err(|e| format!("{which} hook: {e}"))?;
        let opts = ExecOptions {
            cmd: h.command.clone(),
            env: h.env.clone(),
            user: (!h.user.is_empty()).then(|| h.user.clone()),
            working_dir: (!h.working_dir.is_empty()).then(|| h.working_dir.clone()),
            tty: false,
        };
        let res = eng
            .exec(id, &opts, Some(stdio))
            .map_err(|e| format!("{which} hook {:?}: {e}", h.command))
            .map(|p| wait_exec(p.pid));
        let output = std::fs::read_to_string(&out_path).unwrap_or_default();
        let _ = std::fs::remove_file(&out_path);
        match res? {
            0 => {}
            code => {
                return Err(format!(
                    "{which} hook {:?} exited with status {code}: {}",
                    h.command,
                    output.trim()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_parse_and_refuse_privilege() {
        let svc = Service {
            name: "web".into(),
            ..Default::default()
        };
        let v: Any = serde_json::json!([
            {"command": "echo hi > /tmp/x", "user": "nobody", "environment": {"A": "1"}},
            {"command": ["touch", "/tmp/y"], "working_dir": "/tmp"}
        ]);
        let h = parse(&svc, "post_start", Some(&v)).unwrap();
        assert_eq!(h[0].command, ["/bin/sh", "-c", "echo hi > /tmp/x"]);
        assert_eq!(
            (h[0].user.as_str(), h[0].env.as_slice()),
            ("nobody", &["A=1".to_string()][..])
        );
        assert_eq!(h[1].working_dir, "/tmp");
        let p: Any = serde_json::json!([{"command": "x", "privileged": true}]);
        let e = parse(&svc, "pre_stop", Some(&p)).unwrap_err().to_string();
        assert!(e.contains("pre_stop[0]") && e.contains("privileged"), "{e}");
        let none: Any = serde_json::json!([{"user": "root"}]);
        assert!(parse(&svc, "post_start", Some(&none)).is_err());
    }
}
