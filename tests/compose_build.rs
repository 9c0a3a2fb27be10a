//! End-to-end: compose `build:` — `rcompose build`, `up --build` on a stack with two built
//! services (one FROM the project's busybox image, one FROM scratch through an additional
//! context, from an inline Dockerfile) and one service pulled from a local registry.

mod common;

use common::compose::{IMAGE, Project};
use common::registry::{self, Auth};
use common::stderr;

const NET: &str = r#"
networks:
  default:
    ipam:
      config: [{subnet: "{SUBNET}"}]
"#;

#[test]
fn up_build_with_two_built_services_and_one_pulled() {
    let reg = registry::start(Auth::None);
    let p = Project::new("bld");
    let pulled = format!("{}/pulled:1", reg.host());
    p.ok(&["image", "tag", IMAGE, &pulled]);
    p.ok(&["image", "push", "-q", &pulled]);
    p.ok(&["image", "rm", &pulled]);

    let bb = p.tmp.path().join("bb");
    common::busybox::build_rootfs(&bb);
    let api = p.dir.join("api");
    std::fs::create_dir_all(&api).unwrap();
    std::fs::write(
        api.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nARG WHO\nRUN echo \"api built for $WHO\" > /msg\nRUN df -k /dev/shm | tail -n 1 > /shm\nCMD [\"sh\", \"-c\", \"cat /msg; exec sleep 300\"]\n"
        ),
    )
    .unwrap();
    let yaml = format!(
        r#"
services:
  api:
    build:
      context: ./api
      args:
        WHO: compose
      shm_size: 32m
  web:
    image: web:dev
    build:
      context: .
      additional_contexts:
        bb: {}
      dockerfile_inline: |
        FROM scratch
        COPY --from=bb / /
        CMD ["sh", "-c", "echo web-here; exec sleep 300"]
  db:
    image: {}
    command: ["sleep", "300"]
  tool:
    profiles: ["tools"]
    image: tool:x
    build:
      context: ./api
      args:
        WHO: tool
{NET}"#,
        bb.display(),
        pulled
    );
    p.write(&yaml);

    let o = p.run(&["up", "-d", "--build"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("[api]") && err.contains("[web]"), "{err}");
    let images = p.ok(&["image", "ls"]);
    let api_image = format!("{}-api", p.name);
    assert!(images.contains(&api_image), "{images}");
    assert!(images.contains("web "), "{images}");
    p.wait_until(10, "api's output", || {
        String::from_utf8_lossy(&p.run(&["logs", "api"]).stdout).contains("api built for compose")
    });
    p.wait_until(10, "web's output", || {
        String::from_utf8_lossy(&p.run(&["logs", "web"]).stdout).contains("web-here")
    });
    let ps = p.ps_json();
    assert_eq!(ps.len(), 3, "{ps:?}");

    // `rcompose build`: nothing changed, everything from the cache.
    let o = p.run(&["build", "api", "web"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("[api] #3 CACHED"), "{err}");
    assert!(err.contains("Built"), "{err}");
    // An unknown service is an error.
    let o = p.run(&["build", "nosuch"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
    // `run` builds a missing image first.
    let out = p.ok(&["run", "--rm", "-T", "tool", "cat", "/msg"]);
    assert_eq!(out, "api built for tool\n");
    // build.shm_size sized /dev/shm of api's RUN steps; tool's had docker's 64 MiB.
    let shm = |svc: &str| {
        let df = p.ok(&["run", "--rm", "-T", svc, "cat", "/shm"]);
        df.split_whitespace().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(shm("api"), "32768");
    assert_eq!(shm("tool"), "65536");
    p.ok(&["down", "-t", "0"]);
}
