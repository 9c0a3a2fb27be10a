//! `POST /build` (`docker build` without BuildKit, docker-compose 1.29's `build`): the tar
//! context is unpacked (safely: the engine's unpacker, nothing outside the directory) into a
//! directory of its own under the run root and built by the engine's builder, as `rcompose
//! image build`; progress goes out as docker's JSON lines, ending with `Successfully built`
//! (which docker-compose 1.29 reads the image id from).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use rcompose_engine::build::{BuildEvent, BuildOptions, Hooks, build};
use serde_json::json;

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};

/// A query parameter holding a JSON map (`buildargs`, `labels`).
fn json_map(req: &Request, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = req.param(key).filter(|v| !v.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
    Ok(v.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

/// The options docker's query asks for, with the context in `dir`.
pub fn options(req: &Request, dir: PathBuf) -> Result<BuildOptions, ApiError> {
    if req.param("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::not_implemented("building from a remote context"));
    }
    let dockerfile = req
        .param("dockerfile")
        .filter(|d| !d.is_empty())
        .unwrap_or("Dockerfile");
    // Inside the context only: the client sends a Dockerfile from elsewhere inside the tar.
    if dockerfile.starts_with('/') || dockerfile.split('/').any(|c| c == "..") {
        return Err(ApiError::bad_request(format!(
            "the Dockerfile ({dockerfile}) must be within the build context"
        )));
    }
    Ok(BuildOptions {
        dockerfile: Some(dir.join(dockerfile)),
        context: dir,
        build_args: json_map(req, "buildargs")?,
        labels: json_map(req, "labels")?,
        target: req
            .param("target")
            .filter(|t| !t.is_empty())
            .map(String::from),
        tags: req
            .query
            .iter()
            .filter(|(k, v)| k == "t" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        no_cache: req.flag("nocache"),
        pull: req.flag("pull"),
        network: req
            .param("networkmode")
            .filter(|n| !n.is_empty())
            .map(String::from),
        ..Default::default()
    })
}

/// Removes the context directory when the build is over, whatever happened.
struct ContextDir(PathBuf);

impl Drop for ContextDir {
    fn drop(&mut self) {
        // Only ever a directory this module made under the run root.
        if self.0.parent().is_some_and(|p| p.ends_with("api-build")) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn line(w: &mut dyn Write, v: serde_json::Value) -> std::io::Result<()> {
    writeln!(w, "{v}")
}

pub fn build_image(ctx: &Context, req: &Request) -> Result<Response, ApiError> {
    let dir = ctx
        .run_root
        .join("api-build")
        .join(rcompose_engine::container::new_id()?);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
    let guard = ContextDir(dir.clone());
    let opts = options(req, dir.clone())?;
    rcompose_engine::unpack::unpack_copy(req.body.as_slice(), &dir)
        .map_err(|e| ApiError::bad_request(format!("the build context: {e}")))?;
    let quiet = req.flag("q");
    let ctx = ctx.clone();
    let stream = move |w: &mut dyn Write| -> std::io::Result<()> {
        let _guard = guard;
        let eng = ctx.engine();
        let store = match ctx.images() {
            Ok(s) => s,
            Err(e) => {
                return line(
                    w,
                    json!({"errorDetail": {"message": e.message}, "error": e.message}),
                );
            }
        };
        let pull = rcompose_wire::backend::build::puller(&store);
        let mut step = 0;
        let mut failed_write = None;
        let mut emit = |e: BuildEvent| {
            if quiet || failed_write.is_some() {
                return;
            }
            let text = match e {
                BuildEvent::Step { text, .. } => {
                    step += 1;
                    format!("Step {step} : {text}\n")
                }
                BuildEvent::Cached => " ---> Using cache\n".to_string(),
                BuildEvent::Output(o) => format!("{}\n", o.trim_end_matches('\n')),
                BuildEvent::Warning(m) => format!("[WARNING]: {m}\n"),
            };
            if let Err(e) = line(w, json!({ "stream": text })) {
                failed_write = Some(e);
            }
        };
        // RUN on the default bridge, as `rcompose image build`.
        let net = match rcompose_wire::backend::build::BridgeNetwork::open(&eng) {
            Ok(n) => n,
            Err(e) => {
                return line(
                    w,
                    json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()}),
                );
            }
        };
        let hooks = Hooks {
            pull: Some(&pull),
            network: Some(&net),
        };
        let res = build(&eng, &opts, hooks, &mut emit);
        if let Some(e) = failed_write {
            return Err(e);
        }
        match res {
            Ok(r) => {
                line(w, json!({"aux": {"ID": r.id}}))?;
                let short = r.id.trim_start_matches("sha256:");
                let short = &short[..short.len().min(12)];
                if quiet {
                    // What `docker build -q` prints.
                    return line(w, json!({"stream": format!("{}\n", r.id)}));
                }
                let built = format!("Successfully built {short}\n");
                line(w, json!({ "stream": built }))?;
                for t in &r.tags {
                    let t = rcompose_engine::image::reference::familiar_name(t);
                    line(w, json!({"stream": format!("Successfully tagged {t}\n")}))?;
                }
                Ok(())
            }
            Err(e) => {
                let m = e.to_string();
                line(w, json!({"errorDetail": {"message": m}, "error": m}))
            }
        }
    };
    Ok(Response::new(
        200,
        Body::Stream("application/json", Box::new(stream)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_query;

    #[test]
    fn dockers_build_query_becomes_the_builders_options() {
        let req = Request {
            query: parse_query(
                "t=app%3A1&t=app%3Alatest&dockerfile=sub%2FDockerfile.dev&buildargs=%7B%22V%22%3A%221%22%2C%22N%22%3Anull%7D&target=final&nocache=1",
            ),
            ..Default::default()
        };
        let o = options(&req, "/ctx".into()).unwrap();
        assert_eq!(o.tags, ["app:1", "app:latest"]);
        assert_eq!(
            o.dockerfile.unwrap(),
            PathBuf::from("/ctx/sub/Dockerfile.dev")
        );
        assert_eq!(
            o.build_args.into_iter().collect::<Vec<_>>(),
            [("V".to_string(), "1".to_string())]
        );
        assert_eq!(o.target.as_deref(), Some("final"));
        assert!(o.no_cache && !o.pull);
        let outside = Request {
            query: parse_query("dockerfile=..%2F..%2Fetc%2Fpasswd"),
            ..Default::default()
        };
        assert_eq!(options(&outside, "/ctx".into()).unwrap_err().status, 400);
    }
}
