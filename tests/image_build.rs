//! End-to-end: `rcompose image build`. A multi-stage Dockerfile FROM scratch with Debian's
//! static busybox copied in through a named build context; the cache; .dockerignore;
//! COPY --chown; ONBUILD; the config at run time; RUN --mount=type=cache; errors with lines.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Roots, stderr};

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A context dir and a busybox rootfs for `--build-context bb=…`.
struct Env {
    roots: Roots,
    ctx: std::path::PathBuf,
    bb: String,
}

impl Env {
    fn new() -> Self {
        let roots = Roots::new("rc-build");
        let bb = roots.dir.path().join("bb");
        common::busybox::build_rootfs(&bb);
        let ctx = roots.dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        Env {
            bb: format!("bb={}", bb.display()),
            roots,
            ctx,
        }
    }
    fn build(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["image", "build", "--build-context", &self.bb];
        args.extend_from_slice(extra);
        let ctx = self.ctx.display().to_string();
        args.push(&ctx);
        self.roots.run(&args)
    }
    fn build_ok(&self, extra: &[&str]) -> String {
        let o = self.build(extra);
        assert!(o.status.success(), "build failed: {}", stderr(&o));
        stderr(&o)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        common::unmount_under(self.roots.dir.path());
    }
}

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
FROM scratch AS base
COPY --from=bb / /
ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin

FROM base AS builder
RUN mkdir -p /out && echo built > /out/artifact

FROM base
ARG GREETING=hello
WORKDIR /app
COPY --chown=nobody:nobody data.txt ./
COPY other.txt /app/
COPY --from=builder /out/artifact /app/
RUN echo "$GREETING" > /app/greeting
RUN --mount=type=cache,target=/cache sh -c 'echo x >> /cache/runs; wc -l < /cache/runs > /app/runs'
VOLUME /data
EXPOSE 8080/tcp
HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD test -f /app/greeting
USER nobody
ENTRYPOINT ["sh", "-c"]
CMD ["cat /app/greeting /app/artifact; id -u; pwd"]
"#;

fn setup() -> Env {
    let env = Env::new();
    write(&env.ctx, "Dockerfile", DOCKERFILE);
    write(&env.ctx, "data.txt", "data\n");
    write(&env.ctx, "other.txt", "other\n");
    write(&env.ctx, "secret.key", "do not ship\n");
    write(&env.ctx, ".dockerignore", "*.key\n");
    env
}

#[test]
fn multi_stage_from_scratch_builds_runs_and_caches() {
    let env = setup();
    let t0 = Instant::now();
    let first = env.build_ok(&["-t", "app:1", "-t", "app:latest"]);
    let first_time = t0.elapsed();
    assert!(first.contains("0 of 7 steps cached"), "{first}");

    let out = env.roots.ok(&["container", "run", "--rm", "app:1"]);
    assert_eq!(out, "hello\nbuilt\n65534\n/app\n");

    // Owners, config and the ignored file.
    let ls = env.roots.ok(&[
        "container",
        "run",
        "--rm",
        "--entrypoint",
        "stat",
        "app:1",
        "-c",
        "%u:%g %n",
        "/app/data.txt",
        "/app/other.txt",
    ]);
    assert_eq!(ls, "65534:65534 /app/data.txt\n0:0 /app/other.txt\n");
    let o = env.roots.run(&[
        "container",
        "run",
        "--rm",
        "--entrypoint",
        "ls",
        "app:1",
        "/app/secret.key",
    ]);
    assert!(!o.status.success(), ".dockerignore'd file was copied");
    let inspect: serde_json::Value =
        serde_json::from_str(&env.roots.ok(&["image", "inspect", "app:1"])).unwrap();
    let c = &inspect[0]["Config"];
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["User"], "nobody");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    assert!(c["Volumes"]["/data"].is_object(), "{c}");
    assert_eq!(c["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(c["Entrypoint"], serde_json::json!(["sh", "-c"]));
    let history = env.roots.ok(&["image", "history", "--no-trunc", "app:1"]);
    assert!(
        history.contains("RUN /bin/sh -c echo \"$GREETING\""),
        "{history}"
    );

    // The healthcheck from the image runs.
    let name = common::unique("hc");
    env.roots.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        "--entrypoint",
        "sleep",
        "app:1",
        "30",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut status = String::new();
    while Instant::now() < deadline {
        status = env.roots.ok(&[
            "container",
            "inspect",
            "-f",
            "{{.State.Health.Status}}",
            &name,
        ]);
        if status.trim() == "healthy" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status.trim(), "healthy");
    env.roots.ok(&["container", "rm", "-f", &name]);

    // Nothing changed: every step from the cache, same image, faster.
    let id1 = env
        .roots
        .ok(&["image", "inspect", "-f", "{{.Id}}", "app:1"]);
    let t1 = Instant::now();
    let second = env.build_ok(&["-t", "app:1"]);
    assert!(
        second.contains("7 of 7 steps cached: all cache hits"),
        "{second}"
    );
    assert!(t1.elapsed() < first_time, "second build not faster");
    assert_eq!(
        env.roots
            .ok(&["image", "inspect", "-f", "{{.Id}}", "app:1"]),
        id1
    );

    // One copied file changes: only that step and those after it run again.
    write(&env.ctx, "other.txt", "changed\n");
    let third = env.build_ok(&["-t", "app:1"]);
    assert!(third.contains("3 of 7 steps cached"), "{third}");
    // The cache mount kept its content across runs of the step.
    let runs = env.roots.ok(&[
        "container",
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        "app:1",
        "/app/runs",
    ]);
    assert_eq!(runs.trim(), "2");

    // --no-cache runs everything; -q prints the id only; --iidfile; --target.
    let iid = env.roots.dir.path().join("iid");
    let o = env.build(&["--no-cache", "-q", "--iidfile", iid.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = common::stdout(&o);
    assert_eq!(id.trim(), std::fs::read_to_string(&iid).unwrap());
    let out = env.build_ok(&["--target", "builder", "-t", "stage:b"]);
    assert!(
        !out.contains("[2]"),
        "the last stage is not needed for --target builder: {out}"
    );
    let art = env.roots.ok(&[
        "container",
        "run",
        "--rm",
        "stage:b",
        "cat",
        "/out/artifact",
    ]);
    assert_eq!(art, "built\n");
}

/// `COPY f .` after `WORKDIR` puts the file into that directory (Docker's rule for a `.`
/// destination), and a later COPY into the same directory keeps the first file.
#[test]
fn copy_to_dot_goes_into_the_workdir() {
    let env = Env::new();
    write(
        &env.ctx,
        "Dockerfile",
        "FROM scratch\nCOPY --from=bb / /\nWORKDIR /srv/app\nCOPY one.txt .\nCOPY two.txt ./\nCMD [\"cat\", \"/srv/app/one.txt\", \"two.txt\"]\n",
    );
    write(&env.ctx, "one.txt", "one\n");
    write(&env.ctx, "two.txt", "two\n");
    env.build_ok(&["-t", "dot:1"]);
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "dot:1"]),
        "one\ntwo\n"
    );
}

#[test]
fn onbuild_triggers_in_a_child_build() {
    let env = Env::new();
    write(
        &env.ctx,
        "Dockerfile",
        "FROM scratch\nCOPY --from=bb / /\nONBUILD COPY marker.txt /marker\nONBUILD RUN echo triggered > /triggered\nCMD [\"cat\", \"/marker\", \"/triggered\"]\n",
    );
    write(&env.ctx, "marker.txt", "from-child\n");
    env.build_ok(&["-t", "base:onbuild"]);
    write(&env.ctx, "Dockerfile", "FROM base:onbuild\n");
    env.build_ok(&["-t", "child:1"]);
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "child:1"]),
        "from-child\ntriggered\n"
    );
    let onbuild = env.roots.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.OnBuild}}",
        "child:1",
    ]);
    assert_eq!(
        onbuild.trim(),
        "null",
        "triggers are not inherited by the child"
    );
}

#[test]
fn add_extracts_local_tars_and_errors_cite_lines() {
    let env = Env::new();
    let src = env.roots.dir.path().join("tarsrc");
    write(&src, "dir/in-tar.txt", "abc");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-czf")
        .arg(env.ctx.join("files.tar.gz"))
        .arg("dir")
        .status()
        .unwrap();
    assert!(st.success());
    write(
        &env.ctx,
        "Dockerfile",
        "FROM scratch\nCOPY --from=bb / /\nADD files.tar.gz /x/\nCMD [\"cat\", \"/x/dir/in-tar.txt\"]\n",
    );
    env.build_ok(&["-t", "add:1"]);
    assert_eq!(env.roots.ok(&["container", "run", "--rm", "add:1"]), "abc");

    // ADD of a URL (a one-shot HTTP server), secret and tmpfs mounts of RUN.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nremote\n")
            .unwrap();
    });
    let secret = env.roots.dir.path().join("tok");
    std::fs::write(&secret, "tok-value\n").unwrap();
    write(
        &env.ctx,
        "Dockerfile",
        &format!(
            "FROM scratch\nCOPY --from=bb / /\nADD http://127.0.0.1:{port}/dl/remote.txt?x=1 /r/\n\
             RUN --mount=type=secret,id=tok --mount=type=tmpfs,target=/scratch sh -c 'cat /run/secrets/tok > /seen; touch /scratch/x'\n\
             CMD [\"sh\", \"-c\", \"cat /r/remote.txt /seen; stat -c %a /r/remote.txt; ls /scratch | wc -l; ls /run/secrets | wc -l\"]\n"
        ),
    );
    let secret_flag = format!("id=tok,src={}", secret.display());
    env.build_ok(&["--secret", &secret_flag, "-t", "url:1"]);
    server.join().unwrap();
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "url:1"]),
        "remote\ntok-value\n600\n0\n0\n"
    );

    let cases = [
        (
            "FROM scratch\n\nCOPY missing.txt /x\n",
            "Dockerfile:3",
            "missing.txt: not found",
        ),
        (
            "FROM scratch\nCOPY ../escape /x\n",
            "Dockerfile:2",
            "outside the build context",
        ),
        (
            "FROM scratch\nCOPY --parents a /b\n",
            "Dockerfile:2",
            "--parents is not supported",
        ),
        (
            "FROM scratch\nFROBNICATE x\n",
            "Dockerfile:2",
            "unknown instruction",
        ),
        (
            "FROM scratch\nCOPY --bogus a /b\n",
            "Dockerfile:2",
            "unknown flag --bogus",
        ),
        (
            "FROM scratch\nCOPY --from=nowhere /a /b\n",
            "Dockerfile:2",
            "nowhere",
        ),
        (
            "ARG BASE\nFROM ${BASE}\n",
            "Dockerfile:2",
            "should not be blank",
        ),
        (
            "FROM scratch\n\n\nADD http://127.0.0.1:{closed}/nothing.txt /x\n",
            "Dockerfile:4",
            "cannot fetch http://127.0.0.1:",
        ),
        (
            "FROM scratch\nCOPY --from=bb / /\nRUN echo some-output; exit 7\n",
            "Dockerfile:3",
            "exited with code 7",
        ),
    ];
    // A port nobody listens on (bound, then let go).
    let closed = common::free_port().to_string();
    for (df, line, msg) in cases {
        write(&env.ctx, "Dockerfile", &df.replace("{closed}", &closed));
        let o = env.build(&[]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{df}");
        assert!(err.contains(line) && err.contains(msg), "{df}\n{err}");
        if msg.contains("code 7") {
            assert!(err.contains("some-output"), "{err}");
        }
    }
}

/// `--build-context name=docker-image://ref` as a base and a `COPY --from` source, a RUN
/// bind mount of the context, and `.dockerignore` re-including with `!`.
#[test]
fn image_contexts_bind_mounts_and_reincluded_ignores() {
    let env = Env::new();
    write(&env.ctx, "Dockerfile", "FROM scratch\nCOPY --from=bb / /\n");
    env.build_ok(&["-t", "bbimg:1"]);
    write(
        &env.ctx,
        "Dockerfile",
        "FROM base\nRUN --mount=type=bind,target=/ctx cat /ctx/a.txt > /from-mount\nCOPY --from=tools /bin/busybox /copied-busybox\nCOPY . /all/\nCMD [\"sh\", \"-c\", \"cat /from-mount; ls /all; test -x /copied-busybox && echo copied\"]\n",
    );
    write(&env.ctx, "a.txt", "mounted\n");
    write(&env.ctx, "keep.key", "k\n");
    write(&env.ctx, "drop.key", "d\n");
    write(
        &env.ctx,
        ".dockerignore",
        "*.key\n!keep.key\nDockerfile\n.dockerignore\n",
    );
    env.build_ok(&[
        "--build-context",
        "base=docker-image://bbimg:1",
        "--build-context",
        "tools=docker-image://bbimg:1",
        "-t",
        "ctx:1",
    ]);
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "ctx:1"]),
        "mounted\na.txt\nkeep.key\ncopied\n"
    );
}

#[test]
fn dockerfile_from_stdin_or_outside_the_context_labels_and_build_args() {
    use std::io::Write;
    let env = Env::new();
    write(&env.ctx, "f.txt", "f\n");
    let outside = env.roots.dir.path().join("elsewhere.Dockerfile");
    std::fs::write(
        &outside,
        "FROM scratch\nCOPY --from=bb / /\nARG V=default\nRUN echo $V > /v\nCOPY f.txt /\nCOPY <<EOF /greet\nhi $V\nEOF\nCMD [\"cat\", \"/v\", \"/f.txt\", \"/greet\"]\n",
    )
    .unwrap();
    let out = env.build_ok(&[
        "-f",
        outside.to_str().unwrap(),
        "--build-arg",
        "V=given",
        "--build-arg",
        "UNUSED=1",
        "--label",
        "org.example.k=v",
        "-t",
        "outside:1",
    ]);
    assert!(
        out.contains("UNUSED"),
        "a warning names the unused build arg: {out}"
    );
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "outside:1"]),
        "given\nf\nhi given\n"
    );
    let label = env.roots.ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"org.example.k\"}}",
        "outside:1",
    ]);
    assert_eq!(label.trim(), "v");

    let mut child = env
        .roots
        .cmd()
        .args([
            "image",
            "build",
            "--build-context",
            &env.bb,
            "-q",
            "-t",
            "stdin:1",
            "-f",
            "-",
        ])
        .arg(&env.ctx)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch AS unused\nRUN exit 1\nFROM scratch\nCOPY --from=bb / /\nCMD [\"echo\", \"from-stdin\"]\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(common::stdout(&o).trim().starts_with("sha256:"));
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "stdin:1"]),
        "from-stdin\n"
    );
}

/// Heredocs as BuildKit takes them: a whole `RUN <<EOF` script, heredocs after the command
/// (two on one line, one quoted so the shell leaves `$V` alone), and `COPY <<EOF /path`.
#[test]
fn heredocs_in_run_and_copy() {
    let env = Env::new();
    write(
        &env.ctx,
        "Dockerfile",
        "FROM scratch\nCOPY --from=bb / /\nARG V=val\nRUN <<EOF\nset -e\necho script-$V > /s\nEOF\nRUN cat <<EOF > /a && cat <<'END' > /b\nexpanded $V\nEOF\nliteral $V\nEND\nRUN <<EOF\n#!/bin/awk -f\nBEGIN { print \"from-awk\" > \"/k\" }\nEOF\nCOPY <<EOF /c\ncopied $V\nEOF\nCMD [\"cat\", \"/s\", \"/a\", \"/b\", \"/c\", \"/k\"]\n",
    );
    env.build_ok(&["-t", "heredoc:1"]);
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "heredoc:1"]),
        "script-val\nexpanded val\nliteral $V\ncopied val\nfrom-awk\n"
    );
}

/// `--progress`: on a terminal (`auto`, `tty`) the running step is live (its output shown
/// below it, then cleared) and each step stays as one line with its time or CACHED; `plain`
/// prints docker's numbered lines, output included, on a terminal too.
#[test]
fn progress_live_on_a_terminal_and_plain_lines() {
    let env = Env::new();
    write(
        &env.ctx,
        "Dockerfile",
        "FROM scratch\nCOPY --from=bb / /\nRUN echo live-marker; sleep 1\nENV A=1\n",
    );
    let under_pty = |progress: &str| {
        let mut cmd = env.roots.cmd();
        cmd.args(["image", "build", "--build-context", &env.bb, "--no-cache"]);
        if !progress.is_empty() {
            cmd.arg(format!("--progress={progress}"));
        }
        cmd.arg(&env.ctx);
        let mut pty = common::container::Pty::spawn(cmd);
        assert_eq!(pty.wait(120), Some(0), "{}", pty.output());
        pty.output()
    };
    for progress in ["", "tty"] {
        let out = under_pty(progress);
        assert!(out.contains("live-marker"), "{out:?}");
        assert!(!out.contains("#3 live-marker"), "{out:?}");
        let head = "#3 [0] RUN echo live-marker; sleep 1  ";
        let took = out
            .split(head)
            .skip(1)
            .find_map(|rest| rest.split_once('s')?.0.parse::<f64>().ok());
        assert!(took.is_some(), "the step stays with its time: {out:?}");
    }
    let out = under_pty("plain");
    assert!(out.contains("#3 live-marker"), "{out:?}");
    assert!(out.contains("#3 DONE "), "{out:?}");
    let e = env.build(&["--progress", "fancy"]);
    assert!(
        stderr(&e).contains("use auto, plain or tty"),
        "{}",
        stderr(&e)
    );
}

/// `apt-get update && apt-get install` in a RUN step on the Debian base: the step reaches
/// Debian's archive through the container's normal network path (the default bridge, NAT),
/// not the host's namespace. Skips, saying why, when the archive is unreachable from here.
#[test]
fn apt_get_on_a_debian_base() {
    let env = Env::new();
    if common::debian::base(&|a| env.roots.run(a)).is_none() {
        return;
    }
    write(
        &env.ctx,
        "Dockerfile",
        "FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y --no-install-recommends hello && rm -rf /var/lib/apt/lists/*\nRUN --network=none hello > /offline\nCMD [\"hello\"]\n",
    );
    env.build_ok(&["-t", "hello:deb"]);
    assert_eq!(
        env.roots.ok(&["container", "run", "--rm", "hello:deb"]),
        "Hello, world!\n"
    );
    // The RUN containers are gone, and nothing is left on the default bridge they were on.
    assert!(
        env.roots
            .ok(&["container", "ps", "-a", "-q"])
            .trim()
            .is_empty()
    );
    let nets: serde_json::Value =
        serde_json::from_str(&env.roots.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(nets[0]["Containers"], serde_json::json!({}), "{nets}");
}
