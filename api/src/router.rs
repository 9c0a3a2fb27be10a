//! The route table: method and path → [`Route`], with docker's version prefix
//! (`/v1.41/containers/json` and `/containers/json` are the same endpoint). Pure, so the
//! table is tested without a socket.

use crate::error::ApiError;

/// The newest API version served: what Debian's docker 20.10 negotiates.
pub const API_VERSION: &str = "1.41";
/// The oldest docker still accepts.
pub const MIN_API_VERSION: &str = "1.12";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    Events,
    SystemDf,
    ContainerList,
    ContainerCreate,
    ContainerPrune,
    ContainerInspect(String),
    ContainerStart(String),
    ContainerStop(String),
    ContainerRestart(String),
    ContainerKill(String),
    ContainerWait(String),
    ContainerDelete(String),
    ContainerLogs(String),
    ContainerAttach(String),
    ContainerRename(String),
    ContainerPause(String),
    ContainerUnpause(String),
    ContainerResize(String),
    ContainerArchive(String),
    ContainerTop(String),
    ContainerExport(String),
    ContainerChanges(String),
    ContainerStats(String),
    Commit,
    Build,
    ContainerArchivePut(String),
    ExecCreate(String),
    ExecStart(String),
    ExecInspect(String),
    ExecResize(String),
    ImageList,
    ImageCreate,
    ImagePrune,
    ImageInspect(String),
    ImageHistory(String),
    ImageTag(String),
    ImageDelete(String),
    ImageSave(Option<String>),
    ImageLoad,
    ImagePush(String),
    NetworkList,
    NetworkCreate,
    NetworkPrune,
    NetworkInspect(String),
    NetworkDelete(String),
    NetworkConnect(String),
    NetworkDisconnect(String),
    VolumeList,
    VolumeCreate,
    VolumePrune,
    VolumeInspect(String),
    VolumeDelete(String),
}

/// `1.41` → (1, 41).
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Strips `/v1.NN` and checks the version as docker does: 400 with docker's words for one
/// too new or too old.
pub fn strip_version(path: &str) -> Result<&str, ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(v) = parse_version(ver) else {
        // `/volumes`, `/version`: not a version prefix.
        return Ok(path);
    };
    let max = parse_version(API_VERSION).unwrap_or_default();
    let min = parse_version(MIN_API_VERSION).unwrap_or_default();
    if v > max {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < min {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(tail)
}

/// The route for `method path` (path already without the version prefix).
pub fn route(method: &str, path: &str) -> Result<Route, ApiError> {
    let path = path.trim_end_matches('/');
    let m = if method == "HEAD" { "GET" } else { method };
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let own = |s: &str| s.to_string();
    let r = match (m, segs.as_slice()) {
        ("GET", ["_ping"]) => Route::Ping,
        ("GET", ["version"]) => Route::Version,
        ("GET", ["info"]) => Route::Info,
        ("GET", ["events"]) => Route::Events,
        ("GET", ["system", "df"]) => Route::SystemDf,
        ("GET", ["containers", "json"]) => Route::ContainerList,
        ("POST", ["containers", "create"]) => Route::ContainerCreate,
        ("POST", ["containers", "prune"]) => Route::ContainerPrune,
        ("GET", ["containers", id, "json"]) => Route::ContainerInspect(own(id)),
        ("GET", ["containers", id, "logs"]) => Route::ContainerLogs(own(id)),
        ("POST", ["containers", id, "start"]) => Route::ContainerStart(own(id)),
        ("POST", ["containers", id, "stop"]) => Route::ContainerStop(own(id)),
        ("POST", ["containers", id, "restart"]) => Route::ContainerRestart(own(id)),
        ("POST", ["containers", id, "kill"]) => Route::ContainerKill(own(id)),
        ("POST", ["containers", id, "wait"]) => Route::ContainerWait(own(id)),
        ("POST", ["containers", id, "attach"]) => Route::ContainerAttach(own(id)),
        ("POST", ["containers", id, "rename"]) => Route::ContainerRename(own(id)),
        ("POST", ["containers", id, "pause"]) => Route::ContainerPause(own(id)),
        ("POST", ["containers", id, "unpause"]) => Route::ContainerUnpause(own(id)),
        ("POST", ["containers", id, "resize"]) => Route::ContainerResize(own(id)),
        ("POST", ["containers", id, "exec"]) => Route::ExecCreate(own(id)),
        ("GET", ["containers", id, "top"]) => Route::ContainerTop(own(id)),
        ("GET", ["containers", id, "export"]) => Route::ContainerExport(own(id)),
        ("GET", ["containers", id, "changes"]) => Route::ContainerChanges(own(id)),
        ("GET", ["containers", id, "stats"]) => Route::ContainerStats(own(id)),
        ("POST", ["commit"]) => Route::Commit,
        ("POST", ["build"]) => Route::Build,
        ("GET", ["containers", id, "archive"]) => Route::ContainerArchive(own(id)),
        ("PUT", ["containers", id, "archive"]) => Route::ContainerArchivePut(own(id)),
        ("DELETE", ["containers", id]) => Route::ContainerDelete(own(id)),
        ("POST", ["exec", id, "start"]) => Route::ExecStart(own(id)),
        ("POST", ["exec", id, "resize"]) => Route::ExecResize(own(id)),
        ("GET", ["exec", id, "json"]) => Route::ExecInspect(own(id)),
        ("GET", ["images", "json"]) => Route::ImageList,
        ("POST", ["images", "create"]) => Route::ImageCreate,
        ("POST", ["images", "prune"]) => Route::ImagePrune,
        ("GET", ["images", "get"]) => Route::ImageSave(None),
        ("POST", ["images", "load"]) => Route::ImageLoad,
        ("GET", ["networks"]) => Route::NetworkList,
        ("POST", ["networks", "create"]) => Route::NetworkCreate,
        ("POST", ["networks", "prune"]) => Route::NetworkPrune,
        ("GET", ["networks", id]) => Route::NetworkInspect(own(id)),
        ("DELETE", ["networks", id]) => Route::NetworkDelete(own(id)),
        ("POST", ["networks", id, "connect"]) => Route::NetworkConnect(own(id)),
        ("POST", ["networks", id, "disconnect"]) => Route::NetworkDisconnect(own(id)),
        ("GET", ["volumes"]) => Route::VolumeList,
        ("POST", ["volumes", "create"]) => Route::VolumeCreate,
        ("POST", ["volumes", "prune"]) => Route::VolumePrune,
        ("GET", ["volumes", name]) => Route::VolumeInspect(own(name)),
        ("DELETE", ["volumes", name]) => Route::VolumeDelete(own(name)),
        // Image names have slashes (`localhost:5000/team/app:1`): the name is everything
        // between `/images/` and the verb.
        (_, ["images", _, ..]) => return image_route(m, &path["/images/".len()..]),
        _ => return Err(ApiError::not_found("page not found")),
    };
    Ok(r)
}

fn image_route(method: &str, rest: &str) -> Result<Route, ApiError> {
    let split = |verb: &str| rest.strip_suffix(verb).filter(|n| !n.is_empty());
    match method {
        "GET" => {
            if let Some(n) = split("/json") {
                return Ok(Route::ImageInspect(n.into()));
            }
            if let Some(n) = split("/history") {
                return Ok(Route::ImageHistory(n.into()));
            }
            if let Some(n) = split("/get") {
                return Ok(Route::ImageSave(Some(n.into())));
            }
        }
        "POST" => {
            if let Some(n) = split("/tag") {
                return Ok(Route::ImageTag(n.into()));
            }
            if let Some(n) = split("/push") {
                return Ok(Route::ImagePush(n.into()));
            }
        }
        "DELETE" => return Ok(Route::ImageDelete(rest.into())),
        _ => {}
    }
    Err(ApiError::not_found("page not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_and_unversioned_paths_are_one_endpoint() {
        for p in [
            "/v1.41/containers/json",
            "/containers/json",
            "/v1.24/containers/json/",
        ] {
            let tail = strip_version(p).unwrap();
            assert_eq!(route("GET", tail).unwrap(), Route::ContainerList, "{p}");
        }
        assert_eq!(strip_version("/volumes").unwrap(), "/volumes");
        assert_eq!(strip_version("/version").unwrap(), "/version");
        assert_eq!(route("HEAD", "/_ping").unwrap(), Route::Ping);
    }

    #[test]
    fn versions_outside_the_served_range_get_dockers_words() {
        let e = strip_version("/v1.43/info").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "client version 1.43 is too new. Maximum supported API version is 1.41"
        );
        assert!(
            strip_version("/v1.11/info")
                .unwrap_err()
                .message
                .contains("too old")
        );
    }

    #[test]
    fn ids_and_image_names_with_slashes() {
        assert_eq!(
            route("POST", "/containers/abc/start").unwrap(),
            Route::ContainerStart("abc".into())
        );
        assert_eq!(
            route("GET", "/images/localhost:5000/team/app:1/json").unwrap(),
            Route::ImageInspect("localhost:5000/team/app:1".into())
        );
        assert_eq!(
            route("DELETE", "/images/busybox:latest").unwrap(),
            Route::ImageDelete("busybox:latest".into())
        );
        assert_eq!(
            route("POST", "/images/a/b/tag").unwrap(),
            Route::ImageTag("a/b".into())
        );
        assert_eq!(route("GET", "/images/get").unwrap(), Route::ImageSave(None));
        assert_eq!(
            route("GET", "/images/team/app:1/get").unwrap(),
            Route::ImageSave(Some("team/app:1".into()))
        );
    }

    #[test]
    fn unknown_endpoints_are_dockers_404() {
        for (m, p) in [
            ("GET", "/nope"),
            ("PUT", "/containers/json"),
            ("GET", "/images/x"),
        ] {
            let e = route(m, p).unwrap_err();
            assert_eq!((e.status, e.message.as_str()), (404, "page not found"));
        }
    }
}
