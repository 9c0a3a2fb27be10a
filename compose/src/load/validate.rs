//! Stage: check each file against the compose schema before canonicalisation: unknown keys (with
//! their path and a "did you mean"), wrong types (with the expected shape), bad durations and
//! sizes. Interpolated strings are coerced to the type the key expects (`"3"` → 3, `"true"` →
//! true) because interpolation can only produce strings. Null values of optional keys are
//! dropped: they mean "not set".

use yaml_serde::{Mapping, Value};

use super::interpolate::key_text;
use super::parse::kind_name;
use crate::model::units::{parse_bytes, parse_duration};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidateError {
    #[error("{file}: {path}: unknown key {key:?}{}", suggestion_text(suggestion))]
    UnknownKey {
        file: String,
        path: String,
        key: String,
        suggestion: Option<String>,
    },
    #[error("{file}: {path}: missing required key {key:?}")]
    MissingKey {
        file: String,
        path: String,
        key: String,
    },
    #[error("{file}: {path} must be {expected}, but it is {found}")]
    WrongType {
        file: String,
        path: String,
        expected: String,
        found: String,
    },
    #[error("{file}: {path}: {reason}")]
    BadValue {
        file: String,
        path: String,
        reason: String,
    },
}

fn suggestion_text(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => String::new(),
    }
}

/// The shape a key's value must have.
#[derive(Debug)]
pub enum Shape {
    Any,
    Str,
    Int,
    /// A non-negative integer that fits 32 bits (counts, ports).
    UInt,
    /// A key the object must have.
    Required(&'static Shape),
    Bool,
    Num,
    /// String, number or boolean.
    Scalar,
    Duration,
    Bytes,
    /// A string or a list of scalars.
    StrOrList,
    /// A list of scalars.
    StrList,
    /// A list of `KEY=VALUE` strings or a mapping of scalars/null.
    ListOrDict,
    /// A mapping with free keys and any values.
    Dict,
    DictOf(&'static Shape),
    Obj(&'static [(&'static str, Shape)]),
    ListOf(&'static Shape),
    Either(&'static Shape, &'static Shape),
    NullOr(&'static Shape),
}

use Shape::*;

use super::schema::TOP;

fn describe(shape: &Shape) -> String {
    match shape {
        Any => "anything".into(),
        Str => "a string".into(),
        Int => "an integer".into(),
        UInt => "a non-negative integer".into(),
        Required(inner) => describe(inner),
        Bool => "true or false".into(),
        Num => "a number".into(),
        Scalar => "a string or a number".into(),
        Duration => "a duration such as 30s or 1m30s".into(),
        Bytes => "a size such as 512m or 1g".into(),
        StrOrList => "a string or a list of strings".into(),
        StrList => "a list of strings".into(),
        ListOrDict => "a list of KEY=VALUE strings or a mapping of KEY: VALUE".into(),
        Dict | DictOf(_) | Obj(_) => "a mapping".into(),
        ListOf(inner) => format!("a list (each item {})", describe(inner)),
        Either(a, b) => format!("{} or {}", describe(a), describe(b)),
        NullOr(inner) => format!("{} or null", describe(inner)),
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Whether `value` has the outer kind `shape` wants (possibly after coercion); used to pick a
/// branch of [`Shape::Either`].
fn kind_fits(shape: &Shape, value: &Value) -> bool {
    match shape {
        Any => true,
        Required(inner) => kind_fits(inner, value),
        UInt => {
            value.is_u64()
                || value
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<u32>().is_ok())
        }
        Str | Scalar | Duration | Bytes => is_scalar(value),
        Int => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<i64>().is_ok())
        }
        Num => {
            value.is_number()
                || value
                    .as_str()
                    .is_some_and(|s| s.trim().parse::<f64>().is_ok())
        }
        Bool => value.is_bool() || value.as_str().is_some_and(|s| parse_bool(s).is_some()),
        StrOrList => is_scalar(value) || value.is_sequence(),
        StrList | ListOf(_) => value.is_sequence(),
        ListOrDict => value.is_sequence() || value.is_mapping(),
        Dict | DictOf(_) | Obj(_) => value.is_mapping(),
        Either(a, b) => kind_fits(a, value) || kind_fits(b, value),
        NullOr(inner) => value.is_null() || kind_fits(inner, value),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "n" | "N" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

pub struct Validator<'a> {
    pub file: &'a str,
}

impl Validator<'_> {
    /// Validates a whole file (its top level).
    pub fn validate_file(&self, value: &mut Value) -> Result<(), ValidateError> {
        let mut path = Vec::new();
        self.check(&Obj(TOP), value, &mut path)
    }

    fn wrong(&self, path: &[String], shape: &Shape, value: &Value) -> ValidateError {
        ValidateError::WrongType {
            file: self.file.into(),
            path: path_text(path),
            expected: describe(shape),
            found: kind_name(value).into(),
        }
    }

    fn check(
        &self,
        shape: &Shape,
        value: &mut Value,
        path: &mut Vec<String>,
    ) -> Result<(), ValidateError> {
        if super::parse::is_reset(value) {
            // `!reset` removes the key when the files are merged: its content does not matter.
            return Ok(());
        }
        if let Value::Tagged(t) = value {
            return self.check(shape, &mut t.value, path);
        }
        match shape {
            Any => Ok(()),
            Str => match value {
                Value::String(_) => Ok(()),
                Value::Number(n) => {
                    *value = Value::String(n.to_string());
                    Ok(())
                }
                Value::Bool(b) => {
                    *value = Value::String(b.to_string());
                    Ok(())
                }
                _ => Err(self.wrong(path, shape, value)),
            },
            Scalar => {
                if is_scalar(value) {
                    Ok(())
                } else {
                    Err(self.wrong(path, shape, value))
                }
            }
            Required(inner) => self.check(inner, value, path),
            UInt => {
                let n = match value {
                    Value::Number(n) => n.as_u64(),
                    Value::String(text) => text.trim().parse::<u64>().ok(),
                    _ => None,
                };
                match n.filter(|n| *n <= u64::from(u32::MAX)) {
                    Some(n) => {
                        *value = Value::Number(n.into());
                        Ok(())
                    }
                    None => Err(self.wrong(path, shape, value)),
                }
            }
            Int => {
                if value.is_i64() || value.is_u64() {
                    return Ok(());
                }
                match value.as_str().and_then(|s| s.trim().parse::<i64>().ok()) {
                    Some(n) => {
                        *value = Value::Number(n.into());
                        Ok(())
                    }
                    None => Err(self.wrong(path, shape, value)),
                }
            }
            Num => {
                if value.is_number() {
                    return Ok(());
                }
                match value.as_str().and_then(|s| s.trim().parse::<f64>().ok()) {
                    Some(n) => {
                        *value = Value::Number(n.into());
                        Ok(())
                    }
                    None => Err(self.wrong(path, shape, value)),
                }
            }
            Bool => {
                if value.is_bool() {
                    return Ok(());
                }
                match value.as_str().and_then(parse_bool) {
                    Some(b) => {
                        *value = Value::Bool(b);
                        Ok(())
                    }
                    None => Err(self.wrong(path, shape, value)),
                }
            }
            Duration => match value {
                Value::String(s) => parse_duration(s)
                    .map(|_| ())
                    .map_err(|reason| self.bad(path, reason)),
                Value::Number(n) if n.as_i64() == Some(0) => Ok(()),
                Value::Number(n) => {
                    Err(self.bad(path, format!("duration {n} has no unit (use e.g. {n}s)")))
                }
                _ => Err(self.wrong(path, shape, value)),
            },
            Bytes => match value {
                Value::String(s) => parse_bytes(s)
                    .map(|_| ())
                    .map_err(|reason| self.bad(path, reason)),
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(()),
                _ => Err(self.wrong(path, shape, value)),
            },
            StrOrList => {
                if let Value::Sequence(seq) = value {
                    self.scalar_items(shape, seq, path)
                } else if is_scalar(value) {
                    self.check(&Str, value, path)
                } else {
                    Err(self.wrong(path, shape, value))
                }
            }
            StrList => match value {
                Value::Sequence(seq) => self.scalar_items(shape, seq, path),
                _ => Err(self.wrong(path, shape, value)),
            },
            ListOrDict => match value {
                Value::Sequence(seq) => self.scalar_items(shape, seq, path),
                Value::Mapping(map) => {
                    for (k, v) in map.iter_mut() {
                        if !(v.is_null() || is_scalar(v)) {
                            path.push(key_text(k));
                            let err = self.wrong(path, &Scalar, v);
                            return Err(err);
                        }
                    }
                    Ok(())
                }
                _ => Err(self.wrong(path, shape, value)),
            },
            Dict => {
                if value.is_mapping() {
                    Ok(())
                } else {
                    Err(self.wrong(path, shape, value))
                }
            }
            DictOf(inner) => {
                let Value::Mapping(map) = value else {
                    return Err(self.wrong(path, shape, value));
                };
                for (k, v) in map.iter_mut() {
                    path.push(key_text(k));
                    self.check(inner, v, path)?;
                    path.pop();
                }
                Ok(())
            }
            Obj(fields) => {
                let Value::Mapping(map) = value else {
                    return Err(self.wrong(path, shape, value));
                };
                self.check_object(fields, map, path)
            }
            ListOf(inner) => {
                let Value::Sequence(seq) = value else {
                    return Err(self.wrong(path, shape, value));
                };
                for (i, item) in seq.iter_mut().enumerate() {
                    path.push(format!("[{i}]"));
                    self.check(inner, item, path)?;
                    path.pop();
                }
                Ok(())
            }
            Either(a, b) => {
                let inner = if let Value::Tagged(t) = value {
                    &t.value
                } else {
                    &*value
                };
                if kind_fits(a, inner) {
                    self.check(a, value, path)
                } else if kind_fits(b, inner) {
                    self.check(b, value, path)
                } else {
                    Err(self.wrong(path, shape, value))
                }
            }
            NullOr(inner) => {
                if value.is_null() {
                    Ok(())
                } else {
                    self.check(inner, value, path)
                }
            }
        }
    }

    fn scalar_items(
        &self,
        shape: &Shape,
        seq: &mut [Value],
        path: &mut Vec<String>,
    ) -> Result<(), ValidateError> {
        for (i, item) in seq.iter_mut().enumerate() {
            if let Value::Tagged(t) = item {
                *item = std::mem::replace(&mut t.value, Value::Null);
            }
            if !is_scalar(item) {
                path.push(format!("[{i}]"));
                let err = ValidateError::WrongType {
                    file: self.file.into(),
                    path: path_text(path),
                    expected: format!("a string (in {})", describe(shape)),
                    found: kind_name(item).into(),
                };
                return Err(err);
            }
        }
        Ok(())
    }

    fn check_object(
        &self,
        fields: &[(&str, Shape)],
        map: &mut Mapping,
        path: &mut Vec<String>,
    ) -> Result<(), ValidateError> {
        // Plain nulls mean "not set"; tagged ones (`!reset null`) are kept for the merge stage.
        // (`Value::is_null` sees through tags, hence the explicit match.)
        map.retain(|_, v| matches!(v, Value::Tagged(_)) || !v.is_null());
        for (name, shape) in fields {
            if matches!(shape, Required(_)) && !map.contains_key(*name) {
                return Err(ValidateError::MissingKey {
                    file: self.file.into(),
                    path: path_text(path),
                    key: (*name).into(),
                });
            }
        }
        for (k, v) in map.iter_mut() {
            let Value::String(key) = k else {
                return Err(ValidateError::BadValue {
                    file: self.file.into(),
                    path: path_text(path),
                    reason: format!("keys must be strings, found {}", kind_name(k)),
                });
            };
            if key.starts_with("x-") {
                continue;
            }
            match fields.iter().find(|(name, _)| name == key) {
                Some((_, shape)) => {
                    path.push(key.clone());
                    self.check(shape, v, path)?;
                    path.pop();
                }
                None => {
                    return Err(ValidateError::UnknownKey {
                        file: self.file.into(),
                        path: path_text(path),
                        key: key.clone(),
                        suggestion: suggest(key, fields.iter().map(|(n, _)| *n)),
                    });
                }
            }
        }
        Ok(())
    }

    fn bad(&self, path: &[String], reason: String) -> ValidateError {
        ValidateError::BadValue {
            file: self.file.into(),
            path: path_text(path),
            reason,
        }
    }
}

fn path_text(path: &[String]) -> String {
    if path.is_empty() {
        return "top level".into();
    }
    let mut out = String::new();
    for part in path {
        if !part.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

/// The closest known name, if it is close enough to be a plausible typo.
pub fn suggest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::jaro_winkler(key, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(text: &str) -> Result<Value, ValidateError> {
        let mut v: Value = yaml_serde::from_str(text).unwrap();
        Validator {
            file: "compose.yaml",
        }
        .validate_file(&mut v)?;
        Ok(v)
    }

    #[test]
    fn unknown_key_with_suggestion() {
        let err = validate("services:\n  web:\n    imagee: nginx\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "compose.yaml: services.web: unknown key \"imagee\" (did you mean \"image\"?)"
        );
        let err = validate("service:\n  web: {}\n").unwrap_err();
        assert!(
            err.to_string().contains("did you mean \"services\""),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_expected_shape() {
        let err = validate("services:\n  web:\n    ports: \"80:80\"\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("services.web.ports must be a list"),
            "{err}"
        );
        let err = validate("services:\n  web:\n    privileged: maybe\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("must be true or false, but it is a string"),
            "{err}"
        );
    }

    #[test]
    fn coercion_and_nulls() {
        let v = validate("services:\n  web:\n    scale: \"3\"\n    tty: \"true\"\n    image: null\n    x-any: {a: 1}\n").unwrap();
        assert_eq!(v["services"]["web"]["scale"].as_i64(), Some(3));
        assert_eq!(v["services"]["web"]["tty"].as_bool(), Some(true));
        assert!(v["services"]["web"].get("image").is_none());
    }

    #[test]
    fn durations_checked() {
        let err =
            validate("services:\n  web:\n    healthcheck:\n      interval: 10\n").unwrap_err();
        assert!(err.to_string().contains("has no unit"), "{err}");
        assert!(validate("services:\n  web:\n    stop_grace_period: 1m30s\n").is_ok());
    }
}
