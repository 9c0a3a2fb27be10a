//! The parts of docker's `run`/`create` options shared by `container run`'s flags and the
//! API's create body (`api/src/create.rs`): the options rcompose refuses by name, `KEY=VALUE`
//! lists (`--sysctl`, `--annotation`), devices and device cgroup rules. One place, so the
//! CLI and `docker run` through the socket accept and refuse the same things.

use std::collections::BTreeMap;

use rcompose_engine::container::model::DeviceMapping;
use rcompose_engine::container::resources;

use crate::docker::OptionError;

type Result<T> = std::result::Result<T, OptionError>;

/// Docker's options rcompose cannot honour; each set one is refused with the reason.
#[derive(Debug, Default)]
pub struct Unsupported<'a> {
    pub runtime: Option<&'a str>,
    pub storage_opt: bool,
    pub isolation: Option<&'a str>,
    pub volume_driver: Option<&'a str>,
    /// `--gpus` (the API's `DeviceRequests`).
    pub gpus: Option<&'a str>,
}

impl Unsupported<'_> {
    /// The first option set to something rcompose cannot do, named as docker's flag.
    pub fn refuse(&self) -> Result<()> {
        let no = |m: String| Err(OptionError::Invalid(m));
        if let Some(r) = self.runtime
            && !matches!(r, "runc" | "youki" | "default" | "")
        {
            return no(format!(
                "--runtime {r} is not supported: rcompose runs containers with its built-in runtime (youki's libcontainer, runc-compatible); leave --runtime out"
            ));
        }
        if self.storage_opt {
            return no(
                "--storage-opt is not supported: container layers are plain overlay directories without a size quota".into(),
            );
        }
        if let Some(i) = self.isolation
            && !matches!(i, "default" | "")
        {
            return no(format!(
                "--isolation {i} is not supported: it is a Windows option; Linux has only the default"
            ));
        }
        if let Some(d) = self.volume_driver
            && !matches!(d, "local" | "")
        {
            return no(format!(
                "--volume-driver {d} is not supported: volume plugins do not exist in rcompose; only the local driver"
            ));
        }
        if let Some(g) = self.gpus {
            return no(format!(
                "--gpus {g} is not supported: rcompose has no GPU device plugin (NVIDIA container toolkit); pass device nodes with --device instead"
            ));
        }
        Ok(())
    }
}

/// `--sysctl`/`--annotation` values: `KEY=VALUE`, the key not empty.
pub fn key_values(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in items {
        let Some((k, v)) = s.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(OptionError::Invalid(format!(
                "invalid {flag} {s:?}: use KEY=VALUE"
            )));
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]` values.
pub fn devices(specs: &[String]) -> Result<Vec<DeviceMapping>> {
    specs
        .iter()
        .map(|d| Ok(resources::parse_device(d)?))
        .collect()
}

/// `--device-cgroup-rule` values, checked (the engine applies them at start).
pub fn check_cgroup_rules(rules: &[String]) -> Result<()> {
    for r in rules {
        resources::device_cgroup_rule(r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_option() {
        let e = Unsupported {
            runtime: Some("kata"),
            ..Default::default()
        }
        .refuse()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--runtime kata"), "{e}");
        let ok = Unsupported {
            runtime: Some("runc"),
            isolation: Some(""),
            volume_driver: Some("local"),
            ..Default::default()
        };
        assert!(ok.refuse().is_ok());
        let e = Unsupported {
            storage_opt: true,
            ..Default::default()
        }
        .refuse()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--storage-opt"), "{e}");
    }

    #[test]
    fn key_values_and_devices() {
        let m = key_values("--sysctl", &["net.core.somaxconn=1024".into()]).unwrap();
        assert_eq!(m["net.core.somaxconn"], "1024");
        assert!(key_values("--sysctl", &["=1".into()]).is_err());
        assert!(key_values("--sysctl", &["novalue".into()]).is_err());
        let d = devices(&["/dev/null:/dev/mynull:r".into()]).unwrap();
        assert_eq!(d[0].path_in_container, "/dev/mynull");
        assert_eq!(d[0].cgroup_permissions, "r");
        assert!(check_cgroup_rules(&["z 1:1 r".into()]).is_err());
        assert!(check_cgroup_rules(&["c 1:3 mr".into()]).is_ok());
    }
}
