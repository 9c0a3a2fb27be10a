//! Stage: `.env` / `--env-file` / service `env_file` parsing (docker compose's dotenv dialect).
//!
//! `KEY=value`, optional `export `, `#` comments, single quotes (literal), double quotes (escapes
//! and `${VAR}` interpolation, may span lines), unquoted values (trimmed, ` #` starts a comment,
//! interpolated). A bare `KEY` takes its value from the environment when set there.

use std::collections::BTreeMap;
use std::path::Path;

use super::interpolate::{TemplateError, substitute};

#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("cannot read env file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("env file {path} not found (check the --env-file or env_file path)")]
    Missing { path: String },
    #[error("env file {path}: unsupported format {format:?} (use dotenv or raw)")]
    Format { path: String, format: String },
    #[error("{path}:{line}: {reason}")]
    Syntax {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Reads and parses one env file. `lookup` resolves `${VAR}` references and bare keys (it sees
/// the variables defined earlier in the same file first).
pub fn read_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let text = read_text(path)?;
    parse(&text, lookup).map_err(|(line, reason)| DotenvError::Syntax {
        path: path.display().to_string(),
        line,
        reason,
    })
}

/// Reads one service `env_file` in its declared `format`: none or `dotenv` is the dialect
/// above, `raw` is docker's `--env-file` format ([`parse_raw`]). Other formats are refused.
pub fn read_file_format(
    path: &Path,
    format: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    match format {
        None | Some("dotenv") => read_file(path, lookup),
        Some("raw") => {
            let text = read_text(path)?;
            parse_raw(&text, lookup).map_err(|(line, reason)| DotenvError::Syntax {
                path: path.display().to_string(),
                line,
                reason,
            })
        }
        Some(other) => Err(DotenvError::Format {
            path: path.display().to_string(),
            format: other.to_string(),
        }),
    }
}

fn read_text(path: &Path) -> Result<String, DotenvError> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DotenvError::Missing {
                path: path.display().to_string(),
            }
        } else {
            DotenvError::Read {
                path: path.display().to_string(),
                source,
            }
        }
    })
}

/// docker's `--env-file` format (`env_file` with `format: raw`): `KEY=VALUE` lines where the
/// value is taken literally — no quotes removed, no `${VAR}` interpolation, no trimming, no
/// inline comments. Lines starting with `#` (after leading blanks) and blank lines are
/// skipped; a bare `KEY` takes its value from the environment when set there.
pub fn parse_raw(
    text: &str,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() {
            return Err((i + 1, format!("no variable name on line {line:?}")));
        }
        if key.contains(char::is_whitespace) {
            return Err((i + 1, format!("variable {key:?} contains whitespace")));
        }
        let value = match value {
            Some(v) => v.to_string(),
            None => match outer(key) {
                Some(v) => v,
                None => continue,
            },
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Parses env file text into ordered key/value pairs. Errors carry the 1-based line.
pub fn parse(
    text: &str,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let raw = lines[i].trim_start_matches('\u{feff}');
        i += 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let (key, rest) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((line_no, format!("invalid variable name {key:?}")));
        }
        let lookup = |k: &str| seen.get(k).cloned().or_else(|| outer(k));
        let Some(rest) = rest else {
            // A bare KEY inherits the value from the environment, or is skipped.
            if let Some(v) = outer(key) {
                seen.insert(key.into(), v.clone());
                out.push((key.into(), v));
            }
            continue;
        };
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let mut body = body.to_string();
            loop {
                if let Some(end) = body.find('\'') {
                    body.truncate(end);
                    break body;
                }
                let Some(next) = lines.get(i) else {
                    return Err((line_no, "unterminated single-quoted value".into()));
                };
                body.push('\n');
                body.push_str(next);
                i += 1;
            }
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut body = body.to_string();
            let raw_value = loop {
                if let Some(end) = closing_double_quote(&body) {
                    body.truncate(end);
                    break body;
                }
                let Some(next) = lines.get(i) else {
                    return Err((line_no, "unterminated double-quoted value".into()));
                };
                body.push('\n');
                body.push_str(next);
                i += 1;
            };
            let unescaped = unescape_double(&raw_value);
            expand(&unescaped, &lookup).map_err(|e| (line_no, e))?
        } else {
            let value = match rest.find(" #") {
                Some(pos) => &rest[..pos],
                None => rest,
            };
            expand(value.trim(), &lookup).map_err(|e| (line_no, e))?
        };
        seen.insert(key.into(), value.clone());
        out.retain(|(k, _)| k != key);
        out.push((key.into(), value));
    }
    Ok(out)
}

fn closing_double_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str("$$"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    substitute(value, lookup, &mut |_| {}).map_err(|e| match e {
        TemplateError::Required { var, msg } => {
            format!("required variable {var} is missing a value: {msg}")
        }
        TemplateError::Invalid(reason) => format!("invalid interpolation: {reason}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, String)> {
        parse(text, &|k| (k == "HOME_X").then(|| "/home/x".to_string())).unwrap()
    }

    #[test]
    fn forms() {
        let got = p(
            "# comment\nA=1\nexport B = two \nC='lit $A'\nD=\"q ${A} \\n end\"\nE=x # c\nF=\nHOME_X\nMISSING\nG=${A}-${HOME_X}\n",
        );
        let want = [
            ("A", "1"),
            ("B", "two"),
            ("C", "lit $A"),
            ("D", "q 1 \n end"),
            ("E", "x"),
            ("F", ""),
            ("HOME_X", "/home/x"),
            ("G", "1-/home/x"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn raw_format_takes_values_literally() {
        let text = "\u{feff}A=\"quoted\" # not a comment\n  # comment\n\nB=${A} $$x \nC='s'\nHOME_X\nMISSING\nD=\nE==x\n";
        let got = parse_raw(text, &|k| (k == "HOME_X").then(|| "/home/x".to_string())).unwrap();
        let want = [
            ("A", "\"quoted\" # not a comment"),
            ("B", "${A} $$x "),
            ("C", "'s'"),
            ("HOME_X", "/home/x"),
            ("D", ""),
            ("E", "=x"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(parse_raw("A=1\nBAD KEY=1\n", &|_| None).unwrap_err().0, 2);
        assert_eq!(parse_raw("=1\n", &|_| None).unwrap_err().0, 1);
    }

    #[test]
    fn multiline_and_errors() {
        assert_eq!(
            p("K=\"a\nb\"\n"),
            vec![("K".to_string(), "a\nb".to_string())]
        );
        assert!(parse("K='open\n", &|_| None).is_err());
        assert_eq!(parse("BAD KEY=1\n", &|_| None).unwrap_err().0, 1);
    }
}
