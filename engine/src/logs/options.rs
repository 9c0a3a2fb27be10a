//! The json-file driver's log options (`--log-opt`, compose `logging.options`): `max-size`
//! and `max-file`, checked with docker's rules so a bad value fails at create, not later in
//! the monitor.

use std::collections::BTreeMap;

use super::LogError;
use crate::units::parse_size;

/// The options the engine honours, in docker's spelling.
pub const LOG_OPTIONS: [&str; 2] = ["max-size", "max-file"];

/// When and how the json-file log moves on to a fresh file (docker's scheme:
/// `<id>-json.log` → `<id>-json.log.1` → `.2` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes a file may hold; `None`: a single file that grows forever (docker's default).
    pub max_size: Option<u64>,
    /// Files kept in total, the current one included (docker's default 1: the current file
    /// is replaced by a fresh one when full).
    pub max_file: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_size: None,
            max_file: 1,
        }
    }
}

impl Rotation {
    /// Checks `opts` for logging driver `driver` (`json-file` or `none`) as docker does:
    /// unknown options are refused by name, `max-size` is a positive size with docker's
    /// units, `max-file` an integer of at least 1 that needs `max-size`.
    pub fn from_options(driver: &str, opts: &BTreeMap<String, String>) -> Result<Self, LogError> {
        if driver == "none" {
            if let Some(key) = opts.keys().next() {
                return Err(LogError::UnknownOption {
                    key: key.clone(),
                    driver: driver.into(),
                    hint: "the none driver keeps nothing and takes no options".into(),
                });
            }
            return Ok(Self::default());
        }
        if let Some(key) = opts.keys().find(|k| !LOG_OPTIONS.contains(&k.as_str())) {
            return Err(LogError::UnknownOption {
                key: key.clone(),
                driver: driver.into(),
                hint: format!("the options supported are {}", LOG_OPTIONS.join(" and ")),
            });
        }
        let invalid = |key: &str, value: &str, hint: &str| LogError::InvalidOption {
            key: key.into(),
            value: value.into(),
            hint: hint.into(),
        };
        let max_size = match opts.get("max-size") {
            None => None,
            Some(v) => Some(parse_size(v).filter(|n| *n > 0).ok_or_else(|| {
                invalid(
                    "max-size",
                    v,
                    "use a positive size such as 10m (units k, m, g; 1k = 1024 bytes)",
                )
            })?),
        };
        let max_file = match opts.get("max-file") {
            None => 1,
            Some(v) => {
                let n = v
                    .trim()
                    .parse::<u32>()
                    .ok()
                    // Rotation renames every kept file under a lock the readers share, and
                    // readers look no further than MAX_ROTATED files.
                    .filter(|n| (1..=super::files::MAX_ROTATED).contains(n))
                    .ok_or_else(|| invalid("max-file", v, "use a whole number from 1 to 10000"))?;
                if max_size.is_none() {
                    return Err(invalid(
                        "max-file",
                        v,
                        "max-file can only be used with max-size: add --log-opt max-size=SIZE",
                    ));
                }
                n
            }
        };
        Ok(Self { max_size, max_file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_as_docker_does() {
        assert_eq!(
            Rotation::from_options("json-file", &opts(&[])).unwrap(),
            Rotation::default()
        );
        assert_eq!(
            Rotation::from_options(
                "json-file",
                &opts(&[("max-size", "10m"), ("max-file", "3")])
            )
            .unwrap(),
            Rotation {
                max_size: Some(10 << 20),
                max_file: 3
            }
        );
        assert_eq!(
            Rotation::from_options("json-file", &opts(&[("max-size", "1k")]))
                .unwrap()
                .max_file,
            1
        );
        let err = |driver: &str, kv: &[(&str, &str)]| {
            Rotation::from_options(driver, &opts(kv))
                .unwrap_err()
                .to_string()
        };
        let e = err("json-file", &[("max-size", "1k"), ("compress", "true")]);
        assert!(e.contains("\"compress\"") && e.contains("max-size"), "{e}");
        let e = err("json-file", &[("max-size", "0")]);
        assert!(e.contains("max-size") && e.contains("positive"), "{e}");
        let e = err(
            "json-file",
            &[("max-size", "1k"), ("max-file", "4000000000")],
        );
        assert!(e.contains("from 1 to 10000"), "{e}");
        let e = err("json-file", &[("max-size", "1k"), ("max-file", "0")]);
        assert!(e.contains("max-file"), "{e}");
        let e = err("json-file", &[("max-size", "1k"), ("max-file", "three")]);
        assert!(e.contains("max-file=\"three\""), "{e}");
        let e = err("json-file", &[("max-file", "3")]);
        assert!(e.contains("only be used with max-size"), "{e}");
        let e = err("none", &[("max-size", "1k")]);
        assert!(e.contains("\"max-size\"") && e.contains("none"), "{e}");
    }
}
