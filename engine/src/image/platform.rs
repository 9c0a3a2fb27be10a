//! Platform selection from manifest lists / image indexes.

use super::{ImageError, Result};
use crate::store::manifest::Descriptor;

/// A wanted platform: `os/arch[/variant]` (default: the host's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    pub fn host() -> PlatformSpec {
        PlatformSpec {
            os: "linux".into(),
            arch: super::host_arch().into(),
            variant: None,
        }
    }

    pub fn parse(s: &str) -> Result<PlatformSpec> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || {
            ImageError::Invalid(format!(
                "invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"
            ))
        };
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(PlatformSpec {
                os: os.to_string(),
                arch: normalise_arch(arch),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(PlatformSpec {
                    os: os.to_string(),
                    arch: normalise_arch(arch),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalise_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_string(),
    }
}

/// The entry of a manifest list matching `want` (default: host).
pub fn select<'a>(
    manifests: &'a [Descriptor],
    want: Option<&PlatformSpec>,
) -> Result<&'a Descriptor> {
    let host = PlatformSpec::host();
    let want = want.unwrap_or(&host);
    let candidates = manifests.iter().filter(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == want.os && p.architecture == want.arch)
    });
    let mut best = None;
    for d in candidates {
        let variant = d.platform.as_ref().and_then(|p| p.variant.as_deref());
        match (&want.variant, variant) {
            (Some(w), Some(v)) if w == v => return Ok(d),
            (Some(_), Some(_)) => {}
            _ => {
                if best.is_none() {
                    best = Some(d);
                }
            }
        }
    }
    best.ok_or_else(|| {
        let available: Vec<String> = manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .collect();
        ImageError::Invalid(format!(
            "no matching manifest for {want} in the manifest list entries (available: {})",
            available.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::manifest::Platform;

    fn desc(arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        Descriptor {
            media_type: crate::store::manifest::OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
            }),
            annotations: None,
        }
    }

    #[test]
    fn selects_platform() {
        let list = vec![
            desc("arm", Some("v6"), "a6"),
            desc("arm", Some("v7"), "a7"),
            desc("amd64", None, "x86"),
            desc("arm64", Some("v8"), "a64"),
        ];
        let want = |s: &str| PlatformSpec::parse(s).unwrap();
        assert_eq!(
            select(&list, Some(&want("linux/amd64"))).unwrap().digest,
            "x86"
        );
        assert_eq!(
            select(&list, Some(&want("linux/arm/v7"))).unwrap().digest,
            "a7"
        );
        assert_eq!(
            select(&list, Some(&want("linux/arm64"))).unwrap().digest,
            "a64"
        );
        assert_eq!(
            select(&list, Some(&want("linux/aarch64"))).unwrap().digest,
            "a64"
        );
        let err = select(&list, Some(&want("linux/s390x")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no matching manifest") && err.contains("linux/amd64"),
            "{err}"
        );
        assert!(PlatformSpec::parse("amd64").is_err());
    }
}
