//! The Docker Engine API calls a stack needs, as JSON, over [`super::http`]. Errors from the
//! daemon keep its status and message.

use serde_json::{Value, json};

use super::http::{self, Endpoint};

/// The API version spoken: Docker 20.10's, which newer daemons still accept.
pub const API_VERSION: &str = "v1.41";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to the Docker daemon at {host}: {source}. Is the docker daemon running?"
    )]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("{what}: the daemon's answer is not the JSON expected: {detail}")]
    Answer { what: String, detail: String },
}

impl ClientError {
    /// Whether the daemon answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Daemon { status: 404, .. })
    }
}

pub struct Client {
    ep: Endpoint,
}

/// Percent-encodes a query value (filters are JSON).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `filters=` with one key and its values, as the API takes them.
pub fn filters(key: &str, values: &[&str]) -> String {
    format!("filters={}", encode(&json!({ key: values }).to_string()))
}

/// `filters=` with several `key=value` pairs; values of one key are alternatives.
pub fn filter_query(pairs: &[(String, String)]) -> String {
    let mut m: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (k, v) in pairs {
        m.entry(k).or_default().push(v);
    }
    format!("filters={}", encode(&json!(m).to_string()))
}

impl Client {
    pub fn new(ep: Endpoint) -> Self {
        Self { ep }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let full = format!("/{API_VERSION}{path}");
        let bytes = body.map(|b| b.to_string().into_bytes());
        let resp = http::request(&self.ep, method, &full, bytes.as_deref()).map_err(|source| {
            ClientError::Connect {
                host: self.ep.to_string(),
                source,
            }
        })?;
        let parsed: Option<Value> = if resp.body.is_empty() {
            None
        } else {
            serde_json::from_slice(&resp.body).ok()
        };
        if !(200..300).contains(&resp.status) {
            let message = parsed
                .as_ref()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).trim().to_string());
            return Err(ClientError::Daemon {
                status: resp.status,
                message,
            });
        }
        match parsed {
            Some(v) => Ok(v),
            None if resp.body.is_empty() => Ok(Value::Null),
            None => Err(ClientError::Answer {
                what: format!("{method} {path}"),
                detail: String::from_utf8_lossy(&resp.body)
                    .chars()
                    .take(200)
                    .collect(),
            }),
        }
    }

    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call("POST", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call("DELETE", path, None).map(|_| ())
    }

    /// A list endpoint (`/services`, `/networks`, …) filtered by one key.
    pub fn list(&self, kind: &str, key: &str, values: &[&str]) -> Result<Vec<Value>, ClientError> {
        let v = self.get(&format!("/{kind}?{}", filters(key, values)))?;
        match v {
            Value::Array(a) => Ok(a),
            Value::Null => Ok(Vec::new()),
            other => Err(ClientError::Answer {
                what: format!("GET /{kind}"),
                detail: format!(
                    "expected a list, got {}",
                    other.to_string().chars().take(100).collect::<String>()
                ),
            }),
        }
    }

    /// The `ID` of a create call's answer.
    pub fn create(&self, path: &str, body: &Value) -> Result<String, ClientError> {
        let v = self.post(path, body)?;
        v["ID"]
            .as_str()
            .or_else(|| v["Id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| ClientError::Answer {
                what: format!("POST {path}"),
                detail: "no ID".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_pairs_group_by_key() {
        let pairs = [
            ("label".to_string(), "a=b".to_string()),
            ("desired-state".to_string(), "running".to_string()),
            ("label".to_string(), "c".to_string()),
        ];
        let q = filter_query(&pairs);
        let json = q.strip_prefix("filters=").unwrap();
        let decoded = json
            .split('%')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part.to_string()
                } else {
                    let (hex, rest) = part.split_at(2);
                    format!("{}{rest}", u8::from_str_radix(hex, 16).unwrap() as char)
                }
            })
            .collect::<String>();
        assert_eq!(
            decoded,
            r#"{"desired-state":["running"],"label":["a=b","c"]}"#
        );
    }

    #[test]
    fn filters_are_percent_encoded_json() {
        assert_eq!(
            filters("label", &["com.docker.stack.namespace=a b"]),
            "filters=%7B%22label%22%3A%5B%22com.docker.stack.namespace%3Da%20b%22%5D%7D"
        );
    }
}
