//! Renders the canonical model as `docker compose config` does: YAML in the style of Go's
//! yaml.v3 encoder with 2-space indentation (sequences indented under their key, strings that
//! would read as another type double-quoted, multi-line strings as literal blocks), or JSON
//! indented by two spaces.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("cannot render the project: {0}")]
pub struct RenderError(String);

pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, RenderError> {
    let v = serde_json::to_value(value).map_err(|e| RenderError(e.to_string()))?;
    let mut out = String::new();
    match &v {
        Value::Object(map) if !map.is_empty() => emit_map(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => emit_seq(items, 0, &mut out),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    Ok(out)
}

pub fn to_json<T: Serialize>(value: &T) -> Result<String, RenderError> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| RenderError(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// A project as `docker compose config --format json` prints it: like the YAML, except that
/// `command` and `entrypoint` are always present (`null` when unset), as compose's JSON does.
pub fn project_to_json(project: &crate::model::Project) -> Result<String, RenderError> {
    let err = |e: serde_json::Error| RenderError(e.to_string());
    let mut v = serde_json::to_value(project).map_err(err)?;
    for (name, svc) in &project.services {
        if svc.command.is_some() && svc.entrypoint.is_some() {
            continue;
        }
        // Serialise with placeholders so the keys land in their field order, then null them.
        let mut filled = svc.clone();
        filled.command.get_or_insert_with(Vec::new);
        filled.entrypoint.get_or_insert_with(Vec::new);
        let mut sv = serde_json::to_value(&filled).map_err(err)?;
        if svc.command.is_none() {
            sv["command"] = Value::Null;
        }
        if svc.entrypoint.is_none() {
            sv["entrypoint"] = Value::Null;
        }
        v["services"][name] = sv;
    }
    to_json(&v)
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn emit_map(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str(&string_scalar(k, indent));
        out.push(':');
        emit_value_after_key(v, indent, out);
    }
}

/// Emits a value that follows `key:` on the current line.
fn emit_value_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            emit_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            emit_seq(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent));
            out.push('\n');
        }
    }
}

fn emit_seq(items: &[Value], indent: usize, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => emit_map(m, indent + 2, out),
            Value::Array(a) if !a.is_empty() => emit_seq(a, indent + 2, out),
            other => {
                out.push_str(&scalar(other, indent));
                out.push('\n');
            }
        }
    }
}

// Cow: most keys and values print as written, and a 300-service project has tens of
// thousands of them.
fn scalar(v: &Value, indent: usize) -> Cow<'_, str> {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string().into(),
            (_, Some(u), _) => u.to_string().into(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64).into(),
            (_, _, Some(f)) => f.to_string().into(),
            _ => n.to_string().into(),
        },
        Value::String(s) => string_scalar(s, indent),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn string_scalar(s: &str, indent: usize) -> Cow<'_, str> {
    if s.is_empty() || resolves_to_non_string(s) {
        return double_quoted(s).into();
    }
    if s.contains('\n') {
        if s.chars().all(|c| c == '\n' || !c.is_control()) && !s.starts_with(' ') {
            return literal_block(s, indent).into();
        }
        return double_quoted(s).into();
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return double_quoted(s).into();
    }
    if plain_allowed(s) {
        return s.into();
    }
    format!("'{}'", s.replace('\'', "''")).into()
}

fn literal_block(s: &str, indent: usize) -> String {
    let (body, chomp) = match s.strip_suffix('\n') {
        Some(b) if !b.ends_with('\n') => (b, "|"),
        Some(b) => (b, "|+"),
        None => (s, "|-"),
    };
    let mut out = String::from(chomp);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(&mut out, indent + 2);
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a plain scalar with this text would be read back as null, a bool, a number, or a
/// YAML 1.1 boolean/sexagesimal (yaml.v3 quotes those too).
fn resolves_to_non_string(s: &str) -> bool {
    matches!(
        s,
        "~" | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "y"
            | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "-.inf"
            | "+.inf"
            | ".nan"
            | ".NaN"
            | ".NAN"
    ) || is_number(s)
        || is_base60(s)
}

fn is_number(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    if let Some(hex) = t.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c) || c == '_');
    }
    if let Some(bin) = t.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1' || c == '_');
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '_')
        && t.starts_with(|c: char| c.is_ascii_digit())
    {
        return true;
    }
    // Floats: digits with one dot and/or an exponent.
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(p) => (&t[..p], Some(&t[p + 1..])),
        None => (t, None),
    };
    let m_ok = {
        let mut parts = mantissa.splitn(2, '.');
        let a = parts.next().unwrap_or("");
        let b = parts.next();
        let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit() || c == '_');
        match b {
            Some(b) => digits(a) && digits(b) && !(a.is_empty() && b.is_empty()),
            None => !a.is_empty() && digits(a),
        }
    };
    let e_ok = match exp {
        None => mantissa.contains('.'),
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    m_ok && e_ok
}

/// YAML 1.1 sexagesimal numbers such as `1:20` or `190:20:30`.
fn is_base60(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = t.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    if first.is_empty()
        || !first.starts_with(|c: char| c.is_ascii_digit())
        || !first.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return false;
    }
    for (i, part) in rest.iter().enumerate() {
        let part = if i == rest.len() - 1 {
            part.split('.').next().unwrap_or("")
        } else {
            part
        };
        if part.is_empty() || part.len() > 2 || !part.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
        if part.len() == 2 && part.as_bytes()[0] > b'5' {
            return false;
        }
    }
    true
}

fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    if s.starts_with(' ') || s.ends_with(' ') || s.starts_with('\t') || s.ends_with('\t') {
        return false;
    }
    if matches!(
        first,
        '[' | ']'
            | '{'
            | '}'
            | ','
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    if matches!(first, '-' | '?' | ':') {
        let second = s.chars().nth(1);
        if second.is_none() || second == Some(' ') {
            return false;
        }
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_yaml_style() {
        let v = json!({
            "name": "p",
            "services": {"web": {
                "command": ["echo", "a: b", "multi\nline"],
                "ports": [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}],
                "networks": {"default": null},
                "volume": {},
                "env": {"A": "true", "B": "", "C": "10:30", "D": "x#y", "E": "-x", "F": 0.5, "G": 1.0}
            }}
        });
        let text = to_yaml(&v).unwrap();
        let want = "name: p
services:
  web:
    command:
      - echo
      - 'a: b'
      - |-
        multi
        line
    ports:
      - mode: ingress
        target: 80
        published: \"8080\"
        protocol: tcp
    networks:
      default: null
    volume: {}
    env:
      A: \"true\"
      B: \"\"
      C: \"10:30\"
      D: x#y
      E: -x
      F: 0.5
      G: 1
";
        assert_eq!(text, want);
    }

    #[test]
    fn numbers_detected() {
        for s in ["1", "-1", "0x1F", "1.5", ".5", "1e3", "1_000"] {
            assert!(is_number(s), "{s}");
        }
        for s in ["1.2.3", "abc", "1a", ".", "e3"] {
            assert!(!is_number(s), "{s}");
        }
    }
}
