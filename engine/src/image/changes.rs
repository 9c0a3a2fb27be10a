//! Dockerfile-style `--change` instructions applied to an image config (`import -c`).

use std::collections::HashMap;

use oci_spec::image::Config;

/// Apply one instruction (`CMD ["sh"]`, `ENV A=1`, `EXPOSE 80/tcp`, ...) to `config`.
pub fn apply_change(config: &mut Config, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((change, ""));
    let bad = |why: &str| format!("invalid change {change:?}: {why}");
    match word.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.set_cmd(Some(exec_or_shell(rest).map_err(|e| bad(&e))?));
        }
        "ENTRYPOINT" => {
            config.set_entrypoint(Some(exec_or_shell(rest).map_err(|e| bad(&e))?));
        }
        "WORKDIR" if !rest.is_empty() => {
            config.set_working_dir(Some(rest.to_string()));
        }
        "USER" if !rest.is_empty() => {
            config.set_user(Some(rest.to_string()));
        }
        "STOPSIGNAL" if !rest.is_empty() => {
            config.set_stop_signal(Some(rest.to_string()));
        }
        "ENV" => {
            let pairs = key_values(rest).map_err(|e| bad(&e))?;
            let mut env = config.env().clone().unwrap_or_default();
            for (k, v) in pairs {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            config.set_env(Some(env));
        }
        "LABEL" => {
            let pairs = key_values(rest).map_err(|e| bad(&e))?;
            let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
            labels.extend(pairs);
            config.set_labels(Some(labels));
        }
        "EXPOSE" if !rest.is_empty() => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for p in rest.split_whitespace() {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(bad(&format!("{p:?} is not a port (e.g. 80 or 53/udp)")));
                }
                let p = format!("{num}/{proto}");
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        "VOLUME" if !rest.is_empty() => {
            let list = if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest).map_err(|e| bad(&e.to_string()))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            let mut vols = config.volumes().clone().unwrap_or_default();
            for v in list {
                if !vols.contains(&v) {
                    vols.push(v);
                }
            }
            config.set_volumes(Some(vols));
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "EXPOSE" | "VOLUME" => {
            return Err(bad("missing argument"));
        }
        other => {
            return Err(bad(&format!(
                "{other} is not supported here (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            )));
        }
    }
    Ok(())
}

/// `["a","b"]` (exec form) or `a b` (shell form → `/bin/sh -c "a b"`).
fn exec_or_shell(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        serde_json::from_str(rest).map_err(|e| format!("not a JSON array of strings: {e}"))
    } else if rest.is_empty() {
        Err("missing command".into())
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
    }
}

/// `K=V K2="v 2"` or the legacy single pair `K V...`.
fn key_values(rest: &str) -> Result<Vec<(String, String)>, String> {
    if rest.is_empty() {
        return Err("missing key".into());
    }
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for word in shell_words(rest)? {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?} is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{word:?} has an empty key"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Split on whitespace honouring double/single quotes and backslash escapes.
fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = Config::default();
        apply_change(&mut c, r#"CMD ["sh", "-c", "echo hi"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT /init start").unwrap();
        apply_change(&mut c, r#"ENV A=1 B="two words""#).unwrap();
        apply_change(&mut c, "ENV C legacy value").unwrap();
        apply_change(&mut c, "ENV A=3").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut c, r#"VOLUME ["/data"]"#).unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        apply_change(&mut c, "USER nobody").unwrap();
        apply_change(&mut c, "LABEL a=b").unwrap();
        apply_change(&mut c, "STOPSIGNAL SIGINT").unwrap();
        assert_eq!(c.cmd().as_ref().unwrap(), &["sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint().as_ref().unwrap(),
            &["/bin/sh", "-c", "/init start"]
        );
        assert_eq!(
            c.env().as_ref().unwrap(),
            &["B=two words", "C=legacy value", "A=3"]
        );
        assert_eq!(c.exposed_ports().as_ref().unwrap(), &["80/tcp", "53/udp"]);
        assert_eq!(c.volumes().as_ref().unwrap(), &["/data"]);
        assert_eq!(c.working_dir().as_deref(), Some("/srv"));
        assert_eq!(c.labels().as_ref().unwrap()["a"], "b");
    }

    #[test]
    fn rejects_bad_changes() {
        let mut c = Config::default();
        assert!(apply_change(&mut c, "RUN x").is_err());
        assert!(apply_change(&mut c, "EXPOSE http").is_err());
        assert!(apply_change(&mut c, "CMD [broken").is_err());
        assert!(apply_change(&mut c, "WORKDIR").is_err());
    }
}
