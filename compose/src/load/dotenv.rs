//! Stage: `.env` / `--env-file` / service `env_file` parsing (docker compose's dotenv dialect).
//!
//! The rules are compose v2's (its dotenv parser), checked case by case in
//! `compose/tests/conformance_dotenv.rs`:
//! - a statement starts at the first non-blank character; `#` there starts a comment line;
//! - `export` followed by blanks is dropped;
//! - the name runs up to `=`, `:` (YAML style `KEY: value`) or the end of the line, may hold
//!   letters, digits, `_`, `.`, `-`, `[` and `]`, and blanks around it are dropped; any other
//!   character, or a blank inside the name, is an error;
//! - a name alone on its line takes its value from the environment, or is skipped;
//! - single quotes are literal (only `\'` is unescaped) and may span lines;
//! - double quotes may span lines, unescape `\a \b \f \n \r \t \v \\ \" \$` and octal `\0NNN`,
//!   then interpolate `${VAR}`;
//! - an unquoted value runs to the end of the line, ` #` starts a comment, trailing blanks are
//!   dropped, and it is interpolated;
//! - a quote that is never closed is an error.
//!
//! When a value is interpolated, the caller's lookup (the process or project environment)
//! wins over values defined earlier in the file, which win over the caller's fallback
//! (earlier files).

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

/// Reads and parses one env file. `lookup` resolves bare keys and wins over the file's earlier
/// values when `${VAR}` is interpolated; `fallback` is consulted after them.
pub fn read_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    fallback: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let text = read_text(path)?;
    parse_with(&text, lookup, fallback).map_err(|(line, reason)| DotenvError::Syntax {
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
    fallback: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    match format {
        None | Some("dotenv") => read_file(path, lookup, fallback),
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

/// Parses env file text into ordered key/value pairs (a later definition of a key replaces an
/// earlier one). Errors carry the 1-based line. `lookup` gives bare names their value and wins
/// over earlier values of the file when `${VAR}` is interpolated.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, (usize, String)> {
    parse_with(text, lookup, &|_| None)
}

/// [`parse`] with a `fallback` consulted after the file's own earlier values (compose v2 reads
/// several `.env` files into one map: a file sees what earlier files defined, but its own
/// definitions replace theirs).
pub fn parse_with(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    fallback: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = LineIndex::new(text);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    loop {
        // Start of the next statement: skip blanks, blank lines and comment lines.
        match text[pos..].find(|c: char| !c.is_whitespace()) {
            None => break,
            Some(off) => pos += off,
        }
        if text[pos..].starts_with('#') {
            match text[pos..].find('\n') {
                None => break,
                Some(off) => {
                    pos += off;
                    continue;
                }
            }
        }
        let line_no = lines.line(pos);
        let mut start = pos;
        if let Some(after) = text[start..].strip_prefix("export")
            && after.starts_with(['\t', '\n', '\x0c', '\r', ' '])
        {
            start += "export".len();
            start += text[start..].len() - text[start..].trim_start_matches(is_blank).len();
        }
        let rest = &text[start..];
        let mut terminator = None;
        for (i, c) in rest.char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    terminator = Some((i, c));
                    break;
                }
                c if is_blank(c) => {}
                '_' | '.' | '-' | '[' | ']' => {}
                c if c.is_alphanumeric() => {}
                c => {
                    let statement = rest.split('\n').next().unwrap_or(rest);
                    return Err((
                        line_no,
                        format!("unexpected character {c:?} in variable name {statement:?}"),
                    ));
                }
            }
        }
        // A name alone on the last line, without a newline, is a bare name too.
        let (name_end, terminator) = terminator.unwrap_or((rest.len(), '\n'));
        let key = rest[..name_end].trim_end();
        if key.contains(char::is_whitespace) {
            return Err((line_no, format!("variable name {key:?} contains a blank")));
        }
        pos = (start + name_end + terminator.len_utf8()).min(text.len());
        if terminator == '\n' {
            if let Some(v) = lookup(key) {
                set(&mut out, key, v);
            }
            continue;
        }
        pos += text[pos..].len() - text[pos..].trim_start_matches(is_blank).len();
        let expand_here = |value: &str, out: &Vec<(String, String)>| {
            let resolve = |k: &str| {
                lookup(k)
                    .or_else(|| {
                        out.iter()
                            .rev()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                    })
                    .or_else(|| fallback(k))
            };
            expand(value, &resolve).map_err(|e| (line_no, e))
        };
        let value = match text[pos..].chars().next() {
            Some(quote @ ('\'' | '"')) => {
                let Some((raw, end)) = quoted(&text[pos..], quote) else {
                    let statement = text[pos..].split('\n').next().unwrap_or_default();
                    return Err((line_no, format!("unterminated quoted value {statement}")));
                };
                pos += end;
                if quote == '"' {
                    expand_here(&unescape_double(&raw), &out)?
                } else {
                    raw
                }
            }
            _ => {
                let (line, next) = match text[pos..].find('\n') {
                    Some(off) => (&text[pos..pos + off], pos + off + 1),
                    None => (&text[pos..], text.len()),
                };
                pos = next;
                let value = line.split(" #").next().unwrap_or_default().trim_end();
                expand_here(value, &out)?
            }
        };
        set(&mut out, key, value);
    }
    Ok(out)
}

fn set(out: &mut Vec<(String, String)>, key: &str, value: String) {
    out.retain(|(k, _)| k != key);
    out.push((key.to_string(), value));
}

/// Blanks that do not end a line.
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{a0}')
}

/// Byte offsets of line starts, to turn a position into a 1-based line.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex(starts)
    }

    fn line(&self, pos: usize) -> usize {
        self.0.partition_point(|&start| start <= pos)
    }
}

/// The body of a quoted value starting at `s[0]` (the quote) and the offset just past the
/// closing quote. A backslash keeps the next character (and itself, unless that character is
/// the quote).
fn quoted(s: &str, quote: char) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    let quote = quote as u8;
    let mut body = Vec::new();
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        if b == quote {
            if escaped {
                escaped = false;
                body.push(b);
                continue;
            }
            return Some((String::from_utf8_lossy(&body).into_owned(), i + 1));
        }
        if escaped {
            escaped = false;
            body.push(b'\\');
            body.push(b);
        } else if b == b'\\' {
            escaped = true;
        } else {
            body.push(b);
        }
    }
    None
}

/// The escapes of a double-quoted value: `\a \b \f \n \r \t \v \\ \"`, `\$` (a literal `$`,
/// kept as `$$` for interpolation) and octal `\0NNN`. Any other backslash stays as written.
fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let simple = match after.chars().next() {
            Some('a') => Some("\x07"),
            Some('b') => Some("\x08"),
            Some('f') => Some("\x0c"),
            Some('n') => Some("\n"),
            Some('r') => Some("\r"),
            Some('t') => Some("\t"),
            Some('v') => Some("\x0b"),
            Some('\\') => Some("\\"),
            Some('"') => Some("\""),
            Some('$') => Some("$$"),
            _ => None,
        };
        if let Some(replacement) = simple {
            out.push_str(replacement);
            rest = &after[1..];
            continue;
        }
        if let Some(digits) = after.strip_prefix('0') {
            let n = digits
                .bytes()
                .take(3)
                .take_while(u8::is_ascii_digit)
                .count();
            let octal = &digits[..n];
            let value = (n == 3)
                .then(|| u32::from_str_radix(octal, 8).ok())
                .flatten()
                .filter(|v| *v <= 0xff)
                .and_then(char::from_u32);
            match value {
                Some(c) => out.push(c),
                None => {
                    out.push_str("\\0");
                    out.push_str(octal);
                }
            }
            rest = &digits[n..];
            continue;
        }
        out.push('\\');
        rest = after;
    }
    out.push_str(rest);
    out
}

fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    substitute(value, lookup, &mut |_| {}).map_err(|e| match e {
        TemplateError::Required { var, msg } if msg.is_empty() => {
            format!("required variable {var} is missing a value")
        }
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
