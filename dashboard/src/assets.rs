//! The page: hand-written HTML, CSS and JavaScript compiled into the binary (no CDN, no
//! build step). The HTML carries the token for the page's own requests when it was loaded
//! with it (another site cannot read it: browsers keep other origins' responses from their
//! scripts, and `Host` is checked against DNS rebinding).

use rcompose_api::http::{Body, Request, Response};

use crate::Guard;

const INDEX: &str = include_str!("../assets/index.html");
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
];

/// An embedded file by name: its content type and text.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, s)| (*t, *s))
}

pub fn asset(name: &str) -> Response {
    match get(name) {
        Some((ctype, text)) => Response::new(200, Body::Bytes(text.as_bytes().to_vec(), ctype)),
        None => Response::empty(404),
    }
}

/// `index.html`, with the token filled in when the request carried it (the printed address
/// has it; the page keeps it for the tab). Where every request needs it, the asset links
/// carry it too (a browser adds no header to `<script src>`).
pub fn index(guard: &Guard, req: &Request) -> Response {
    let token = if guard.carries_token(req) {
        guard.token()
    } else {
        ""
    };
    let query = if guard.token_required() {
        format!("?token={token}")
    } else {
        String::new()
    };
    let html = INDEX
        .replace("{{TOKEN}}", token)
        .replace("{{ASSET_QUERY}}", &query);
    Response::new(
        200,
        Body::Bytes(html.into_bytes(), "text/html; charset=utf-8"),
    )
}
