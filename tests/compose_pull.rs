//! End-to-end: `rcompose pull` / `push` and the pull policies of `up`, against Debian's
//! docker-registry on 127.0.0.1 (a throwaway one per test).

mod common;

use common::registry;

use std::path::Path;
use std::process::{Command, Output};

use common::compose::{IMAGE, Project};
use common::{busybox, stderr};
use registry::Auth;

/// Runs rcompose in `p` with its own (empty) docker config and no registry config file.
fn run(p: &Project, args: &[&str]) -> Output {
    let docker = p.tmp.path().join("docker-config");
    std::fs::create_dir_all(&docker).unwrap();
    p.cmd()
        .env("DOCKER_CONFIG", &docker)
        .env(
            "RCOMPOSE_REGISTRY_CONFIG",
            p.tmp.path().join("no-registry-config.json"),
        )
        .env_remove("DOCKER_DEFAULT_PLATFORM")
        .args(args)
        .output()
        .expect("running rcompose")
}

/// Runs and asserts success; returns stdout and stderr together.
fn ok(p: &Project, args: &[&str]) -> String {
    let o = run(p, args);
    assert!(
        o.status.success(),
        "rcompose {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o))
}

/// Runs and asserts failure; returns stderr.
fn fail(p: &Project, args: &[&str]) -> String {
    let o = run(p, args);
    assert!(!o.status.success(), "rcompose {args:?} should fail");
    stderr(&o)
}

/// `image inspect`'s Id, `None` when the image is not in the store.
fn image_id(p: &Project, name: &str) -> Option<String> {
    let o = run(p, &["image", "inspect", name]);
    if !o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0]["Id"].as_str().map(String::from)
}

/// Imports busybox plus `/marker` containing `text` as `tag` into `p`'s store; its id.
fn busybox_with_marker(p: &Project, tag: &str, text: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let fs = tmp.path().join("rootfs");
    busybox::build_rootfs(&fs);
    std::fs::write(fs.join("marker"), text).unwrap();
    let out = ok(
        p,
        &[
            "image",
            "import",
            fs.to_str().unwrap(),
            tag,
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ],
    );
    out.lines().next().unwrap_or_default().trim().to_string()
}

const NET: &str = r#"
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#;

fn write(p: &Project, services: &str, reg: &registry::Registry) {
    p.write(&format!("{}{NET}", services.replace("{REG}", &reg.host())));
}

#[test]
fn pull_into_a_fresh_root_then_up() {
    let reg = registry::start(Auth::None);
    let a = Project::new("pla");
    let name = format!("{}/app:1", reg.host());
    let dep = format!("{}/other:1", reg.host());
    ok(&a, &["image", "tag", IMAGE, &name]);
    ok(&a, &["image", "tag", IMAGE, &dep]);
    ok(&a, &["image", "push", "-q", &name]);
    ok(&a, &["image", "push", "-q", &dep]);
    let id = image_id(&a, &name).unwrap();

    let b = Project::new("plb");
    ok(&b, &["image", "rm", IMAGE]);
    write(
        &b,
        r#"
services:
  web:
    image: {REG}/app:1
    command: ["sleep", "300"]
    depends_on: [db]
  db:
    image: {REG}/other:1
    command: ["sleep", "300"]
  tool:
    build: .
"#,
        &reg,
    );
    assert!(image_id(&b, &name).is_none());
    let out = ok(&b, &["pull", "web"]);
    assert!(out.contains("web Pulled"), "{out}");
    assert!(out.contains("Pull complete"), "layers were fetched: {out}");
    assert!(
        image_id(&b, &dep).is_none(),
        "dependencies only with --include-deps"
    );
    let out = ok(&b, &["pull", "--include-deps", "web"]);
    assert!(out.contains("db Pulled"), "{out}");
    assert!(image_id(&b, &dep).is_some());
    let out = ok(&b, &["pull"]);
    assert!(
        out.contains("tool Skipped - No image to be pulled"),
        "{out}"
    );
    assert_eq!(image_id(&b, &name).as_deref(), Some(id.as_str()));
    // The pull time is recorded for daily/weekly/every_ policies.
    let times = std::fs::read_to_string(b.root.join("compose/pulls.json")).unwrap();
    assert!(times.contains(&format!("{}/app:1", reg.host())), "{times}");

    // An explicit `missing` policy skips a present, non-latest image; -q prints nothing.
    let out = ok(&b, &["pull", "--policy", "missing", "web"]);
    assert!(
        out.contains("web Skipped - Image is already present locally"),
        "{out}"
    );
    assert_eq!(ok(&b, &["pull", "-q", "web"]), "");
    let err = fail(&b, &["pull", "--policy", "sometimes"]);
    assert!(err.contains("invalid --policy \"sometimes\""), "{err}");
    let err = fail(&b, &["pull", "nosuchservice"]);
    assert!(err.contains("nosuchservice"), "{err}");

    ok(&b, &["up", "-d", "web"]);
    let ps = b.ps_json();
    assert_eq!(ps.len(), 2, "web and db: {ps:?}");
    assert!(ps.iter().all(|c| c["State"] == "running"), "{ps:?}");
}

#[test]
fn never_policy_and_ignored_pull_failures() {
    let reg = registry::start(Auth::None);
    let a = Project::new("pna");
    let name = format!("{}/app:1", reg.host());
    ok(&a, &["image", "tag", IMAGE, &name]);
    ok(&a, &["image", "push", "-q", &name]);

    let b = Project::new("pnb");
    write(
        &b,
        r#"
services:
  web:
    image: {REG}/app:1
    pull_policy: never
    command: ["sleep", "300"]
  bad:
    image: {REG}/nosuch:1
    command: ["sleep", "300"]
  good:
    image: {REG}/app:1
    command: ["sleep", "300"]
  built:
    build: .
    image: {REG}/nosuch:2
"#,
        &reg,
    );
    let err = fail(&b, &["up", "-d", "web"]);
    assert!(
        err.contains("service \"web\"") && err.contains("pull_policy is never"),
        "{err}"
    );
    let err = fail(&b, &["run", "--rm", "-T", "web", "true"]);
    assert!(
        err.contains("service \"web\"") && err.contains("pull_policy is never"),
        "{err}"
    );
    // An image the project builds: its failed pull falls back to the build (no Dockerfile).
    let err = fail(&b, &["up", "-d", "built"]);
    assert!(
        err.contains("building service \"built\"") && err.contains("Dockerfile"),
        "{err}"
    );
    assert!(b.ps_json().is_empty(), "nothing was created");

    // `pull`: web is skipped (never), bad fails naming the service and the image.
    let err = fail(&b, &["pull", "web", "bad"]);
    assert!(
        err.contains("service \"bad\"") && err.contains("nosuch"),
        "{err}"
    );
    assert!(err.contains("web Skipped"), "{err}");
    assert!(image_id(&b, &name).is_none());

    // Ignoring failures, the good image is pulled past the unknown one.
    let out = ok(
        &b,
        &["pull", "--ignore-pull-failures", "web", "bad", "good"],
    );
    assert!(out.contains("bad Error"), "{out}");
    assert!(out.contains("good Pulled"), "{out}");
    assert!(image_id(&b, &name).is_some());
    // Now present: `never` is satisfied.
    ok(&b, &["up", "-d", "web"]);
    // An invalid policy value is named with its service.
    write(
        &b,
        "services:\n  web:\n    image: {REG}/app:1\n    pull_policy: every_12\n",
        &reg,
    );
    let err = fail(&b, &["up", "-d", "--no-recreate"]);
    assert!(
        err.contains("service \"web\"") && err.contains("every_12"),
        "{err}"
    );
    let err = fail(&b, &["up", "-d", "--pull", "sometimes"]);
    assert!(err.contains("invalid --pull option"), "{err}");
}

#[test]
fn up_pull_always_and_refresh_policies_repull() {
    let reg = registry::start(Auth::None);
    let a = Project::new("pua");
    let name = format!("{}/app:1", reg.host());
    let v1 = busybox_with_marker(&a, &name, "one");
    ok(&a, &["image", "push", "-q", &name]);

    let b = Project::new("pub");
    let compose = |policy: &str| {
        format!(
            "services:\n  web:\n    image: {{REG}}/app:1\n    command: [\"sleep\", \"300\"]\n{policy}"
        )
    };
    write(&b, &compose(""), &reg);
    let out = ok(&b, &["up", "-d"]);
    assert!(
        out.contains("web Pulled"),
        "missing image pulled by up: {out}"
    );
    assert_eq!(image_id(&b, &name).as_deref(), Some(v1.as_str()));
    assert_eq!(b.exec_ok("web", "cat /marker"), "one");

    // New content under the same tag.
    let v2 = busybox_with_marker(&a, &name, "two");
    ok(&a, &["image", "push", "-q", &name]);
    assert_ne!(v1, v2);

    // Present and pulled just now: neither the default nor `daily` pulls.
    ok(&b, &["up", "-d"]);
    write(&b, &compose("    pull_policy: daily\n"), &reg);
    let out = ok(&b, &["up", "-d"]);
    assert!(!out.contains("Pulled"), "{out}");
    assert_eq!(image_id(&b, &name).as_deref(), Some(v1.as_str()));

    // --pull always re-pulls, and the container is recreated on the new image.
    let out = ok(&b, &["up", "-d", "--pull", "always"]);
    assert!(out.contains("web Pulled"), "{out}");
    assert_eq!(image_id(&b, &name).as_deref(), Some(v2.as_str()));
    assert_eq!(b.exec_ok("web", "cat /marker"), "two");

    // every_1s: once a second has passed since the last pull, up pulls again.
    let v3 = busybox_with_marker(&a, &name, "three");
    ok(&a, &["image", "push", "-q", &name]);
    write(&b, &compose("    pull_policy: every_1s\n"), &reg);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = ok(&b, &["up", "-d"]);
    assert!(out.contains("web Pulled"), "{out}");
    assert_eq!(image_id(&b, &name).as_deref(), Some(v3.as_str()));
    assert_eq!(b.exec_ok("web", "cat /marker"), "three");
}

#[test]
fn push_service_images_and_pull_them_back() {
    let reg = registry::start(Auth::None);
    let a = Project::new("psa");
    let name = format!("{}/app:pushed", reg.host());
    let extra = format!("{}/app:extra", reg.host());
    ok(&a, &["image", "tag", IMAGE, &name]);
    ok(&a, &["image", "tag", IMAGE, &extra]);
    let id = image_id(&a, &name).unwrap();
    write(
        &a,
        r#"
services:
  app:
    build:
      context: .
      tags: ["{REG}/app:extra"]
    image: {REG}/app:pushed
  plain:
    image: busybox:compose
  missing:
    build: .
    image: {REG}/app:absent
"#,
        &reg,
    );
    let err = fail(&a, &["push"]);
    assert!(
        err.contains("service \"missing\"") && err.contains("app:absent"),
        "{err}"
    );
    let out = ok(&a, &["push", "--ignore-push-failures"]);
    assert!(out.contains("app Pushed"), "{out}");
    assert!(out.contains("plain Skipped"), "{out}");
    assert!(out.contains("missing Error"), "{out}");
    assert_eq!(ok(&a, &["push", "-q", "app"]), "");

    let b = Project::new("psb");
    ok(&b, &["image", "pull", "-q", &name]);
    ok(&b, &["image", "pull", "-q", &extra]);
    assert_eq!(image_id(&b, &name).as_deref(), Some(id.as_str()));
    assert_eq!(image_id(&b, &extra).as_deref(), Some(id.as_str()));
}

#[test]
fn platform_selects_the_manifest_list_entry() {
    let reg = registry::start(Auth::None);
    let a = Project::new("ppa");
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let native = format!("{}/app:native", reg.host());
    let foreign = format!("{}/app:foreign", reg.host());
    ok(&a, &["image", "tag", IMAGE, &native]);
    let foreign_id = busybox_with_marker(&a, &foreign, "riscv");
    ok(&a, &["image", "push", "-q", &native]);
    ok(&a, &["image", "push", "-q", &foreign]);
    let entry = |name: &str, arch: &str| {
        let o = run(&a, &["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let digest = v[0]["Descriptor"]["digest"].as_str().unwrap().to_string();
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
        "manifests": [entry(&native, host_arch), entry(&foreign, "riscv64")],
    });
    let file = a.tmp.path().join("index.json");
    std::fs::write(&file, index.to_string()).unwrap();
    put_index(
        &file,
        &format!("http://{}/v2/app/manifests/multi", reg.host()),
    );

    let b = Project::new("ppb");
    write(
        &b,
        "services:\n  web:\n    image: {REG}/app:multi\n    platform: linux/riscv64\n",
        &reg,
    );
    let out = ok(&b, &["pull"]);
    assert!(out.contains("web Pulled"), "{out}");
    let multi = format!("{}/app:multi", reg.host());
    assert_eq!(image_id(&b, &multi).as_deref(), Some(foreign_id.as_str()));
    write(
        &b,
        "services:\n  web:\n    image: {REG}/app:multi\n    platform: linux/mips64le\n",
        &reg,
    );
    let err = fail(&b, &["pull"]);
    assert!(
        err.contains("service \"web\"") && err.contains("linux/mips64le"),
        "{err}"
    );
}

fn put_index(file: &Path, url: &str) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args([
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "{out:?}");
}
