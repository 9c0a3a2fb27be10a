//! Docker-style rendering helpers: tab-aligned tables, "N ago" and docker's CreatedAt (the
//! size and duration forms are `rcompose_engine::units`), and a small Go-template subset for `--format` (`{{.Field}}`, `{{.A.B}}`, `{{json .X}}`, `table`).

use rcompose_engine::units::{human_duration, time};
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

/// "N units ago" for an RFC 3339 time, as the CREATED column shows it.
pub fn since(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(time::seconds_since) {
        Some(secs) => format!("{} ago", human_duration(secs)),
        None => "N/A".into(),
    }
}

/// Docker's `CreatedAt` form: `2024-01-02 03:04:05 +0000 UTC`.
pub fn docker_time(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(time::parse_rfc3339) {
        Some(t) => {
            let s = time::format_rfc3339(t, 0);
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
