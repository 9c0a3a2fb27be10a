//! The TCP listener: one thread per connection (bounded), the guard before every route, and
//! the headers every answer carries.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcompose_api::Context;
use rcompose_api::http::{Body, Request, Response, serve_connection};

use crate::Guard;
use crate::routes::{State, route};
use crate::views::CpuSamples;

/// Connections served at once; more are closed at once (a page opens a handful).
const MAX_CONNECTIONS: usize = 64;
/// An idle keep-alive connection is closed after this long, so it does not hold a thread.
const IDLE: Duration = Duration::from_secs(120);
/// A page that stops reading (a stalled log stream) is dropped after this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source} (choose another address with --listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("accepting connections on {addr}: {source}")]
    Accept {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })
}

/// What no page of ours needs, forbidden: other origins' scripts, framing, and the
/// `Referer` that would carry a `?token=` to a site opened from a port link.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
];

/// The guard, then the route; errors as `{"message"}` with their status.
pub fn handle(state: &State, req: &Request) -> Response {
    let resp = match state.guard.check(req) {
        Err(e) if wants_page(req) => refusal_page(e.status(), &e.to_string()),
        Err(e) => Response::json(e.status(), serde_json::json!({"message": e.to_string()})),
        Ok(()) => match route(state, req) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(method = %req.method, path = %req.path, status = e.status, "{}", e.message);
                Response::json(e.status, e.body())
            }
        },
    };
    SECURITY_HEADERS
        .iter()
        .fold(resp, |r, (k, v)| r.with_header(k, v))
}

/// A browser opening the page (rather than the page's scripts asking for JSON).
fn wants_page(req: &Request) -> bool {
    req.path == "/"
        && req
            .header("Accept")
            .is_some_and(|a| a.contains("text/html"))
}

/// The refusal as a short page a person can read.
fn refusal_page(status: u16, message: &str) -> Response {
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>rcompose dashboard</title>\
         <h1>rcompose dashboard</h1><p>{}</p>",
        escape_html(message)
    );
    Response::new(
        status,
        Body::Bytes(html.into_bytes(), "text/html; charset=utf-8"),
    )
}

/// The message may quote the request's own `Host` or `Origin`: never markup.
fn escape_html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Serves until the process is stopped.
pub fn serve(ctx: Context, listener: TcpListener, guard: Guard) -> Result<(), ServeError> {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let state = Arc::new(State {
        ctx,
        cpu: CpuSamples::default(),
        guard,
    });
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A connection reset before we accepted it is the client's business.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
            Err(source) => return Err(ServeError::Accept { addr, source }),
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (state, open) = (state.clone(), open.clone());
        std::thread::spawn(move || {
            if let Err(e) = connection(&state, stream) {
                tracing::debug!("connection ended: {e}");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn connection(state: &State, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    serve_connection(stream, &|req| handle(state, req))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_answers_carry_the_security_headers() {
        let state = State {
            ctx: Context::new(
                "/nonexistent-dashboard-root".into(),
                "/nonexistent-dashboard-run".into(),
                "/bin/false".into(),
            ),
            cpu: CpuSamples::default(),
            guard: Guard::new("127.0.0.1:9900".parse().unwrap(), "t".into()),
        };
        let req = |host: &str| Request {
            method: "GET".into(),
            path: "/".into(),
            headers: vec![("Host".into(), host.into())],
            ..Default::default()
        };
        let has_csp = |r: &Response| {
            r.headers.iter().any(|(k, v)| {
                k == "Content-Security-Policy" && v.contains("frame-ancestors 'none'")
            })
        };
        let refused = handle(&state, &req("evil.example"));
        assert_eq!(refused.status, 403);
        assert!(has_csp(&refused));
        // A browser gets the refusal as a page, with the Host it sent escaped.
        let mut browser = req("<b>x</b>:1");
        browser
            .headers
            .push(("Accept".into(), "text/html,*/*".into()));
        let r = handle(&state, &browser);
        assert_eq!(r.status, 403);
        match r.body {
            Body::Bytes(b, ctype) => {
                let text = String::from_utf8(b).unwrap();
                assert!(ctype.starts_with("text/html"));
                assert!(text.contains("&lt;b&gt;x&lt;/b&gt;:1") && !text.contains("<b>x"));
            }
            _ => panic!("the refusal is not a page"),
        }
        let page = handle(&state, &req("127.0.0.1:9900"));
        assert_eq!(page.status, 200);
        assert!(has_csp(&page));
    }
}
