//! The Debian base image (`debian:bookworm-slim`) for tests that build from Debian's packages.

use super::compose::Project;

/// The Debian base image for the examples that build from Debian's packages, made once with
/// `image bootstrap` and kept as an archive in a cache directory between runs (CI reuses it).
/// None, with the reason printed, when Debian's package archive cannot be reached.
pub fn debian_base(p: &Project) -> Option<()> {
    let cache = std::path::PathBuf::from(
        std::env::var("RCOMPOSE_TEST_CACHE").unwrap_or_else(|_| "/var/cache/rcompose-tests".into()),
    );
    let archive = cache.join("debian-bookworm-slim.tar");
    if archive.exists()
        && p.run(&["image", "load", "-i", archive.to_str()?])
            .status
            .success()
    {
        return Some(());
    }
    let made = p.run(&["image", "bootstrap", "-q", "debian:bookworm-slim"]);
    if !made.status.success() {
        let err = super::stderr(&made);
        assert!(
            err.contains("debootstrap of") || err.contains("not installed"),
            "image bootstrap failed for another reason than the network: {err}"
        );
        eprintln!("skipped: Debian's package archive is not reachable here: {err}");
        return None;
    }
    std::fs::create_dir_all(&cache).ok()?;
    // The three example tests may each make the base at once: each writes its own file.
    let tmp = archive.with_extension(super::unique("tmp"));
    if p.run(&["image", "save", "-o", tmp.to_str()?, "debian:bookworm-slim"])
        .status
        .success()
    {
        let _ = std::fs::rename(&tmp, &archive);
    }
    Some(())
}
