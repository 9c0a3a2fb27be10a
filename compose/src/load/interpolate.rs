//! Stage: variable interpolation in values (never keys), per file before merging.
//!
//! Operators as in the compose spec: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`; defaults and alternatives may
//! nest further substitutions and hold braces; `$$` is a literal `$`. A `$` followed by
//! anything else stays as written (compose v2's rule); `${` without a name and a closing brace
//! is an error. Checked against compose-go's tables in `compose/tests/conformance_template.rs`.

use std::collections::{BTreeMap, BTreeSet};

use yaml_serde::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InterpolateError {
    /// `file` is the file's name, with `:line` when the value could be found in its text.
    #[error(
        "{file}: {path}: required variable {var} is missing a value{}",
        if msg.is_empty() { String::new() } else { format!(": {msg}") }
    )]
    Required {
        file: String,
        path: String,
        var: String,
        msg: String,
    },
    #[error(
        "{file}: {path}: invalid interpolation format in {text:?}: {reason}; you may need to escape any $ with another $"
    )]
    Invalid {
        file: String,
        path: String,
        text: String,
        reason: String,
    },
}

/// A template failure before the file and key path are known.
#[derive(Debug, PartialEq)]
pub enum TemplateError {
    Required { var: String, msg: String },
    Invalid(String),
}

/// How a variable is used in a template (for `config --variables`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VariableUse {
    pub name: String,
    pub required: bool,
    pub default: Option<String>,
    pub alternate: Option<String>,
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// One `$` construct found by [`scan`], spanning `start..end` of the text.
enum Found {
    /// `$$`
    Escaped,
    /// `$NAME`
    Named,
    /// `${...}`
    Braced,
    /// `${` not followed by a name and a closing brace: an error, and why.
    Invalid(&'static str),
}

/// What starts at `text[start]` (a `$`), and where it ends; `None` when the `$` is not
/// followed by `$`, a name or `{` (compose v2 leaves such a `$` as it is).
///
/// A braced form with an operator (`${NAME:-...}`) reaches the last `}` of its line, as compose
/// v2's pattern does; [`replace_braced`] splits off what follows the `}` that closes it.
fn scan(text: &str, start: usize) -> Option<(Found, usize)> {
    let b = text.as_bytes();
    let after = start + 1;
    match b.get(after) {
        Some(b'$') => Some((Found::Escaped, after + 1)),
        Some(&c) if is_name_start(c as char) => Some((Found::Named, name_end(text, after))),
        Some(b'{') => {
            let name_start = after + 1;
            let invalid = |why| Some((Found::Invalid(why), name_start));
            if !b.get(name_start).is_some_and(|&c| is_name_start(c as char)) {
                return invalid("\"${\" is not followed by a variable name");
            }
            let end = name_end(text, name_start);
            let op_len = match (b.get(end), b.get(end + 1)) {
                (Some(b':'), Some(b'-' | b'+' | b'?')) => 2,
                (Some(b'-' | b'+' | b'?'), _) => 1,
                (Some(b'}'), _) => return Some((Found::Braced, end + 1)),
                (None, _) => return invalid("unclosed \"${\""),
                _ => {
                    return invalid(
                        "the variable name is followed by neither \"}\" nor an operator (:-, -, :?, ?, :+, +)",
                    );
                }
            };
            let arg_start = end + op_len;
            let line_end = text[arg_start..]
                .find('\n')
                .map_or(text.len(), |i| arg_start + i);
            match text[arg_start..line_end].rfind('}') {
                Some(i) => Some((Found::Braced, arg_start + i + 1)),
                None => invalid("unclosed \"${\" (the closing \"}\" must be on the same line)"),
            }
        }
        _ => None,
    }
}

fn name_end(text: &str, from: usize) -> usize {
    text[from..]
        .find(|c: char| !is_name_char(c))
        .map_or(text.len(), |i| from + i)
}

/// Index of the `}` closing the first `{` of `s` (compose v2's rule: a `{` also skips the
/// character after it), if any.
fn first_closing_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut open = 0i32;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if b[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

/// Splits a braced match `${...}` into its body (between `${` and its closing `}`) and what
/// follows that brace inside the match.
fn split_match(m: &str) -> (&str, &str) {
    match first_closing_brace(m) {
        Some(close) => (&m[2..close], &m[close + 1..]),
        None => (&m[2..m.len() - 1], ""),
    }
}

/// Splits a braced body `NAME<op><arg>`; `op` is "" for a bare name.
fn split_body(body: &str) -> (&str, &str, &str) {
    let end = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    let (name, tail) = body.split_at(end);
    for op in [":-", ":?", ":+", "-", "?", "+"] {
        if let Some(arg) = tail.strip_prefix(op) {
            return (name, op, arg);
        }
    }
    (name, "", "")
}

/// Substitutes variables in one string, as compose v2 does. `lookup` returns a variable's
/// value; `missing` is called for each variable used without an operator while unset (the
/// caller warns about them).
pub fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut dyn FnMut(&str),
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(off) = text[from..].find('$') {
        let start = from + off;
        let Some((found, end)) = scan(text, start) else {
            from = start + 1;
            continue;
        };
        out.push_str(&text[copied..start]);
        match found {
            Found::Escaped => out.push('$'),
            Found::Named => {
                let name = &text[start + 1..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => missing(name),
                }
            }
            Found::Braced => out.push_str(&replace_braced(&text[start..end], lookup, missing)?),
            Found::Invalid(why) => return Err(TemplateError::Invalid(why.into())),
        }
        copied = end;
        from = end;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

fn replace_braced(
    m: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut dyn FnMut(&str),
) -> Result<String, TemplateError> {
    let (body, rest) = split_match(m);
    let (name, op, arg) = split_body(body);
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let mut sub = |s: &str| substitute(s, lookup, missing);
    let replaced = match op {
        "" => {
            return Ok(match value {
                Some(v) => v,
                None => {
                    missing(name);
                    String::new()
                }
            });
        }
        ":-" if set_nonempty => value.unwrap_or_default(),
        ":-" => sub(arg)?,
        "-" => match value {
            Some(v) => v,
            None => sub(arg)?,
        },
        ":?" if set_nonempty => value.unwrap_or_default(),
        "?" if value.is_some() => value.unwrap_or_default(),
        ":?" | "?" => {
            return Err(TemplateError::Required {
                var: name.into(),
                msg: sub(arg)?,
            });
        }
        ":+" if set_nonempty => sub(arg)?,
        "+" if value.is_some() => sub(arg)?,
        _ => value.unwrap_or_default(),
    };
    Ok(replaced + &sub(rest)?)
}

/// Lists the variables a string uses, with their defaults (for `config --variables`).
pub fn variables_in(text: &str, out: &mut Vec<VariableUse>) {
    let mut from = 0;
    while let Some(off) = text[from..].find('$') {
        let start = from + off;
        let Some((found, end)) = scan(text, start) else {
            from = start + 1;
            continue;
        };
        match found {
            Found::Escaped => {}
            Found::Named => out.push(VariableUse {
                name: text[start + 1..end].into(),
                required: false,
                default: None,
                alternate: None,
            }),
            Found::Braced => {
                let (body, rest) = split_match(&text[start..end]);
                let (name, op, arg) = split_body(body);
                out.push(VariableUse {
                    name: name.into(),
                    required: op.contains('?'),
                    default: op.contains('-').then(|| arg.to_string()),
                    alternate: op.contains('+').then(|| arg.to_string()),
                });
                if !op.contains('?') {
                    variables_in(arg, out);
                }
                variables_in(rest, out);
            }
            Found::Invalid(_) => return,
        }
        from = end;
    }
}

/// Walks a parsed file and interpolates every string value.
pub struct Interpolator<'a> {
    env: &'a BTreeMap<String, String>,
    warned: BTreeSet<String>,
    pub warnings: Vec<String>,
    /// The file's text, to point an error at the line holding the value.
    source: Option<&'a str>,
}

impl<'a> Interpolator<'a> {
    pub fn new(env: &'a BTreeMap<String, String>) -> Self {
        Interpolator {
            env,
            warned: BTreeSet::new(),
            warnings: Vec::new(),
            source: None,
        }
    }

    /// Errors name the line of `text` (the file's source) where the failing value appears.
    pub fn with_source(mut self, text: &'a str) -> Self {
        self.source = Some(text);
        self
    }

    /// `file:line` for the first line of the source holding `needle` (the value's first line,
    /// or failing that the variable's reference), else `file`.
    fn locate(&self, file: &str, value: &str, var: Option<&str>) -> String {
        let first = value.lines().next().unwrap_or(value);
        let refs = var.map(|v| [format!("${{{v}"), format!("${v}")]);
        let line = self.source.and_then(|src| {
            let find = |needle: &str| {
                (!needle.is_empty())
                    .then(|| src.lines().position(|l| l.contains(needle)))
                    .flatten()
            };
            find(first).or_else(|| refs.iter().flatten().find_map(|r| find(r)))
        });
        match line {
            Some(i) => format!("{file}:{}", i + 1),
            None => file.to_string(),
        }
    }

    pub fn interpolate(&mut self, file: &str, value: &mut Value) -> Result<(), InterpolateError> {
        let mut path = Vec::new();
        self.walk(file, value, &mut path)
    }

    fn walk(
        &mut self,
        file: &str,
        value: &mut Value,
        path: &mut Vec<String>,
    ) -> Result<(), InterpolateError> {
        match value {
            Value::String(s) if s.contains('$') => {
                let env = self.env;
                let lookup = |k: &str| env.get(k).cloned();
                let mut unset = Vec::new();
                let result = substitute(s, &lookup, &mut |k| unset.push(k.to_string()));
                for var in unset {
                    if self.warned.insert(var.clone()) {
                        self.warnings.push(format!(
                            "The \"{var}\" variable is not set. Defaulting to a blank string."
                        ));
                    }
                }
                *s = result.map_err(|e| match e {
                    TemplateError::Required { var, msg } => InterpolateError::Required {
                        file: self.locate(file, s, Some(&var)),
                        path: path.join("."),
                        var,
                        msg,
                    },
                    TemplateError::Invalid(reason) => InterpolateError::Invalid {
                        file: self.locate(file, s, None),
                        path: path.join("."),
                        text: s.clone(),
                        reason,
                    },
                })?;
            }
            Value::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    path.push(key_text(k));
                    self.walk(file, v, path)?;
                    path.pop();
                }
            }
            Value::Sequence(seq) => {
                for (i, v) in seq.iter_mut().enumerate() {
                    path.push(format!("[{i}]"));
                    self.walk(file, v, path)?;
                    path.pop();
                }
            }
            Value::Tagged(t) => self.walk(file, &mut t.value, path)?,
            _ => {}
        }
        Ok(())
    }
}

/// A mapping key as text for error paths.
pub(crate) fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// Collects every variable used by string values of a parsed file.
pub fn collect_variables(value: &Value, out: &mut Vec<VariableUse>) {
    match value {
        Value::String(s) => variables_in(s, out),
        Value::Mapping(map) => map.values().for_each(|v| collect_variables(v, out)),
        Value::Sequence(seq) => seq.iter().for_each(|v| collect_variables(v, out)),
        Value::Tagged(t) => collect_variables(&t.value, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, env: &[(&str, &str)]) -> Result<(String, Vec<String>), TemplateError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut missing = Vec::new();
        let out = substitute(text, &|k| env.get(k).cloned(), &mut |k| {
            missing.push(k.into())
        })?;
        Ok((out, missing))
    }

    #[test]
    fn operators() {
        let env = [("SET", "v"), ("EMPTY", "")];
        let cases = [
            ("$SET", "v"),
            ("${SET}", "v"),
            ("a${SET}b", "avb"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-${SET}}", "v"),
            ("${UNSET:-${ALSO:-deep}}", "deep"),
            ("$$SET", "$SET"),
            ("cost: $$5", "cost: $5"),
            ("${SET:?boom}", "v"),
            ("${EMPTY?boom}", ""),
        ];
        for (input, want) in cases {
            assert_eq!(run(input, &env).unwrap().0, want, "{input}");
        }
    }

    #[test]
    fn required_and_invalid() {
        assert_eq!(
            run("${X:?need X}", &[]).unwrap_err(),
            TemplateError::Required {
                var: "X".into(),
                msg: "need X".into()
            }
        );
        assert!(matches!(
            run("${EMPTY:?e}", &[("EMPTY", "")]),
            Err(TemplateError::Required { .. })
        ));
        assert!(matches!(run("${}", &[]), Err(TemplateError::Invalid(_))));
        assert!(matches!(run("${A", &[]), Err(TemplateError::Invalid(_))));
        assert_eq!(run("a $ b $", &[]).unwrap().0, "a $ b $");
        assert!(matches!(run("${A*b}", &[]), Err(TemplateError::Invalid(_))));
    }

    #[test]
    fn unset_without_default_reports_missing() {
        let (out, missing) = run("x${NOPE}y$ALSO", &[]).unwrap();
        assert_eq!(out, "xy");
        assert_eq!(missing, vec!["NOPE", "ALSO"]);
    }

    #[test]
    fn variables_listed() {
        let mut out = Vec::new();
        variables_in("${A:-1} $B ${C:?x} $$D ${E:+${F}}", &mut out);
        let names: Vec<_> = out.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["A", "B", "C", "E", "F"]);
        assert_eq!(out[0].default.as_deref(), Some("1"));
        assert!(out[2].required);
    }
}
