//! compose v2's loader on whole projects: overrides, `extends`, `include`-with-`extends` and
//! path resolution, case by case.
//!
//! Source of the expected values: compose-go `loader/override_test.go` (TestOverrideNetworks,
//! TestOverrideBuildContext, TestOverrideDepends_on, TestOverridePartial, TestOverrideVolume,
//! TestOverrideMiddle, TestOverrideSelfExtends), `loader/extends_test.go` (TestExtends,
//! TestExtendsPort, TestExtendsUlimits, TestExtendsRelativePath, TestExtendsWihtMissingService,
//! TestIncludeWithExtends, TestExtendsPortOverride, TestLoadExtendsSameFile,
//! TestExtendsWithServiceRef, TestLoadExtendsDependsOn, TestLoadExtendsListener,
//! TestLoadExtendsListenerMultipleFiles, TestExtendsReset, TestExtendsWithInterpolation) and
//! `loader/paths_test.go` (TestResolveBuildContextPaths, TestResolveAdditionalContexts) and
//! `loader/include_test.go` (all seven functions; TestIncludeWithProjectDirectory with path
//! resolution on, so its relative paths compare as absolute ones). The files under
//! `tests/conformance/loader/testdata/` are those of compose-go's `loader/testdata/`.
//! Left out: TestExtendsNil (it loads a service that is null with schema validation switched
//! off, which `config` cannot do) and TestResolveComposeFilePaths (a Go function's API).

mod common;

use std::path::Path;

use common::run_table;
use rcompose_compose::load::{LoadOptions, load};
use rcompose_compose::render;

/// One case: files written into a fresh directory (next to a copy of `testdata/`), the `-f`
/// files to load (none: the first written file), and what the `config` output must show.
struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    load: &'static [&'static str],
    resolve_paths: bool,
    consistency: bool,
    has: &'static [&'static str],
    lacks: &'static [&'static str],
    error: Option<&'static str>,
    environ: &'static [(&'static str, &'static str)],
    normalize: bool,
    /// `--project-directory` (compose-go's tests give their `WorkingDir` explicitly).
    project_directory: Option<&'static str>,
}

const BASE: Case = Case {
    name: "",
    files: &[],
    load: &[],
    resolve_paths: true,
    consistency: true,
    has: &[],
    lacks: &[],
    error: None,
    environ: &[],
    normalize: true,
    project_directory: None,
};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn check(case: &Case) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/loader/testdata");
    copy_dir(&testdata, &dir.join("testdata"));
    for (path, text) in case.files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let files = match case.load {
        [] => vec![case.files[0].0.to_string()],
        load => load.iter().map(|f| f.to_string()).collect(),
    };
    let opts = LoadOptions {
        files,
        working_dir: dir.to_path_buf(),
        resolve_paths: case.resolve_paths,
        consistency: case.consistency,
        normalize: case.normalize,
        project_directory: case.project_directory.map(|d| dir.join(d)),
        environment: case
            .environ
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let name = case.name;
    let got = load(&opts).map_err(|e| e.to_string()).and_then(|loaded| {
        if case.consistency {
            rcompose_compose::graph::DependencyGraph::new(&loaded.project)
                .map_err(|e| e.to_string())?;
        }
        render::to_yaml(&loaded.project).map_err(|e| e.to_string())
    });
    let dir_text = dir.display().to_string();
    match (got, case.error) {
        (Ok(out), None) => {
            let out = out.replace(&dir_text, "<DIR>");
            if let Some(missing) = case.has.iter().find(|h| !out.contains(*h)) {
                return Err(format!("{name}: output lacks {missing:?}:\n{out}"));
            }
            if let Some(extra) = case.lacks.iter().find(|l| out.contains(*l)) {
                return Err(format!("{name}: output has {extra:?}:\n{out}"));
            }
            Ok(())
        }
        (Err(e), Some(fragment)) if e.contains(fragment) => Ok(()),
        (got, _) => Err(format!("{name}: got {got:?}")),
    }
}

const EXTENDS_SERVICE_REF: [(&str, &str); 4] = [
    ("volumes_from", "with_volumes_from"),
    ("depends_on", "with_depends_on"),
    ("shared ipc", "with_ipc"),
    ("shared network_mode", "with_network_mode"),
];

#[test]
fn override_tests_7_cases() {
    let cases = [
        Case {
            name: "TestOverrideNetworks",
            files: &[
                (
                    "base.yaml",
                    "name: test-override-networks\nservices:\n  test:\n    image: test\n    networks:\n      - test_network\n\nnetworks:\n  test_network: {}\n",
                ),
                (
                    "override.yaml",
                    "services:\n  test:\n    image: test\n    networks:\n      test_network: \n        aliases:\n          - alias1\n          - alias2\n",
                ),
            ],
            load: &["base.yaml", "override.yaml"],
            has: &[
                "      test_network:\n        aliases:\n          - alias1\n          - alias2\n",
            ],
            ..BASE
        },
        Case {
            name: "TestOverrideBuildContext",
            files: &[
                (
                    "base.yaml",
                    "name: test-override-networks\nservices:\n  test:\n    build: .\n",
                ),
                (
                    "override.yaml",
                    "services:\n  test:\n    build:\n      context: src\n",
                ),
            ],
            load: &["base.yaml", "override.yaml"],
            resolve_paths: false,
            has: &["      context: src\n"],
            ..BASE
        },
        Case {
            name: "TestOverrideDepends_on",
            files: &[
                (
                    "base.yaml",
                    "name: test-override-networks\nservices:\n  test:\n    image: test\n    depends_on:\n      - foo\n  foo:\n    image: foo\n",
                ),
                (
                    "override.yaml",
                    "services:\n  test:\n    depends_on:\n      foo:\n        condition: service_healthy\n        required: false\n",
                ),
            ],
            load: &["base.yaml", "override.yaml"],
            has: &["      foo:\n        condition: service_healthy\n        required: false\n"],
            ..BASE
        },
        Case {
            name: "TestOverridePartial",
            files: &[
                (
                    "base.yaml",
                    "name: test-override-networks\nservices:\n  test:\n    image: test\n    depends_on:\n      foo:\n        condition: service_healthy\n\n  foo: \n    image: foo\n",
                ),
                (
                    "override.yaml",
                    "services:\n  test:\n    depends_on:\n      foo:\n        required: false\n",
                ),
            ],
            load: &["base.yaml", "override.yaml"],
            has: &["condition: service_healthy", "required: false"],
            ..BASE
        },
        Case {
            name: "TestOverrideVolume",
            files: &[
                (
                    "base.yaml",
                    "name: test-override-volume\nservices:\n  test:\n    image: test\n    volumes:\n      - ./src:/src\n",
                ),
                (
                    "override.yaml",
                    "services:\n  test:\n    volumes:\n      - ./src:/src\n",
                ),
            ],
            load: &["base.yaml", "override.yaml"],
            has: &[
                "    volumes:\n      - type: bind\n        source: <DIR>/src\n        target: /src\n        bind:\n          create_host_path: true\n",
            ],
            lacks: &["target: /src\n        bind:\n          create_host_path: true\n      - "],
            ..BASE
        },
        Case {
            name: "TestOverrideMiddle",
            files: &[
                (
                    "compose.yaml",
                    "name: test\nservices:\n  test:\n    image: test\n    extends:\n      file: ./override.yaml\n      service: override\n    volumes:\n      - /zot:/zot\n    networks: !override\n      - zot\n\nnetworks:\n  zot: {}\n",
                ),
                (
                    "base.yaml",
                    "services:\n  base:\n    volumes:\n      - /foo:/foo\n    networks:\n      - foo\n",
                ),
                (
                    "override.yaml",
                    "services:\n  override:\n    extends:\n      file: ./base.yaml\n      service: base\n    volumes: !override\n      -  /bar:/bar\n    networks: !override\n      - bar\n",
                ),
            ],
            has: &[
                "source: /bar",
                "source: /zot",
                "    networks:\n      zot: null\n",
            ],
            lacks: &["/foo", "bar: null", "foo: null"],
            ..BASE
        },
        Case {
            name: "TestOverrideSelfExtends",
            files: &[(
                "compose.yaml",
                "name: test-override-extends\nservices:\n  depend_base:\n    image: nginx\n    ports:\n      - \"8092:80\"\n  depend_one:\n    image: nginx\n    ports:\n      - \"8091:80\"\n  depend_two:\n    extends:\n      service: depend_one\n  main_one:\n    image: nginx\n    depends_on:\n      - depend_one\n    ports:\n      - \"8090:80\"\n  main_two:\n    extends: main_one\n    depends_on: !override\n      - depend_two\n  main:\n    extends:\n      service: main_two\n    depends_on:\n      - depend_base\n",
            )],
            has: &[
                "  main:\n    depends_on:\n      depend_base:\n        condition: service_started\n        required: true\n      depend_two:\n        condition: service_started\n        required: true\n",
            ],
            ..BASE
        },
    ];
    run_table("loader/override_test.go", 7, &cases, check);
}

#[test]
fn extends_tests_21_cases() {
    let mut cases = vec![
        Case {
            name: "TestExtends",
            files: &[(
                "compose.yaml",
                "name: test-extends\nservices:\n  test1:\n    extends:\n      file: testdata/extends/base.yaml\n      service: base\n    hostname: test1\n\n  test2:\n    extends:\n      file: testdata/extends/base.yaml\n      service: base\n    hostname: test2\n\n  test3:\n    extends:\n      file: testdata/extends/base.yaml\n      service: another\n    hostname: test3\n",
            )],
            has: &[
                "hostname: test1",
                "hostname: test2",
                "hostname: test3",
                "image: base",
            ],
            ..BASE
        },
        Case {
            name: "TestExtendsPort",
            files: &[(
                "compose.yaml",
                "name: test-extends-port\nservices:\n  test:\n    image: test\n    extends: \n      file: testdata/extends/base.yaml\n      service: with-port\n",
            )],
            has: &["target: 8000\n"],
            ..BASE
        },
        Case {
            name: "TestExtendsUlimits",
            files: &[(
                "compose.yaml",
                "name: test-extends\nservices:\n  test:\n    extends:\n      file: testdata/extends/base.yaml\n      service: withUlimits\n",
            )],
            has: &["nproc: 65535"],
            ..BASE
        },
        Case {
            name: "TestExtendsRelativePath",
            files: &[(
                "compose.yaml",
                "name: test-extends-port\nservices:\n  test:\n    extends: \n      file: testdata/extends/base.yaml\n      service: with-build\n",
            )],
            resolve_paths: false,
            has: &["context: testdata/extends\n"],
            ..BASE
        },
        Case {
            name: "TestExtendsWihtMissingService",
            files: &[(
                "compose.yaml",
                "name: test-extends-port\nservices:\n  test:\n    image: test\n    extends:\n      file: testdata/extends/base.yaml\n",
            )],
            error: Some("service"),
            ..BASE
        },
        Case {
            name: "TestIncludeWithExtends",
            files: &[(
                "compose.yaml",
                "name: test-include-with-extends\ninclude: \n  - testdata/extends/nested.yaml\n",
            )],
            resolve_paths: false,
            has: &["  with-build:\n    build:\n"],
            ..BASE
        },
        Case {
            name: "TestExtendsPortOverride",
            files: &[(
                "override.yaml",
                "name: test-extends-port\nservices:\n  test:\n    extends:\n      file: testdata/extends/ports.yaml\n      service: test\n",
            )],
            load: &["testdata/extends/ports.yaml", "override.yaml"],
            project_directory: Some("."),
            has: &["published: \"8080\""],
            lacks: &["published: \"8080\"\n        protocol: tcp\n      - "],
            ..BASE
        },
        Case {
            name: "TestLoadExtendsSameFile",
            files: &[
                (
                    "compose.yaml",
                    "name: project\nservices:\n  out-base:\n    extends:\n      file: sub/compose.yaml\n      service: base\n  out-service:\n    extends:\n      file: sub/compose.yaml\n      service: service\n",
                ),
                (
                    "sub/compose.yaml",
                    "services:\n  base:\n    build:\n      context: ..\n  service:\n    extends: base\n    build:\n      target: target\n",
                ),
            ],
            consistency: false,
            has: &[
                "  out-base:\n    build:\n      context: <DIR>\n",
                "  out-service:\n    build:\n      context: <DIR>\n",
            ],
            ..BASE
        },
        Case {
            name: "TestLoadExtendsDependsOn",
            files: &[(
                "compose.yaml",
                "name: extends-depends_on\nservices:\n  service_a:\n    image: a\n    depends_on:\n      - service_c\n  \n  service_b:\n    extends: service_a\n    depends_on: !override\n      - service_a\n\n  service_c:\n    image: c",
            )],
            has: &[
                "  service_b:\n    depends_on:\n      service_a:\n        condition: service_started\n        required: true\n    image: a\n",
            ],
            ..BASE
        },
        Case {
            name: "TestLoadExtendsListener",
            files: &[(
                "compose.yaml",
                "  name: listener-extends\n  services:\n    foo:\n      image: busybox\n      extends: bar\n    bar:\n      image: alpine\n      command: echo\n      extends: wee\n    wee:\n      extends: last\n      command: echo\n    last:\n      image: python",
            )],
            consistency: false,
            has: &["  foo:\n    command:\n      - echo\n    image: busybox\n"],
            ..BASE
        },
        Case {
            name: "TestLoadExtendsListenerMultipleFiles",
            files: &[
                (
                    "compose.yaml",
                    "name: project\nservices:\n  a:\n    extends:\n      file: ./sub/compose.yaml\n      service: b\n",
                ),
                (
                    "sub/compose.yaml",
                    "services:\n  b:\n    extends: c\n    build:\n      target: fake\n  c:\n    command: echo\n",
                ),
            ],
            consistency: false,
            has: &["  a:\n    build:\n", "target: fake", "      - echo\n"],
            ..BASE
        },
        Case {
            name: "TestExtendsReset",
            files: &[(
                "compose.yaml",
                "name: test-extends-reset\nservices:\n  test:\n    extends:\n      file: testdata/extends/reset.yaml\n      service: base\n",
            )],
            has: &["image: alpine:latest"],
            lacks: &["command", "sleep"],
            ..BASE
        },
        Case {
            name: "TestExtendsWithInterpolation",
            files: &[(
                "compose.yaml",
                "name: test-extends-with-interpolation\nservices:\n  test:\n    extends: { file: testdata/extends/interpolated.yaml, service: foo }\n",
            )],
            has: &["source: /dev/null"],
            ..BASE
        },
    ];
    // TestExtendsWithServiceRef: a service taken from another file keeps its reference to
    // `zot`, which must then exist in this project; it loads once `zot` is added.
    for (label, service) in EXTENDS_SERVICE_REF {
        let text = format!(
            "name: test-extends\nservices:\n  bar:\n    extends:\n      file: ./testdata/extends/depends_on.yaml\n      service: {service}\n"
        );
        let with_zot = format!("{text}  zot:\n    image: zot\n");
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let files_without: &'static [(&'static str, &'static str)] =
            Box::leak(Box::new([("compose.yaml", leak(text))]));
        let files_with: &'static [(&'static str, &'static str)] =
            Box::leak(Box::new([("compose.yaml", leak(with_zot))]));
        cases.push(Case {
            name: leak(format!("TestExtendsWithServiceRef/{label}")),
            files: files_without,
            error: Some("\"zot\""),
            ..BASE
        });
        cases.push(Case {
            name: leak(format!("TestExtendsWithServiceRef/{label} with zot")),
            files: files_with,
            ..BASE
        });
    }
    run_table("loader/extends_test.go", 21, &cases, check);
}

#[test]
fn paths_tests_2_cases() {
    let cases = [
        Case {
            name: "TestResolveBuildContextPaths",
            files: &[(
                "compose.yaml",
                "name: test-resolve-build-context-paths\nservices:\n  foo:\n    build:\n      context: ./testdata\n      dockerfile: Dockerfile-sample\n",
            )],
            has: &[
                "    build:\n      context: <DIR>/testdata\n      dockerfile: Dockerfile-sample\n",
            ],
            ..BASE
        },
        Case {
            name: "TestResolveAdditionalContexts",
            files: &[(
                "compose.yaml",
                "name: test-resolve-additional-contexts\nservices:\n  test:\n    build:\n      context: .\n      dockerfile: Dockerfile\n      additional_contexts:\n        image: docker-image://foo\n        oci:  oci-layout://foo\n        abs_path: /dir\n        github:   github.com/compose-spec/compose-go\n        rel_path: ./testdata\n",
            )],
            has: &[
                "      context: <DIR>\n",
                "image: docker-image://foo",
                "oci: oci-layout://foo",
                "abs_path: /dir",
                "github: github.com/compose-spec/compose-go",
                "rel_path: <DIR>/testdata",
            ],
            ..BASE
        },
    ];
    run_table("loader/paths_test.go", 2, &cases, check);
}

#[test]
fn include_tests_7_cases() {
    let cases = [
        Case {
            name: "TestLoadIncludeExtendsCombined",
            files: &[(
                "compose.yaml",
                "name: test-load-combined\ninclude:\n  - testdata/combined/compose.yaml\n",
            )],
            has: &["  service:\n    build:\n      context: <DIR>/testdata/combined/dir\n"],
            ..BASE
        },
        Case {
            name: "TestLoadWithMultipleInclude",
            files: &[(
                "compose.yaml",
                "\nname: 'test-multi-include'\n\ninclude:\n  - path: ./testdata/subdir/compose-test-extends-imported.yaml\n    env_file: ./testdata/subdir/extra.env\n  - path: ./testdata/compose-include.yaml\n\nservices:\n  foo:\n    image: busybox\n    depends_on:\n      - imported\n",
            )],
            environ: &[("SOURCE", "override")],
            normalize: false,
            has: &["container_name: override"],
            ..BASE
        },
        Case {
            name: "TestLoadWithMultipleIncludeConflict",
            files: &[(
                "compose.yaml",
                "\nname: 'test-multi-include'\n\ninclude:\n  - path: ./testdata/subdir/compose-test-extends-imported.yaml\n    env_file: ./testdata/subdir/extra.env\n  - path: ./testdata/compose-include.yaml\n    env_file: ./testdata/subdir/extra.env\n\n\nservices:\n  bar:\n    image: busybox\n    environment: !override\n      - ZOT=QIX\n",
            )],
            environ: &[("SOURCE", "override")],
            normalize: false,
            has: &["  bar:\n    environment:\n      ZOT: QIX\n    image: busybox\n"],
            lacks: &["FOO"],
            ..BASE
        },
        Case {
            name: "TestIncludeRelative",
            files: &[(
                "project.yaml",
                "name: test-include-relative\ninclude:\n  - testdata/include/compose.yaml\n",
            )],
            load: &["testdata/include/compose.yaml"],
            resolve_paths: false,
            has: &["  included:\n    build:\n      context: .\n", "source: .\n"],
            ..BASE
        },
        Case {
            name: "TestLoadWithIncludeEnv",
            files: &[
                (
                    "compose.yml",
                    "name: project\ninclude:\n  - path:\n    - ./module/compose.yml\n    env_file:\n      - ./custom.env\nservices:\n  a:\n    image: alpine\n    environment:\n      - VAR_NAME",
                ),
                ("custom.env", "VAR_NAME=value"),
                (
                    "module/compose.yml",
                    "\nservices:\n  b:\n    image: alpine\n    environment:\n      - VAR_NAME\n  c:\n    image: alpine\n    environment:\n      - VAR_NAME",
                ),
            ],
            normalize: false,
            has: &[
                "  a:\n    environment:\n      VAR_NAME: null\n",
                "  b:\n    environment:\n      VAR_NAME: value\n",
                "  c:\n    environment:\n      VAR_NAME: value\n",
            ],
            ..BASE
        },
        Case {
            name: "TestIncludeWithProjectDirectory",
            files: &[("project.yaml", "")],
            load: &["testdata/include/project-directory.yaml"],
            has: &[
                "      context: <DIR>/testdata/subdir\n",
                "source: <DIR>/testdata/subdir/compose-test-extends-imported.yaml\n",
                "path: <DIR>/testdata/subdir/extra.env\n",
            ],
            ..BASE
        },
        Case {
            name: "TestNestedIncludeAndExtends",
            files: &[
                (
                    "compose.yml",
                    "name: project\ninclude:\n  - project_directory: .\n    path: dir/included.yaml\n",
                ),
                (
                    "dir/included.yaml",
                    "\nservices:\n  included:\n    extends:\n      file: dir/extended.yaml\n      service: extended\n",
                ),
                (
                    "dir/extended.yaml",
                    "\nservices:\n  extended:\n    image: alpine\n",
                ),
            ],
            normalize: false,
            has: &["  included:\n    image: alpine\n"],
            ..BASE
        },
    ];
    run_table("loader/include_test.go", 7, &cases, check);
}
