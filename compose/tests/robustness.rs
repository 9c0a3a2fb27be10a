//! Bad input never panics: random text and random values in otherwise valid files give either a
//! project or an error.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rcompose_compose::load::interpolate::substitute;
use rcompose_compose::load::{LoadOptions, load};

fn load_text(text: &str) -> bool {
    let opts = LoadOptions {
        files: vec!["-".into()],
        stdin: Some(text.to_string()),
        working_dir: std::env::temp_dir(),
        project_name: Some("fuzz".into()),
        interpolate: true,
        environment: BTreeMap::from([("SET".to_string(), "v".to_string())]),
        ..Default::default()
    };
    load(&opts).is_ok()
}

/// `PROPTEST_CASES` cases (256 by default), as the engine's and net's properties: the
/// reliability script's long mode raises it for all of them.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    }
}

const TEMPLATE: &str = "services:\n  web:\n    image: nginx\n    KEY: VALUE\n";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_text_never_panics(text in "[ -~\\n]{0,200}") {
        let _ = load_text(&text);
    }

    #[test]
    fn random_values_in_known_keys_never_panic(
        key in prop::sample::select(vec![
            "ports", "volumes", "environment", "command", "healthcheck", "depends_on", "build",
            "deploy", "ulimits", "extra_hosts", "secrets", "networks", "env_file", "extends",
            "mem_limit", "stop_grace_period", "labels", "devices", "tmpfs", "profiles",
        ]),
        value in prop_oneof![
            "[ -~]{0,40}".prop_map(|s| format!("{s:?}")),
            "[a-z0-9:/.$\\{\\}-]{0,30}",
            "\\[[a-z0-9:/\", .-]{0,30}\\]",
            "\\{[a-z0-9:, ]{0,30}\\}",
        ],
    ) {
        let text = TEMPLATE.replace("KEY", key).replace("VALUE", &value);
        let _ = load_text(&text);
    }

    #[test]
    fn templates_never_panic(text in "[a-zA-Z0-9_${}:?+\\- ]{0,60}") {
        let _ = substitute(&text, &|k| (k == "SET").then(|| "v".to_string()), &mut |_| {});
    }
}
