//! Stage: YAML text → value tree. Anchors and aliases are resolved by the parser; `<<` merge keys
//! are applied here (typed deserialisation would silently drop them). `!reset` and `!override`
//! stay in the tree as tagged values until the merge stage gives them their meaning.

use yaml_serde::Value;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: invalid YAML: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: the top level must be a mapping (services:, networks:, ...), found {found}")]
    NotMapping { file: String, found: &'static str },
    #[error("{file}: merge key `<<` in {path}: {message}")]
    Merge {
        file: String,
        path: String,
        message: String,
    },
    #[error("{file}: {path}: unsupported tag !{tag} (only !reset and !override are known)")]
    UnknownTag {
        file: String,
        path: String,
        tag: String,
    },
}

pub const RESET: &str = "reset";
pub const OVERRIDE: &str = "override";

/// Parses one compose file. An empty file is an empty mapping.
pub fn parse(file: &str, text: &str) -> Result<Value, ParseError> {
    let mut value: Value = match yaml_serde::from_str(text) {
        Ok(v) => v,
        Err(err) => {
            let message = strip_location(&err.to_string());
            return Err(match err.location() {
                Some(loc) => {
                    let (line, column, message) =
                        duplicate_key_location(text, loc.line(), loc.column(), message);
                    ParseError::Syntax {
                        file: file.into(),
                        line,
                        column,
                        message,
                    }
                }
                None => ParseError::Invalid {
                    file: file.into(),
                    message,
                },
            });
        }
    };
    if value.is_null() {
        return Ok(Value::Mapping(Default::default()));
    }
    if !value.is_mapping() {
        return Err(ParseError::NotMapping {
            file: file.into(),
            found: kind_name(&value),
        });
    }
    let mut path = Vec::new();
    apply_merges(file, &mut value, &mut path)?;
    check_tags(file, &value, &mut path)?;
    Ok(value)
}

/// libyaml messages end with " at line N column M"; we print the location first instead.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(pos) => message[..pos].to_string(),
        None => message.to_string(),
    }
}

pub(crate) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Applies `<<` merge keys depth-first: explicit keys win, then earlier merge sources.
fn apply_merges(file: &str, value: &mut Value, path: &mut Vec<String>) -> Result<(), ParseError> {
    match value {
        Value::Mapping(map) => {
            if let Some(merge) = map.shift_remove("<<") {
                let sources = match merge {
                    Value::Mapping(m) => vec![m],
                    Value::Sequence(seq) => {
                        let mut out = Vec::new();
                        for item in seq {
                            match item {
                                Value::Mapping(m) => out.push(m),
                                other => {
                                    return Err(ParseError::Merge {
                                        file: file.into(),
                                        path: path_text(path),
                                        message: format!(
                                            "expected a mapping or list of mappings, found {}",
                                            kind_name(&other)
                                        ),
                                    });
                                }
                            }
                        }
                        out
                    }
                    other => {
                        return Err(ParseError::Merge {
                            file: file.into(),
                            path: path_text(path),
                            message: format!(
                                "expected a mapping or list of mappings, found {}",
                                kind_name(&other)
                            ),
                        });
                    }
                };
                for source in sources {
                    // A merged-in mapping may itself hold `<<` (an anchor built from another).
                    let mut source = Value::Mapping(source);
                    apply_merges(file, &mut source, path)?;
                    let Value::Mapping(source) = source else {
                        unreachable!("still a mapping")
                    };
                    for (k, v) in source {
                        if !map.contains_key(&k) {
                            map.insert(k, v);
                        }
                    }
                }
            }
            for (k, v) in map.iter_mut() {
                path.push(super::interpolate::key_text(k));
                apply_merges(file, v, path)?;
                path.pop();
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                apply_merges(file, v, path)?;
                path.pop();
            }
        }
        Value::Tagged(t) => apply_merges(file, &mut t.value, path)?,
        _ => {}
    }
    Ok(())
}

fn check_tags(file: &str, value: &Value, path: &mut Vec<String>) -> Result<(), ParseError> {
    match value {
        Value::Tagged(t) => {
            if t.tag != RESET && t.tag != OVERRIDE {
                return Err(ParseError::UnknownTag {
                    file: file.into(),
                    path: path_text(path),
                    tag: t.tag.to_string().trim_start_matches('!').to_string(),
                });
            }
            check_tags(file, &t.value, path)
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                path.push(super::interpolate::key_text(k));
                check_tags(file, v, path)?;
                path.pop();
            }
            Ok(())
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter().enumerate() {
                path.push(format!("[{i}]"));
                check_tags(file, v, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn path_text(path: &[String]) -> String {
    if path.is_empty() {
        "the top level".into()
    } else {
        path.join(".")
    }
}

/// The YAML library places a duplicate key at the start of its mapping; compose v2 names the
/// line of the second definition and of the first. Finds both when the mapping starts at
/// `line:column` (1-based) and the message names a duplicate key.
fn duplicate_key_location(
    text: &str,
    line: usize,
    column: usize,
    message: String,
) -> (usize, usize, String) {
    let Some(key) = message
        .split_once("duplicate entry with key \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(key, _)| key.to_string())
    else {
        return (line, column, message);
    };
    let indent = column.saturating_sub(1);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .filter(|(_, l)| {
            l.len() > indent
                && l[..indent].trim().is_empty()
                && !l[indent..].starts_with([' ', '\t'])
                && l[indent..]
                    .strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .take(2)
        .collect();
    match lines.as_slice() {
        [(first, _), (second, _)] => (
            second + 1,
            column,
            format!("{message} (already defined at line {})", first + 1),
        ),
        _ => (line, column, message),
    }
}

/// Whether a value carries `!reset`.
pub fn is_reset(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == RESET)
}

/// Whether a value carries `!override`.
pub fn is_override(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == OVERRIDE)
}

/// Removes `!reset` entries and unwraps `!override` once no further merge will happen.
pub fn strip_tags(value: &mut Value) {
    match value {
        Value::Tagged(t) => {
            let inner = std::mem::replace(&mut t.value, Value::Null);
            *value = inner;
            strip_tags(value);
        }
        Value::Mapping(map) => {
            map.retain(|_, v| !is_reset(v));
            for v in map.values_mut() {
                strip_tags(v);
            }
        }
        Value::Sequence(seq) => {
            seq.retain(|v| !is_reset(v));
            for v in seq.iter_mut() {
                strip_tags(v);
            }
        }
        _ => {}
    }
}

/// The value under a tag (or the value itself).
pub fn untagged(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untagged(&t.value),
        other => other,
    }
}

pub fn untagged_mut(v: &mut Value) -> &mut Value {
    match v {
        Value::Tagged(t) => untagged_mut(&mut t.value),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_and_anchors() {
        let v = parse(
            "f",
            "x-base: &base\n  image: a\n  restart: always\nservices:\n  web:\n    <<: *base\n    image: b\n",
        )
        .unwrap();
        let web = &v["services"]["web"];
        assert_eq!(web["image"].as_str(), Some("b"));
        assert_eq!(web["restart"].as_str(), Some("always"));
        assert!(web.get("<<").is_none());
    }

    #[test]
    fn merge_list_first_wins() {
        let v = parse(
            "f",
            "a: &a {k: 1}\nb: &b {k: 2, j: 3}\nc:\n  <<: [*a, *b]\n",
        )
        .unwrap();
        assert_eq!(v["c"]["k"].as_i64(), Some(1));
        assert_eq!(v["c"]["j"].as_i64(), Some(3));
    }

    #[test]
    fn syntax_error_has_location() {
        let err = parse("compose.yaml", "services:\n  web:\n    image: [a\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("compose.yaml:"), "{text}");
        assert!(
            matches!(
                err,
                ParseError::Syntax { line: 4, .. } | ParseError::Syntax { line: 3, .. }
            ),
            "{text}"
        );
    }

    #[test]
    fn tags() {
        let mut v = parse("f", "a: !reset null\nb: !override [1]\nc: 1\n").unwrap();
        assert!(is_reset(&v["a"]));
        assert!(is_override(&v["b"]));
        strip_tags(&mut v);
        assert!(v.get("a").is_none());
        assert_eq!(v["b"][0].as_i64(), Some(1));
        assert!(parse("f", "a: !custom 1\n").is_err());
        assert!(matches!(
            parse("f", "- 1\n"),
            Err(ParseError::NotMapping { .. })
        ));
    }
}
