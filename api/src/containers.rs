//! Container endpoints, each the same engine and netwire calls as the CLI's verb of that name
//! (`src/cli/container_run.rs`, `container_show.rs`), so both see and leave the same state.

use rcompose_engine::container::inspect::{effective_health, inspect_json, matches_filter};
use rcompose_engine::container::model::{ContainerConfig, ContainerState, Status};
use rcompose_engine::container::{ContainerError, ImageInfo};
use rcompose_engine::units::time::parse_rfc3339;
use rcompose_wire::netwire::{self, live};
use serde_json::{Value, json};

use crate::error::ApiError;
use std::io::Write;

use crate::http::{Body, Request, Response};
use crate::{Context, create, filters};

fn running(st: &ContainerState) -> bool {
    matches!(
        st.status,
        Status::Running | Status::Paused | Status::Restarting
    )
}

/// One entry of `GET /containers/json`.
fn summary(
    ctx: &Context,
    nets: &rcompose_net::Networks,
    c: &ContainerConfig,
    st: &ContainerState,
) -> Value {
    let health = effective_health(c, st);
    let status = rcompose_engine::container::inspect::status_text(
        st,
        health.as_ref().map(|h| h.status.as_str()),
    );
    // The networks and mounts exactly as `inspect` shows them.
    let mut full = inspect_json(&ctx.engine().store, c, st);
    live::patch_inspect(nets, &ctx.engine().store, c, &mut full);
    let ports: Vec<Value> = live::ports(nets, &c.id)
        .iter()
        .map(|p| {
            json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port,
                   "PublicPort": p.host_port, "Type": p.proto.to_string()})
        })
        .collect();
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": c.args.join(" "),
        "Created": parse_rfc3339(&c.created).unwrap_or(0),
        "Ports": ports,
        "Labels": c.labels,
        "State": st.status.as_str(),
        "Status": status,
        "HostConfig": {"NetworkMode": c.host.network_mode},
        "NetworkSettings": {"Networks": full["NetworkSettings"]["Networks"].clone()},
        "Mounts": full["Mounts"].clone(),
    })
}

/// `GET /containers/json?all=&limit=&filters=` (`docker ps`).
pub fn list(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let nets = ctx.nets()?;
    let filters = filters(req)?;
    let limit: Option<usize> = req
        .param("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let all =
        req.flag("all") || limit.is_some() || filters.iter().any(|f| f.starts_with("status="));
    let mut list = eng.store.list()?;
    list.reverse(); // newest first, as docker
    let mut out = vec![];
    for c in list {
        let st = match eng.observe(&c.id) {
            Ok(st) => st,
            // Removed while we listed.
            Err(ContainerError::Io { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if !all && !running(&st) {
            continue;
        }
        let mut keep = true;
        for f in &filters {
            keep &= match live::ps_filter(&nets, &c, f) {
                Some(hit) => hit?,
                None => matches_filter(&c, &st, f).map_err(ApiError::bad_request)?,
            };
        }
        if keep {
            out.push(summary(ctx, &nets, &c, &st));
        }
    }
    if let Some(n) = limit {
        out.truncate(n);
    }
    Ok(Response::json(200, Value::Array(out)))
}

/// `POST /containers/create?name=`: the image must be in the store (docker's client pulls
/// on a 404 and retries).
pub fn create(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let mut r = create::parse(&eng.store, req.param("name"), &req.body)?;
    let store = ctx.images()?;
    let rec = store.resolve(&r.image).map_err(|e| match e {
        rcompose_engine::store::StoreError::NoSuchImage(_) => {
            ApiError::not_found(format!("No such image: {}", r.image))
        }
        e => e.into(),
    })?;
    let image = ImageInfo::from_record(&r.image, &rec);
    let nets = ctx.nets()?;
    let warnings = std::cell::RefCell::new(Vec::<String>::new());
    let warn = |w: &str| warnings.borrow_mut().push(w.to_string());
    netwire::flags::apply(
        &ctx.root,
        &eng,
        &nets,
        Some(&r.image),
        &r.networks,
        &r.net_flags,
        &mut r.opts,
        &warn,
    )?;
    let cfg = eng.create(&image, r.opts)?;
    ctx.journal.container("create", &cfg, &[]);
    Ok(Response::json(
        201,
        json!({"Id": cfg.id, "Warnings": warnings.into_inner()}),
    ))
}

/// `GET /containers/{id}/json`: `rcompose container inspect`'s JSON.
pub fn inspect(ctx: &Context, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let nets = ctx.nets()?;
    let c = eng.store.resolve(key)?;
    let st = eng.observe(&c.id)?;
    let mut v = inspect_json(&eng.store, &c, &st);
    live::patch_inspect(&nets, &eng.store, &c, &mut v);
    Ok(Response::json(200, v))
}

/// `POST /containers/{id}/start`: 304 when it already runs, as docker.
pub fn start(ctx: &Context, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    if running(&eng.observe(&c.id)?) {
        return Ok(Response::empty(304));
    }
    let nets = ctx.nets()?;
    // A client attached before the start (`docker run`) gets the monitor from its start.
    let attach = ctx.sessions.take_pending(&c.id);
    netwire::start(&eng, &nets, &c.id, attach)?;
    ctx.journal.container("start", &c, &[]);
    Ok(Response::empty(204))
}

/// `POST /containers/{id}/resize?h=&w=`: the TTY of an attached session.
pub fn resize(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let c = ctx.engine().store.resolve(key)?;
    let dim = |k: &str| req.param(k).and_then(|v| v.parse::<u16>().ok());
    let (Some(h), Some(w)) = (dim("h"), dim("w")) else {
        return Err(ApiError::bad_request("resize needs numeric h and w"));
    };
    ctx.sessions.resize(&c.id, h, w);
    Ok(Response::empty(200))
}

/// `POST /containers/{id}/stop|restart?t=&signal=`.
pub fn stop(ctx: &Context, req: &Request, key: &str, restart: bool) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let timeout = req
        .param("t")
        .and_then(|t| t.parse::<i64>().ok())
        .map(|t| t.max(0) as u32);
    let was_running = running(&eng.observe(&c.id)?);
    if !restart && !was_running {
        return Ok(Response::empty(304));
    }
    let nets = ctx.nets()?;
    eng.stop(&c.id, timeout, req.param("signal"))?;
    netwire::after_stop(&nets, &c);
    if restart {
        netwire::start(&eng, &nets, &c.id, None)?;
    }
    Ok(Response::empty(204))
}

/// `POST /containers/{id}/kill?signal=`.
pub fn kill(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let signal = req
        .param("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("KILL");
    eng.kill(&c.id, signal)?;
    if matches!(signal, "KILL" | "SIGKILL" | "9") {
        let nets = ctx.nets()?;
        netwire::after_stop(&nets, &c);
    }
    Ok(Response::empty(204))
}

/// `POST /containers/{id}/wait?condition=`: the status line goes out at once and the body
/// when the container stops; docker's client sends `start` only after it has the headers
/// (`docker run` waits for `next-exit` before it starts the container).
pub fn wait(ctx: &Context, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let sessions = ctx.sessions.clone();
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        let code = eng.wait(&c.id).map(|code| {
            // Removed at its exit (`--rm`): the code an attached session saw.
            if eng.store.dir(&c.id).exists() {
                code
            } else {
                sessions
                    .exit_code(&c.id, std::time::Duration::from_secs(10))
                    .unwrap_or(code)
            }
        });
        let body = match code {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        writeln!(w, "{body}")
    };
    Ok(Response::new(
        200,
        Body::Stream("application/json", Box::new(stream)),
    ))
}

/// `DELETE /containers/{id}?force=&v=`.
pub fn remove(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let nets = ctx.nets()?;
    eng.remove(&c.id, req.flag("force"), req.flag("v"))?;
    netwire::after_stop(&nets, &c);
    ctx.journal.container("destroy", &c, &[]);
    Ok(Response::empty(204))
}

/// `POST /containers/{id}/rename?name=`.
pub fn rename(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let new_name = req
        .param("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Error when allocating new name: name is empty"))?;
    eng.rename(&c.id, new_name)?;
    let nets = ctx.nets()?;
    nets.rename_endpoint(&c.id, new_name.trim_start_matches('/'))?;
    Ok(Response::empty(204))
}

pub fn pause(ctx: &Context, key: &str, pause: bool) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    if pause {
        eng.pause(&c.id)?;
    } else {
        eng.unpause(&c.id)?;
    }
    Ok(Response::empty(204))
}

/// `POST /containers/prune`: what `rcompose container prune` removes.
pub fn prune(ctx: &Context) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let nets = ctx.nets().ok();
    let mut deleted = eng.remove_orphans()?;
    for c in eng.store.list()? {
        let st = eng.observe(&c.id)?;
        if matches!(st.status, Status::Exited | Status::Created | Status::Dead) {
            eng.remove(&c.id, false, false)?;
            if let Some(nets) = &nets {
                netwire::after_stop(nets, &c);
            }
            deleted.push(c.id.clone());
        }
    }
    Ok(Response::json(
        200,
        json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}
