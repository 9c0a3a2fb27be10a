//! `docker cp`: `HEAD|GET /containers/{id}/archive?path=` (stat header; the tar of the path)
//! and `PUT /containers/{id}/archive?path=` (a tar extracted into that directory), through
//! the engine's cp (`Containers::copy_out`/`copy_in`), which opens every path beneath the
//! container's root (openat2 RESOLVE_IN_ROOT) and never writes outside it.

use std::os::fd::OwnedFd;

use rcompose_engine::container::ContainerError;
use rcompose_engine::container::files::CpOptions;
use rcompose_engine::units::time::format_rfc3339;
use rustix::fs::FileType;
use serde_json::json;

use crate::Context;
use crate::error::ApiError;
use crate::http::{Body, Request, Response};

/// Go's `os.FileMode` bits, which docker's client reads in the stat header.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// A Unix `st_mode` as Go's `os.FileMode`.
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => GO_DIR,
        FileType::Symlink => GO_SYMLINK,
        FileType::Fifo => GO_PIPE,
        FileType::Socket => GO_SOCKET,
        FileType::CharacterDevice => GO_DEVICE | GO_CHARDEV,
        FileType::BlockDevice => GO_DEVICE,
        _ => 0,
    };
    for (bit, go) in [
        (0o4000, GO_SETUID),
        (0o2000, GO_SETGID),
        (0o1000, GO_STICKY),
    ] {
        if st_mode & bit != 0 {
            m |= go;
        }
    }
    m
}

/// Standard base64 with padding (the stat header), small enough not to need a crate.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn path_param(req: &Request) -> Result<String, ApiError> {
    req.param("path")
        .filter(|p| !p.is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request("path parameter is required"))
}

/// docker's 404 for a missing path, with the container named.
fn missing(e: ContainerError, path: &str, container: &str) -> ApiError {
    match e {
        ContainerError::Other(m) if m.starts_with("Could not find") => ApiError::not_found(
            format!("Could not find the file {path} in container {container}"),
        ),
        e => e.into(),
    }
}

/// The `X-Docker-Container-Path-Stat` value of `path` (not following a last symlink).
fn stat_header(ctx: &Context, id: &str, path: &str) -> Result<String, ContainerError> {
    ctx.engine().with_view(id, |view, _| {
        let o = view.open(path, false)?;
        let fd: &OwnedFd = &o.fd;
        let st = rustix::fs::fstat(fd).map_err(|e| ContainerError::Other(e.to_string()))?;
        let link = if o.kind == FileType::Symlink {
            rustix::fs::readlinkat(fd, "", Vec::new())
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let name = std::path::Path::new(path.trim_end_matches('/'))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        let v = json!({
            "name": name,
            "size": st.st_size,
            "mode": go_mode(st.st_mode),
            "mtime": format_rfc3339(st.st_mtime, st.st_mtime_nsec as u32),
            "linkTarget": link,
        });
        Ok(base64(v.to_string().as_bytes()))
    })
}

/// `HEAD` and `GET /containers/{id}/archive?path=`.
pub fn get(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let path = path_param(req)?;
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    let stat = stat_header(ctx, &c.id, &path).map_err(|e| missing(e, &path, key))?;
    if req.method == "HEAD" {
        return Ok(Response::empty(200).with_header("X-Docker-Container-Path-Stat", &stat));
    }
    // The whole tar first: an error is then a status, not a cut stream.
    let mut tar = vec![];
    eng.copy_out(&c.id, &path, None, CpOptions::default(), &mut tar)
        .map_err(|e| missing(e, &path, key))?;
    Ok(Response::new(200, Body::Bytes(tar, "application/x-tar"))
        .with_header("X-Docker-Container-Path-Stat", &stat))
}

/// `PUT /containers/{id}/archive?path=&copyUIDGID=`: `path` must be a directory.
pub fn put(ctx: &Context, req: &Request, key: &str) -> Result<Response, ApiError> {
    let path = path_param(req)?;
    let eng = ctx.engine();
    let c = eng.store.resolve(key)?;
    match eng.path_kind(&c.id, &path)? {
        None => {
            return Err(ApiError::not_found(format!(
                "Could not find the file {path} in container {key}"
            )));
        }
        Some(false) => {
            return Err(ApiError::bad_request("extraction point is not a directory"));
        }
        Some(true) => {}
    }
    let opts = CpOptions {
        follow_link: false,
        archive: req.flag("copyUIDGID"),
    };
    let mut body: &[u8] = &req.body;
    eng.copy_in(&c.id, &path, opts, &mut body)
        .map_err(|e| match e {
            ContainerError::Other(m) if m.contains("read-only") => ApiError::new(403, m),
            e => e.into(),
        })?;
    Ok(Response::empty(200))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_gos_std_encoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"{\"a\":1}"), "eyJhIjoxfQ==");
    }

    #[test]
    fn modes_as_gos_file_mode() {
        assert_eq!(go_mode(0o100644), 0o644);
        assert_eq!(go_mode(0o040755), GO_DIR | 0o755);
        assert_eq!(go_mode(0o120777), GO_SYMLINK | 0o777);
        assert_eq!(go_mode(0o041777), GO_DIR | GO_STICKY | 0o777);
        assert_eq!(go_mode(0o104755), GO_SETUID | 0o755);
    }
}
