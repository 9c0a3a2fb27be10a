//! Image endpoints over the image store the CLI's `image` commands use.

use std::io::Write;
use std::sync::mpsc;

use rcompose_engine::image::inspect::inspect_json;
use rcompose_engine::image::progress::{LayerStatus, Progress};
use rcompose_engine::image::reference::{Reference, familiar_name};
use rcompose_engine::image::registry::Client;
use rcompose_engine::image::registry::pull::{PullOptions, pull};
use rcompose_engine::store::RemoveEvent;
use rcompose_engine::units::time::parse_rfc3339;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{Body, Request, Response};
use crate::{Context, filters};

/// `GET /images/json` (`docker images`).
pub fn list(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let store = ctx.images()?;
    let filters = filters(req)?;
    let mut out = vec![];
    for img in store.list()? {
        let tags = img.familiar_tags();
        let mut keep = true;
        for f in &filters {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            keep &= match k {
                "dangling" => tags.is_empty() == matches!(v, "true" | "1"),
                "reference" => tags.iter().any(|t| {
                    t == v || t.split(':').next() == Some(v) || img.repo_tags.iter().any(|r| r == v)
                }),
                "label" => {
                    let labels = &img.config_json["config"]["Labels"];
                    match v.split_once('=') {
                        Some((lk, lv)) => labels[lk].as_str() == Some(lv),
                        None => !labels[v].is_null(),
                    }
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter '{other}' (supported: dangling, label, reference)"
                    )));
                }
            };
        }
        if !keep {
            continue;
        }
        let created = img.created().and_then(parse_rfc3339).unwrap_or(0);
        out.push(json!({
            "Id": img.id,
            "ParentId": "",
            "RepoTags": if tags.is_empty() { json!(["<none>:<none>"]) } else { json!(tags) },
            "RepoDigests": img.repo_digests.iter().map(|d| familiar_name(d)).collect::<Vec<_>>(),
            "Created": created,
            "Size": img.size,
            "VirtualSize": img.size,
            "SharedSize": -1,
            "Labels": img.config_json["config"]["Labels"].clone(),
            "Containers": -1,
        }));
    }
    Ok(Response::json(200, Value::Array(out)))
}

/// `GET /images/{name}/json`.
pub fn inspect(ctx: &Context, name: &str) -> Result<Response, ApiError> {
    let img = ctx.images()?.resolve(name)?;
    Ok(Response::json(200, inspect_json(&img)))
}

/// `GET /images/{name}/history`.
pub fn history(ctx: &Context, name: &str) -> Result<Response, ApiError> {
    let img = ctx.images()?.resolve(name)?;
    let rows: Vec<Value> = rcompose_engine::image::history::history(&img)
        .iter()
        .map(|r| {
            json!({
                "Id": r.id, "Created": r.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                "CreatedBy": r.created_by, "Tags": null, "Size": r.size, "Comment": r.comment
            })
        })
        .collect();
    Ok(Response::json(200, Value::Array(rows)))
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub fn tag(ctx: &Context, req: &Request, name: &str) -> Result<Response, ApiError> {
    let repo = req
        .param("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("repository name must have at least one component"))?;
    let target = match req.param("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let target = rcompose_engine::image::full_tag(&target)?;
    let store = ctx.images()?;
    let locked = store.lock()?;
    let id = locked.resolve_id(name)?;
    locked.tag(&id, &target)?;
    Ok(Response::empty(201))
}

/// `DELETE /images/{name}?force=`.
pub fn remove(ctx: &Context, req: &Request, name: &str) -> Result<Response, ApiError> {
    let store = ctx.images()?;
    let locked = store.lock()?;
    let events = locked.remove_image(name, req.flag("force"))?;
    let out: Vec<Value> = events
        .into_iter()
        .map(|e| match e {
            RemoveEvent::Untagged(t) => json!({"Untagged": t}),
            RemoveEvent::Deleted(id) => json!({"Deleted": id}),
        })
        .collect();
    Ok(Response::json(200, Value::Array(out)))
}

/// `POST /images/prune?filters={"dangling":["false"]}`.
pub fn prune(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let all = filters(req)?
        .iter()
        .any(|f| f == "dangling=false" || f == "dangling=0");
    let store = ctx.images()?;
    let report = rcompose_engine::image::prune::prune(&store, all)?;
    let deleted: Vec<Value> = report
        .events
        .into_iter()
        .map(|e| match e {
            RemoveEvent::Untagged(t) => json!({"Untagged": t}),
            RemoveEvent::Deleted(id) => json!({"Deleted": id}),
        })
        .collect();
    Ok(Response::json(
        200,
        json!({"ImagesDeleted": deleted, "SpaceReclaimed": report.reclaimed}),
    ))
}

/// A pull event as docker's JSON progress line.
pub(crate) fn progress_line(p: &Progress) -> Value {
    match p {
        Progress::Start(s) | Progress::Line(s) => json!({"status": s}),
        Progress::Layer { id, status } => {
            let mut v = json!({"status": status.label(), "id": id, "progressDetail": {}});
            if let LayerStatus::Downloading(cur, total) = status {
                v["progressDetail"] = json!({"current": cur, "total": total});
            }
            v
        }
    }
}

/// `POST /images/create?fromImage=&tag=` (`docker pull`): docker's JSON progress lines; a
/// failed pull ends the stream with an `error` line (the status is already 200).
pub fn create(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    if let Some(src) = req.param("fromSrc").filter(|f| !f.is_empty()) {
        return crate::image_archive::import(ctx, req, src);
    }
    let Some(from) = req.param("fromImage").filter(|f| !f.is_empty()) else {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    };
    let name = match req.param("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let r = Reference::parse(&name)?.with_default_tag();
    let reference = r.to_string();
    let store = ctx.images()?;
    let client = Client::new()?;
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        let (tx, rx) = mpsc::channel::<Value>();
        let res = std::thread::scope(|s| {
            let worker = s.spawn(|| {
                let tx = tx;
                let send = |p: Progress| {
                    let _ = tx.send(progress_line(&p));
                };
                pull(&store, &client, &reference, &PullOptions::default(), &send)
            });
            // Lines go out while the pull runs; a client gone mid-pull stops the writes,
            // not the pull (its layers stay for the next one).
            let mut client_gone = false;
            for line in rx {
                if !client_gone {
                    client_gone = writeln!(w, "{line}").is_err();
                }
            }
            worker.join()
        });
        let last = match res {
            Ok(Ok(done)) => {
                let familiar = familiar_name(&done.reference);
                let status = if done.up_to_date {
                    format!("Status: Image is up to date for {familiar}")
                } else {
                    format!("Status: Downloaded newer image for {familiar}")
                };
                json!({"status": status})
            }
            Ok(Err(e)) => {
                let msg = e.to_string();
                json!({"errorDetail": {"message": msg}, "error": msg})
            }
            Err(_) => json!({"error": "the pull failed unexpectedly"}),
        };
        writeln!(w, "{last}")
    };
    Ok(Response::new(
        200,
        Body::Stream("application/json", Box::new(stream)),
    ))
}
