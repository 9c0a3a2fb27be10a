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
    if path.ends_with("/.") || path == "." {
        tar = dot_prefixed(&tar)
            .map_err(|e| ApiError::internal(format!("archive of {path}: {e}")))?;
    }
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

/// The archive of a directory's content (`path/.`) with every name under `./`: docker's
/// client renames the entries that start with the base of the path it asked for (`.`), and
/// the engine's archive (the tar crate) writes `n` for `./n`.
pub fn dot_prefixed(tar: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        let name = prefixed(&entry.path_bytes());
        set_name(&mut out, &mut header, &name, tar::EntryType::GNULongName)?;
        if header.entry_type() == tar::EntryType::Link
            && let Some(link) = entry.link_name_bytes()
        {
            let link = prefixed(&link);
            if link.len() <= 100 {
                let old = header.as_old_mut();
                old.linkname = [0; 100];
                old.linkname[..link.len()].copy_from_slice(&link);
            } else {
                long_name(&mut out, &link, tar::EntryType::GNULongLink)?;
            }
        }
        header.set_cksum();
        let mut data = vec![];
        std::io::Read::read_to_end(&mut entry, &mut data)?;
        out.append(&header, data.as_slice())?;
    }
    out.into_inner()
}

fn prefixed(name: &[u8]) -> Vec<u8> {
    match name {
        b"." | b"./" => b"./".to_vec(),
        n if n.starts_with(b"./") => n.to_vec(),
        n => [b"./", n].concat(),
    }
}

/// The name in the header, or in a GNU long-name entry before it when it does not fit.
fn set_name(
    out: &mut tar::Builder<Vec<u8>>,
    header: &mut tar::Header,
    name: &[u8],
    kind: tar::EntryType,
) -> std::io::Result<()> {
    if name.len() > 100 {
        long_name(out, name, kind)?;
    }
    let n = name.len().min(100);
    let old = header.as_old_mut();
    old.name = [0; 100];
    old.name[..n].copy_from_slice(&name[..n]);
    if let Some(u) = header.as_ustar_mut() {
        u.prefix = [0; 155];
    }
    Ok(())
}

fn long_name(
    out: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(kind);
    h.set_mode(0o644);
    let mut data = name.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    out.append(&h, data.as_slice())
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
    fn content_archives_name_everything_under_dot() {
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        b.append_data(&mut dir, ".", std::io::empty()).unwrap();
        let long = format!("{}/file", "d".repeat(120));
        for n in ["n", long.as_str()] {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            b.append_data(&mut h, n, &b"x\n"[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "hard", "n").unwrap();
        let out = dot_prefixed(&b.into_inner().unwrap()).unwrap();
        let mut a = tar::Archive::new(out.as_slice());
        let got: Vec<(String, Option<String>)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned());
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), link)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("./".to_string(), None),
                ("./n".to_string(), None),
                (format!("./{long}"), None),
                ("./hard".to_string(), Some("./n".to_string())),
            ]
        );
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
