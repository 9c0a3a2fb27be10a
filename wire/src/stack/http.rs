//! A small HTTP/1.1 client for the Docker Engine API: one request per connection
//! (`Connection: close`), over a unix socket or plain TCP, as `DOCKER_HOST` names it. Bodies
//! with `Content-Length`, chunked, or up to the end of the stream. Blocking, no runtime: the
//! calls of a deploy are few and sequential.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// The default socket, as docker's.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// `DOCKER_HOST`'s forms this client speaks: `unix:///path`, `tcp://host:port` (without TLS).
pub fn parse_host(host: &str) -> Result<Endpoint, String> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(format!("{host}: no socket path"));
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        let addr = addr.trim_end_matches('/');
        if addr.is_empty() {
            return Err(format!("{host}: no address"));
        }
        let with_port = if addr
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            addr.to_string()
        } else {
            format!("{addr}:2375")
        };
        return Ok(Endpoint::Tcp(with_port));
    }
    Err(format!(
        "{host}: unsupported DOCKER_HOST (use unix:///path/to/docker.sock or tcp://host:port; TLS and ssh:// are not supported)"
    ))
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Daemon operations such as a service update answer within seconds; a dead daemon must not
/// hang the command.
const TIMEOUT: Duration = Duration::from_secs(120);

pub fn request(
    ep: &Endpoint,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> io::Result<Response> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: rcompose\r\nConnection: close\r\n"
    );
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    let exchange = |s: &mut dyn ReadWrite| -> io::Result<Response> {
        s.write_all(head.as_bytes())?;
        if let Some(b) = body {
            s.write_all(b)?;
        }
        s.flush()?;
        read_response(&mut BufReader::new(s))
    };
    match ep {
        Endpoint::Unix(p) => {
            let mut s = UnixStream::connect(p)?;
            s.set_read_timeout(Some(TIMEOUT))?;
            exchange(&mut s)
        }
        Endpoint::Tcp(a) => {
            let mut s = TcpStream::connect(a)?;
            s.set_read_timeout(Some(TIMEOUT))?;
            exchange(&mut s)
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad HTTP response: {what}"),
    )
}

/// Reads one response: status line, headers, body.
pub fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("headers cut short"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = Some(v.parse::<usize>().map_err(|_| bad("content-length"))?);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let n = usize::from_str_radix(size, 16).map_err(|_| bad("chunk size"))?;
            if n == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        r.read_to_end(&mut body)?;
    }
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("unix:///var/run/docker.sock"),
            Ok(Endpoint::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            parse_host("tcp://10.0.0.1"),
            Ok(Endpoint::Tcp("10.0.0.1:2375".into()))
        );
        assert_eq!(
            parse_host("tcp://manager:2376/"),
            Ok(Endpoint::Tcp("manager:2376".into()))
        );
        assert!(
            parse_host("ssh://me@host")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(parse_host("unix://").is_err());
    }

    #[test]
    fn bodies_by_length_chunks_or_end_of_stream() {
        let raw = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ID\":\"x\"}\nextra";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (201, &b"{\"ID\":\"x\"}\n"[..])
        );
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2;x=y\r\n2]\r\n0\r\n\r\n";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(r.body, b"[1,2]");
        let raw = b"HTTP/1.0 404 Not Found\r\n\r\n{\"message\":\"no\"}";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (404, &b"{\"message\":\"no\"}"[..])
        );
        let raw = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert!(read_response(&mut &raw[..]).unwrap().body.is_empty());
        assert!(read_response(&mut &b"garbage\r\n"[..]).is_err());
    }
}
