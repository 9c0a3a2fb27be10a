//! Rendering helpers shared by the container commands: seconds since a time (for docker's
//! human durations, `rcompose_engine::units`), and a small subset of Go templates (`{{.Field.Sub}}`, `{{json .X}}`, `{{upper .X}}`,
//! `{{lower .X}}`, text between actions) evaluated against JSON.

use serde_json::Value;

/// Seconds since an RFC 3339 time (0 when unparsable).
pub fn since(rfc3339: &str) -> i64 {
    rcompose_engine::units::time::seconds_since(rfc3339).unwrap_or(0)
}

/// Docker's `--format "table …"`: a header made from the fields' column names (`names`
/// maps a field to docker's title; other fields are upper-cased), then one line per row,
/// with tab-separated cells aligned as docker's tabwriter does.
pub fn render_table(tpl: &str, rows: &[Value], names: &[(&str, &str)]) -> Result<String, String> {
    let tpl = tpl.strip_prefix("table").unwrap_or(tpl).trim();
    let mut header = String::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        header.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template: unclosed action in {tpl:?}"))?;
        let action = after[..end].trim();
        let field = action
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .trim_start_matches('.');
        let title = names
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, t)| t.to_string())
            .unwrap_or_else(|| field.to_uppercase());
        header.push_str(&title);
        rest = &after[end + 2..];
    }
    header.push_str(rest);
    let header = header.replace("\\t", "\t").replace("\\n", " ");
    let mut lines = vec![header.split('\t').map(String::from).collect::<Vec<_>>()];
    for r in rows {
        let line = render_template(tpl, r)?;
        lines.push(line.split('\t').map(String::from).collect());
    }
    Ok(super::image::fmt::table(&lines))
}

/// Evaluates a Go-template subset against `v`.
pub fn render_template(tpl: &str, v: &Value) -> Result<String, String> {
    let tpl = tpl.replace("\\n", "\n").replace("\\t", "\t");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template: unclosed action in {tpl:?}"))?;
        let action = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        out.push_str(&eval_action(action, v)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn eval_action(action: &str, v: &Value) -> Result<String, String> {
    let words: Vec<&str> = action.split_whitespace().collect();
    match words.as_slice() {
        [path] if path.starts_with('.') => Ok(plain(lookup(v, path)?)),
        ["json", path] => Ok(serde_json::to_string(lookup(v, path)?).unwrap_or_default()),
        ["upper", path] => Ok(plain(lookup(v, path)?).to_uppercase()),
        ["lower", path] => Ok(plain(lookup(v, path)?).to_lowercase()),
        ["index", path, key] => {
            let key = key.trim_matches('"');
            Ok(plain(lookup(v, path)?.get(key).unwrap_or(&Value::Null)))
        }
        _ => Err(format!(
            "template: unsupported action {{{{{action}}}}}; supported: .Field, json, upper, lower, index"
        )),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut cur = v;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        cur = cur
            .get(part)
            .ok_or_else(|| format!("template: can't evaluate field {part}"))?;
    }
    Ok(cur)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_templates_get_docker_headers_and_aligned_columns() {
        let rows = vec![
            serde_json::json!({"Names": "web", "Status": "Up 2 seconds", "Extra": "x"}),
            serde_json::json!({"Names": "database-1", "Status": "Exited (0)", "Extra": "y"}),
        ];
        let names = [("Names", "NAMES"), ("Status", "STATUS")];
        let out = render_table(
            "table {{.Names}}\\t{{.Status}}\\t{{ .Extra }}",
            &rows,
            &names,
        )
        .unwrap();
        assert_eq!(
            out,
            "NAMES        STATUS         EXTRA\n\
             web          Up 2 seconds   x\n\
             database-1   Exited (0)     y\n"
        );
    }

    #[test]
    fn templates_and_units() {
        let v = serde_json::json!({"Names": "web", "State": {"Status": "running", "ExitCode": 0}});
        assert_eq!(render_template("{{.Names}}", &v).unwrap(), "web");
        assert_eq!(
            render_template("{{.State.Status}}:{{.State.ExitCode}}", &v).unwrap(),
            "running:0"
        );
        assert_eq!(
            render_template("{{json .State}}", &v).unwrap(),
            r#"{"Status":"running","ExitCode":0}"#
        );
        assert!(render_template("{{.Nope}}", &v).is_err());
    }
}
