//! Stage: variable interpolation in values (never keys), per file before merging.
//!
//! Operators as in the compose spec: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`; defaults and alternatives may
//! nest further substitutions; `$$` is a literal `$`.

use std::collections::{BTreeMap, BTreeSet};

use yaml_serde::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InterpolateError {
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

/// Substitutes variables in one string. `lookup` returns a variable's value; `missing` is called
/// for each variable used without a default while unset (the caller warns about them).
pub fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut dyn FnMut(&str),
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let mut chars = after.chars();
        match chars.next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let end = matching_brace(&after[1..])
                    .ok_or_else(|| TemplateError::Invalid("unclosed ${".into()))?;
                let inner = &after[1..1 + end];
                out.push_str(&braced(inner, lookup, missing)?);
                rest = &after[1 + end + 1..];
            }
            Some(c) if is_name_start(c) => {
                let len = after
                    .find(|c: char| !is_name_char(c))
                    .unwrap_or(after.len());
                let name = &after[..len];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => missing(name),
                }
                rest = &after[len..];
            }
            _ => {
                return Err(TemplateError::Invalid(
                    "a $ not followed by a variable name".into(),
                ));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `s[0]`, honouring nested `${...}`.
fn matching_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits `NAME<op><arg>` into its parts; `op` is "" when the body is a bare name.
fn split_braced(inner: &str) -> Result<(&str, &str, &str), TemplateError> {
    let len = inner
        .find(|c: char| !is_name_char(c))
        .unwrap_or(inner.len());
    let name = &inner[..len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(TemplateError::Invalid(format!(
            "${{{inner}}} has no valid variable name"
        )));
    }
    let tail = &inner[len..];
    for op in [":-", ":?", ":+", "-", "?", "+"] {
        if let Some(arg) = tail.strip_prefix(op) {
            return Ok((name, op, arg));
        }
    }
    if tail.is_empty() {
        Ok((name, "", ""))
    } else {
        Err(TemplateError::Invalid(format!(
            "unknown operator in ${{{inner}}}"
        )))
    }
}

fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut dyn FnMut(&str),
) -> Result<String, TemplateError> {
    let (name, op, arg) = split_braced(inner)?;
    let value = lookup(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let mut sub = |s: &str| substitute(s, lookup, missing);
    Ok(match op {
        "" => match value {
            Some(v) => v,
            None => {
                missing(name);
                String::new()
            }
        },
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
        _ => String::new(),
    })
}

/// Lists the variables a string uses, with their defaults (for `config --variables`).
pub fn variables_in(text: &str, out: &mut Vec<VariableUse>) {
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = matching_brace(body) else {
                return;
            };
            if let Ok((name, op, arg)) = split_braced(&body[..end]) {
                out.push(VariableUse {
                    name: name.into(),
                    required: op.contains('?'),
                    default: op.contains('-').then(|| arg.to_string()),
                    alternate: op.contains('+').then(|| arg.to_string()),
                });
                variables_in(arg, out);
            }
            rest = &body[end + 1..];
        } else {
            let len = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            if len > 0 && after.starts_with(is_name_start) {
                out.push(VariableUse {
                    name: after[..len].into(),
                    required: false,
                    default: None,
                    alternate: None,
                });
            }
            rest = &after[len..];
        }
    }
}

/// Walks a parsed file and interpolates every string value.
pub struct Interpolator<'a> {
    env: &'a BTreeMap<String, String>,
    warned: BTreeSet<String>,
    pub warnings: Vec<String>,
}

impl<'a> Interpolator<'a> {
    pub fn new(env: &'a BTreeMap<String, String>) -> Self {
        Interpolator {
            env,
            warned: BTreeSet::new(),
            warnings: Vec::new(),
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
                        file: file.into(),
                        path: path.join("."),
                        var,
                        msg,
                    },
                    TemplateError::Invalid(reason) => InterpolateError::Invalid {
                        file: file.into(),
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
        assert!(matches!(run("a $ b", &[]), Err(TemplateError::Invalid(_))));
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
