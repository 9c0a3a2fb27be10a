//! The json-file driver's log options (`--log-opt`, compose `logging.options`): `max-size`
//! and `max-file`, checked with docker's rules so a bad value fails at create, not later in
//! the monitor.

use std::collections::BTreeMap;

use super::LogError;

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
            Some(v) => Some(parse_size(v).ok_or_else(|| {
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

/// Docker's size syntax (`units.RAMInBytes`): a number, an optional space, an optional unit
/// `k`, `m`, `g`, `t`, `p` (any case, powers of 1024), then optional `i` and `b`: `50k`,
/// `10m`, `1.5GiB`, `4096`. `None` unless the result is a positive number of bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let num: f64 = num.parse().ok()?;
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest).chars().peekable();
    let mut mul = 1f64;
    if let Some(c) = rest.peek().map(char::to_ascii_lowercase)
        && let Some(pow) = "kmgtp".find(c)
    {
        mul = 1024f64.powi(pow as i32 + 1);
        rest.next();
    }
    if rest.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        rest.next();
    }
    if rest.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        rest.next();
    }
    if rest.next().is_some() {
        return None;
    }
    let bytes = num * mul;
    (bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
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
    fn sizes_use_docker_units() {
        assert_eq!(parse_size("50k"), Some(50 * 1024));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("2 mb"), Some(2 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        for bad in [
            "", "0", "0k", "-1m", "m", "10x", "10mm", "1..5k", ".5k", "10 x", "1kk",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
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
