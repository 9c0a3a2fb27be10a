//! `GET /containers/{id}/export` (`docker export`) and `GET /containers/{id}/changes`
//! (`docker diff`): the engine's `export` and `diff`, as the CLI's.

use std::io::Write;

use serde_json::json;

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Response};

pub fn export(ctx: &Context, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        eng.export(&c.id, w).map_err(std::io::Error::other)
    };
    Ok(Response::new(
        200,
        Body::Stream("application/octet-stream", Box::new(stream)),
    ))
}

/// docker's change kinds: 0 modified, 1 added, 2 deleted.
fn kind(k: char) -> u8 {
    match k {
        'A' => 1,
        'D' => 2,
        _ => 0,
    }
}

pub fn changes(ctx: &Context, key: &str) -> Result<Response, ApiError> {
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let list: Vec<_> = eng
        .diff(&c.id)?
        .into_iter()
        .map(|ch| json!({"Path": ch.path, "Kind": kind(ch.kind)}))
        .collect();
    Ok(Response::json(200, json!(list)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn change_kinds_as_docker_numbers_them() {
        assert_eq!(['C', 'A', 'D'].map(super::kind), [0, 1, 2]);
    }
}
