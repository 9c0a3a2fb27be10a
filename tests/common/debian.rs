//! The Debian base image (`debian:bookworm-slim`) for tests that build from Debian's
//! packages: made once with `image bootstrap` and kept as an archive in the test cache
//! (`RCOMPOSE_TEST_CACHE`, default /var/cache/rcompose-tests) between runs, as
//! tests/examples.rs does. Such tests skip, saying why, when Debian's package archive
//! cannot be reached from here.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

pub fn cache_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("RCOMPOSE_TEST_CACHE").unwrap_or_else(|_| "/var/cache/rcompose-tests".into()),
    )
}

/// The first archive URI of the host's apt sources (the archive images made here use too).
fn host_archive() -> Option<String> {
    let text = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .or_else(|_| std::fs::read_to_string("/etc/apt/sources.list"))
        .ok()?;
    text.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("URIs:")
            .or_else(|| l.strip_prefix("deb "))
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })
}

/// Ok when a TCP connection to the host's Debian archive opens within a few seconds; else
/// why not.
pub fn archive_reachable() -> Result<(), String> {
    let uri = host_archive().ok_or("the host has no apt sources to take the archive from")?;
    let rest = uri
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or(format!("{uri}: not a URL"))?;
    let host = rest.split('/').next().unwrap_or_default();
    let port = if uri.starts_with("https") { 443 } else { 80 };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    for a in &addrs {
        if TcpStream::connect_timeout(a, Duration::from_secs(5)).is_ok() {
            return Ok(());
        }
    }
    Err(format!("no connection to {host}:{port}"))
}

/// Loads (or makes and caches) `debian:bookworm-slim` with `run` (an `rcompose` in the
/// test's roots). None, with the reason printed, when the archive is unreachable.
pub fn base(run: &dyn Fn(&[&str]) -> Output) -> Option<()> {
    if let Err(why) = archive_reachable() {
        eprintln!("skipped: Debian's package archive is not reachable here: {why}");
        return None;
    }
    let archive = cache_dir().join("debian-bookworm-slim.tar");
    if archive.exists()
        && run(&["image", "load", "-i", archive.to_str()?])
            .status
            .success()
    {
        return Some(());
    }
    let made = run(&["image", "bootstrap", "-q", "debian:bookworm-slim"]);
    if !made.status.success() {
        let err = super::stderr(&made);
        assert!(
            err.contains("debootstrap of") || err.contains("not installed"),
            "image bootstrap failed for another reason than the network: {err}"
        );
        eprintln!("skipped: Debian's package archive is not reachable here: {err}");
        return None;
    }
    std::fs::create_dir_all(cache_dir()).ok()?;
    // Several tests may make the base at once: each writes its own file, then renames it.
    let tmp = archive.with_extension(super::unique("tmp"));
    if run(&["image", "save", "-o", tmp.to_str()?, "debian:bookworm-slim"])
        .status
        .success()
    {
        let _ = std::fs::rename(&tmp, &archive);
    }
    Some(())
}

/// [`base`] for a compose project's roots.
pub fn debian_base(p: &super::compose::Project) -> Option<()> {
    base(&|a| p.run(a))
}
