//! `GET /api/containers/{id}/logs`: the container's json-file log as server-sent events,
//! the last lines first, then every line as the monitor writes it, across restarts, until the
//! container is removed or the page goes away.

use std::io::Write;
use std::time::{Duration, Instant};

use rcompose_api::http::{Body, Response};
use rcompose_api::{ApiError, Context};
use rcompose_engine::logs::{self, LogEntry, ReadOptions};

/// How often the log file is looked at for new lines.
const POLL: Duration = Duration::from_millis(100);
/// A comment line this often tells a page that went away (the write fails) from a quiet log.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// One event: `data:` with the entry as JSON (a JSON string never holds a raw newline, so
/// one `data:` line carries it).
pub fn event(e: &LogEntry) -> String {
    let v = serde_json::json!({
        "stream": e.stream,
        "time": e.time,
        "line": e.log.trim_end_matches('\n'),
    });
    format!("data: {v}\n\n")
}

pub fn follow(ctx: &Context, key: &str, tail: usize) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    if !c.host.keeps_logs() {
        return Err(ApiError::bad_request(format!(
            "container {} runs with log driver {}: nothing is kept to show",
            c.name,
            c.host.log_driver()
        )));
    }
    let path = eng.store.log_path(&c.id);
    let (first, mut pos) = match logs::read(
        &path,
        &ReadOptions {
            tail: Some(tail),
            ..Default::default()
        },
    ) {
        Ok(r) => r,
        // Created but never started: no log yet; follow from its start.
        Err(_) if !path.exists() => (vec![], Default::default()),
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        // Tells EventSource-style readers how long to wait before reconnecting.
        w.write_all(b"retry: 2000\n\n")?;
        for e in &first {
            w.write_all(event(e).as_bytes())?;
        }
        let mut quiet_since = Instant::now();
        loop {
            if !eng.store.dir(&c.id).exists() {
                return w.write_all(b"event: end\ndata: removed\n\n");
            }
            let more = match logs::read_from(&path, pos, &ReadOptions::default()) {
                Ok((more, next)) => {
                    pos = next;
                    more
                }
                // Not written yet, or rotated away between two looks.
                Err(_) => vec![],
            };
            if more.is_empty() {
                if quiet_since.elapsed() >= HEARTBEAT {
                    w.write_all(b": ping\n\n")?;
                    quiet_since = Instant::now();
                }
                std::thread::sleep(POLL);
                continue;
            }
            let text: String = more.iter().map(event).collect();
            w.write_all(text.as_bytes())?;
            quiet_since = Instant::now();
        }
    };
    Ok(
        Response::new(200, Body::Stream("text/event-stream", Box::new(stream)))
            .with_header("X-Accel-Buffering", "no"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_entry_on_one_data_line() {
        let e = LogEntry {
            log: "a \"quoted\"\tline\n".into(),
            stream: "stderr".into(),
            time: "2026-01-01T00:00:00Z".into(),
        };
        let ev = event(&e);
        assert!(ev.starts_with("data: {") && ev.ends_with("}\n\n"));
        assert_eq!(ev.matches('\n').count(), 2);
        let v: serde_json::Value = serde_json::from_str(&ev[6..ev.len() - 2]).unwrap();
        assert_eq!(v["line"], "a \"quoted\"\tline");
        assert_eq!(v["stream"], "stderr");
    }
}
