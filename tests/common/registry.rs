//! A throwaway Debian `docker-registry` on 127.0.0.1:<free port> with its own storage and
//! config, killed and removed on drop. Optional basic auth (htpasswd, bcrypt) or token auth
//! (a small in-process token server signing RS256 JWTs with an openssl-made key).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub enum Auth {
    None,
    Basic { user: String, pass: String },
    Token { user: String, pass: String },
}

pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry's file holding blob `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start(auth: Auth) -> Registry {
    assert!(
        Path::new("/usr/bin/docker-registry").exists(),
        "install Debian's docker-registry"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    match &auth {
        Auth::None => {}
        Auth::Basic { user, pass } => {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{}\n", bcrypt(pass))).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        Auth::Token { user, pass } => {
            let (cert, token) = make_token(dir.path());
            let realm = token_server(user.clone(), pass.clone(), token);
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ));
        }
    }
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
    let child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start docker-registry");
    let reg = Registry { port, dir, child };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docker-registry did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    reg
}

fn bcrypt(pass: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            pass,
        ])
        .output()
        .expect("python3 for bcrypt");
    assert!(
        out.status.success(),
        "bcrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn b64url(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn b64(data: &[u8]) -> String {
    let s = b64url(data).replace('-', "+").replace('_', "/");
    let pad = (4 - s.len() % 4) % 4;
    s + &"=".repeat(pad)
}

/// A self-signed RSA cert (the registry's trust root) and one JWT carrying it in `x5c`,
/// granting pull/push on every test repository and the catalog.
fn make_token(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("token.key");
    let cert = dir.join("token.pem");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=token",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req");
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap()
        .stdout;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [b64(&der)]});
    let access: Vec<serde_json::Value> = ["busybox", "other", "app"]
        .iter()
        .map(|n| serde_json::json!({"type": "repository", "name": n, "actions": ["pull", "push"]}))
        .chain([serde_json::json!({"type": "registry", "name": "catalog", "actions": ["*"]})])
        .collect();
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": "tester", "aud": "test-registry",
        "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": "rcompose-test",
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let sig = child.wait_with_output().unwrap().stdout;
    (cert, format!("{signing_input}.{}", b64url(&sig)))
}

/// Serve `GET /token` on a free port: the JWT for the right basic credentials, 401 else.
fn token_server(user: String, pass: String, token: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let expected = format!("Basic {}", b64(format!("{user}:{pass}").as_bytes()));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorized = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("authorization")
                    && v.trim() == expected
                {
                    authorized = true;
                }
            }
            let (status, body) = if authorized {
                ("200 OK", serde_json::json!({"token": token}).to_string())
            } else {
                (
                    "401 Unauthorized",
                    "{\"details\":\"bad credentials\"}".to_string(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.read(&mut [0u8; 0]);
        }
    });
    format!("http://127.0.0.1:{port}/token")
}
