//! Method + path → handler. Reads are `GET`; every state change is a `POST` (the guard in
//! `auth` has already checked its token and origin). Container actions are the Engine API
//! server's own handlers, so the dashboard stops a container exactly as `docker stop` through
//! `rcompose system service` and `rcompose container stop` do.

use rcompose_api::http::{Request, Response};
use rcompose_api::{ApiError, Context};
use serde_json::json;

use crate::views::{self, CpuSamples};
use crate::{assets, logs};

/// Lines of log shown when the logs view opens.
const LOG_TAIL: usize = 200;

/// What the handlers share: the roots and the CPU samples behind the rates.
pub struct State {
    pub ctx: Context,
    pub cpu: CpuSamples,
    pub guard: crate::Guard,
}

/// A read-only JSON answer.
fn json<T: serde::Serialize>(v: Result<T, ApiError>) -> Result<Response, ApiError> {
    Ok(Response::json(200, serde_json::to_value(v?)?))
}

pub fn route(state: &State, req: &Request) -> Result<Response, ApiError> {
    let ctx = &state.ctx;
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    match (method, parts.as_slice()) {
        ("GET", [""]) => Ok(assets::index(&state.guard, req)),
        ("GET", [file]) if assets::get(file).is_some() => Ok(assets::asset(file)),
        ("GET", ["api", "containers"]) => json(views::containers(ctx, &state.cpu)),
        ("GET", ["api", "projects"]) => {
            let list = views::containers(ctx, &state.cpu)?;
            json(Ok(views::projects(&list)))
        }
        ("GET", ["api", "images"]) => json(views::images(ctx)),
        ("GET", ["api", "networks"]) => json(views::networks(ctx)),
        ("GET", ["api", "volumes"]) => json(views::volumes(ctx)),
        ("GET", ["api", "containers", id, "logs"]) => logs::follow(ctx, id, LOG_TAIL),
        ("POST", ["api", "containers", id, action]) => container_action(ctx, id, action),
        (_, ["api", ..]) | (_, [_]) if method == "POST" => Err(ApiError::new(
            405,
            format!(
                "no action at {}: actions are POST /api/containers/ID/(start|stop|restart|remove)",
                req.path
            ),
        )),
        _ => Err(ApiError::not_found(format!("no page at {}", req.path))),
    }
}

/// `start`, `stop`, `restart`, `remove` (forced: the page confirmed it, and a running
/// container is stopped first, as `docker rm -f`).
fn container_action(ctx: &Context, id: &str, action: &str) -> Result<Response, ApiError> {
    use rcompose_api::containers as c;
    let with = |query: &str| Request {
        method: "POST".into(),
        query: rcompose_api::http::parse_query(query),
        ..Default::default()
    };
    let resp = match action {
        "start" => c::start(ctx, id)?,
        "stop" => c::stop(ctx, &with(""), id, false)?,
        "restart" => c::stop(ctx, &with(""), id, true)?,
        "remove" => c::remove(ctx, &with("force=1"), id)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown action {other:?}: use start, stop, restart or remove"
            )));
        }
    };
    // 304: it was already in the state asked for; the page only needs to refresh.
    Ok(Response::json(
        200,
        json!({"action": action, "container": id, "changed": resp.status != 304}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            ctx: Context::new(
                "/nonexistent-dashboard-root".into(),
                "/nonexistent-dashboard-run".into(),
                "/bin/false".into(),
            ),
            cpu: CpuSamples::default(),
            guard: crate::Guard::new("127.0.0.1:1".parse().unwrap(), "t".into()),
        }
    }

    fn req(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_page_and_its_assets_are_served() {
        let s = state();
        for p in ["/", "/app.js", "/app.css"] {
            assert_eq!(
                route(&s, &req("GET", p)).ok().map(|r| r.status),
                Some(200),
                "{p}"
            );
        }
        assert_eq!(
            route(&s, &req("GET", "/nope.js")).err().unwrap().status,
            404
        );
    }

    #[test]
    fn the_page_carries_the_token_only_when_loaded_with_it() {
        let s = state();
        let body = |r: Response| match r.body {
            rcompose_api::http::Body::Bytes(b, _) => String::from_utf8(b).unwrap(),
            _ => panic!("not a page"),
        };
        let without = body(route(&s, &req("GET", "/")).ok().unwrap());
        assert!(without.contains(r#"name="rcompose-token" content="""#));
        let mut with = req("GET", "/");
        with.query = rcompose_api::http::parse_query("token=t");
        let with = body(route(&s, &with).ok().unwrap());
        assert!(with.contains(r#"name="rcompose-token" content="t""#));
    }

    #[test]
    fn no_action_by_get_and_no_unknown_action() {
        let s = state();
        let e = route(&s, &req("GET", "/api/containers/x/stop"))
            .err()
            .unwrap();
        assert_eq!(e.status, 404);
        let e = route(&s, &req("POST", "/api/containers")).err().unwrap();
        assert_eq!(e.status, 405);
        let e = route(&s, &req("POST", "/")).err().unwrap();
        assert_eq!(e.status, 405);
    }
}
