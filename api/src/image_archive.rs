//! `docker save` and `docker load`: `GET /images/get?names=…` and `GET /images/{name}/get`
//! (a docker-archive tar, the engine's `image::archive::save`), `POST /images/load` (the
//! engine's `load`: docker-archive or OCI layout, all or nothing).

use std::io::Write;

use rcompose_engine::image::archive;
use serde_json::json;

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};

/// `GET /images/get?names=a&names=b` (`names` empty: refused, as docker).
pub fn save(ctx: &Context, req: &Request, one: Option<&str>) -> Result<Response, ApiError> {
    let names: Vec<String> = match one {
        Some(n) => vec![n.to_string()],
        None => req
            .query
            .iter()
            .filter(|(k, v)| k == "names" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
    };
    if names.is_empty() {
        return Err(ApiError::bad_request("no images given to save"));
    }
    let store = ctx.images()?;
    // Resolved before answering: an unknown name is a 404, not a cut stream.
    let items = archive::save_items(&store, &names)?;
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        archive::save(&store, &items, w).map_err(std::io::Error::other)
    };
    Ok(Response::new(
        200,
        Body::Stream("application/x-tar", Box::new(stream)),
    ))
}

/// `POST /images/load?quiet=`: docker's JSON messages, one per loaded image.
pub fn load(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let store = ctx.images()?;
    let report = archive::load(&store, req.body.as_slice()).map_err(|e| {
        let e = ApiError::from(e);
        ApiError::new(
            e.status,
            format!("{}; the image store is unchanged", e.message),
        )
    })?;
    let mut out = String::new();
    for t in &report.tags {
        out.push_str(&json!({"stream": format!("Loaded image: {t}\n")}).to_string());
        out.push('\n');
    }
    for id in &report.untagged_ids {
        out.push_str(&json!({"stream": format!("Loaded image ID: {id}\n")}).to_string());
        out.push('\n');
    }
    Ok(Response::new(
        200,
        Body::Bytes(out.into_bytes(), "application/json"),
    ))
}

/// `POST /images/create?fromSrc=-&repo=&tag=&message=&changes=` (`docker import`): the body
/// is the root filesystem's tar; docker's JSON status line carries the new id.
pub fn import(ctx: &Context, req: &Request, src: &str) -> Result<Response, ApiError> {
    if src != "-" {
        return Err(ApiError::not_implemented(
            "import from a URL (send the archive in the request body)",
        ));
    }
    let tag = match (
        req.param("repo").filter(|r| !r.is_empty()),
        req.param("tag").filter(|t| !t.is_empty()),
    ) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r.to_string()),
        (None, _) => None,
    };
    let opts = rcompose_engine::image::import::ImportOptions {
        changes: req
            .query
            .iter()
            .filter(|(k, v)| k == "changes" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        message: req
            .param("message")
            .filter(|m| !m.is_empty())
            .map(String::from),
        source_name: "-".into(),
    };
    let store = ctx.images()?;
    let body = std::io::Cursor::new(req.body.clone());
    let id = rcompose_engine::image::import::import(
        &store,
        rcompose_engine::image::import::ImportSource::Tar(Box::new(body)),
        tag.as_deref(),
        &opts,
    )?;
    let line = json!({ "status": id }).to_string() + "\n";
    Ok(Response::new(
        200,
        Body::Bytes(line.into_bytes(), "application/json"),
    ))
}
