//! The per-service configuration hash (`config --hash`, label `com.docker.compose.config-hash`).
//! Like compose, it ignores what does not change the container itself: build settings, pull
//! policy, scale/replicas, depends_on and profiles.

use sha2::{Digest, Sha256};

use crate::model::Service;

/// Hex SHA-256 of the service's canonical JSON with the fields above cleared.
pub fn service_hash(service: &Service) -> String {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    if let Some(deploy) = s.deploy.as_mut() {
        deploy.replicas = None;
    }
    s.depends_on.clear();
    s.profiles.clear();
    // Serialising a model value cannot fail: every map key is a string.
    let json = serde_json::to_vec(&s).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_scale_but_not_image() {
        let a = Service {
            name: "web".into(),
            image: Some("nginx".into()),
            ..Default::default()
        };
        let mut b = a.clone();
        b.scale = Some(3);
        assert_eq!(service_hash(&a), service_hash(&b));
        b.image = Some("httpd".into());
        assert_ne!(service_hash(&a), service_hash(&b));
        assert_eq!(service_hash(&a).len(), 64);
    }
}
