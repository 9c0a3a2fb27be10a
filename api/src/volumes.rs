//! Volume endpoints over `rcompose_engine::volume::Volumes`, as `rcompose volume …`.

use std::collections::BTreeMap;

use rcompose_engine::volume::Volume;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::{Context, filters};

/// docker's Volume object.
fn volume_json(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at, "Driver": v.driver, "Labels": v.labels,
        "Mountpoint": v.mountpoint, "Name": v.name, "Options": v.options, "Scope": v.scope,
    })
}

fn label_match(v: &Volume, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(want),
    }
}

/// `GET /volumes?filters=`.
pub fn list(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let filters = filters(req)?;
    let mut out = vec![];
    for v in ctx.volumes().list()? {
        let mut keep = true;
        for f in &filters {
            let (k, val) = f.split_once('=').unwrap_or((f, ""));
            keep &= match k {
                "name" => v.name.contains(val),
                "label" => label_match(&v, val),
                "driver" => v.driver == val,
                "dangling" => eng.volume_users(&v.name)?.is_empty() == matches!(val, "true" | "1"),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter '{other}': use name, label, driver or dangling"
                    )));
                }
            };
        }
        if keep {
            out.push(volume_json(&v));
        }
    }
    Ok(Response::json(200, json!({"Volumes": out, "Warnings": []})))
}

/// `POST /volumes/create` `{"Name", "Driver", "DriverOpts", "Labels"}`.
pub fn create(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let b: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&req.body)?
    };
    let driver = b["Driver"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or("local");
    if driver != "local" {
        return Err(ApiError::bad_request(format!(
            "not supported yet: volume driver \"{driver}\" (only local)"
        )));
    }
    let name = match b["Name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => rcompose_engine::container::new_id()?,
    };
    let labels: BTreeMap<String, String> = b["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let vols = ctx.volumes();
    // docker answers an existing name with that volume, as the CLI's create does.
    let v = vols.create(&name, labels, false)?;
    Ok(Response::json(201, volume_json(&v)))
}

pub fn inspect(ctx: &Context, name: &str) -> Result<Response, ApiError> {
    Ok(Response::json(200, volume_json(&ctx.volumes().get(name)?)))
}

/// `DELETE /volumes/{name}?force=`: refused while a container uses it.
pub fn remove(ctx: &Context, req: &Request, name: &str) -> Result<Response, ApiError> {
    let users = ctx.engine().volume_users(name)?;
    match ctx.volumes().remove(name, users) {
        Err(rcompose_engine::volume::VolumeError::NotFound { .. }) if req.flag("force") => {}
        res => res?,
    }
    Ok(Response::empty(204))
}

/// `POST /volumes/prune`: unused anonymous volumes (all unused with `all=true`, API 1.42).
pub fn prune(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let vols = ctx.volumes();
    let filters = filters(req)?;
    let all = filters.iter().any(|f| f == "all=true" || f == "all=1");
    let mut deleted = vec![];
    for v in vols.list()? {
        if !all && !v.anonymous {
            continue;
        }
        let wanted = filters
            .iter()
            .filter(|f| !f.starts_with("all="))
            .all(|f| f.strip_prefix("label=").is_some_and(|w| label_match(&v, w)));
        if wanted && eng.volume_users(&v.name)?.is_empty() {
            vols.remove(&v.name, vec![])?;
            deleted.push(v.name);
        }
    }
    Ok(Response::json(
        200,
        json!({"VolumesDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}
