//! The Docker Engine API (v1.41) on a unix socket, over the same state roots, locks and
//! library calls as the CLI, so docker's CLI, docker-compose and the rcompose CLI see one
//! set of containers, images, networks and volumes.
//!
//! Layers: `http` (HTTP/1.1 on a stream), `router` (method + path → [`router::Route`],
//! pure), the handlers (one module per object kind, each a function from a request to a
//! response) and `server` (the listener, one thread per connection, idle exit).

// docker's `info` object is one large `json!` literal.
#![recursion_limit = "256"]

pub mod archive;
pub mod attach;
pub mod build;
pub mod container_fs;
pub mod containers;
pub mod create;
pub mod create_extras;
pub mod error;
pub mod events;
pub mod exec;
pub mod http;
pub mod image_archive;
pub mod image_push;
pub mod images;
pub mod logs;
pub mod networks;
pub mod router;
pub mod server;
pub mod system;
pub mod usage;
pub mod volumes;

use std::path::PathBuf;

use rcompose_engine::container::Containers;
use rcompose_net::Networks;

pub use error::ApiError;
pub use router::API_VERSION;
pub use server::{ServeError, bind, serve, systemd_listener};

use http::{Request, Response};
use router::Route;

/// Where the state lives, as the CLI's `--root`/`--run-root`, and the binary started as the
/// containers' monitor.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub exe: PathBuf,
    /// The exec instances of this server (docker keeps them in memory too: they are gone
    /// when the daemon restarts).
    pub execs: std::sync::Arc<exec::Execs>,
    /// Attach sessions, shared by `attach`, `start`, `resize` and `wait`.
    pub sessions: std::sync::Arc<attach::Sessions>,
    /// The container events this server caused (merged into `GET /events`).
    pub journal: std::sync::Arc<events::Journal>,
}

impl Context {
    pub fn new(root: PathBuf, run_root: PathBuf, exe: PathBuf) -> Self {
        Self {
            root,
            run_root,
            exe,
            execs: Default::default(),
            sessions: Default::default(),
            journal: Default::default(),
        }
    }

    /// `rcompose --root … --run-root …`: the CLI as a child, for what must not run in this
    /// multi-threaded process (the runtime forks: exec).
    pub fn cli(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.exe);
        c.arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root);
        c
    }
    pub fn engine(&self) -> Containers {
        Containers::new(&self.root, &self.run_root, self.exe.clone())
    }
    pub fn nets(&self) -> Result<Networks, ApiError> {
        Ok(Networks::open(&self.root, &self.run_root)?)
    }
    pub fn images(&self) -> Result<rcompose_engine::store::Store, ApiError> {
        Ok(rcompose_engine::store::Store::open(&self.root)?)
    }
    pub fn volumes(&self) -> rcompose_engine::volume::Volumes {
        rcompose_engine::volume::Volumes::new(&self.root)
    }
}

/// Answers one request: the route's handler, or docker's error status and body.
pub fn handle(ctx: &Context, req: &Request) -> Response {
    match dispatch(ctx, req) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(method = %req.method, path = %req.path, status = e.status, "{}", e.message);
            Response::json(e.status, e.body())
        }
    }
}

fn dispatch(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let tail = router::strip_version(&req.path)?;
    let route = router::route(&req.method, tail)?;
    tracing::debug!(method = %req.method, path = %req.path, ?route, "request");
    use containers as c;
    match route {
        Route::Ping => Ok(system::ping()),
        Route::Version => Ok(system::version()),
        Route::Info => system::info(ctx),
        Route::Events => events::events(ctx, req),
        Route::SystemDf => system::df(ctx),
        Route::ContainerList => c::list(ctx, req),
        Route::ContainerCreate => c::create(ctx, req),
        Route::ContainerPrune => c::prune(ctx),
        Route::ContainerInspect(id) => c::inspect(ctx, &id),
        Route::ContainerStart(id) => c::start(ctx, &id),
        Route::ContainerStop(id) => c::stop(ctx, req, &id, false),
        Route::ContainerRestart(id) => c::stop(ctx, req, &id, true),
        Route::ContainerKill(id) => c::kill(ctx, req, &id),
        Route::ContainerWait(id) => c::wait(ctx, &id),
        Route::ContainerDelete(id) => c::remove(ctx, req, &id),
        Route::ContainerLogs(id) => logs::logs(ctx, req, &id),
        Route::ContainerRename(id) => c::rename(ctx, req, &id),
        Route::ContainerPause(id) => c::pause(ctx, &id, true),
        Route::ContainerUnpause(id) => c::pause(ctx, &id, false),
        Route::ContainerAttach(id) => attach::attach(ctx, req, &id),
        Route::ContainerResize(id) => c::resize(ctx, req, &id),
        Route::ExecResize(id) => exec::resize(ctx, req, &id),
        Route::ContainerTop(id) => usage::top(ctx, req, &id),
        Route::ContainerExport(id) => container_fs::export(ctx, &id),
        Route::ContainerChanges(id) => container_fs::changes(ctx, &id),
        Route::ContainerStats(id) => usage::stats(ctx, req, &id),
        Route::Commit => usage::commit(ctx, req),
        Route::Build => build::build_image(ctx, req),
        Route::ContainerArchive(id) => archive::get(ctx, req, &id),
        Route::ContainerArchivePut(id) => archive::put(ctx, req, &id),
        Route::ExecCreate(id) => exec::create(ctx, req, &id),
        Route::ExecStart(id) => exec::start(ctx, req, &id),
        Route::ExecInspect(id) => exec::inspect(ctx, &id),
        Route::ImageList => images::list(ctx, req),
        Route::ImageCreate => images::create(ctx, req),
        Route::ImagePrune => images::prune(ctx, req),
        Route::ImageInspect(n) => images::inspect(ctx, &n),
        Route::ImageHistory(n) => images::history(ctx, &n),
        Route::ImageTag(n) => images::tag(ctx, req, &n),
        Route::ImageDelete(n) => images::remove(ctx, req, &n),
        Route::ImageSave(n) => image_archive::save(ctx, req, n.as_deref()),
        Route::ImageLoad => image_archive::load(ctx, req),
        Route::ImagePush(n) => image_push::push_image(ctx, req, &n),
        Route::NetworkList => networks::list(ctx, req),
        Route::NetworkCreate => networks::create(ctx, req),
        Route::NetworkPrune => networks::prune(ctx, req),
        Route::NetworkInspect(n) => networks::inspect(ctx, &n),
        Route::NetworkDelete(n) => networks::remove(ctx, &n),
        Route::NetworkConnect(n) => networks::connect(ctx, req, &n),
        Route::NetworkDisconnect(n) => networks::disconnect(ctx, req, &n),
        Route::VolumeList => volumes::list(ctx, req),
        Route::VolumeCreate => volumes::create(ctx, req),
        Route::VolumePrune => volumes::prune(ctx, req),
        Route::VolumeInspect(n) => volumes::inspect(ctx, &n),
        Route::VolumeDelete(n) => volumes::remove(ctx, req, &n),
    }
}

/// docker's `filters` parameter: `{"label":{"a=b":true},"name":["x"]}` (both the map form
/// of API ≥ 1.22 and the list form) → `key=value` pairs, as the CLI's `--filter`.
pub fn filters(req: &Request) -> Result<Vec<String>, ApiError> {
    let Some(raw) = req.param("filters").filter(|f| !f.is_empty()) else {
        return Ok(vec![]);
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let mut out = vec![];
    for (k, vals) in v.as_object().into_iter().flatten() {
        match vals {
            serde_json::Value::Object(m) => {
                out.extend(m.keys().map(|x| format!("{k}={x}")));
            }
            serde_json::Value::Array(a) => {
                out.extend(
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .map(|x| format!("{k}={x}")),
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_in_both_forms() {
        let req = Request {
            query: http::parse_query(
                "filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%2C%22name%22%3A%5B%22x%22%5D%7D",
            ),
            ..Default::default()
        };
        assert_eq!(filters(&req).unwrap(), ["label=a=b", "name=x"]);
        let bad = Request {
            query: http::parse_query("filters=%7B"),
            ..Default::default()
        };
        assert_eq!(filters(&bad).unwrap_err().status, 400);
    }

    #[test]
    fn unknown_paths_and_versions_answer_with_dockers_bodies() {
        let ctx = Context::new(
            "/nonexistent-root".into(),
            "/nonexistent-run".into(),
            "/bin/false".into(),
        );
        let get = |p: &str| Request {
            method: "GET".into(),
            path: p.into(),
            ..Default::default()
        };
        let r = handle(&ctx, &get("/v1.41/nope"));
        assert_eq!(r.status, 404);
        let r = handle(&ctx, &get("/v1.99/_ping"));
        assert_eq!(r.status, 400);
        let r = handle(&ctx, &get("/v1.41/_ping"));
        assert_eq!(r.status, 200);
    }
}
