//! A small client for the OCI distribution API v2 over `ureq` (blocking; parallelism comes
//! from threads in pull). Anonymous access, bearer tokens from the `WWW-Authenticate`
//! challenge, basic auth from Docker's config.json; plain HTTP for insecure registries.

pub mod auth;
pub mod config;
pub mod pull;
pub mod push;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::Response;

use auth::Credentials;
pub use config::RegistryConfig;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {registry} ({url}): {message}")]
    Unreachable {
        registry: String,
        url: String,
        message: String,
    },
    #[error(
        "unauthorized: access to {registry} was denied ({message}); log in with `rcompose login {registry}` or check the repository name"
    )]
    Auth { registry: String, message: String },
    #[error("{what} not found in {registry}: {message}")]
    NotFound {
        registry: String,
        what: String,
        message: String,
    },
    #[error("registry {registry} answered {status} for {what}: {message}")]
    Http {
        registry: String,
        status: u16,
        what: String,
        message: String,
    },
    #[error("registry {registry}: {message}")]
    Protocol { registry: String, message: String },
    #[error("registry configuration: {0}")]
    Config(String),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Where to talk to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry as named in references (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// `http(s)://host[:port]`
    pub base: String,
}

pub struct Client {
    agent: ureq::Agent,
    config: RegistryConfig,
    /// Authorization header values by `registry|scope`.
    auth_cache: Mutex<HashMap<String, String>>,
    /// Credentials to use instead of config.json (login checks them before saving).
    override_creds: Option<Credentials>,
}

/// Builds and sends one request, given the Authorization header value to use (if any).
pub type RequestFn<'a> =
    dyn Fn(Option<&str>) -> std::result::Result<Response<ureq::Body>, ureq::Error> + 'a;

pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

impl Client {
    pub fn new() -> Result<Client> {
        Ok(Self::with_config(RegistryConfig::load()?))
    }

    pub fn with_config(config: RegistryConfig) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("rcompose/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            agent,
            config,
            auth_cache: Mutex::new(HashMap::new()),
            override_creds: None,
        }
    }

    /// Use these credentials instead of the ones in config.json.
    pub fn with_credentials(mut self, creds: Credentials) -> Client {
        self.override_creds = Some(creds);
        self
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Endpoints to try for `registry`, mirrors first (Docker Hub only, as in Docker).
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if registry == "docker.io" {
            for m in &self.config.mirrors {
                out.push(Endpoint {
                    registry: registry.to_string(),
                    base: m.trim_end_matches('/').to_string(),
                });
            }
        }
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if self.config.is_insecure(host) {
            "http"
        } else {
            "https"
        };
        out.push(Endpoint {
            registry: registry.to_string(),
            base: format!("{scheme}://{host}"),
        });
        out
    }

    /// The primary endpoint (no mirrors): push, login and search use it.
    pub fn endpoint(&self, registry: &str) -> Endpoint {
        self.endpoints(registry).pop().unwrap_or_else(|| Endpoint {
            registry: registry.to_string(),
            base: format!("https://{registry}"),
        })
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        match &self.override_creds {
            Some(c) => Ok(Some(c.clone())),
            None => auth::lookup(registry),
        }
    }

    /// Run `make(auth_header)`; on 401 answer the challenge (bearer token or basic) and
    /// retry once. `scope` is a token scope such as `repository:library/busybox:pull`.
    pub fn send(
        &self,
        ep: &Endpoint,
        scope: &str,
        what: &str,
        make: &RequestFn<'_>,
    ) -> Result<Response<ureq::Body>> {
        let key = format!("{}|{scope}", ep.base);
        let cached = self
            .auth_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned());
        let resp = make(cached.as_deref()).map_err(|e| self.transport(ep, e))?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .and_then(auth::parse_challenge);
        let header = self.answer(ep, scope, challenge.as_ref())?;
        if let Ok(mut c) = self.auth_cache.lock() {
            c.insert(key, header.clone());
        }
        let resp = make(Some(&header)).map_err(|e| self.transport(ep, e))?;
        if resp.status() == 401 || resp.status() == 403 {
            let msg = error_message(resp);
            return Err(RegistryError::Auth {
                registry: ep.registry.clone(),
                message: format!("{what}: {msg}"),
            });
        }
        Ok(resp)
    }

    fn answer(
        &self,
        ep: &Endpoint,
        scope: &str,
        challenge: Option<&auth::Challenge>,
    ) -> Result<String> {
        let creds = self.credentials(&ep.registry)?;
        let basic = |c: &Credentials| {
            format!(
                "Basic {}",
                auth::base64_encode(format!("{}:{}", c.username, c.secret).as_bytes())
            )
        };
        match challenge {
            Some(ch) if ch.scheme == "bearer" => {
                let realm = ch
                    .params
                    .get("realm")
                    .ok_or_else(|| RegistryError::Protocol {
                        registry: ep.registry.clone(),
                        message: "bearer challenge without a realm".into(),
                    })?;
                let mut url = format!("{realm}{}", if realm.contains('?') { "&" } else { "?" });
                if let Some(service) = ch.params.get("service") {
                    url.push_str(&format!("service={}&", percent_encode(service)));
                }
                url.push_str(&format!("scope={}", percent_encode(scope)));
                let token_ep = Endpoint {
                    registry: ep.registry.clone(),
                    base: realm.clone(),
                };
                let mut req = self.agent.get(&url);
                if let Some(c) = &creds {
                    req = req.header("Authorization", basic(c));
                }
                let mut resp = req.call().map_err(|e| self.transport(&token_ep, e))?;
                if resp.status() == 401 || resp.status() == 403 {
                    return Err(RegistryError::Auth {
                        registry: ep.registry.clone(),
                        message: format!(
                            "the token server refused {}",
                            if creds.is_some() {
                                "the stored credentials"
                            } else {
                                "anonymous access"
                            }
                        ),
                    });
                }
                if resp.status() != 200 {
                    return Err(RegistryError::Protocol {
                        registry: ep.registry.clone(),
                        message: format!("token server answered {}", resp.status()),
                    });
                }
                let body: serde_json::Value =
                    read_json(&mut resp).map_err(|e| RegistryError::Protocol {
                        registry: ep.registry.clone(),
                        message: format!("invalid token response: {e}"),
                    })?;
                let token = body
                    .get("token")
                    .or_else(|| body.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| RegistryError::Protocol {
                        registry: ep.registry.clone(),
                        message: "token response without a token".into(),
                    })?;
                Ok(format!("Bearer {token}"))
            }
            Some(ch) if ch.scheme == "basic" => match &creds {
                Some(c) => Ok(basic(c)),
                None => Err(RegistryError::Auth {
                    registry: ep.registry.clone(),
                    message: "the registry requires a login (basic auth)".into(),
                }),
            },
            _ => Err(RegistryError::Auth {
                registry: ep.registry.clone(),
                message: "the registry answered 401 without a usable challenge".into(),
            }),
        }
    }

    fn transport(&self, ep: &Endpoint, e: ureq::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: ep.registry.clone(),
            url: ep.base.clone(),
            message: e.to_string(),
        }
    }

    /// `GET /v2/`: checks reachability and credentials (used by login).
    pub fn ping(&self, ep: &Endpoint) -> Result<()> {
        let url = format!("{}/v2/", ep.base);
        let resp = self.send(ep, "", "login", &|a| {
            let mut r = self.agent.get(&url);
            if let Some(a) = a {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s => Err(RegistryError::Http {
                registry: ep.registry.clone(),
                status: s,
                what: "/v2/".into(),
                message: error_message(resp),
            }),
        }
    }

    /// Repository names from `/v2/_catalog` (private registries).
    pub fn catalog(&self, ep: &Endpoint) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut url = format!("{}/v2/_catalog?n=1000", ep.base);
        for _ in 0..100 {
            let mut resp = self.send(ep, "registry:catalog:*", "catalog", &|a| {
                let mut r = self.agent.get(&url);
                if let Some(a) = a {
                    r = r.header("Authorization", a);
                }
                r.call()
            })?;
            if resp.status() != 200 {
                let status = resp.status().as_u16();
                return Err(RegistryError::Http {
                    registry: ep.registry.clone(),
                    status,
                    what: "/v2/_catalog".into(),
                    message: error_message(resp),
                });
            }
            let next = link_next(&resp);
            let v: serde_json::Value =
                read_json(&mut resp).map_err(|e| RegistryError::Protocol {
                    registry: ep.registry.clone(),
                    message: format!("invalid catalog: {e}"),
                })?;
            if let Some(repos) = v["repositories"].as_array() {
                out.extend(repos.iter().filter_map(|r| r.as_str().map(str::to_string)));
            }
            match next {
                Some(n) => url = format!("{}{n}", ep.base),
                None => break,
            }
        }
        Ok(out)
    }

    /// Tags of a repository (`/v2/<name>/tags/list`).
    pub fn tags(&self, ep: &Endpoint, repo: &str) -> Result<Vec<String>> {
        let url = format!("{}/v2/{repo}/tags/list", ep.base);
        let mut resp = self.send(ep, &format!("repository:{repo}:pull"), repo, &|a| {
            let mut r = self.agent.get(&url);
            if let Some(a) = a {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        match resp.status().as_u16() {
            200 => {}
            404 => {
                return Err(RegistryError::NotFound {
                    registry: ep.registry.clone(),
                    what: format!("repository {repo}"),
                    message: error_message(resp),
                });
            }
            s => {
                return Err(RegistryError::Http {
                    registry: ep.registry.clone(),
                    status: s,
                    what: format!("tags of {repo}"),
                    message: error_message(resp),
                });
            }
        }
        let v: serde_json::Value = read_json(&mut resp).map_err(|e| RegistryError::Protocol {
            registry: ep.registry.clone(),
            message: format!("invalid tag list: {e}"),
        })?;
        Ok(v["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Read a (small) JSON body.
pub fn read_json(
    resp: &mut Response<ureq::Body>,
) -> std::result::Result<serde_json::Value, String> {
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

fn link_next(resp: &Response<ureq::Body>) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().ok()?;
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    (link.contains("rel=\"next\"") && end > start).then(|| link[start..end].to_string())
}

/// The registry's error text: `{"errors":[{"code":..,"message":..}]}` or the raw body.
pub fn error_message(mut resp: Response<ureq::Body>) -> String {
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(errs) = v["errors"].as_array()
    {
        let msgs: Vec<String> = errs
            .iter()
            .map(|e| {
                let code = e["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_ascii_lowercase()
                    .replace('_', " ");
                let msg = e["message"].as_str().unwrap_or("");
                if msg.is_empty() || code == msg {
                    code
                } else {
                    format!("{code}: {msg}")
                }
            })
            .collect();
        if !msgs.is_empty() {
            return msgs.join("; ");
        }
    }
    let body = body.trim();
    if body.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        body.chars().take(300).collect()
    }
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
