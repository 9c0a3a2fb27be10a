//! Rendering helpers shared by the container commands: docker's human durations and sizes,
//! and a small subset of Go templates (`{{.Field.Sub}}`, `{{json .X}}`, `{{upper .X}}`,
//! `{{lower .X}}`, text between actions) evaluated against JSON.

use serde_json::Value;

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86_400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

/// Seconds since an RFC 3339 time (0 when unparsable).
pub fn since(rfc3339: &str) -> i64 {
    chrono_like_parse(rfc3339)
        .map(|t| now_secs() - t)
        .unwrap_or(0)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac]Z` into Unix seconds.
pub fn chrono_like_parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Parses docker sizes: `512`, `64k`, `32m`, `1g` (binary units, optional trailing `b`).
pub fn parse_size(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1i64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.parse().ok()?;
    (v >= 0.0).then_some((v * mul as f64) as i64)
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
        assert_eq!(parse_size("32m"), Some(32 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(chrono_like_parse("1970-01-02T00:00:01Z"), Some(86_401));
    }
}
