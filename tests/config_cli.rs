//! End-to-end tests of `rcompose config`: the real binary, files in a temporary directory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{stderr, stdout};
use tempfile::TempDir;

/// The binary with a clean compose environment and its own state roots.
fn rcompose(dir: &Path) -> Command {
    let mut cmd = Command::new(common::BIN);
    cmd.current_dir(dir)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("COMPOSE_PATH_SEPARATOR")
        .env("RCOMPOSE_ROOT", dir.join(".state/root"))
        .env("RCOMPOSE_RUN_ROOT", dir.join(".state/run"));
    cmd
}

fn project(files: &[(&str, &str)]) -> TempDir {
    let tmp = tempfile::Builder::new()
        .prefix("cfgtest")
        .tempdir()
        .unwrap();
    for (name, text) in files {
        let path = tmp.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    tmp
}

/// Runs `cmd` and asserts its exit code.
fn expect_code(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("run rcompose");
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    out
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(expect_code(cmd, 0).stdout).unwrap()
}

const WEB: &str = "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n";

#[test]
fn file_flag_renders_canonical_form() {
    let tmp = project(&[("stack.yml", WEB)]);
    let out = stdout_of(rcompose(tmp.path()).args(["-f", "stack.yml", "-p", "demo", "config"]));
    assert!(out.starts_with("name: demo\nservices:\n  web:\n"), "{out}");
    assert!(out.contains("      - mode: ingress\n        target: 80\n        published: \"8080\"\n        protocol: tcp\n"), "{out}");
    assert!(
        out.contains("networks:\n  default:\n    name: demo_default\n"),
        "{out}"
    );
}

#[test]
fn stdin_file() {
    let tmp = project(&[]);
    let mut child = rcompose(tmp.path())
        .args(["-f", "-", "-p", "fromstdin", "config", "--services"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), WEB.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "web\n");
}

#[test]
fn compose_file_variable_and_separator() {
    let tmp = project(&[
        ("a.yml", WEB),
        ("b.yml", "services:\n  db:\n    image: postgres\n"),
    ]);
    let out = stdout_of(
        rcompose(tmp.path())
            .env("COMPOSE_FILE", "a.yml,b.yml")
            .env("COMPOSE_PATH_SEPARATOR", ",")
            .args(["config", "--services"]),
    );
    assert_eq!(out, "db\nweb\n");
}

#[test]
fn upward_discovery_and_override_file() {
    let tmp = project(&[
        ("compose.yaml", WEB),
        (
            "compose.override.yaml",
            "services:\n  web:\n    environment:\n      FROM_OVERRIDE: \"1\"\n",
        ),
        ("sub/dir/.keep", ""),
    ]);
    let out = stdout_of(rcompose(&tmp.path().join("sub/dir")).args(["config"]));
    assert!(out.contains("FROM_OVERRIDE: \"1\""), "{out}");
    let dir_name = tmp
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    assert!(out.starts_with(&format!("name: {dir_name}\n")), "{out}");
}

#[test]
fn dotenv_and_env_file_flag() {
    let tmp = project(&[
        ("compose.yaml", "services:\n  app:\n    image: app:${TAG}\n"),
        (".env", "TAG=dotenv\n"),
        ("other.env", "TAG=other\n"),
    ]);
    let out = stdout_of(rcompose(tmp.path()).args(["config", "--images"]));
    assert_eq!(out, "app:dotenv\n");
    let out =
        stdout_of(rcompose(tmp.path()).args(["--env-file", "other.env", "config", "--images"]));
    assert_eq!(out, "app:other\n");
    let out = stdout_of(
        rcompose(tmp.path())
            .env("TAG", "process")
            .args(["config", "--images"]),
    );
    assert_eq!(
        out, "app:process\n",
        "the process environment wins over .env"
    );
}

#[test]
fn project_name_precedence() {
    let tmp = project(&[(
        "compose.yaml",
        "name: fromfile\nservices:\n  a:\n    image: busybox\n",
    )]);
    let first_line = |cmd: &mut Command| stdout_of(cmd).lines().next().unwrap().to_string();
    assert_eq!(
        first_line(rcompose(tmp.path()).args(["config"])),
        "name: fromfile"
    );
    assert_eq!(
        first_line(
            rcompose(tmp.path())
                .env("COMPOSE_PROJECT_NAME", "fromenv")
                .args(["config"])
        ),
        "name: fromenv"
    );
    assert_eq!(
        first_line(
            rcompose(tmp.path())
                .env("COMPOSE_PROJECT_NAME", "fromenv")
                .args(["-p", "fromflag", "config"])
        ),
        "name: fromflag"
    );
    let tmp2 = project(&[(
        "Upper.Case/compose.yaml",
        "services:\n  a:\n    image: busybox\n",
    )]);
    assert_eq!(
        first_line(rcompose(&tmp2.path().join("Upper.Case")).args(["config"])),
        "name: uppercase"
    );
}

#[test]
fn invalid_project_name_fails() {
    let tmp = project(&[("compose.yaml", WEB)]);
    let out = expect_code(rcompose(tmp.path()).args(["-p", "Bad Name", "config"]), 1);
    assert!(stderr(&out).contains("invalid project name \"Bad Name\""));
}

#[test]
fn profiles_flag_and_variable() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n  debug:\n    image: busybox\n    profiles: [debug]\n  tools:\n    image: busybox\n    profiles: [tools]\n",
    )]);
    assert_eq!(
        stdout_of(rcompose(tmp.path()).args(["config", "--services"])),
        "web\n"
    );
    assert_eq!(
        stdout_of(rcompose(tmp.path()).args(["--profile", "debug", "config", "--services"])),
        "debug\nweb\n"
    );
    assert_eq!(
        stdout_of(
            rcompose(tmp.path())
                .env("COMPOSE_PROFILES", "debug,tools")
                .args(["config", "--services"])
        ),
        "debug\ntools\nweb\n"
    );
    assert_eq!(
        stdout_of(rcompose(tmp.path()).args(["config", "--profiles"])),
        "debug\ntools\n"
    );
    // A service named on the command line enables itself.
    let out = stdout_of(rcompose(tmp.path()).args(["config", "tools"]));
    assert!(out.contains("  tools:\n"), "{out}");
    assert!(!out.contains("  web:\n"), "{out}");
}

#[test]
fn listing_flags() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  web:\n    build: .\n    volumes: [data:/data]\n    networks: [front]\nvolumes:\n  data:\nnetworks:\n  front:\n",
    )]);
    assert_eq!(
        stdout_of(rcompose(tmp.path()).args(["-p", "p1", "config", "--volumes"])),
        "data\n"
    );
    assert_eq!(
        stdout_of(rcompose(tmp.path()).args(["-p", "p1", "config", "--networks"])),
        "front\n"
    );
    assert_eq!(
        stdout_of(rcompose(tmp.path()).args(["-p", "p1", "config", "--images"])),
        "p1-web\n"
    );
}

#[test]
fn hash_is_stable_and_changes_with_config() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n  b:\n    image: nginx\n",
    )]);
    let out = stdout_of(rcompose(tmp.path()).args(["config", "--hash", "*"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("a ") && lines[0].len() == 2 + 64,
        "{out}"
    );
    let again = stdout_of(rcompose(tmp.path()).args(["config", "--hash", "a"]));
    assert_eq!(again.trim(), lines[0]);
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox:1\n  b:\n    image: nginx\n",
    )
    .unwrap();
    let changed = stdout_of(rcompose(tmp.path()).args(["config", "--hash", "a,b"]));
    let changed: Vec<&str> = changed.lines().collect();
    assert_ne!(changed[0], lines[0]);
    assert_eq!(changed[1], lines[1]);
    expect_code(rcompose(tmp.path()).args(["config", "--hash", "zzz"]), 1);

    // The hash is the one `up` uses, env_file included (config's YAML drops env_file).
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n    env_file: a.env\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("a.env"), "X=1\n").unwrap();
    let cli = stdout_of(rcompose(tmp.path()).args(["config", "--hash", "a"]));
    let opts = rcompose_compose::load::LoadOptions {
        working_dir: tmp.path().to_path_buf(),
        ..Default::default()
    };
    let loaded = rcompose_compose::load::load(&opts).unwrap();
    let want = rcompose_compose::hash::service_hash(&loaded.project.services["a"]);
    assert_eq!(cli, format!("a {want}\n"));
}

#[test]
fn environment_and_variables() {
    let tmp = project(&[
        (
            "compose.yaml",
            "services:\n  a:\n    image: app:${TAG:-latest}\n    environment:\n      P: ${PASS:?need a password}\n",
        ),
        (".env", "PASS=secret\n"),
    ]);
    let env = stdout_of(
        rcompose(tmp.path())
            .env("RCOMPOSE_E2E_MARK", "1")
            .args(["config", "--environment"]),
    );
    assert!(env.lines().any(|l| l == "PASS=secret"), "{env}");
    assert!(env.lines().any(|l| l == "RCOMPOSE_E2E_MARK=1"), "{env}");
    let vars = stdout_of(rcompose(tmp.path()).args(["config", "--variables"]));
    let rows: Vec<Vec<&str>> = vars
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        vec!["NAME", "REQUIRED", "DEFAULT", "VALUE", "ALTERNATE", "VALUE"]
    );
    assert_eq!(rows[1], vec!["PASS", "true"]);
    assert_eq!(rows[2], vec!["TAG", "false", "latest"]);
}

#[test]
fn quiet_output_file_json_and_no_interpolate() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  a:\n    image: app:${TAG:-latest}\n",
    )]);
    assert_eq!(stdout_of(rcompose(tmp.path()).args(["config", "-q"])), "");
    let target = tmp.path().join("out.yaml");
    assert_eq!(
        stdout_of(rcompose(tmp.path()).args(["config", "-o"]).arg(&target)),
        ""
    );
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("image: app:latest")
    );
    let json = stdout_of(rcompose(tmp.path()).args(["-p", "j", "config", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["name"], "j");
    assert_eq!(v["services"]["a"]["image"], "app:latest");
    assert_eq!(v["services"]["a"]["command"], serde_json::Value::Null);
    let raw = stdout_of(rcompose(tmp.path()).args(["config", "--no-interpolate"]));
    assert!(raw.contains("image: app:${TAG:-latest}"), "{raw}");
}

#[test]
fn warnings_go_to_stderr() {
    let tmp = project(&[(
        "compose.yaml",
        "version: \"3\"\nservices:\n  a:\n    image: app:${NOPE}\n",
    )]);
    let out = expect_code(rcompose(tmp.path()).args(["config", "--images"]), 0);
    assert_eq!(stdout(&out), "app:\n");
    let err = stderr(&out);
    assert!(
        err.contains("WARN[0000] The \"NOPE\" variable is not set. Defaulting to a blank string."),
        "{err}"
    );
    assert!(err.contains("`version` is obsolete"), "{err}");
}

#[test]
fn errors_exit_nonzero_with_one_clear_message() {
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  web:\n    imagee: nginx\n",
            "services.web: unknown key \"imagee\" (did you mean \"image\"?)",
        ),
        (
            "services:\n  web:\n    image: nginx\n   bad: x\n",
            "compose.yaml:4:",
        ),
        (
            "services:\n  web:\n    image: ${IMG:?set IMG}\n",
            "required variable IMG is missing a value: set IMG",
        ),
        (
            "services:\n  web:\n    image: nginx\n    ports: \"80\"\n",
            "services.web.ports must be a list",
        ),
        (
            "services:\n  web:\n    image: nginx\n    depends_on: [db]\n",
            "depends on undefined service \"db\"",
        ),
        (
            "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
            "dependency cycle detected: a -> b -> a",
        ),
        (
            "services:\n  web:\n    extends:\n      file: base.yml\n      service: x\n",
            "base.yml not found",
        ),
    ];
    for (text, want) in cases {
        let tmp = project(&[("compose.yaml", text)]);
        let out = expect_code(rcompose(tmp.path()).args(["config"]), 1);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(want), "expected {want:?} in {stderr:?}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let empty = project(&[]);
    let out = expect_code(rcompose(empty.path()).args(["config"]), 1);
    assert!(stderr(&out).contains("no configuration file provided"));
}

#[test]
fn literal_dollars_are_escaped_in_output() {
    let tmp = project(&[
        (
            "compose.yaml",
            "services:\n  a:\n    image: busybox\n    command: echo $$HOME ${PRICE}\n",
        ),
        (".env", "PRICE='5$'\n"),
    ]);
    let out = stdout_of(rcompose(tmp.path()).args(["config"]));
    assert!(out.contains("      - $$HOME\n      - 5$$\n"), "{out}");
    // The output loads again to the same model.
    std::fs::write(tmp.path().join("again.yaml"), &out).unwrap();
    let again = stdout_of(rcompose(tmp.path()).args(["-f", "again.yaml", "config"]));
    assert_eq!(again, out);
}

/// stdout and stderr of a run expected to fail with exit code 1.
fn failure_of(cmd: &mut Command) -> String {
    let out = expect_code(cmd, 1);
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn path_resolution_can_be_turned_off_and_env_file_is_dropped() {
    let tmp = project(&[
        (
            "compose.yaml",
            "services:\n  web:\n    build: ./web\n    env_file: ./web.env\n    volumes:\n      - ./static:/srv:ro\n",
        ),
        ("web.env", "WORKERS=4\n"),
    ]);
    let dir = tmp.path().display().to_string();
    let resolved = stdout_of(rcompose(tmp.path()).args(["config"]));
    assert!(
        resolved.contains(&format!("context: {dir}/web\n")),
        "{resolved}"
    );
    assert!(
        resolved.contains(&format!("source: {dir}/static\n")),
        "{resolved}"
    );
    // Like compose: the env file's contents are in `environment`, the file itself is gone.
    assert!(resolved.contains("      WORKERS: \"4\"\n"), "{resolved}");
    assert!(!resolved.contains("env_file"), "{resolved}");

    let written = stdout_of(rcompose(tmp.path()).args(["config", "--no-path-resolution"]));
    assert!(written.contains("context: ./web\n"), "{written}");
    assert!(written.contains("source: ./static\n"), "{written}");
    assert!(written.contains("      WORKERS: \"4\"\n"), "{written}");
    assert!(!written.contains(&dir), "{written}");
}

#[test]
fn no_normalize_leaves_out_the_implied_model() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  app:\n    image: busybox\n    links: [db]\n  db:\n    image: busybox\nvolumes:\n  data: {}\n",
    )]);
    let normal = stdout_of(rcompose(tmp.path()).args(["-p", "nn", "config"]));
    assert!(
        normal.contains("networks:\n  default:\n    name: nn_default\n"),
        "{normal}"
    );
    assert!(normal.contains("    depends_on:\n      db:\n"), "{normal}");
    assert!(normal.contains("    name: nn_data\n"), "{normal}");
    let raw = stdout_of(rcompose(tmp.path()).args(["-p", "nn", "config", "--no-normalize"]));
    assert!(!raw.contains("default"), "{raw}");
    assert!(!raw.contains("depends_on"), "{raw}");
    assert!(raw.contains("volumes:\n  data: {}\n"), "{raw}");
}

#[test]
fn no_consistency_accepts_dangling_references() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    depends_on: [api]\n    networks: [front]\n    volumes: [\"site:/srv\"]\n",
    )]);
    let err = failure_of(rcompose(tmp.path()).args(["config"]));
    assert!(
        err.contains("service \"web\" depends on undefined service \"api\""),
        "{err}"
    );
    let out = stdout_of(rcompose(tmp.path()).args(["config", "--no-consistency"]));
    assert!(
        out.contains("      api:\n        condition: service_started\n"),
        "{out}"
    );
    assert!(out.contains("      front: null\n"), "{out}");
    assert!(out.contains("        source: site\n"), "{out}");
    // A service named on the command line keeps working without a dependency graph.
    let services =
        stdout_of(rcompose(tmp.path()).args(["config", "--no-consistency", "--services", "web"]));
    assert_eq!(services, "web\n");
    // Cycles are still found.
    let cycle = project(&[(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    depends_on: [b, ghost]\n  b:\n    image: busybox\n    depends_on: [a]\n",
    )]);
    let err = failure_of(rcompose(cycle.path()).args(["config", "--no-consistency"]));
    assert!(
        err.contains("dependency cycle detected: a -> b -> a"),
        "{err}"
    );
}

#[test]
fn duplicate_container_names_are_refused() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  a:\n    image: busybox\n    container_name: box\n  b:\n    image: busybox\n    container_name: box\n",
    )]);
    let err = failure_of(rcompose(tmp.path()).args(["config"]));
    assert!(
        err.contains("services.b: container name \"box\" is already in use by service a"),
        "{err}"
    );
    stdout_of(rcompose(tmp.path()).args(["config", "--no-consistency", "-q"]));
}

/// Imports a one-file image as `tag` into the store at `root`; returns its id.
fn import_image(dir: &Path, root: &Path, tag: &str) -> String {
    let fs = dir.join(format!("rootfs-{}", tag.replace([':', '/'], "-")));
    std::fs::create_dir_all(&fs).unwrap();
    std::fs::write(fs.join("hello.txt"), tag).unwrap();
    let fs = fs.to_string_lossy();
    common::rc_ok(root, &["image", "import", &fs, tag])
        .trim()
        .to_string()
}

#[test]
fn image_digests_are_pinned_from_the_local_store() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  web:\n    image: example/web:1.0\n  built:\n    build: .\n  pinned:\n    image: busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111\n",
    )]);
    let root = tmp.path().join(".state/root");
    // Not local at all: the error names the service, and no store is created by `config`.
    let err = failure_of(rcompose(tmp.path()).args(["config", "--resolve-image-digests"]));
    assert!(
        err.contains("service \"web\": image example/web:1.0 is not in the local image store"),
        "{err}"
    );
    assert!(!root.exists(), "config created {}", root.display());

    // Local but imported: no repository digest to pin to.
    let id = import_image(tmp.path(), &root, "example/web:1.0");
    let err = failure_of(rcompose(tmp.path()).args(["config", "--resolve-image-digests"]));
    assert!(err.contains("service \"web\": image example/web:1.0 is local but has no repository digest for docker.io/example/web"), "{err}");

    // Recorded as a pull or push records it.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let store = rcompose_engine::store::Store::open(&root).unwrap();
    store
        .lock()
        .unwrap()
        .add_repo_digest(&id, &format!("docker.io/example/web@{digest}"))
        .unwrap();
    let out = stdout_of(rcompose(tmp.path()).args(["config", "--resolve-image-digests"]));
    assert!(
        out.contains(&format!("    image: docker.io/example/web:1.0@{digest}\n")),
        "{out}"
    );
    assert!(
        out.contains("    image: docker.io/library/busybox@sha256:1111"),
        "{out}"
    );
    assert!(out.contains("  built:\n    build:\n"), "{out}");

    let lock = stdout_of(rcompose(tmp.path()).args(["config", "--lock-image-digests"]));
    assert_eq!(
        lock,
        format!(
            "services:\n  built: {{}}\n  pinned:\n    image: docker.io/library/busybox@sha256:{}\n  web:\n    image: docker.io/example/web:1.0@{digest}\n",
            "1".repeat(64)
        )
    );
}

#[test]
fn remote_includes_and_extends_are_refused_by_line() {
    let tmp = project(&[
        (
            "compose.yaml",
            "include:\n  - oci://registry.example/stacks/db:1\nservices:\n  web:\n    image: nginx\n",
        ),
        (
            "extends.yaml",
            "services:\n  web:\n    image: nginx\n  app:\n    extends:\n      file: https://example.com/base.yaml\n      service: app\n",
        ),
    ]);
    let dir = tmp.path().display().to_string();
    let err = failure_of(rcompose(tmp.path()).args(["config"]));
    assert!(
        err.contains(&format!("{dir}/compose.yaml:2: include: \"oci://registry.example/stacks/db:1\" is a remote resource")),
        "{err}"
    );
    assert!(err.contains("no network access"), "{err}");
    let err = failure_of(rcompose(tmp.path()).args(["-f", "extends.yaml", "config"]));
    assert!(
        err.contains(&format!("{dir}/extends.yaml:6: services.app: extends: file \"https://example.com/base.yaml\" is a remote resource")),
        "{err}"
    );
}

#[test]
fn extension_keys_in_long_forms_are_rendered() {
    let tmp = project(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    ports:\n      - target: 80\n        published: \"8080\"\n        x-proxy: edge\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      x-note: cheap\n",
    )]);
    let out = stdout_of(rcompose(tmp.path()).args(["config"]));
    assert!(
        out.contains("        protocol: tcp\n        x-proxy: edge\n"),
        "{out}"
    );
    assert!(out.contains("      x-note: cheap\n"), "{out}");
    let json = stdout_of(rcompose(tmp.path()).args(["config", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["services"]["web"]["ports"][0]["x-proxy"], "edge");
    assert_eq!(v["services"]["web"]["healthcheck"]["x-note"], "cheap");
}

#[test]
fn no_env_resolution_keeps_env_files_unread() {
    let tmp = project(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: busybox\n    env_file: ./web.env\n    environment: [FROM_HOST]\n",
        ),
        ("web.env", "WORKERS=4\n"),
    ]);
    let out = stdout_of(
        rcompose(tmp.path())
            .env("FROM_HOST", "yes")
            .args(["config", "--no-env-resolution"]),
    );
    assert!(out.contains("env_file:"), "{out}");
    assert!(!out.contains("WORKERS"), "{out}");
    assert!(!out.contains("FROM_HOST: \"yes\""), "{out}");
    let resolved = stdout_of(
        rcompose(tmp.path())
            .env("FROM_HOST", "yes")
            .args(["config"]),
    );
    assert!(resolved.contains("WORKERS: \"4\""), "{resolved}");
    assert!(resolved.contains("FROM_HOST: \"yes\""), "{resolved}");
}
