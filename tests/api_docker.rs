//! The Docker Engine API (`rcompose system service`) driven by Debian's docker CLI 20.10
//! (`common::api`). Skips with a message when the client is not installed.

mod common;

use std::time::{Duration, Instant};

use common::api::Api;
use common::{busybox, stderr, stdout};

#[test]
fn docker_cli_drives_containers_images_networks_and_volumes() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let image = common::unique("rcapi-bb");
    let tag = format!("{image}:test");
    busybox::busybox_image(&common::bin(), &api.roots.root(), &tag);
    let name = common::unique("rcapi-c");
    api.names.push(name.clone());

    let v = api.ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), "1.41");

    let images = api.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == tag), "{images}");

    let id = api.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-l",
        "made.by=docker",
        &tag,
        "sh",
        "-c",
        "echo out-line; echo err-line >&2; sleep 60",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");

    let ps = api.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.lines().any(|l| l.starts_with(&format!("{name} Up"))),
        "{ps}"
    );
    // The CLI sees what docker made, with its labels.
    let ours = api
        .roots
        .ok(&["container", "ps", "--format", "{{.Names}} {{.Labels}}"]);
    assert!(
        ours.contains(&name) && ours.contains("made.by=docker"),
        "{ours}"
    );
    let filtered = api.ok(&["ps", "-q", "--no-trunc", "--filter", "label=made.by=docker"]);
    assert_eq!(filtered.trim(), id);

    // Logs: the multiplexed stream keeps stdout and stderr apart.
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let o = api.docker(&["logs", &name]);
        if stdout(&o).contains("out-line") && stderr(&o).contains("err-line") {
            break o;
        }
        assert!(Instant::now() < deadline, "logs never came: {o:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!stdout(&logs).contains("err-line"));

    let state = api.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Config.Labels}}",
        &name,
    ]);
    assert!(state.starts_with("running"), "{state}");

    api.ok(&["stop", "-t", "1", &name]);
    let st = api
        .roots
        .ok(&["container", "inspect", "-f", "{{.State.Status}}", &name]);
    assert_eq!(st.trim(), "exited");
    api.ok(&["rm", &name]);
    let gone = api.docker(&["inspect", &name]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("No such"), "{}", stderr(&gone));
    let o = api.docker(&["rm", &name]);
    assert!(
        stderr(&o).contains(&format!("No such container: {name}")),
        "{}",
        stderr(&o)
    );

    // `docker run` without -d: attach (hijacked), wait, start; output and exit code.
    let fg = common::unique("rcapi-fg");
    api.names.push(fg.clone());
    let o = api.docker(&[
        "run",
        "--name",
        &fg,
        "--network",
        "none",
        &tag,
        "sh",
        "-c",
        "sleep 0.3; echo fg-out; echo fg-err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "fg-out\n");
    assert!(stderr(&o).contains("fg-err"), "{}", stderr(&o));
    api.ok(&["rm", &fg]);

    // A container made by the rcompose CLI is docker's to stop and remove.
    let other = common::unique("rcapi-cli");
    api.names.push(other.clone());
    api.roots.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &other,
        "--network",
        "none",
        &tag,
        "sleep",
        "60",
    ]);
    let ps = api.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(ps.lines().any(|l| l == other), "{ps}");
    api.ok(&["rm", "-f", &other]);

    // Networks.
    let net = common::unique("rcapi-n");
    api.networks.push(net.clone());
    api.ok(&["network", "create", &net]);
    let ls = api.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(ls.lines().any(|l| l == net), "{ls}");
    let ours = api.roots.ok(&["network", "ls"]);
    assert!(ours.contains(&net), "{ours}");
    api.ok(&["network", "rm", &net]);
    let ls = api.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.lines().any(|l| l == net), "{ls}");

    // Volumes.
    let vol = common::unique("rcapi-v");
    api.ok(&["volume", "create", "--label", "k=v", &vol]);
    let ls = api.ok(&["volume", "ls", "-q"]);
    assert!(ls.lines().any(|l| l == vol), "{ls}");
    let ours = api
        .roots
        .ok(&["volume", "inspect", "-f", "{{.Labels}}", &vol]);
    assert!(ours.contains('k'), "{ours}");
    api.ok(&["volume", "rm", &vol]);
    assert!(api.roots.run(&["volume", "inspect", &vol]).status.code() != Some(0));

    // Images: tag and remove the tag.
    let retag = format!("{image}:again");
    api.ok(&["tag", &tag, &retag]);
    let out = api.ok(&["rmi", &retag]);
    assert!(out.contains("Untagged"), "{out}");

    // save, rmi, load: the image comes back under its tag.
    let saved = api.roots.dir.path().join("saved.tar");
    api.ok(&["save", "-o", &saved.to_string_lossy(), &tag]);
    api.ok(&["rmi", &tag]);
    assert!(!api.docker(&["image", "inspect", &tag]).status.success());
    let out = api.ok(&["load", "-i", &saved.to_string_lossy()]);
    assert!(out.contains(&format!("Loaded image: {tag}")), "{out}");
    api.ok(&["image", "inspect", &tag]);
    let o = api.docker(&["save", "-o", &saved.to_string_lossy(), "no-such-image:1"]);
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));

    // system df: docker's client sums what the engine reports.
    let df = api.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    let images = df
        .lines()
        .find(|l| l.starts_with("Images "))
        .unwrap_or_default();
    let count: usize = images
        .trim_start_matches("Images ")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(count >= 1, "{df}");

    // Bad input gets docker's statuses and bodies.
    let (status, body) =
        api.raw("GET /v1.41/nope HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("page not found"), "{body}");
    let (status, body) =
        api.raw("GET /v1.99/_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("is too new"), "{body}");
    let (status, body) = api.raw(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{nope",
    );
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("\"message\""), "{body}");
    api.names.clear();
}

/// A one-entry ustar archive whose entry name is taken as given (`../` included), as a
/// hostile client would send it.
fn raw_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| *b as u64).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[test]
fn docker_cli_exec_cp_attach_and_foreground_runs() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let tag = api.busybox();
    let name = common::unique("rcapi-x");
    api.names.push(name.clone());
    api.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &tag,
        "sleep",
        "120",
    ]);

    // exec: both streams apart, the exit code, options, stdin.
    let o = api.docker(&["exec", &name, "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"), "{}", stderr(&o));
    let env = api.ok(&[
        "exec",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo $GREETING $(pwd)",
    ]);
    assert_eq!(env, "hi /tmp\n");
    let o = api.docker_input(
        &["exec", "-i", &name, "sh", "-c", "read l; echo got:$l"],
        b"line\n",
    );
    assert_eq!(stdout(&o), "got:line\n", "{}", stderr(&o));
    let o = api.docker(&["exec", "no-such-container-here", "true"]);
    assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));

    // top (the container's processes only), stats, commit.
    let top = api.ok(&["top", &name]);
    assert!(
        top.lines().next().unwrap_or_default().contains("PID"),
        "{top}"
    );
    assert_eq!(
        top.lines().filter(|l| l.contains("sleep 120")).count(),
        1,
        "{top}"
    );
    assert_eq!(
        top.lines().count(),
        2,
        "only the container's process: {top}"
    );
    let stats = api.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        &name,
    ]);
    assert_eq!(stats.trim(), format!("{name} 1"));
    let committed = format!("{}:c", common::unique("rcapi-commit"));
    api.ok(&["commit", "-c", "ENV COMMITTED=yes", &name, &committed]);
    let env = api.ok(&["inspect", "-f", "{{.Config.Env}}", &committed]);
    assert!(env.contains("COMMITTED=yes"), "{env}");

    // exec -it from a terminal: the container's terminal gets the client's size.
    let mut cmd = std::process::Command::new(common::api::DOCKER);
    cmd.args([
        "exec",
        "-it",
        &name,
        "sh",
        "-c",
        "sleep 0.5; stty size; exit 6",
    ])
    .env("DOCKER_HOST", format!("unix://{}", api.sock.display()))
    .env("DOCKER_CONFIG", api.roots.dir.path().join("docker-config"));
    let mut term = common::container::Pty::spawn_sized(cmd, Some((33, 101)));
    term.expect("33 101", 20);
    assert_eq!(term.wait(20), Some(6), "{}", term.output());

    // cp both ways, a directory's content with `/.`, and a missing path.
    let host = api.roots.dir.path().join("cp");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "into the container\n").unwrap();
    api.ok(&[
        "cp",
        &host.join("in.txt").to_string_lossy(),
        &format!("{name}:/tmp/"),
    ]);
    api.ok(&[
        "cp",
        &host.join("in.txt").to_string_lossy(),
        &format!("{name}:/tmp/renamed.txt"),
    ]);
    let got = api.ok(&["exec", &name, "cat", "/tmp/in.txt", "/tmp/renamed.txt"]);
    assert_eq!(got, "into the container\n".repeat(2));
    api.ok(&[
        "exec",
        &name,
        "sh",
        "-c",
        "mkdir /tmp/d && echo nested > /tmp/d/n",
    ]);
    api.ok(&[
        "cp",
        &format!("{name}:/etc/passwd"),
        &host.to_string_lossy(),
    ]);
    assert!(
        std::fs::read_to_string(host.join("passwd"))
            .unwrap()
            .starts_with("root:")
    );
    api.ok(&[
        "cp",
        &format!("{name}:/tmp/d/."),
        &host.join("copy").to_string_lossy(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("copy/n")).unwrap(),
        "nested\n"
    );
    let o = api.docker(&[
        "cp",
        &format!("{name}:/no/such/file"),
        &host.to_string_lossy(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such container:path"),
        "{}",
        stderr(&o)
    );

    // A hostile archive never writes outside the container's root.
    let outside = format!("rcapi-escape-{}", common::unique("e"));
    let tar = raw_tar(&format!("{}tmp/{outside}", "../".repeat(24)), b"escaped\n");
    let mut req = format!(
        "PUT /v1.41/containers/{name}/archive?path=/tmp HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        tar.len()
    )
    .into_bytes();
    req.extend_from_slice(&tar);
    let (status, body) = api.raw_bytes(&req);
    assert!(
        !std::path::Path::new("/tmp").join(&outside).exists(),
        "the archive wrote outside the container ({status} {body})"
    );
    // diff, export, import: the exported filesystem comes back as an image.
    let diff = api.ok(&["diff", &name]);
    assert!(diff.lines().any(|l| l == "A /tmp/in.txt"), "{diff}");
    let exported = host.join("exported.tar");
    api.ok(&["export", "-o", &exported.to_string_lossy(), &name]);
    let imported = format!("{}:imp", common::unique("rcapi-import"));
    api.ok(&[
        "import",
        "-c",
        "CMD [\"cat\", \"/tmp/in.txt\"]",
        &exported.to_string_lossy(),
        &imported,
    ]);
    let ran = api.ok(&["run", "--rm", "--network", "none", &imported]);
    assert_eq!(ran, "into the container\n");
    api.ok(&["rm", "-f", &name]);

    // Foreground `run --rm`: all output and the exit code, though the container (and its
    // log) is removed at its exit.
    for _ in 0..3 {
        let o = api.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &tag,
            "sh",
            "-c",
            "echo one; echo two >&2; exit 5",
        ]);
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
        assert_eq!(stdout(&o), "one\n");
        assert!(stderr(&o).contains("two"), "{}", stderr(&o));
    }
    let o = api.docker_input(
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            &tag,
            "sh",
            "-c",
            "read l; echo got:$l",
        ],
        b"piped\n",
    );
    assert_eq!(stdout(&o), "got:piped\n", "{}", stderr(&o));
    let left = api.ok(&["ps", "-a", "-q"]);
    assert_eq!(left.trim(), "", "--rm containers left behind");

    // `run -it` from a terminal: an interactive shell, its output and exit code.
    let mut cmd = std::process::Command::new(common::api::DOCKER);
    cmd.args(["run", "--rm", "-it", "--network", "none", &tag, "sh"])
        .env("DOCKER_HOST", format!("unix://{}", api.sock.display()))
        .env("DOCKER_CONFIG", api.roots.dir.path().join("docker-config"));
    let mut term = common::container::Pty::spawn_sized(cmd, Some((30, 90)));
    term.expect("# ", 20);
    term.send(b"echo typed-$((40+2))\n");
    term.expect("typed-42", 20);
    term.send(b"exit 3\n");
    assert_eq!(term.wait(20), Some(3), "{}", term.output());

    // A client that goes away mid-attach leaves the container running.
    let fg = common::unique("rcapi-fg");
    api.names.push(fg.clone());
    let mut client = api.docker_spawn(&[
        "run",
        "--name",
        &fg,
        "--network",
        "none",
        &tag,
        "sh",
        "-c",
        "echo started; sleep 120",
    ]);
    api.wait_until(20, "the foreground container to run", || {
        api.roots
            .run(&["container", "inspect", "-f", "{{.State.Status}}", &fg])
            .stdout
            .starts_with(b"running")
    });
    client.kill().unwrap();
    client.wait().unwrap();
    let st = api.ok(&["inspect", "-f", "{{.State.Status}}", &fg]);
    assert_eq!(st.trim(), "running");
    api.ok(&["rm", "-f", &fg]);

    // `docker attach` with stdin to a running `-i` container; stdin's end ends it.
    let att = common::unique("rcapi-att");
    api.names.push(att.clone());
    api.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        &att,
        "--network",
        "none",
        &tag,
        "sh",
        "-c",
        "while read l; do echo echo:$l; done; exit 4",
    ]);
    let o = api.docker_input(&["attach", &att], b"one\ntwo\n");
    assert_eq!(stdout(&o), "echo:one\necho:two\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn docker_events_show_what_the_api_and_the_cli_do() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let tag = api.busybox();
    let quick = common::unique("rcapi-evq");
    let (name, cli, net) = (
        common::unique("rcapi-ev"),
        common::unique("rcapi-evcli"),
        common::unique("rcapi-evn"),
    );
    api.names.extend([name.clone(), cli.clone()]);
    api.networks.push(net.clone());
    let mut events = api.docker_spawn(&[
        "events",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let out = events.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let expect = |what: &str| {
        api.wait_until(20, what, || seen.lock().unwrap().contains(what));
    };
    // Made through the API…
    api.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &tag,
        "sleep",
        "60",
    ]);
    expect(&format!("container start {name}"));
    api.ok(&["pause", &name]);
    expect(&format!("container pause {name}"));
    api.ok(&["unpause", &name]);
    expect(&format!("container unpause {name}"));
    api.ok(&["rm", "-f", &name]);
    expect(&format!("container destroy {name}"));
    // A `run --rm` faster than a poll: the server's own record of it, each event once.
    api.ok(&[
        "run",
        "--rm",
        "--name",
        &quick,
        "--network",
        "none",
        &tag,
        "true",
    ]);
    expect(&format!("container destroy {quick}"));
    let got = seen.lock().unwrap().clone();
    let mine: Vec<&str> = got
        .lines()
        .filter(|l| l.ends_with(&format!(" {quick}")))
        .collect();
    assert_eq!(
        mine,
        ["create", "start", "die", "destroy"].map(|a| format!("container {a} {quick}")),
        "{got}"
    );
    // …and by the CLI.
    api.roots.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &cli,
        "--network",
        "none",
        &tag,
        "sleep",
        "60",
    ]);
    expect(&format!("container start {cli}"));
    api.roots.ok(&["container", "stop", "-t", "0", &cli]);
    expect(&format!("container die {cli}"));
    api.roots.ok(&["network", "create", &net]);
    expect(&format!("network create {net}"));
    let _ = events.kill();
    let _ = events.wait();
    // An unknown filter is refused before the stream starts.
    let o = api.docker(&["events", "--filter", "nonsense=1"]);
    assert!(stderr(&o).contains("invalid filter"), "{}", stderr(&o));
}

/// The service under socket activation, as contrib/systemd/rcompose-api.socket runs it:
/// `systemd-socket-activate` holds the socket and starts the service on the first
/// connection with the socket as fd 3 (LISTEN_FDS); `--time` ends it once idle.
#[test]
fn socket_activation_serves_and_the_service_exits_when_idle() {
    const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";
    if !std::path::Path::new(ACTIVATE).exists()
        || !std::path::Path::new(common::api::DOCKER).exists()
    {
        eprintln!("SKIP: {ACTIVATE} (Debian package systemd) or the docker CLI is missing");
        return;
    }
    let roots = common::Roots::new("rc-api-sa-");
    let sock = roots.dir.path().join("activated.sock");
    let mut activator = std::process::Command::new(ACTIVATE)
        .arg("-l")
        .arg(&sock)
        .arg(common::bin())
        .arg("--root")
        .arg(roots.root())
        .arg("--run-root")
        .arg(roots.run_root())
        .args(["system", "service", "--time", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting systemd-socket-activate");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "the activation socket never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = std::process::Command::new(common::api::DOCKER)
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", roots.dir.path().join("docker-config"))
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), "1.41", "{}", stderr(&o));
    // Idle for --time: the service (which the activator became) exits on its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = activator.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = activator.kill();
            panic!("the activated service did not exit when idle");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn docker_build_through_the_api() {
    let Some(mut api) = Api::start() else {
        return;
    };
    let base = api.busybox();
    let ctx = api.roots.dir.path().join("build-ctx");
    std::fs::create_dir_all(ctx.join("sub")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base}\nARG V=0\nRUN echo built-$V > /built\nCOPY sub/hello.txt /hello.txt\nCMD [\"cat\", \"/built\", \"/hello.txt\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.join("sub/hello.txt"), "from the context\n").unwrap();
    let tag = format!("{}:b", common::unique("rcapi-built"));
    let out = api.ok(&[
        "build",
        "--build-arg",
        "V=7",
        "-t",
        &tag,
        &ctx.to_string_lossy(),
    ]);
    assert!(out.contains("Successfully built"), "{out}");
    assert!(out.contains(&format!("Successfully tagged {tag}")), "{out}");
    let name = common::unique("rcapi-b");
    api.names.push(name.clone());
    let ran = api.ok(&["run", "--name", &name, "--network", "none", &tag]);
    assert_eq!(ran, "built-7\nfrom the context\n");
    // -q prints the id; a failing step fails the build with the builder's message.
    let id = api.ok(&[
        "build",
        "-q",
        "--build-arg",
        "V=7",
        "-t",
        &tag,
        &ctx.to_string_lossy(),
    ]);
    let inspected = api.ok(&["image", "inspect", "-f", "{{.Id}}", &tag]);
    assert_eq!(id.trim(), inspected.trim());
    std::fs::write(
        ctx.join("Dockerfile.bad"),
        format!("FROM {base}\nRUN exit 3\n"),
    )
    .unwrap();
    let o = api.docker(&[
        "build",
        "-f",
        &ctx.join("Dockerfile.bad").to_string_lossy(),
        &ctx.to_string_lossy(),
    ]);
    assert!(!o.status.success());
    assert!(
        format!("{}{}", stdout(&o), stderr(&o)).contains("exited with code 3"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// `docker push` through the API to a loopback docker-registry, then `docker pull` back.
#[test]
fn docker_push_and_pull_through_a_local_registry() {
    if !std::path::Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("SKIP: /usr/bin/docker-registry is missing (Debian package docker-registry)");
        return;
    }
    let Some(api) = Api::start() else {
        return;
    };
    let reg = common::registry::start(common::registry::Auth::None);
    let base = api.busybox();
    let remote = format!("{}/{}:1", reg.host(), common::unique("rcapi-push"));
    api.ok(&["tag", &base, &remote]);
    let out = api.ok(&["push", &remote]);
    assert!(out.contains("digest: sha256:"), "{out}");
    let id = api.ok(&["image", "inspect", "-f", "{{.Id}}", &remote]);
    api.ok(&["rmi", &remote]);
    let out = api.ok(&["pull", &remote]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(api.ok(&["image", "inspect", "-f", "{{.Id}}", &remote]), id);
    let o = api.docker(&["push", &format!("{}/not-here:1", reg.host())]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not exist locally"),
        "{}",
        stderr(&o)
    );
}
