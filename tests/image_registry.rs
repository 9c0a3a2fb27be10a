//! End-to-end against Debian's docker-registry on loopback: push/pull round trip, tampered
//! and truncated blobs, basic auth with login/logout, token auth, catalog search.

mod common;

use common::bin;
use common::busybox;
use common::registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use registry::Auth;

/// Each test has its own store root and docker config dir.
struct Env {
    root: tempfile::TempDir,
    docker_config: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            root: tempfile::tempdir().unwrap(),
            docker_config: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env(
                "RCOMPOSE_REGISTRY_CONFIG",
                self.root.path().join("no-such-config.json"),
            )
            .output()
            .expect("run rcompose")
    }

    fn ok(&self, args: &[&str]) -> String {
        common::assert_ok(args, &self.run(args))
    }

    fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "rcompose {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["image", "inspect", name])).unwrap();
        v[0].clone()
    }

    fn count(&self, sub: &str) -> usize {
        std::fs::read_dir(self.root.path().join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn tree(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -printf '%p %y %m %U %G %l\\n' | sort; find . -type f -exec sha256sum {} + | sort")
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lower(v: &serde_json::Value) -> PathBuf {
    PathBuf::from(v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap())
}

#[test]
fn push_rm_pull_gives_same_image_and_rootfs() {
    let reg = registry::start(Auth::None);
    let a = Env::new();
    let name = format!("{}/busybox:1", reg.host());
    let id = busybox::busybox_image(&bin(), a.root.path(), &name);
    let before = tree(&lower(&a.inspect(&name)));

    let out = a.ok(&["image", "push", &name]);
    assert!(out.contains("Pushed"), "{out}");
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let out = a.ok(&["image", "push", &name]);
    assert!(
        out.contains("Layer already exists"),
        "second push skips blobs: {out}"
    );

    a.ok(&["image", "rm", &name]);
    assert_eq!(a.count("layers"), 0);
    let out = a.ok(&["image", "pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.trim_end().ends_with(&name), "{out}");
    let img = a.inspect(&name);
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(tree(&lower(&img)), before, "run-ready rootfs identical");
    assert_eq!(img["RepoDigests"].as_array().unwrap().len(), 1);

    // A fresh root, pulled quietly; then again: up to date.
    let b = Env::new();
    let out = b.ok(&["image", "pull", "-q", &name]);
    assert_eq!(out.trim(), name);
    assert_eq!(b.inspect(&name)["Id"], id.as_str());
    let out = b.ok(&["image", "pull", &name]);
    assert!(out.contains("Image is up to date"), "{out}");

    // Unknown tag: the registry's error, translated.
    let err = b.fail(&["image", "pull", &format!("{}/busybox:nope", reg.host())]);
    assert!(
        err.contains("not found") && err.contains("manifest unknown"),
        "{err}"
    );

    // All tags of a repository.
    let second = format!("{}/busybox:2", reg.host());
    a.ok(&["image", "tag", &name, &second]);
    a.ok(&["image", "push", "-q", &second]);
    let c = Env::new();
    let out = c.ok(&["image", "pull", "-a", &format!("{}/busybox", reg.host())]);
    assert!(
        out.trim_end().ends_with(&format!("{}/busybox", reg.host())),
        "{out}"
    );
    let ls = c.ok(&["image", "ls", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = ls.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["1", "2"]);

    // Catalog search.
    let out = b.ok(&["image", "search", &format!("{}/busy", reg.host())]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{}/busybox", reg.host()))),
        "{out}"
    );
}

#[test]
fn tampered_and_truncated_blobs_are_rejected_and_leave_no_trace() {
    let reg = registry::start(Auth::None);
    let a = Env::new();
    let name = format!("{}/busybox:t", reg.host());
    busybox::busybox_image(&bin(), a.root.path(), &name);
    a.ok(&["image", "push", &name]);
    let manifest: serde_json::Value = {
        let img = a.inspect(&name);
        let digest = img["Descriptor"]["digest"].as_str().unwrap().to_string();
        let bytes = std::fs::read(reg.blob_file(&digest)).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let file = reg.blob_file(layer);
    let original = std::fs::read(&file).unwrap();

    let mut tampered = original.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x55;
    std::fs::write(&file, &tampered).unwrap();
    let b = Env::new();
    let err = b.fail(&["image", "pull", &name]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(b.count("layers"), 0);
    assert!(
        b.fail(&["image", "inspect", &name])
            .contains("No such image")
    );
    assert!(
        !b.root
            .path()
            .join("blobs/sha256")
            .join(&layer[7..])
            .exists()
    );
    assert_eq!(b.count("tmp"), 0);

    std::fs::write(&file, &original[..original.len() / 2]).unwrap();
    let err = b.fail(&["image", "pull", &name]);
    assert!(
        err.contains("truncated") || err.contains("digest mismatch"),
        "{err}"
    );
    assert_eq!(b.count("layers"), 0);
    assert!(
        !b.root
            .path()
            .join("blobs/sha256")
            .join(&layer[7..])
            .exists()
    );

    // Repaired: the next pull completes (config and manifest blobs from before are reused).
    std::fs::write(&file, &original).unwrap();
    b.ok(&["image", "pull", &name]);
    assert_eq!(b.count("layers"), 1);
}

#[test]
fn basic_auth_login_push_pull_logout() {
    let reg = registry::start(Auth::Basic {
        user: "alice".into(),
        pass: "s3cret".into(),
    });
    let a = Env::new();
    let name = format!("{}/busybox:auth", reg.host());
    busybox::busybox_image(&bin(), a.root.path(), &name);

    let err = a.fail(&["image", "push", &name]);
    assert!(
        err.contains("unauthorized") && err.contains(&reg.host()),
        "{err}"
    );
    let err = a.fail(&["login", &reg.host(), "-u", "alice", "-p", "wrong"]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(!a.docker_config.path().join("config.json").exists());

    let out = a.ok(&["login", &reg.host(), "-u", "alice", "-p", "s3cret"]);
    assert_eq!(out.trim(), "Login Succeeded");
    let cfg = std::fs::read_to_string(a.docker_config.path().join("config.json")).unwrap();
    assert!(cfg.contains(&reg.host()) && cfg.contains("auth"), "{cfg}");
    a.ok(&["image", "push", &name]);
    a.ok(&["image", "rm", &name]);
    a.ok(&["image", "pull", &name]);

    let out = a.ok(&["logout", &reg.host()]);
    assert_eq!(
        out.trim(),
        format!("Removing login credentials for {}", reg.host())
    );
    a.ok(&["image", "rm", &name]);
    let err = a.fail(&["image", "pull", &name]);
    assert!(err.contains("unauthorized"), "{err}");

    // A credential helper named in credHelpers supplies the login instead.
    let helpers = tempfile::tempdir().unwrap();
    let helper = helpers.path().join("docker-credential-rctest");
    std::fs::write(
        &helper,
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho '{\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        a.docker_config.path().join("config.json"),
        format!(r#"{{"credHelpers": {{"{}": "rctest"}}}}"#, reg.host()),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(bin())
        .arg("--root")
        .arg(a.root.path())
        .args(["image", "pull", &name])
        .env("DOCKER_CONFIG", a.docker_config.path())
        .env(
            "RCOMPOSE_REGISTRY_CONFIG",
            a.root.path().join("no-such-config.json"),
        )
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn token_auth_push_and_pull() {
    let reg = registry::start(Auth::Token {
        user: "bob".into(),
        pass: "tok-pass".into(),
    });
    let a = Env::new();
    let name = format!("{}/busybox:tok", reg.host());
    let id = busybox::busybox_image(&bin(), a.root.path(), &name);
    let err = a.fail(&["image", "push", &name]);
    assert!(err.contains("unauthorized"), "{err}");
    a.ok(&["login", &reg.host(), "-u", "bob", "-p", "tok-pass"]);
    a.ok(&["image", "push", &name]);
    a.ok(&["image", "rm", &name]);
    a.ok(&["image", "pull", &name]);
    assert_eq!(a.inspect(&name)["Id"], id.as_str());
}

#[test]
fn unreachable_registry_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Env::new();
    let err = e.fail(&["image", "pull", &format!("127.0.0.1:{port}/x:1")]);
    assert!(err.contains("cannot reach registry"), "{err}");
    let err = e.fail(&["image", "search", &format!("127.0.0.1:{port}/x")]);
    assert!(err.contains("cannot reach registry"), "{err}");
    assert_eq!(e.count("layers"), 0);
}

#[test]
fn docker_hub_names_are_pulled_through_a_configured_mirror() {
    let reg = registry::start(Auth::None);
    let a = Env::new();
    let mirrored = format!("{}/library/busybox:mirror", reg.host());
    let id = busybox::busybox_image(&bin(), a.root.path(), &mirrored);
    a.ok(&["image", "push", &mirrored]);

    let b = Env::new();
    let cfg = b.root.path().join("no-such-config.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"registry-mirrors": ["http://{}"]}}"#, reg.host()),
    )
    .unwrap();
    b.ok(&["image", "pull", "busybox:mirror"]);
    let img = b.inspect("busybox:mirror");
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RepoTags"], serde_json::json!(["busybox:mirror"]));

    std::fs::write(&cfg, "{not json").unwrap();
    let err = b.fail(&["image", "pull", "busybox:mirror"]);
    assert!(err.contains("no-such-config.json"), "{err}");
}

#[test]
fn manifest_list_platform_selection() {
    let reg = registry::start(Auth::None);
    let a = Env::new();
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let native = format!("{}/app:native", reg.host());
    let foreign = format!("{}/app:foreign", reg.host());
    let native_id = busybox::busybox_image(&bin(), a.root.path(), &native);
    let fs = tempfile::tempdir().unwrap();
    std::fs::write(fs.path().join("marker"), "riscv").unwrap();
    let foreign_id = a.ok(&["image", "import", fs.path().to_str().unwrap(), &foreign]);
    a.ok(&["image", "push", "-q", &native]);
    a.ok(&["image", "push", "-q", &foreign]);
    let entry = |name: &str, arch: &str| {
        let digest = a.inspect(name)["Descriptor"]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let size = std::fs::metadata(reg.blob_file(&digest)).unwrap().len();
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"}
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&foreign, "riscv64"), entry(&native, host_arch)],
    });
    let file = fs.path().join("index.json");
    std::fs::write(&file, index.to_string()).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
        ])
        .arg("Content-Type: application/vnd.oci.image.index.v1+json")
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!("http://{}/v2/app/manifests/multi", reg.host()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{out:?}");

    let multi = format!("{}/app:multi", reg.host());
    let b = Env::new();
    b.ok(&["image", "pull", &multi]);
    assert_eq!(b.inspect(&multi)["Id"], native_id.as_str());
    let c = Env::new();
    c.ok(&["image", "pull", "--platform", "linux/riscv64", &multi]);
    assert_eq!(c.inspect(&multi)["Id"], foreign_id.trim());
    let err = c.fail(&["image", "pull", "--platform", "linux/mips64le", &multi]);
    assert!(
        err.contains("no matching manifest for linux/mips64le"),
        "{err}"
    );
}

#[test]
fn concurrent_pulls_into_one_store() {
    let reg = registry::start(Auth::None);
    let a = Env::new();
    let one = format!("{}/app:one", reg.host());
    let two = format!("{}/other:two", reg.host());
    let id1 = busybox::busybox_image(&bin(), a.root.path(), &one);
    let fs = tempfile::tempdir().unwrap();
    std::fs::write(fs.path().join("f"), "two").unwrap();
    let id2 = a.ok(&["image", "import", fs.path().to_str().unwrap(), &two]);
    a.ok(&["image", "push", "-q", &one]);
    a.ok(&["image", "push", "-q", &two]);

    let b = Env::new();
    let spawn = |name: &str| {
        Command::new(bin())
            .arg("--root")
            .arg(b.root.path())
            .args(["image", "pull", "-q", name])
            .env("DOCKER_CONFIG", b.docker_config.path())
            .env("RCOMPOSE_REGISTRY_CONFIG", b.root.path().join("none.json"))
            .spawn()
            .unwrap()
    };
    let mut children: Vec<_> = [&one, &two, &one].iter().map(|n| spawn(n)).collect();
    for c in &mut children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(b.inspect(&one)["Id"], id1.as_str());
    assert_eq!(b.inspect(&two)["Id"], id2.trim());
    assert_eq!(b.count("layers"), 2);
    assert_eq!(b.count("leases"), 0);
}

/// Issue 13: invoked through a link named `docker`, `docker run` of an image that is not in the
/// store pulls it first (docker's status lines on stderr, the container's output alone on
/// stdout), and Go-style booleans (`--rm=true`) are accepted.
#[test]
fn docker_run_pulls_a_missing_image_through_a_docker_link() {
    let reg = registry::start(Auth::None);
    let a = Env::new();
    let name = format!("{}/busybox:run", reg.host());
    busybox::busybox_image(&bin(), a.root.path(), &name);
    a.ok(&["image", "push", &name]);

    let b = Env::new();
    let links = tempfile::tempdir().unwrap();
    let docker = links.path().join("docker");
    std::os::unix::fs::symlink(bin(), &docker).unwrap();
    let run_root = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(&docker)
            .args(args)
            .env("RCOMPOSE_ROOT", b.root.path())
            .env("RCOMPOSE_RUN_ROOT", run_root.path())
            .env("DOCKER_CONFIG", b.docker_config.path())
            .env(
                "RCOMPOSE_REGISTRY_CONFIG",
                b.root.path().join("no-such-config.json"),
            )
            .output()
            .unwrap()
    };
    let out = run(&["run", "--rm=true", "--network=none", &name, "echo", "hi"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert!(
        err.contains(&format!("Unable to find image '{name}' locally")),
        "{err}"
    );
    assert!(err.contains("Status: Downloaded newer image for"), "{err}");
    // Now in the store: no pull, no status lines.
    let again = run(&["run", "--rm", "--network", "none", &name, "echo", "again"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), "again\n");
    assert!(!String::from_utf8_lossy(&again.stderr).contains("Pulling"));
    let images = run(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(String::from_utf8_lossy(&images.stdout).contains(&name));
    let unknown = run(&["imgaes"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("did you mean `docker images`"));
}
