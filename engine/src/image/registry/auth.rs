//! Credentials (Docker's config.json: `auths`, `credsStore`, `credHelpers`) and the
//! `WWW-Authenticate` challenge of the distribution API.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use super::RegistryError;

/// The key Docker uses for Docker Hub in config.json.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

/// The directory of config.json: `$DOCKER_CONFIG` or `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

fn config_path() -> PathBuf {
    docker_config_dir().join("config.json")
}

fn read_config() -> Result<Map<String, Value>, RegistryError> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) | Err(_) => Err(RegistryError::Config(format!(
                "{} is not a JSON object; fix or remove it",
                p.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(RegistryError::Config(format!("{}: {e}", p.display()))),
    }
}

fn write_config(cfg: &Map<String, Value>) -> Result<(), RegistryError> {
    let p = config_path();
    let dir = docker_config_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| RegistryError::Config(format!("{}: {e}", dir.display())))?;
    let bytes = serde_json::to_vec_pretty(&Value::Object(cfg.clone())).unwrap_or_default();
    let tmp = dir.join(format!(".config.json.tmp-{}", std::process::id()));
    let res = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| RegistryError::Config(format!("{}: {e}", p.display())))
}

/// The config.json key for a registry host.
pub fn config_key(host: &str) -> String {
    if host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

fn strip_scheme(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k)
}

/// Credentials for `host`, from a credential helper or the `auths` section.
pub fn lookup(host: &str) -> Result<Option<Credentials>, RegistryError> {
    lookup_in(&read_config()?, host)
}

/// [`lookup`] against an already-read config.json.
pub fn lookup_in(
    cfg: &Map<String, Value>,
    host: &str,
) -> Result<Option<Credentials>, RegistryError> {
    let key = config_key(host);
    let helper = cfg
        .get("credHelpers")
        .and_then(|h| h.get(&key).or_else(|| h.get(host)))
        .or_else(|| cfg.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if let Some(helper) = helper {
        return helper_get(helper, &key);
    }
    let Some(Value::Object(auths)) = cfg.get("auths") else {
        return Ok(None);
    };
    let wanted = strip_scheme(&key);
    for (k, v) in auths {
        if k == &key || strip_scheme(k) == wanted {
            if let Some(auth) = v
                .get("auth")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                let decoded = base64_decode(auth).ok_or_else(|| {
                    RegistryError::Config(format!(
                        "{}: auths.{k}.auth is not valid base64",
                        config_path().display()
                    ))
                })?;
                let text = String::from_utf8_lossy(&decoded);
                let (u, p) = text.split_once(':').unwrap_or((&text, ""));
                return Ok(Some(Credentials {
                    username: u.to_string(),
                    secret: p.to_string(),
                }));
            }
            if let (Some(u), Some(p)) = (
                v.get("username").and_then(Value::as_str),
                v.get("password").and_then(Value::as_str),
            ) {
                return Ok(Some(Credentials {
                    username: u.into(),
                    secret: p.into(),
                }));
            }
        }
    }
    Ok(None)
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>, RegistryError> {
    let prog = format!("docker-credential-{helper}");
    let out = run_helper(&prog, "get", key)?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout);
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(RegistryError::Config(format!(
            "{prog} get failed: {}{}",
            msg.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| RegistryError::Config(format!("{prog} get returned invalid JSON: {e}")))?;
    Ok(Some(Credentials {
        username: v["Username"].as_str().unwrap_or("").to_string(),
        secret: v["Secret"].as_str().unwrap_or("").to_string(),
    }))
}

fn run_helper(prog: &str, verb: &str, input: &str) -> Result<std::process::Output, RegistryError> {
    let mut child = Command::new(prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RegistryError::Config(format!("cannot run credential helper {prog}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child
        .wait_with_output()
        .map_err(|e| RegistryError::Config(format!("credential helper {prog}: {e}")))
}

/// Save credentials for `host` (helper when configured, else `auths`).
pub fn store(host: &str, creds: &Credentials) -> Result<(), RegistryError> {
    let mut cfg = read_config()?;
    let key = config_key(host);
    let helper = cfg
        .get("credHelpers")
        .and_then(|h| h.get(&key))
        .or_else(|| cfg.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(helper) = helper {
        let prog = format!("docker-credential-{helper}");
        let input = serde_json::json!({"ServerURL": key, "Username": creds.username, "Secret": creds.secret});
        let out = run_helper(&prog, "store", &input.to_string())?;
        if !out.status.success() {
            return Err(RegistryError::Config(format!(
                "{prog} store failed: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )));
        }
        return Ok(());
    }
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let encoded = base64_encode(format!("{}:{}", creds.username, creds.secret).as_bytes());
    if let Some(m) = auths.as_object_mut() {
        m.insert(key, serde_json::json!({ "auth": encoded }));
    }
    write_config(&cfg)
}

/// Forget credentials for `host`. Returns whether anything was removed.
pub fn erase(host: &str) -> Result<bool, RegistryError> {
    let mut cfg = read_config()?;
    let key = config_key(host);
    let mut removed = false;
    if let Some(Value::Object(auths)) = cfg.get_mut("auths") {
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| **k == key || strip_scheme(k) == strip_scheme(&key))
            .cloned()
            .collect();
        for k in keys {
            auths.remove(&k);
            removed = true;
        }
    }
    let helper = cfg
        .get("credHelpers")
        .and_then(|h| h.get(&key))
        .or_else(|| cfg.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let Some(helper) = helper {
        let out = run_helper(&format!("docker-credential-{helper}"), "erase", &key)?;
        removed |= out.status.success();
    }
    if removed {
        write_config(&cfg)?;
    }
    Ok(removed)
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lower case).
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, rest) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        s = rest.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in input.bytes() {
        if c == b'=' || c.is_ascii_whitespace() {
            continue;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        buf = buf << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "user:pa ss:word"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn looks_up_auths_like_docker() {
        let cfg: Map<String, Value> = serde_json::from_str(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnB3"},
                "http://localhost:5000": {"auth": "bG9jYWw6c2VjcmV0"},
                "reg.example:443": {"username": "u", "password": "p"}
            }}"#,
        )
        .unwrap();
        let get = |h: &str| lookup_in(&cfg, h).unwrap();
        assert_eq!(get("docker.io").unwrap().username, "hub");
        assert_eq!(get("localhost:5000").unwrap().secret, "secret");
        assert_eq!(get("reg.example:443").unwrap().secret, "p");
        assert!(get("other:5000").is_none());
        let bad: Map<String, Value> =
            serde_json::from_str(r#"{"auths": {"x": {"auth": "!!"}}}"#).unwrap();
        assert!(lookup_in(&bad, "x").is_err());
    }

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
    }
}
