//! Docker's units, one copy for the engine and the CLI: sizes as `docker run --memory` and
//! `--log-opt max-size` read them (go-units `RAMInBytes`) and as docker prints them
//! (`HumanSize`), durations as docker prints them (`HumanDuration`) and as its flags read
//! them, and RFC 3339 times ([`time`]).

pub mod time;

/// Docker's size syntax (`units.RAMInBytes`): a number, an optional space, an optional unit
/// `k`, `m`, `g`, `t`, `p` (any case, powers of 1024), then optional `i` and `b`: `50k`,
/// `10m`, `1.5GiB`, `4096`, `0`. `None` for anything else (signs, other units, overflow).
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
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// go-units `HumanSizeWithPrecision(n, 3)` (image sizes, I/O counters): three
/// significant digits as Go's `%.3g`, units B, kB, MB … (`0B`, `648B`, `1.2kB`, `12.3MB`).
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes, 3)
}

/// go-units `HumanSizeWithPrecision`: `digits` significant digits as Go's `%.<digits>g`
/// (`HumanSize`, which `ps --size` shows, is 4), decimal units B, kB, MB ….
pub fn human_size_with_precision(bytes: u64, digits: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(v, digits.max(1)), UNITS[i])
}

/// Go's `%.<digits>g` for a non-negative value: the shortest of fixed or exponent notation,
/// trailing zeros removed.
fn go_g(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Rounded to `digits` significant digits first: the exponent after rounding decides.
    let sci = format!("{v:.*e}", digits - 1);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= digits as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mant), exp.abs());
    }
    trim(&format!("{:.*}", (digits as i32 - 1 - exp) as usize, v))
}

/// go-units `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0 + 0.5) as i64;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", s / 3600 / 24 / 365)
    }
}

/// A docker flag duration (`--health-interval`): one number, fractions allowed, with unit
/// `ms`, `s`, `m` or `h`; a bare number is seconds. In milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (s, 1000.0)
    };
    num.parse::<f64>().ok().map(|v| (v * mul) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_docker_units() {
        assert_eq!(parse_size("50k"), Some(50 * 1024));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("2 mb"), Some(2 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("32m"), Some(32 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("0"), Some(0));
        for bad in ["", "-1m", "m", "10x", "10mm", "1..5k", ".5k", "10 x", "1kk"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn human_forms_follow_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(648), "648B");
        assert_eq!(human_size(1200), "1.2kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size(4096), "4.1kB");
        assert_eq!(human_size(2_162_688), "2.16MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(123_456_789), "123MB");
        // HumanSize (4 digits), as `ps --size` shows container sizes.
        assert_eq!(human_size_with_precision(0, 4), "0B");
        assert_eq!(human_size_with_precision(12_345, 4), "12.35kB");
        assert_eq!(human_size_with_precision(999_950, 4), "1000kB");
        assert_eq!(human_size_with_precision(1_234_567_890, 4), "1.235GB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn flag_durations() {
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("1.5s"), Some(1500));
        assert_eq!(parse_duration_ms("2m"), Some(120_000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("30"), Some(30_000));
        assert_eq!(parse_duration_ms("x"), None);
    }
}
