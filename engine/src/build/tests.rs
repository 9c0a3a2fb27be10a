//! Parser tests: spans become lines, flags are checked, forms are kept apart.

use super::BuildError;
use super::dockerfile::{Cmd, Instr, Src, parse};

const DF: &str = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE=scratch
FROM ${BASE} AS build
RUN echo one \
    two
COPY --chown=1:2 --chmod=755 a b* /dst/
ADD <<EOF /hello
hi $X
EOF
RUN <<EOS
set -e
echo from-heredoc
EOS
CMD ["sh", "-c", "x"]
ENTRYPOINT echo hi
HEALTHCHECK --interval=5s CMD true
HEALTHCHECK NONE
ONBUILD RUN echo triggered
FROM build
EXPOSE 80 443/udp
VOLUME ["/data"]
"#;

#[test]
fn parses_forms_lines_and_directives() {
    let df = parse(DF, "Dockerfile").unwrap();
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(df.global_args[0].line, 3);
    assert_eq!(df.stages.len(), 2);
    let s = &df.stages[0];
    assert_eq!(s.name.as_deref(), Some("build"));
    assert_eq!(s.from.line, 4);
    let run = &s.steps[0];
    assert_eq!(run.line, 5);
    assert_eq!(
        run.instr,
        Instr::Run {
            cmd: Cmd::Shell("echo one     two".into()),
            script: None
        }
    );
    assert_eq!(run.text, "RUN echo one     two");
    let copy = &s.steps[1];
    assert_eq!(copy.line, 7);
    assert_eq!(copy.flag("chown"), Some("1:2"));
    assert_eq!(copy.flag("chmod"), Some("755"));
    let Instr::Copy {
        add: false,
        srcs,
        dest,
    } = &copy.instr
    else {
        panic!("{copy:?}")
    };
    assert_eq!(srcs, &[Src::Path("a".into()), Src::Path("b*".into())]);
    assert_eq!(dest, "/dst/");
    let Instr::Copy {
        add: true, srcs, ..
    } = &s.steps[2].instr
    else {
        panic!()
    };
    assert_eq!(
        srcs,
        &[Src::HereDoc {
            body: "hi $X\n".into(),
            expand: true
        }]
    );
    let Instr::Run {
        script: Some(script),
        ..
    } = &s.steps[3].instr
    else {
        panic!("{:?}", s.steps[3])
    };
    assert_eq!(script, "set -e\necho from-heredoc\n");
    assert_eq!(s.steps[3].line, 11);
    assert_eq!(
        s.steps[4].instr,
        Instr::Cmd(Cmd::Exec(vec!["sh".into(), "-c".into(), "x".into()]))
    );
    assert_eq!(
        s.steps[5].instr,
        Instr::Entrypoint(Cmd::Shell("echo hi".into()))
    );
    assert_eq!(
        s.steps[6].instr,
        Instr::Healthcheck(Some(Cmd::Shell("true".into())))
    );
    assert_eq!(s.steps[6].flag("interval"), Some("5s"));
    assert_eq!(s.steps[7].instr, Instr::Healthcheck(None));
    assert_eq!(
        s.steps[8].instr,
        Instr::Onbuild("RUN echo triggered".into())
    );
    assert_eq!(df.stage("build").unwrap().index, 0);
    assert_eq!(df.stage("1").unwrap().index, 1);
    let t = &df.stages[1].steps;
    assert_eq!(
        t[0].instr,
        Instr::Expose(vec!["80".into(), "443/udp".into()])
    );
    assert_eq!(t[1].instr, Instr::Volume(vec!["/data".into()]));
}

fn parse_err(text: &str) -> (usize, String) {
    match parse(text, "Dockerfile") {
        Err(BuildError::Parse { line, message, .. }) => (line, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn errors_cite_lines() {
    let (line, msg) = parse_err("FROM scratch\n\nFROB x\n");
    assert_eq!(line, 3, "{msg}");
    assert!(msg.to_lowercase().contains("unknown instruction"), "{msg}");
    let (line, msg) = parse_err("FROM scratch\nCOPY --bogus=1 a /b\n");
    assert_eq!(line, 2);
    assert!(msg.contains("unknown flag --bogus for COPY"), "{msg}");
    let (line, _) = parse_err("RUN x\n");
    assert_eq!(line, 1);
}

#[test]
fn escape_directive_and_continuations() {
    let df = parse(
        "# escape=`\nFROM scratch\nRUN a `\n  # comment\n  b\nWORKDIR C:\\x\n",
        "D",
    )
    .unwrap();
    assert_eq!(df.escape, '`');
    let s = &df.stages[0].steps;
    assert_eq!(
        s[0].instr,
        Instr::Run {
            cmd: Cmd::Shell("a   b".into()),
            script: None
        }
    );
    assert_eq!(s[1].line, 6);
    assert_eq!(s[1].instr, Instr::Workdir("C:\\x".into()));
}

#[test]
fn onbuild_trigger_parses_at_the_child_line() {
    let step = super::dockerfile::parse_trigger("COPY a /b", 7, "Dockerfile").unwrap();
    assert_eq!(step.line, 7);
    assert!(matches!(step.instr, Instr::Copy { .. }));
}

#[test]
fn run_heredoc_with_a_command_goes_to_the_shell_whole() {
    let df = parse(
        "FROM scratch\nRUN <<EOF cat > /x\nhello\nEOF\nUSER 1\n",
        "D",
    )
    .unwrap();
    let s = &df.stages[0].steps;
    assert_eq!(
        s[0].instr,
        Instr::Run {
            cmd: Cmd::Shell("<<EOF cat > /x\nhello\nEOF".into()),
            script: None
        }
    );
    assert_eq!(s[1].line, 5);
}

mod copy_tar {
    use std::collections::BTreeMap;

    use crate::build::copy::{CopySpec, write_tar};
    use crate::build::ignore::Ignore;

    /// Entries of the layer tar as `name -> (mode, uid, content or link)`.
    fn entries(spec: &CopySpec<'_>) -> Result<BTreeMap<String, (u32, u64, String)>, String> {
        let mut out = vec![];
        write_tar(spec, &mut out)?;
        let mut ar = tar::Archive::new(&out[..]);
        let mut m = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mode = e.header().mode().unwrap();
            let uid = e.header().uid().unwrap();
            let mut body = String::new();
            if let Some(l) = e.link_name().unwrap() {
                body = format!("-> {}", l.display());
            } else {
                std::io::Read::read_to_string(&mut e, &mut body).unwrap();
            }
            m.insert(name, (mode, uid, body));
        }
        Ok(m)
    }

    fn ctx() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("src/sub")).unwrap();
        std::fs::write(p.join("a.txt"), "a").unwrap();
        std::fs::write(p.join("b.txt"), "b").unwrap();
        std::fs::write(p.join("src/x.rs"), "x").unwrap();
        std::fs::write(p.join("src/sub/y.log"), "y").unwrap();
        std::fs::write(p.join("src/sub/keep.log"), "k").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("evil")).unwrap();
        std::os::unix::fs::symlink("x.rs", p.join("src/link")).unwrap();
        d
    }

    fn spec<'a>(
        root: &'a std::path::Path,
        ignore: Option<&'a Ignore>,
        srcs: &[&str],
        dest: &str,
        kind: &'a dyn Fn(&str) -> Option<bool>,
    ) -> CopySpec<'a> {
        CopySpec {
            root,
            ignore,
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
            heredocs: vec![],
            dest: dest.into(),
            chown: None,
            chmod: None,
            add: false,
            image_kind: kind,
        }
    }

    #[test]
    fn files_dirs_wildcards_and_destinations() {
        let d = ctx();
        let none = |_: &str| None;
        let usr = |p: &str| (p == "usr").then_some(true);
        // One file to a file path; parents the image lacks are created.
        let m = entries(&spec(d.path(), None, &["a.txt"], "/opt/app/renamed", &none)).unwrap();
        assert_eq!(m["opt/app/renamed"].2, "a");
        assert!(
            m.contains_key("opt/") && m.contains_key("opt/app/"),
            "{m:?}"
        );
        // Wildcards need a directory destination; parents the image has are left alone.
        let m = entries(&spec(d.path(), None, &["*.txt"], "/usr/", &usr)).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["usr/a.txt", "usr/b.txt"]);
        let e = entries(&spec(d.path(), None, &["*.txt"], "/one", &none)).unwrap_err();
        assert!(e.contains("must be a directory"), "{e}");
        // A directory's content goes into the destination; symlinks inside stay links.
        let m = entries(&spec(d.path(), None, &["src"], "/app", &none)).unwrap();
        assert_eq!(m["app/x.rs"].2, "x");
        assert_eq!(m["app/link"].2, "-> x.rs");
        assert!(m.contains_key("app/sub/y.log"));
    }

    #[test]
    fn dockerignore_chown_chmod_and_escapes() {
        let d = ctx();
        let none = |_: &str| None;
        let ig = Ignore::parse("**/*.log\n!src/sub/keep.log\n").unwrap();
        let mut s = spec(d.path(), Some(&ig), &["src"], "/app/", &none);
        s.chown = Some((1000, 1000));
        s.chmod = Some(0o640);
        let m = entries(&s).unwrap();
        assert!(!m.contains_key("app/sub/y.log"), "{m:?}");
        assert_eq!(m["app/sub/keep.log"], (0o640, 1000, "k".into()));
        // Sources cannot leave the context, by path or through a symlink.
        let e = entries(&spec(d.path(), None, &["../x"], "/y", &none)).unwrap_err();
        assert!(e.contains("outside the build context"), "{e}");
        let e = entries(&spec(d.path(), None, &["evil"], "/y", &none)).unwrap_err();
        assert!(
            e.contains("not found"),
            "the link resolves inside the context: {e}"
        );
        let mut h = spec(d.path(), None, &[], "/etc/", &none);
        h.heredocs = vec!["x\n".into()];
        let e = entries(&h).unwrap_err();
        assert!(e.contains("needs a file destination"), "{e}");
        h.dest = "/etc/conf".into();
        assert_eq!(entries(&h).unwrap()["etc/conf"].2, "x\n");
        let e = entries(&spec(d.path(), Some(&ig), &["src/sub/y.log"], "/y", &none)).unwrap_err();
        assert!(e.contains(".dockerignore"), "{e}");
    }
}

#[test]
fn copy_destinations_follow_symlinked_dirs_of_the_image() {
    let lower = tempfile::tempdir().unwrap();
    let upper = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(lower.path().join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", lower.path().join("bin")).unwrap();
    std::os::unix::fs::symlink("/usr/bin", upper.path().join("sbin")).unwrap();
    std::os::unix::fs::symlink("../../etc", upper.path().join("escape")).unwrap();
    let dirs = [lower.path().to_path_buf(), upper.path().to_path_buf()];
    let r = |d| super::steps::resolve_dest(&dirs, d);
    assert_eq!(r("/bin/"), "/usr/bin/");
    assert_eq!(r("/bin/tool"), "/usr/bin/tool");
    assert_eq!(r("/sbin/x/"), "/usr/bin/x/");
    assert_eq!(
        r("/bin"),
        "/bin",
        "the last component of a file destination is kept"
    );
    assert_eq!(
        r("/escape/x"),
        "/etc/x",
        "links cannot climb above the root"
    );
    assert_eq!(r("/app/"), "/app/");
}

#[test]
fn run_heredoc_after_the_command_goes_to_the_shell_whole() {
    let df = parse(
        "FROM scratch\nRUN --network=none cat <<EOF > /f && cat <<'X' >> /f\nhello $HOME\nEOF\nworld\nX\nUSER 1\n",
        "D",
    )
    .unwrap();
    let s = &df.stages[0].steps;
    assert_eq!(s[0].flag("network"), Some("none"));
    assert_eq!(
        s[0].instr,
        Instr::Run {
            cmd: Cmd::Shell("cat <<EOF > /f && cat <<'X' >> /f\nhello $HOME\nEOF\nworld\nX".into()),
            script: None
        }
    );
    assert_eq!(s[1].line, 7);
    let e = parse("FROM scratch\nRUN cat <<EOF > /f\nhello\n", "D").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("D:2: the heredoc <<EOF is never terminated"),
        "{e}"
    );
}
