//! Bad input never panics (issue 15): random and hostile Dockerfiles, layer tars, manifests
//! and image configs give a value or an error. Bounded case counts keep this in CI's budget;
//! `PROPTEST_CASES=20000 cargo test -p rcompose-engine --test robustness` runs it longer.
//! The unpacker is also held to its promise: nothing is ever written outside the layer.

use std::io::Cursor;
use std::path::Path;

use proptest::prelude::*;
use rcompose_engine::build::dockerfile;
use rcompose_engine::store::manifest::parse_any;
use rcompose_engine::unpack::unpack_layer;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    }
}

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "MAINTAINER",
    "# escape=",
    "# syntax=",
];

/// One tar entry as a hostile layer might carry it.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: u8,
    link: String,
    data: Vec<u8>,
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a",
            "b",
            "..",
            ".",
            "",
            "etc",
            ".wh.a",
            ".wh..wh..opq",
            "dev",
            "x/",
            "/",
        ]),
        1..5,
    )
    .prop_map(|parts| parts.join("/"))
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        name(),
        prop::sample::select(vec![b'0', b'1', b'2', b'5', b'3', b'6', b'7', b'x', b'L']),
        prop_oneof![name(), Just("/".to_string()), Just("../../..".to_string())],
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(name, kind, link, data)| Entry {
            name,
            kind,
            link,
            data,
        })
}

/// A tar written header by header, names and link targets copied in raw (the tar crate's own
/// setters refuse `..`, which is exactly what a hostile layer contains).
fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = vec![];
    for e in entries {
        let mut h = tar::Header::new_old();
        let raw = h.as_old_mut();
        let n = e.name.as_bytes();
        raw.name[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
        let l = e.link.as_bytes();
        raw.linkname[..l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
        raw.linkflag[0] = e.kind;
        h.set_mode(0o755);
        h.set_size(if e.kind == b'0' {
            e.data.len() as u64
        } else {
            0
        });
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        if e.kind == b'0' {
            out.extend_from_slice(&e.data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn entries_under(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn dockerfiles_never_panic(
        lines in prop::collection::vec(
            (prop::sample::select(INSTRUCTIONS), "[ -~]{0,40}", prop::bool::ANY),
            0..8,
        )
    ) {
        let text: String = lines
            .iter()
            .map(|(i, rest, cont)| format!("{i} {rest}{}\n", if *cont { " \\" } else { "" }))
            .collect();
        let _ = dockerfile::parse(&text, "Dockerfile");
    }

    #[test]
    fn random_dockerfile_text_never_panics(text in "[ -~\\n\\\\]{0,200}") {
        let _ = dockerfile::parse(&text, "Dockerfile");
    }

    #[test]
    fn hostile_layers_never_panic_nor_write_outside(entries in prop::collection::vec(entry(), 0..8)) {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&dest).unwrap();
        std::fs::create_dir(&outside).unwrap();
        let _ = unpack_layer(Cursor::new(tar_of(&entries)), &dest);
        let mut top = entries_under(tmp.path());
        top.sort();
        prop_assert_eq!(top, vec!["layer".to_string(), "outside".to_string()]);
        prop_assert!(entries_under(&outside).is_empty());
    }

    #[test]
    fn random_bytes_as_a_layer_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let tmp = tempfile::tempdir().unwrap();
        let _ = unpack_layer(Cursor::new(bytes), tmp.path());
    }

    #[test]
    fn manifests_never_panic(
        media in prop::option::of(prop::sample::select(vec![
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ])),
        size in prop_oneof![Just("-1".to_string()), Just("18446744073709551615".to_string()),
            Just("1e400".to_string()), "[0-9]{1,25}"],
        digest in "[a-z0-9:]{0,80}",
        n in 0usize..3,
    ) {
        let desc = format!(r#"{{"mediaType":"x","digest":"{digest}","size":{size}}}"#);
        let layers = vec![desc.clone(); n].join(",");
        let text = format!(
            r#"{{"schemaVersion":2,{}"config":{desc},"layers":[{layers}],"manifests":[{layers}]}}"#,
            media.map(|m| format!(r#""mediaType":"{m}","#)).unwrap_or_default()
        );
        let _ = parse_any(text.as_bytes(), None);
        let _ = parse_any(text.replace(",\"manifests\":[", ",\"x\":[").as_bytes(), media);
    }

    #[test]
    fn random_json_as_a_manifest_never_panics(text in "[\\[\\]{}\":,0-9a-z ]{0,120}") {
        let _ = parse_any(text.as_bytes(), None);
    }

    #[test]
    fn image_configs_with_absurd_values_never_panic(
        n in prop_oneof![Just(0usize), Just(1), Just(5000)],
        big in prop_oneof![Just("1e308".to_string()), Just("-9223372036854775809".to_string()),
            "[0-9]{1,30}"],
    ) {
        let ids = vec!["\"sha256:0\""; n].join(",");
        let text = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"{big}","config":{{"Env":[{ids}],"ExposedPorts":{{"{big}/tcp":{{}}}},"StopTimeout":{big}}},"rootfs":{{"type":"layers","diff_ids":[{ids}]}},"history":[{{"created":"{big}","empty_layer":{big}}}]}}"#
        );
        let _ = serde_json::from_str::<oci_spec::image::ImageConfiguration>(&text);
    }
}
