//! compose v2's `!reset` / `!override` tags, YAML anchors and merge keys, case by case.
//!
//! Source of the expected values: compose-go `loader/merge_reset_test.go` (Test_LoadWithReset,
//! Test_DuplicateReset) and `loader/reset_test.go` (TestResetRemove, TestOverrideReplace,
//! TestResetCycle, TestAliasBombPrevented, TestLargeLegitimateFile, TestResetTagWithSharedAlias,
//! TestOverrideTagWithSharedAlias, TestNestedAliasReset, TestAliasNodePreservation,
//! TestDirectAliasWithReset, TestMergeKeyAliasTargets, TestMergeKeyAliasToScalarRejected).
//! Left out: TestVisitCounterLimit and TestVisitCounterLimitOverride, which test a node-visit
//! cap of compose-go's own `!reset` processor (an implementation limit, not a compose rule).

mod common;

use common::run_table;
use rcompose_compose::load::{LoadOptions, load};
use rcompose_compose::render;

/// Loads the given file texts (first one `compose.yaml`, then `override-N.yaml`) without
/// normalisation or consistency checks; the `config` output or the error.
fn config(texts: &[&str]) -> Result<String, String> {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let name = match i {
            0 => "compose.yaml".to_string(),
            n => format!("override-{n}.yaml"),
        };
        std::fs::write(tmp.path().join(&name), text).unwrap();
        files.push(name);
    }
    let opts = LoadOptions {
        files,
        working_dir: tmp.path().to_path_buf(),
        normalize: false,
        consistency: false,
        ..Default::default()
    };
    let loaded = load(&opts).map_err(|e| e.to_string())?;
    render::to_yaml(&loaded.project).map_err(|e| e.to_string())
}

/// What one case must give: output containing all of `has` and none of `lacks`, or an error
/// containing every fragment.
enum Want {
    Loads {
        has: &'static [&'static str],
        lacks: &'static [&'static str],
    },
    Error(&'static [&'static str]),
    /// Either loads, or is refused for its aliases.
    LoadsOrAliasError,
}

struct Case {
    name: &'static str,
    files: &'static [&'static str],
    want: Want,
}

const fn loads(name: &'static str, files: &'static [&'static str]) -> Case {
    Case {
        name,
        files,
        want: Want::Loads {
            has: &[],
            lacks: &[],
        },
    }
}

fn check(case: &Case) -> Result<(), String> {
    let got = config(case.files);
    let name = case.name;
    match (&got, &case.want) {
        (Ok(out), Want::Loads { has, lacks }) => {
            if let Some(missing) = has.iter().find(|h| !out.contains(*h)) {
                return Err(format!("{name}: output lacks {missing:?}:\n{out}"));
            }
            if let Some(extra) = lacks.iter().find(|l| out.contains(*l)) {
                return Err(format!("{name}: output has {extra:?}:\n{out}"));
            }
            Ok(())
        }
        (Err(e), Want::Error(fragments)) if fragments.iter().all(|f| e.contains(f)) => Ok(()),
        (Ok(_), Want::LoadsOrAliasError) => Ok(()),
        (Err(e), Want::LoadsOrAliasError) if e.contains("repetition limit") => Ok(()),
        _ => Err(format!("{name}: got {got:?}")),
    }
}

const ALIAS_BOMB_9: &str = "name: test
x-a: &a {k: v}
x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
x-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
x-f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
x-g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
x-h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
x-i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
x-j: &j [*i, *i, *i, *i, *i, *i, *i, *i, *i]
services:
  svc:
    image: alpine
";

const ALIAS_BOMB_8: &str = "name: test
x-a: &a {k: v}
x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
x-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
x-f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
x-g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
x-h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
x-i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
services:
  svc:
    image: alpine
";

const ALIAS_SMALL: &str = "name: test
x-a: &a {k: v}
x-b: &b [*a, *a, *a]
x-c: &c [*b, *b, *b]
x-d: &d [*c, *c, *c]
x-e: &e [*d, *d, *d]
x-f: &f [*e, *e, *e]
x-g: &g [*f, *f, *f]
x-h: &h [*g, *g, *g]
x-i: &i [*h, *h, *h]
x-j: &j [*i, *i, *i]
x-k: &k [*j, *j, *j]
services:
  svc:
    image: alpine
";

const TWO_SERVICES_WITH_PORTS: &str = "name: test
services:
  svc1:
    image: alpine
    ports:
      - \"8080:80\"
  svc2:
    image: nginx
    ports:
      - \"9090:90\"
";

const EXTERNAL_NETWORK: &str = "name: test
networks:
  test:
    name: test
    external: true
";

#[test]
fn reset_and_aliases_22_cases() {
    let cases = [
        Case {
            name: "Test_LoadWithReset",
            files: &[
                " name: test\n services:\n   foo:\n     build:\n       context: .\n       dockerfile: foo.Dockerfile\n     environment:\n       FOO: BAR",
                " services:\n   foo:\n     image: foo\n     build: !reset  \n     environment:\n       FOO: !reset\n",
            ],
            want: Want::Loads {
                has: &["image: foo"],
                lacks: &["build", "FOO"],
            },
        },
        // compose-go's text starts with a blank line, so its lines 6 and 5 are 5 and 4 here.
        Case {
            name: "Test_DuplicateReset",
            files: &[
                " name: test\n services:\n   foo:\n     command: hello\n     command: !reset hello world\n",
            ],
            want: Want::Error(&[
                "compose.yaml:5:",
                "\"command\"",
                "already defined at line 4",
            ]),
        },
        Case {
            name: "TestResetRemove",
            files: &[EXTERNAL_NETWORK, "networks:\n  test: !reset {}\n"],
            want: Want::Loads {
                has: &[],
                lacks: &["networks", "external"],
            },
        },
        Case {
            name: "TestOverrideReplace",
            files: &[EXTERNAL_NETWORK, "networks:\n  test: !override {}\n"],
            want: Want::Loads {
                has: &["networks:\n  test"],
                lacks: &["external: true"],
            },
        },
        loads(
            "TestResetCycle/simple_alias_no_cycle",
            &["name: test\nservices:\n  a: &a\n    image: alpine\n  a2: *a\n"],
        ),
        loads(
            "TestResetCycle/simple_alias_reversed_no_cycle",
            &["name: test\nservices:\n  a2: &a\n    image: alpine\n  a: *a\n"],
        ),
        loads(
            "TestResetCycle/nested_merge_no_cycle",
            &[
                "name: test\nx-templates:\n  x-gluetun: &gluetun\n    environment: &gluetun_env\n      a: b\n  x-gluetun-pia: &gluetun_pia\n    <<: *gluetun\n  x-gluetun-env-pia: &gluetun_env_pia\n    <<: *gluetun_env\n  vp0:\n    <<: *gluetun_pia\n    environment:\n      <<: *gluetun_env_pia\n",
            ],
        ),
        loads(
            "TestResetCycle/multiple_services_common_config",
            &[
                "name: test\nx-common:\n  &common\n  restart: unless-stopped\n\nservices:\n  backend:\n    <<: *common\n    image: alpine:latest\n\n  backend-static:\n    <<: *common\n    image: alpine:latest\n\n  backend-worker:\n    <<: *common\n    image: alpine:latest\n",
            ],
        ),
        loads(
            "TestResetCycle/dotted_service_names_prefix_no_cycle",
            &[
                "name: test\nservices:\n  test.unit: &shared\n    image: alpine\n  test: *shared\n  test.other: *shared\n",
            ],
        ),
        Case {
            name: "TestResetCycle/direct_self_reference_cycle",
            files: &[
                "name: test\nx-healthcheck: &healthcheck\n  egress-service:\n    <<: *healthcheck\n",
            ],
            want: Want::Error(&["compose.yaml"]),
        },
        // TestAliasBombPrevented: the small one may load or be refused; the large one must be
        // refused.
        Case {
            name: "TestAliasBombPrevented/B3_N10_small_branching",
            files: &[ALIAS_SMALL],
            want: Want::LoadsOrAliasError,
        },
        Case {
            name: "TestAliasBombPrevented/B9_N9_original_poc",
            files: &[ALIAS_BOMB_9],
            want: Want::Error(&["compose.yaml", "repetition limit"]),
        },
        Case {
            name: "TestAliasNodePreservation",
            files: &[ALIAS_BOMB_8],
            want: Want::Error(&["compose.yaml", "repetition limit"]),
        },
        Case {
            name: "TestResetTagWithSharedAlias",
            files: &[
                TWO_SERVICES_WITH_PORTS,
                "x-reset-ports: &reset-ports\n  ports: !reset []\n\nservices:\n  svc1:\n    <<: *reset-ports\n  svc2:\n    <<: *reset-ports\n",
            ],
            want: Want::Loads {
                has: &["svc1", "svc2"],
                lacks: &["    ports:", "published"],
            },
        },
        Case {
            name: "TestOverrideTagWithSharedAlias",
            files: &[
                "name: test\nnetworks:\n  net1:\n    external: true\n    name: external-net-1\n  net2:\n    external: true\n    name: external-net-2\n",
                "x-override: &ov !override {}\n\nnetworks:\n  net1: *ov\n  net2: *ov\n",
            ],
            want: Want::Loads {
                has: &["net1", "net2"],
                lacks: &["external: true"],
            },
        },
        Case {
            name: "TestNestedAliasReset",
            files: &[
                "name: test\nservices:\n  svc:\n    image: alpine\n    ports:\n      - \"8080:80\"\n",
                "x-inner: &inner\n  ports: !reset []\n\nx-outer: &outer\n  <<: *inner\n\nservices:\n  svc:\n    <<: *outer\n",
            ],
            want: Want::Loads {
                has: &["image: alpine"],
                lacks: &["ports"],
            },
        },
        Case {
            name: "TestDirectAliasWithReset",
            files: &[
                TWO_SERVICES_WITH_PORTS,
                "x-reset: &reset !reset []\n\nservices:\n  svc1:\n    ports: *reset\n  svc2:\n    ports: *reset\n",
            ],
            want: Want::Loads {
                has: &["svc1", "svc2"],
                lacks: &["ports"],
            },
        },
        Case {
            name: "TestMergeKeyAliasTargets/alias_to_mapping",
            files: &[
                "name: test\nx-base: &base\n  image: nginx\n  restart: unless-stopped\nservices:\n  s1:\n    <<: *base\n",
            ],
            want: Want::Loads {
                has: &["image: nginx", "restart: unless-stopped"],
                lacks: &[],
            },
        },
        Case {
            name: "TestMergeKeyAliasTargets/alias_to_sequence_of_mappings",
            files: &[
                "name: test\nx-list: &alist\n  - image: nginx\nservices:\n  s1:\n    <<: *alist\n",
            ],
            want: Want::Loads {
                has: &["image: nginx"],
                lacks: &[],
            },
        },
        Case {
            name: "TestMergeKeyAliasTargets/alias_to_sequence_shared_across_services",
            files: &[
                "name: test\nx-list: &alist\n  - image: nginx\n    restart: unless-stopped\nservices:\n  s1:\n    <<: *alist\n  s2:\n    <<: *alist\n",
            ],
            want: Want::Loads {
                has: &["s1:", "s2:", "restart: unless-stopped"],
                lacks: &[],
            },
        },
        Case {
            name: "TestMergeKeyAliasTargets/inline_sequence_of_mappings",
            files: &[
                "name: test\nx-base: &base\n  image: nginx\nservices:\n  s1:\n    <<: [*base, {restart: unless-stopped}]\n",
            ],
            want: Want::Loads {
                has: &["image: nginx", "restart: unless-stopped"],
                lacks: &[],
            },
        },
        Case {
            name: "TestMergeKeyAliasToScalarRejected",
            files: &["name: test\nx-scalar: &s \"not-a-map\"\nservices:\n  s1:\n    <<: *s\n"],
            want: Want::Error(&["compose.yaml"]),
        },
    ];
    run_table("loader reset/anchor tables", 22, &cases, check);
}

/// TestLargeLegitimateFile: 400 services with 122 environment variables each load.
#[test]
fn large_legitimate_file_1_case() {
    let mut text = String::from("name: test\nservices:\n");
    for s in 0..400 {
        text.push_str(&format!("  svc{s}:\n    image: alpine\n    environment:\n"));
        for e in 0..122 {
            text.push_str(&format!("      KEY_{e}: val\n"));
        }
    }
    let cases = [text];
    run_table("TestLargeLegitimateFile", 1, &cases, |text| {
        config(&[text.as_str()])
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
}
