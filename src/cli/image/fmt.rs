//! Docker-style rendering helpers: tab-aligned tables, human sizes and durations, and a
//! small Go-template subset for `--format` (`{{.Field}}`, `{{.A.B}}`, `{{json .X}}`, `table`).

use serde_json::Value;

/// Align rows like Go's tabwriter as docker configures it (min width 10, padding 3).
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let w = (widths[i] + 3).max(10);
                line.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// go-units `HumanSizeWithPrecision(n, 3)` (image sizes, I/O counters): three
/// significant digits as Go's `%.3g`, units B, kB, MB … (`0B`, `648B`, `1.2kB`, `12.3MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g3(v), UNITS[i])
}

/// Go's `%.3g` for a non-negative value: the shortest of fixed or exponent notation,
/// trailing zeros removed.
fn go_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Rounded to 3 significant digits first: the exponent after rounding decides.
    let sci = format!("{v:.2e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..3).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mant), exp.abs());
    }
    trim(&format!("{:.*}", (2 - exp) as usize, v))
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

/// "N units ago" for an RFC 3339 time, as the CREATED column shows it.
pub fn since(rfc3339: Option<&str>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match rfc3339.and_then(rcompose_engine::image::time::parse_rfc3339) {
        Some(t) => format!("{} ago", human_duration(now - t)),
        None => "N/A".into(),
    }
}

/// Docker's `CreatedAt` form: `2024-01-02 03:04:05 +0000 UTC`.
pub fn docker_time(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(rcompose_engine::image::time::parse_rfc3339) {
        Some(t) => {
            let s = rcompose_engine::image::time::format_rfc3339(t, 0);
            format!("{} {} +0000 UTC", &s[..10], &s[11..19])
        }
        None => String::new(),
    }
}

/// Render a Go-style template against a JSON object (the one template engine of the CLI,
/// `container_fmt::render_template`). Unsupported actions are an error.
pub fn render(template: &str, data: &Value) -> anyhow::Result<String> {
    crate::cli::container_fmt::render_template(template, data).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
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
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn templates() {
        let v = serde_json::json!({"A": "x", "B": {"C": [1, 2]}});
        assert_eq!(render("{{.A}}\\t{{.B.C}}", &v).unwrap(), "x\t[1 2]");
        assert_eq!(render("{{json .B}}", &v).unwrap(), r#"{"C":[1,2]}"#);
        assert!(render("{{.Nope}}", &v).is_err());
    }

    #[test]
    fn table_alignment() {
        let t = table(&[
            vec!["REPOSITORY".into(), "TAG".into()],
            vec!["busybox".into(), "latest".into()],
        ]);
        assert_eq!(t, "REPOSITORY   TAG\nbusybox      latest\n");
    }
}
