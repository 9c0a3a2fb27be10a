//! RFC 3339 timestamps without a date-time dependency (UTC only, as image configs use).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.123Z`, `+01:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        rest = &r[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Seconds from an RFC 3339 time until now (`None` when unparsable).
pub fn seconds_since(s: &str) -> Option<i64> {
    parse_rfc3339(s).map(|t| now_secs() - t)
}

/// A `--since`/`--until` value that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BoundError(String);

/// docker's `--since`/`--until` of `logs`: RFC 3339 (kept as written), Unix seconds, or a
/// duration before `now` (`10m`, `1h30m`, `45s`). The result is RFC 3339 with nanoseconds,
/// so it compares as text with the log's timestamps.
pub fn log_bound(s: &str, now: i64) -> Result<String, BoundError> {
    if s.contains('T') || s.contains('-') {
        return Ok(s.to_string());
    }
    let with_nanos = |secs: i64| {
        let t = format_rfc3339(secs, 0);
        format!("{}.000000000Z", t.trim_end_matches('Z'))
    };
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(with_nanos(secs));
    }
    let mut total = 0i64;
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
        } else {
            let n: i64 = num
                .parse()
                .map_err(|_| BoundError(format!("invalid time \"{s}\"")))?;
            num.clear();
            total += n * match ch {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => {
                    return Err(BoundError(format!(
                        "invalid time \"{s}\": use RFC 3339, Unix seconds or a duration like 10m"
                    )));
                }
            };
        }
    }
    if !num.is_empty() {
        return Err(BoundError(format!(
            "invalid time \"{s}\": a duration needs a unit (s, m, h)"
        )));
    }
    Ok(with_nanos(now - total))
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_700_000_000, 500_000_000),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.5Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(format_rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01Z"), Some(86_401));
        assert!(seconds_since("1970-01-02T00:00:01Z").unwrap() > 0);
    }

    #[test]
    fn log_bounds_as_docker_reads_them() {
        let now = 1_700_000_000;
        assert_eq!(
            log_bound("2023-11-14T22:13:20Z", now).unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            log_bound("1700000000", now).unwrap(),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(
            log_bound("1h30m", now).unwrap(),
            "2023-11-14T20:43:20.000000000Z"
        );
        assert!(log_bound("10x", now).is_err());
        assert!(log_bound("1h30", now).is_err());
    }
}
