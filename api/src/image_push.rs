//! `POST /images/{name}/push?tag=` (`docker push`): the engine's push, as `rcompose image
//! push`, with docker's JSON progress. Credentials are the server's own (its docker config
//! and credential helpers, as the CLI's); the client's `X-Registry-Auth` is not read.

use std::io::Write;
use std::sync::mpsc;

use rcompose_engine::image::progress::Progress;
use rcompose_engine::image::reference::{Reference, familiar_name};
use rcompose_engine::image::registry::Client;
use rcompose_engine::image::registry::push::push;
use serde_json::{Value, json};

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};
use crate::images::progress_line;

/// The full tagged names to push: `name:tag`, or every local tag of `name` without a tag.
fn names(ctx: &Context, name: &str, tag: Option<&str>) -> Result<Vec<String>, ApiError> {
    let store = ctx.images()?;
    let r = Reference::parse(name)?;
    let missing = |n: &str| {
        ApiError::not_found(format!(
            "An image does not exist locally with the tag: {}",
            familiar_name(n)
        ))
    };
    match tag.filter(|t| !t.is_empty()) {
        Some(t) => {
            let full = Reference::parse(&format!("{}:{t}", r.name()))?.to_string();
            store.resolve(&full).map_err(|_| missing(&full))?;
            Ok(vec![full])
        }
        None if r.tag.is_some() => {
            let full = r.to_string();
            store.resolve(&full).map_err(|_| missing(&full))?;
            Ok(vec![full])
        }
        None => {
            let prefix = format!("{}:", r.name());
            let mut tags: Vec<String> = store
                .list()?
                .iter()
                .flat_map(|i| i.repo_tags.clone())
                .filter(|t| t.starts_with(&prefix))
                .collect();
            tags.sort();
            if tags.is_empty() {
                return Err(missing(&r.name()));
            }
            Ok(tags)
        }
    }
}

pub fn push_image(ctx: &Context, req: &Request, name: &str) -> Result<Response, ApiError> {
    let names = names(ctx, name, req.param("tag"))?;
    let store = ctx.images()?;
    let client = Client::new()?;
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        for name in names {
            let (tx, rx) = mpsc::channel::<Value>();
            let res = std::thread::scope(|s| {
                let worker = s.spawn(|| {
                    let tx = tx;
                    let send = |p: Progress| {
                        let _ = tx.send(progress_line(&p));
                    };
                    push(&store, &client, &name, &send)
                });
                let mut client_gone = false;
                for line in rx {
                    if !client_gone {
                        client_gone = writeln!(w, "{line}").is_err();
                    }
                }
                worker.join()
            });
            match res {
                Ok(Ok(done)) => {
                    let status =
                        format!("{}: digest: {} size: {}", done.tag, done.digest, done.size);
                    writeln!(w, "{}", json!({ "status": status }))?;
                    let aux = json!({"Tag": done.tag, "Digest": done.digest, "Size": done.size});
                    writeln!(w, "{}", json!({"progressDetail": {}, "aux": aux}))?;
                }
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    return writeln!(
                        w,
                        "{}",
                        json!({"errorDetail": {"message": msg}, "error": msg})
                    );
                }
                Err(_) => {
                    return writeln!(w, "{}", json!({"error": "the push failed unexpectedly"}));
                }
            }
        }
        Ok(())
    };
    Ok(Response::new(
        200,
        Body::Stream("application/json", Box::new(stream)),
    ))
}
