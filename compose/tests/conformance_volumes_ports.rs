//! compose v2's volume and port short syntaxes, case by case.
//!
//! Source of the expected values: compose-go `format/volume_test.go` (every TestParseVolume*
//! function and TestIsFilePath; TestVolumeStringer renders a volume back and has no
//! counterpart here) and `types/types_test.go` (TestParsePortConfig). Volumes are parsed with
//! path resolution off (`config --no-path-resolution`), so sources compare as written.

mod common;

use std::path::Path;

use common::run_table;
use rcompose_compose::load::canonical::PathContext;
use rcompose_compose::load::short_syntax::{parse_port, parse_volume, split_volume};
use yaml_serde::Value;

fn ctx() -> PathContext<'static> {
    PathContext {
        base_dir: Path::new("/proj"),
        file_dir: Path::new("/proj"),
        home: Some("/home/user"),
        file: "compose.yaml",
        resolve_paths: false,
    }
}

/// The expected long form of one volume: type, source, target, read-only, and the `bind`
/// (create_host_path, selinux, propagation) or `volume` (nocopy) part; `None` for a part
/// compose-go leaves out.
#[derive(Clone, Copy)]
struct Vol {
    kind: &'static str,
    source: &'static str,
    target: &'static str,
    read_only: bool,
    bind: Option<(&'static str, &'static str)>,
    volume: Option<bool>,
}

const fn bind(source: &'static str, target: &'static str) -> Vol {
    Vol {
        kind: "bind",
        source,
        target,
        read_only: false,
        bind: Some(("", "")),
        volume: None,
    }
}

const fn named(source: &'static str, target: &'static str) -> Vol {
    Vol {
        kind: "volume",
        source,
        target,
        read_only: false,
        bind: None,
        volume: Some(false),
    }
}

impl Vol {
    const fn ro(mut self) -> Self {
        self.read_only = true;
        self
    }
    const fn selinux(mut self, label: &'static str) -> Self {
        self.bind = Some((label, ""));
        self
    }
    const fn propagation(mut self, mode: &'static str) -> Self {
        self.bind = Some(("", mode));
        self
    }
    const fn no_volume_part(mut self) -> Self {
        self.volume = None;
        self
    }
    const fn nocopy(mut self) -> Self {
        self.volume = Some(true);
        self
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn check_volume(spec: &str, want: &Result<Vol, &str>) -> Result<(), String> {
    let got = parse_volume(spec, &ctx());
    let want = match (got, want) {
        (Err(e), Err(fragment)) if e.contains(fragment) => return Ok(()),
        (Ok(v), Ok(want)) => (v, want),
        (got, _) => return Err(format!("{spec:?}: got {got:?}")),
    };
    let (v, w) = want;
    let bind = v.get("bind").map(|b| {
        assert_eq!(
            b.get("create_host_path").and_then(Value::as_bool),
            Some(true)
        );
        (text(b, "selinux"), text(b, "propagation"))
    });
    let volume = v
        .get("volume")
        .map(|m| m.get("nocopy").and_then(Value::as_bool).unwrap_or(false));
    let agrees = text(&v, "type") == w.kind
        && text(&v, "source") == w.source
        && text(&v, "target") == w.target
        && v.get("read_only").and_then(Value::as_bool).unwrap_or(false) == w.read_only
        && bind == w.bind.map(|(a, b)| (a.to_string(), b.to_string()))
        && volume == w.volume;
    match agrees {
        true => Ok(()),
        false => Err(format!(
            "{spec:?}: got {}",
            yaml_serde::to_string(&v).unwrap()
        )),
    }
}

#[test]
fn volume_short_syntax_51_cases() {
    let table: Vec<(&str, Result<Vol, &str>)> = vec![
        // TestParseVolumeAnonymousVolume, TestParseVolumeAnonymousVolumeWindows
        ("/path", Ok(named("", "/path"))),
        ("/path/foo", Ok(named("", "/path/foo"))),
        ("C:\\path", Ok(named("", "C:\\path"))),
        ("Z:\\path\\foo", Ok(named("", "Z:\\path\\foo"))),
        // TestParseVolumeTooManyColons, TestParseVolumeShortVolumes, TestParseVolumeMissingSource
        ("/foo:/foo:ro:foo", Err("too many colons")),
        (".", Ok(named("", ".").no_volume_part())),
        ("/a", Ok(named("", "/a").no_volume_part())),
        (":foo", Err("empty section between colons")),
        ("/foo::ro", Err("empty section between colons")),
        // TestParseVolumeBindMount
        ("./foo:/target", Ok(bind("./foo", "/target"))),
        ("~/thing:/target", Ok(bind("~/thing", "/target"))),
        ("../other:/target", Ok(bind("../other", "/target"))),
        ("/foo:/target", Ok(bind("/foo", "/target"))),
        ("/home/user:/target", Ok(bind("/home/user", "/target"))),
        // TestParseVolumeRelativeBindMountWindows
        ("./foo:d:\\target", Ok(bind("./foo", "d:\\target"))),
        ("~/thing:d:\\target", Ok(bind("~/thing", "d:\\target"))),
        ("../other:d:\\target", Ok(bind("../other", "d:\\target"))),
        ("D:\\path:d:\\target", Ok(bind("D:\\path", "d:\\target"))),
        (
            "/home/user:d:\\target",
            Ok(bind("/home/user", "d:\\target")),
        ),
        // TestParseVolumeWithBindOptions, …SELinuxShared, …SELinuxPrivate, …Windows
        (
            "/source:/target:slave",
            Ok(bind("/source", "/target").propagation("slave")),
        ),
        (
            "/source:/target:ro,z",
            Ok(bind("/source", "/target").ro().selinux("z")),
        ),
        (
            "/source:/target:ro,Z",
            Ok(bind("/source", "/target").ro().selinux("Z")),
        ),
        (
            "C:\\source\\foo:D:\\target:ro,rprivate",
            Ok(bind("C:\\source\\foo", "D:\\target")
                .ro()
                .propagation("rprivate")),
        ),
        // TestParseVolumeWithInvalidVolumeOptions (an unknown option is ignored)
        ("name:/target:bogus", Ok(named("name", "/target"))),
        // TestParseVolumeWithVolumeOptions, TestParseVolumeWithReadOnly, TestParseVolumeWithRW
        ("name:/target:nocopy", Ok(named("name", "/target").nocopy())),
        ("./foo:/target:ro", Ok(bind("./foo", "/target").ro())),
        (
            "/home/user:/target:ro",
            Ok(bind("/home/user", "/target").ro()),
        ),
        ("./foo:/target:rw", Ok(bind("./foo", "/target"))),
        ("/home/user:/target:rw", Ok(bind("/home/user", "/target"))),
        // TestParseVolumeWindowsNamedPipe
        (
            r"\\.\pipe\docker_engine:\\.\pipe\inside",
            Ok(bind(r"\\.\pipe\docker_engine", r"\\.\pipe\inside")),
        ),
        // TestIsFilePath: a source with a non-ASCII second character is a volume name
        ("a\u{754c}:/x", Ok(named("a\u{754c}", "/x"))),
        // TestParseVolumeInvalidEmptySpec, TestParseVolumeInvalidSections
        ("", Err("invalid empty volume spec")),
        ("/foo::rw", Err("empty section between colons")),
        // TestParseVolumeWithVariableDefaultValue (as written, before interpolation)
        (
            "/tmp:/tmp/${BUG_HERE:-DEFAULT}/path",
            Ok(bind("/tmp", "/tmp/${BUG_HERE:-DEFAULT}/path")),
        ),
        (
            "/tmp/${VAR:-default}:/target",
            Ok(bind("/tmp/${VAR:-default}", "/target")),
        ),
        (
            "/src/${SRC:-default}:/dst/${DST:-value}",
            Ok(bind("/src/${SRC:-default}", "/dst/${DST:-value}")),
        ),
        (
            "/tmp:/tmp/${VAR:-}/path",
            Ok(bind("/tmp", "/tmp/${VAR:-}/path")),
        ),
        (
            "/tmp:/tmp/${VAR:-default/path/value}/file",
            Ok(bind("/tmp", "/tmp/${VAR:-default/path/value}/file")),
        ),
        (
            "/tmp:/tmp/${VAR1:-val1}/${VAR2:-val2}/path",
            Ok(bind("/tmp", "/tmp/${VAR1:-val1}/${VAR2:-val2}/path")),
        ),
        (
            "/tmp:/tmp/${VAR:-default}/path:ro",
            Ok(bind("/tmp", "/tmp/${VAR:-default}/path").ro()),
        ),
        (
            "/tmp:/tmp/${WORKS_AS_EXPECTED}/path",
            Ok(bind("/tmp", "/tmp/${WORKS_AS_EXPECTED}/path")),
        ),
        (
            "/tmp:/tmp/${VAR1:-default}/${VAR2}/path",
            Ok(bind("/tmp", "/tmp/${VAR1:-default}/${VAR2}/path")),
        ),
        (
            "/tmp:/tmp/${TIME:-12:30:45}/path",
            Ok(bind("/tmp", "/tmp/${TIME:-12:30:45}/path")),
        ),
        (
            "myvolume:/data/${VAR:-default}/path",
            Ok(named("myvolume", "/data/${VAR:-default}/path")),
        ),
        (
            "/src:/target/${VAR:-default}/path:slave,ro",
            Ok(bind("/src", "/target/${VAR:-default}/path")
                .ro()
                .propagation("slave")),
        ),
        // TestParseVolumeWithVariableDefaultValueWindows
        (
            "C:\\source:D:\\target\\${VAR:-default}\\path",
            Ok(bind("C:\\source", "D:\\target\\${VAR:-default}\\path")),
        ),
        (
            "C:\\src\\${VAR:-default}:D:\\target",
            Ok(bind("C:\\src\\${VAR:-default}", "D:\\target")),
        ),
        (
            "C:\\source:D:\\${VAR:-default}\\path:ro",
            Ok(bind("C:\\source", "D:\\${VAR:-default}\\path").ro()),
        ),
        // TestParseVolumeWithNestedBraces
        (
            "/tmp:/tmp/${VAR:-{default}}/path",
            Ok(bind("/tmp", "/tmp/${VAR:-{default}}/path")),
        ),
        (
            "/tmp:/tmp/path/${VAR:-default}",
            Ok(bind("/tmp", "/tmp/path/${VAR:-default}")),
        ),
        (
            "/tmp:/${VAR:-default}/path",
            Ok(bind("/tmp", "/${VAR:-default}/path")),
        ),
    ];
    run_table("format/volume_test.go", 51, &table, |(spec, want)| {
        check_volume(spec, want)
    });
}

/// TestParseVolumeSplitCases: whether a spec has a source (more than one field).
#[test]
fn volume_split_29_cases() {
    let table: [(&str, bool); 29] = [
        (r"C:\foo:d:", true),
        (r":C:\foo:d:", false),
        ("/foo:/bar:ro", true),
        ("/foo:/bar:ro", true),
        (r"C:\foo\:/foo", true),
        (r"d:\", false),
        ("d:", false),
        (r"d:\path", false),
        (r"d:\path with space", false),
        (r"d:\pathandmode:rw", true),
        (r"c:\:d:\", true),
        (r"c:\windows\:d:", true),
        (r"c:\windows:d:\s p a c e", true),
        (r"c:\windows:d:\s p a c e:RW", true),
        (r"c:\program files:d:\s p a c e i n h o s t d i r", true),
        ("0123456789name:d:", true),
        ("MiXeDcAsEnAmE:d:", true),
        ("name:D:", true),
        ("name:D::rW", true),
        ("name:D::RW", true),
        ("c:/:d:/forward/slashes/are/good/too", true),
        (r"c:\Windows", false),
        (r"c:\Program Files (x86)", false),
        ("", false),
        (".", false),
        (r"..\", false),
        (r"c:\:..\", true),
        (r"c:\:d:\:xyzzy", true),
        ("/tmp/x/y:/foo/x/y", true),
    ];
    run_table(
        "TestParseVolumeSplitCases",
        29,
        &table,
        |(spec, has_source)| {
            let got = split_volume(spec)
                .map(|f| !f.source.is_empty())
                .unwrap_or(false);
            match got == *has_source {
                true => Ok(()),
                false => Err(format!("{spec:?}: source found = {got}, want {has_source}")),
            }
        },
    );
}

/// (host_ip, published, target, protocol) of one published port.
type Port = (&'static str, &'static str, u64, &'static str);

#[test]
fn port_short_syntax_15_cases() {
    let table: [(&str, Result<&[Port], &str>); 15] = [
        ("80", Ok(&[("", "", 80, "tcp")])),
        ("80:8080", Ok(&[("", "80", 8080, "tcp")])),
        ("80-90:8080", Ok(&[("", "80-90", 8080, "tcp")])),
        ("8080:80/tcp", Ok(&[("", "8080", 80, "tcp")])),
        ("80:8080/udp", Ok(&[("", "80", 8080, "udp")])),
        (
            "80-81:8080-8081/tcp",
            Ok(&[("", "80", 8080, "tcp"), ("", "81", 8081, "tcp")]),
        ),
        (
            "80-82:8080-8082/udp",
            Ok(&[
                ("", "80", 8080, "udp"),
                ("", "81", 8081, "udp"),
                ("", "82", 8082, "udp"),
            ]),
        ),
        ("80-82:8080/udp", Ok(&[("", "80-82", 8080, "udp")])),
        ("80-80:8080/tcp", Ok(&[("", "80", 8080, "tcp")])),
        ("9999999", Err("9999999")),
        ("80/xyz", Err("xyz")),
        ("tcp", Err("tcp")),
        ("udp", Err("udp")),
        ("", Err("")),
        ("1.1.1.1:80:80", Ok(&[("1.1.1.1", "80", 80, "tcp")])),
    ];
    run_table("TestParsePortConfig", 15, &table, |(spec, want)| {
        match (parse_port(spec), want) {
            (Ok(ports), Ok(want)) => {
                let got: Vec<(String, String, u64, String)> = ports
                    .iter()
                    .map(|p| {
                        assert_eq!(text(p, "mode"), "ingress");
                        (
                            text(p, "host_ip"),
                            text(p, "published"),
                            p.get("target").and_then(Value::as_u64).unwrap_or_default(),
                            text(p, "protocol"),
                        )
                    })
                    .collect();
                let want: Vec<(String, String, u64, String)> = want
                    .iter()
                    .map(|(ip, p, t, proto)| (ip.to_string(), p.to_string(), *t, proto.to_string()))
                    .collect();
                match got == want {
                    true => Ok(()),
                    false => Err(format!("{spec:?}: got {got:?}")),
                }
            }
            (Err(e), Err(fragment)) if e.contains(fragment) => Ok(()),
            (got, _) => Err(format!("{spec:?}: got {got:?}")),
        }
    });
}
