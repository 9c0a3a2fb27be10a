//! Image references normalised like Docker: `nginx` → `docker.io/library/nginx:latest`.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?}")]
    Invalid(String),
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error(
        "invalid reference format: tag in {0:?} is invalid (letters, digits, '_', '.', '-'; at most 128)"
    )]
    Tag(String),
    #[error("invalid reference format: digest in {0:?} is invalid (expected sha256:<64 hex>)")]
    Digest(String),
    #[error("invalid reference format: repository name in {0:?} is longer than 255 characters")]
    TooLong(String),
}

/// A fully-qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path, e.g. `library/nginx`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parse and normalise. A reference without tag or digest gets no tag; use
    /// [`Reference::with_default_tag`] where Docker implies `:latest`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let invalid = || ReferenceError::Invalid(input.to_string());
        if input.is_empty() || input.trim() != input {
            return Err(invalid());
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                if crate::store::digest::digest_hex(d).is_none() {
                    return Err(ReferenceError::Digest(input.to_string()));
                }
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(ReferenceError::Tag(input.to_string()));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid());
        }
        let (domain, path) = split_domain(name);
        if !valid_domain(&domain) {
            return Err(invalid());
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path));
        }
        if crate::store::digest::is_hex64(name) {
            return Err(ReferenceError::HexName(name.to_string()));
        }
        if !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(ReferenceError::TooLong(input.to_string()));
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// This reference, with `:latest` when it names neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// `docker.io/library/nginx`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `docker.io/library/nginx:latest` (name plus tag, no digest). `None` without a tag.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// The short form Docker shows: `nginx`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        familiar_name(&self.name())
    }

    /// The tag or digest that a registry request addresses.
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Shorten a full name (optionally with `:tag` / `@digest`) the way Docker displays it.
pub fn familiar_name(full: &str) -> String {
    let short = full.strip_prefix("docker.io/").unwrap_or(full);
    if short.len() != full.len() {
        if let Some(rest) = short.strip_prefix("library/")
            && !rest.split([':', '@']).next().unwrap_or("").contains('/')
        {
            return rest.to_string();
        }
        return short.to_string();
    }
    full.to_string()
}

fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (domain, path)
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().with_default_tag().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/a/b:v1"), "localhost:5000/a/b:v1");
        assert_eq!(norm("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            norm(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
    }

    #[test]
    fn familiar_names() {
        assert_eq!(
            familiar_name("docker.io/library/nginx:latest"),
            "nginx:latest"
        );
        assert_eq!(familiar_name("docker.io/user/app"), "user/app");
        assert_eq!(
            familiar_name("localhost:5000/app:v"),
            "localhost:5000/app:v"
        );
    }

    #[test]
    fn rejects_invalid() {
        assert!(matches!(
            Reference::parse("Nginx"),
            Err(ReferenceError::Uppercase(_))
        ));
        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("a b").is_err());
        assert!(Reference::parse("nginx:").is_err());
        assert!(Reference::parse("nginx:-x").is_err());
        assert!(Reference::parse("nginx@sha256:zz").is_err());
        assert!(Reference::parse("a//b").is_err());
        assert!(Reference::parse("-a").is_err());
        assert!(matches!(
            Reference::parse(&"a".repeat(64)),
            Err(ReferenceError::HexName(_))
        ));
        assert!(Reference::parse("host:port/x").is_err());
    }
}
