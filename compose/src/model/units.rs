//! Value types with compose's own text forms: durations (`1m30s`) and byte sizes (`512m`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration in nanoseconds, printed the way Go's `time.Duration.String()` prints it
/// (`30s`, `1m30s`, `1h0m0s`, `500ms`), which is what `docker compose config` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub i64);

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }
}

/// Parses Go duration syntax: a sequence of decimal numbers with units
/// `ns`, `us`/`µs`, `ms`, `s`, `m`, `h` (and `d`, which compose accepts), e.g. `1m30s`, `1.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration(0));
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {text:?}"));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "" => {
                return Err(format!(
                    "missing unit in duration {text:?} (use e.g. 30s, 1m30s)"
                ));
            }
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        total += number * scale;
    }
    let nanos = total.round() as i64;
    Ok(Duration(if neg { -nanos } else { nanos }))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&go_duration_string(self.0))
    }
}

/// Go's `time.Duration.String()`.
fn go_duration_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000_000_000 {
        // Sub-second: ns, µs or ms with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", fraction(u, div));
    }
    let secs_total = u / 1_000_000_000;
    let frac_nanos = u % 1_000_000_000;
    let hours = secs_total / 3600;
    let mins = (secs_total % 3600) / 60;
    let secs = secs_total % 60;
    let sec_text = fraction(secs * 1_000_000_000 + frac_nanos, 1_000_000_000);
    if hours > 0 {
        format!("{sign}{hours}h{mins}m{sec_text}s")
    } else if mins > 0 {
        format!("{sign}{mins}m{sec_text}s")
    } else {
        format!("{sign}{sec_text}s")
    }
}

/// `value / div` printed with the shortest exact decimal fraction.
fn fraction(value: u64, div: u64) -> String {
    let whole = value / div;
    let rem = value % div;
    if rem == 0 {
        return whole.to_string();
    }
    let digits = div.to_string().len() - 1;
    let frac = format!("{rem:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::String(s) => parse_duration(s).map_err(de::Error::custom),
            // A bare number is taken as seconds? No: compose rejects unit-less durations except 0.
            serde_json::Value::Number(n) if n.as_i64() == Some(0) => Ok(Duration(0)),
            other => Err(de::Error::custom(format!("invalid duration {other}"))),
        }
    }
}

/// A byte count. `docker compose config` prints these as quoted decimal strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Bytes(pub i64);

/// Parses docker's RAM size syntax: `512m`, `1g`, `1.5GB`, `1024`, `2kib` (binary multiples).
pub fn parse_bytes(text: &str) -> Result<Bytes, String> {
    let s = text.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if num_len == 0 {
        return Err(format!("invalid size {text:?} (use e.g. 512m, 1g)"));
    }
    let number: f64 = s[..num_len]
        .parse()
        .map_err(|_| format!("invalid size {text:?} (use e.g. 512m, 1g)"))?;
    let unit = s[num_len..].trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid size {text:?} (use e.g. 512m, 1g)")),
    };
    Ok(Bytes((number * mult) as i64))
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::String(s) => parse_bytes(s).map_err(de::Error::custom),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Bytes)
                .ok_or_else(|| de::Error::custom(format!("invalid size {n}"))),
            other => Err(de::Error::custom(format!("invalid size {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_like_go() {
        for (input, shown) in [
            ("1m30s", "1m30s"),
            ("90s", "1m30s"),
            ("1h", "1h0m0s"),
            ("500ms", "500ms"),
            ("1.5s", "1.5s"),
            ("0s", "0s"),
            ("2h3m4s", "2h3m4s"),
            ("10us", "10µs"),
        ] {
            assert_eq!(parse_duration(input).unwrap().to_string(), shown, "{input}");
        }
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512m").unwrap(), Bytes(536_870_912));
        assert_eq!(parse_bytes("1g").unwrap(), Bytes(1_073_741_824));
        assert_eq!(parse_bytes("1GB").unwrap(), Bytes(1_073_741_824));
        assert_eq!(parse_bytes("64k").unwrap(), Bytes(65536));
        assert_eq!(parse_bytes("1024").unwrap(), Bytes(1024));
        assert_eq!(parse_bytes("1.5k").unwrap(), Bytes(1536));
        assert!(parse_bytes("lots").is_err());
    }
}
