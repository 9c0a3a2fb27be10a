//! A small HTTP/1.1 server side, enough for docker's clients: requests with `Content-Length`
//! or chunked bodies, keep-alive, responses with `Content-Length` or chunked (streams such as
//! `logs -f` and pull progress), and the connection hijack of `attach` (`Upgrade: tcp` →
//! 101). Hand-written because the API is served from plain threads over a
//! `UnixListener`: the engine forks monitors and must not run inside an async runtime, and
//! the subset docker needs is a few hundred lines. The dashboard serves its page over TCP
//! with the same code ([`Conn`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

/// A connection requests are served on: the API's unix socket or the dashboard's TCP one.
pub trait Conn: Read + Write + std::os::fd::AsRawFd + Sized {
    fn try_clone(&self) -> io::Result<Self>;
    /// The connection handed to a [`Body::Hijack`] handler (only unix sockets carry one).
    fn hijack(&self) -> io::Result<UnixStream>;
}

impl Conn for UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        UnixStream::try_clone(self)
    }
    fn hijack(&self) -> io::Result<UnixStream> {
        UnixStream::try_clone(self)
    }
}

impl Conn for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }
    fn hijack(&self) -> io::Result<UnixStream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "connection upgrades are served on the unix socket only",
        ))
    }
}

/// Requests larger than this (headers) are refused: docker's clients send a few hundred
/// bytes.
const MAX_HEAD: usize = 64 * 1024;
/// Bodies are read into memory; image loads and archives are the largest.
const MAX_BODY: usize = 1 << 30;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// HTTP/1.0, or `Connection: close`.
    pub close: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter (the last one when repeated).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter as docker reads it: `1`, `true`, `True` (anything but
    /// empty, `0`, `false`).
    pub fn flag(&self, name: &str) -> bool {
        self.param(name)
            .is_some_and(|v| !matches!(v, "" | "0" | "false" | "False" | "FALSE"))
    }
}

/// What a handler answers.
pub enum Body {
    Empty,
    Json(serde_json::Value),
    Text(String),
    Bytes(Vec<u8>, &'static str),
    /// Written as it is produced, chunked; the closure gets the chunk writer.
    Stream(&'static str, StreamFn),
    /// The connection is handed over after `101 UPGRADED` (attach, exec start).
    Hijack(HijackFn),
}

pub type StreamFn = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;
pub type HijackFn = Box<dyn FnOnce(UnixStream) + Send>;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, body: Body) -> Self {
        Self {
            status,
            headers: vec![],
            body,
        }
    }
    pub fn json(status: u16, v: serde_json::Value) -> Self {
        Self::new(status, Body::Json(v))
    }
    pub fn empty(status: u16) -> Self {
        Self::new(status, Body::Empty)
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "UPGRADED",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// `%41` → `A`; `+` stays (docker's clients escape spaces as %20 in paths; the query
/// decoder below turns `+` into a space, as Go's does).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |x: &str| percent_decode(&x.replace('+', " "));
            (dec(k), dec(v))
        })
        .collect()
}

/// Reads one request; `Ok(None)` when the client closed the connection between requests.
pub fn read_request<R: BufRead>(r: &mut R) -> io::Result<Option<Request>> {
    let mut line = String::new();
    // Tolerate blank lines between requests (RFC 7230 §3.5).
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("malformed request line {:?}", line.trim())));
    };
    let mut req = Request {
        method: method.to_string(),
        close: version == "HTTP/1.0",
        ..Default::default()
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    req.path = percent_decode(path);
    req.query = parse_query(query);
    let mut head = line.len();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the request headers"));
        }
        head += line.len();
        if head > MAX_HEAD {
            return Err(bad("request headers too large"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            req.headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if req
        .header("Connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    {
        req.close = true;
    }
    if req
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        req.body = read_chunked(r)?;
    } else if let Some(n) = req.header("Content-Length") {
        let n: usize = n
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {n:?}")))?;
        if n > MAX_BODY {
            return Err(bad("request body too large"));
        }
        req.body = vec![0; n];
        r.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = vec![];
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let n = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if body.len() + n > MAX_BODY {
            return Err(bad("request body too large"));
        }
        if n == 0 {
            // Trailers, then the blank line.
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + n, 0);
        r.read_exact(&mut body[start..])?;
        line.clear();
        r.read_line(&mut line)?;
    }
}

/// Writes the body as chunks; the last (empty) chunk is written by [`write_response`]. The
/// socket is there to notice a client that left during a quiet stream (`events`, `logs -f`
/// of a silent container): `flush` fails once the peer has closed its end.
struct Chunked<'a>(&'a mut dyn Write, std::os::fd::RawFd);

fn peer_gone(fd: std::os::fd::RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: poll(2) on one descriptor we hold, without waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR) != 0
}

impl Write for Chunked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        write!(self.0, "{:x}\r\n", buf.len())?;
        self.0.write_all(buf)?;
        self.0.write_all(b"\r\n")?;
        // Streams are read live (`logs -f`, pull progress): every chunk goes out at once.
        self.0.flush()?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if peer_gone(self.1) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client closed the connection",
            ));
        }
        self.0.flush()
    }
}

/// The headers every docker daemon response carries.
fn common_headers(w: &mut dyn Write) -> io::Result<()> {
    write!(
        w,
        "Api-Version: {}\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: rcompose/{} (linux)\r\n",
        crate::API_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes `resp` on `stream`. Returns false when the connection must not be reused (after a
/// hijack or a failed stream).
pub fn write_response<S: Conn>(
    stream: &mut S,
    resp: Response,
    head_only: bool,
) -> io::Result<bool> {
    let mut w = io::BufWriter::new(stream.try_clone()?);
    let (ctype, bytes): (&str, Option<Vec<u8>>) = match &resp.body {
        Body::Empty => ("", Some(vec![])),
        Body::Json(v) => {
            let mut b = serde_json::to_vec(v).map_err(io::Error::other)?;
            b.push(b'\n');
            ("application/json", Some(b))
        }
        Body::Text(t) => ("text/plain; charset=utf-8", Some(t.clone().into_bytes())),
        Body::Bytes(b, ct) => (*ct, Some(b.clone())),
        Body::Stream(ct, _) => (*ct, None),
        Body::Hijack(_) => ("application/vnd.docker.raw-stream", None),
    };
    write!(w, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status))?;
    common_headers(&mut w)?;
    for (k, v) in &resp.headers {
        write!(w, "{k}: {v}\r\n")?;
    }
    if !ctype.is_empty() {
        write!(w, "Content-Type: {ctype}\r\n")?;
    }
    match resp.body {
        Body::Hijack(f) => {
            w.write_all(b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")?;
            w.flush()?;
            drop(w);
            f(stream.hijack()?);
            Ok(false)
        }
        Body::Stream(_, f) => {
            w.write_all(b"Transfer-Encoding: chunked\r\n\r\n")?;
            w.flush()?;
            if head_only {
                return Ok(true);
            }
            let peer = stream.as_raw_fd();
            let res = f(&mut Chunked(&mut w, peer));
            // A client that went away ends the stream; the connection is done either way.
            if res.is_ok() {
                w.write_all(b"0\r\n\r\n")?;
                w.flush()?;
                return Ok(true);
            }
            Ok(false)
        }
        _ => {
            let bytes = bytes.unwrap_or_default();
            // 204 and 304 carry no body and no length.
            if !matches!(resp.status, 204 | 304) {
                write!(w, "Content-Length: {}\r\n", bytes.len())?;
            }
            w.write_all(b"\r\n")?;
            if !head_only {
                w.write_all(&bytes)?;
            }
            w.flush()?;
            Ok(true)
        }
    }
}

/// Reads requests off one connection and answers them until the client closes it.
pub fn serve_connection<S: Conn>(
    stream: S,
    handle: &dyn Fn(&Request) -> Response,
) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let req = match read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let resp = Response::json(400, serde_json::json!({ "message": e.to_string() }));
                write_response(&mut out, resp, false)?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let resp = handle(&req);
        let keep = write_response(&mut out, resp, req.method == "HEAD")?;
        if !keep || req.close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_and_chunked_bodies_and_queries() {
        let raw = b"POST /v1.41/containers/create?name=a%20b&x=1+2 HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}GET /_ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        let a = read_request(&mut r).unwrap().unwrap();
        assert_eq!(a.method, "POST");
        assert_eq!(a.path, "/v1.41/containers/create");
        assert_eq!(a.param("name"), Some("a b"));
        assert_eq!(a.param("x"), Some("1 2"));
        assert_eq!(a.body, b"{}");
        let b = read_request(&mut r).unwrap().unwrap();
        assert_eq!(b.body, b"abc");
        assert!(read_request(&mut r).unwrap().is_none());
    }

    #[test]
    fn malformed_request_lines_are_invalid_data() {
        let mut r = BufReader::new(&b"NONSENSE\r\n\r\n"[..]);
        assert_eq!(
            read_request(&mut r).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn flags_read_as_docker_reads_them() {
        let req = Request {
            query: parse_query("all=1&force=false&v=true&e="),
            ..Default::default()
        };
        assert!(req.flag("all") && req.flag("v"));
        assert!(!req.flag("force") && !req.flag("e") && !req.flag("missing"));
        assert_eq!(percent_decode("%2Fx%3a"), "/x:");
    }
}
