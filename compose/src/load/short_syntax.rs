//! Short syntaxes of the canonical stage: ports (`[ip:][published:]target[/proto]` with ranges),
//! volumes (`[source:]target[:options]`), long-form defaults, and shell-style command splitting.

use yaml_serde::{Mapping, Value};

use super::canonical::{PathContext, scalar_text, to_string_map, update};

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// Splits a command line like a POSIX shell would, without expansions.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err(format!("unterminated double quote in {text:?}")),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err(format!("unterminated double quote in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

pub(crate) fn long_port(m: &Mapping) -> Mapping {
    let mut out = Mapping::new();
    if let Some(n) = m.get("name") {
        out.insert(s("name"), n.clone());
    }
    out.insert(
        s("mode"),
        m.get("mode").cloned().unwrap_or_else(|| s("ingress")),
    );
    if let Some(ip) = m.get("host_ip") {
        out.insert(s("host_ip"), ip.clone());
    }
    if let Some(t) = m.get("target") {
        out.insert(s("target"), t.clone());
    }
    if let Some(p) = m.get("published").and_then(scalar_text) {
        out.insert(s("published"), s(p));
    }
    out.insert(
        s("protocol"),
        m.get("protocol").cloned().unwrap_or_else(|| s("tcp")),
    );
    if let Some(a) = m.get("app_protocol") {
        out.insert(s("app_protocol"), a.clone());
    }
    out.extend(super::canonical::extensions(m));
    out
}

fn port_range(text: &str) -> Result<(u32, u32), String> {
    let parse = |p: &str| -> Result<u32, String> {
        p.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("{p:?} is not a port number (0-65535)"))
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid range {text}: end before start"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse(text)?;
            Ok((p, p))
        }
    }
}

/// Port short syntax: `[host_ip:][published:]target[/protocol]`, with ranges; `[::1]:80:80`.
pub fn parse_port(spec: &str) -> Result<Vec<Value>, String> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".into()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol {protocol:?} (tcp, udp or sctp)"));
    }
    let (host_ip, rest) = if let Some(stripped) = rest.strip_prefix('[') {
        let end = stripped.find(']').ok_or("unclosed [ in IPv6 address")?;
        let ip = &stripped[..end];
        let after = stripped[end + 1..]
            .strip_prefix(':')
            .ok_or("expected : after the IPv6 address")?;
        (Some(ip.to_string()), after)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => (Some(parts[0].to_string()), &rest[parts[0].len() + 1..]),
            _ => {
                return Err(
                    "too many colons (IPv6 host addresses go in brackets: [::1]:80:80)".into(),
                );
            }
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest),
    };
    let (t_start, t_end) = port_range(target)?;
    let published = published.filter(|p| !p.is_empty());
    let host_range = published.map(port_range).transpose()?;
    let count = t_end - t_start + 1;
    let mut out = Vec::new();
    for i in 0..count {
        let published = match host_range {
            None => None,
            Some((h_start, h_end)) if count == 1 => Some(if h_start == h_end {
                h_start.to_string()
            } else {
                format!("{h_start}-{h_end}")
            }),
            Some((h_start, h_end)) => {
                if h_end - h_start + 1 != count {
                    return Err("host and container port ranges have different sizes".into());
                }
                Some((h_start + i).to_string())
            }
        };
        let mut m = Mapping::new();
        m.insert(s("mode"), s("ingress"));
        if let Some(ip) = &host_ip {
            m.insert(s("host_ip"), s(ip.clone()));
        }
        m.insert(s("target"), Value::Number((t_start + i).into()));
        if let Some(p) = published {
            m.insert(s("published"), s(p));
        }
        m.insert(s("protocol"), s(protocol.clone()));
        out.push(Value::Mapping(m));
    }
    Ok(out)
}

fn is_path_source(src: &str) -> bool {
    src.starts_with(['.', '/', '~'])
        || src.starts_with(r"\\")
        || is_windows_drive_prefix(src)
        || src.contains('/')
}

/// `C:` at the start (a Windows drive), as compose v2 recognises it.
fn is_windows_drive_prefix(src: &str) -> bool {
    let mut chars = src.chars();
    matches!((chars.next(), chars.next()), (Some(c), Some(':')) if c.is_alphabetic())
}

/// The fields of a volume short syntax, split as compose v2 splits them.
#[derive(Debug, Default, PartialEq)]
pub struct VolumeFields {
    pub source: String,
    pub target: String,
    pub options: Vec<String>,
}

/// Splits `[source:]target[:options]` as compose v2 does: a colon inside `${...}` or right
/// after a one-letter Windows drive does not split; a spec of one or two characters is a
/// target alone.
pub fn split_volume(spec: &str) -> Result<VolumeFields, String> {
    let mut fields = VolumeFields::default();
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    if spec.len() <= 2 {
        fields.target = spec.to_string();
        return Ok(fields);
    }
    let mut buffer = String::new();
    let mut depth = 0usize;
    let bytes = spec.as_bytes();
    let chars = spec.char_indices().map(Some).chain(std::iter::once(None));
    for item in chars {
        let c = item.map(|(_, c)| c);
        if let Some((i, '$')) = item
            && bytes.get(i + 1) == Some(&b'{')
        {
            depth += 1;
            buffer.push('$');
            continue;
        }
        if c == Some('}') && depth > 0 {
            depth -= 1;
            buffer.push('}');
            continue;
        }
        let drive = c == Some(':')
            && buffer.chars().count() == 1
            && buffer.chars().all(char::is_alphabetic);
        match c {
            Some(c) if drive => buffer.push(c),
            Some(':') | None if depth == 0 => {
                let at_end = c.is_none();
                let text = std::mem::take(&mut buffer);
                if text.is_empty() {
                    return Err("empty section between colons".into());
                } else if fields.source.is_empty() && at_end {
                    fields.target = text;
                } else if fields.source.is_empty() {
                    fields.source = text;
                } else if fields.target.is_empty() {
                    fields.target = text;
                } else if !at_end {
                    return Err("too many colons".into());
                } else {
                    fields.options = text.split(',').map(str::to_string).collect();
                }
            }
            Some(c) => buffer.push(c),
            // The spec ends inside `${`: the last field is never completed (as compose v2).
            None => {}
        }
    }
    Ok(fields)
}

/// Volume short syntax: `[source:]target[:options]`. Options compose v2 does not know are
/// ignored, as it ignores them.
pub fn parse_volume(spec: &str, ctx: &PathContext) -> Result<Value, String> {
    let fields = split_volume(spec)?;
    let target = fields.target.as_str();
    if target.is_empty() {
        return Err("empty target path".into());
    }
    let mut m = Mapping::new();
    if spec.len() <= 2 {
        m.insert(s("type"), s("volume"));
        m.insert(s("target"), s(target));
        return Ok(Value::Mapping(m));
    }
    let mut bind = Mapping::new();
    let mut vol = Mapping::new();
    let mut read_only = false;
    for opt in &fields.options {
        match opt.as_str() {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" => {
                bind.insert(s("selinux"), s(opt.as_str()));
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind.insert(s("propagation"), s(opt.as_str()));
            }
            "nocopy" => {
                vol.insert(s("nocopy"), Value::Bool(true));
            }
            _ => {}
        }
    }
    let source = Some(fields.source.as_str()).filter(|s| !s.is_empty());
    match source {
        Some(src) if is_path_source(src) => {
            m.insert(s("type"), s("bind"));
            m.insert(s("source"), s(ctx.resolve(src)));
            m.insert(s("target"), s(target));
            if read_only {
                m.insert(s("read_only"), Value::Bool(true));
            }
            bind.insert(s("create_host_path"), Value::Bool(true));
            m.insert(s("bind"), Value::Mapping(bind));
        }
        src => {
            m.insert(s("type"), s("volume"));
            if let Some(src) = src {
                m.insert(s("source"), s(src));
            }
            m.insert(s("target"), s(target));
            if read_only {
                m.insert(s("read_only"), Value::Bool(true));
            }
            m.insert(s("volume"), Value::Mapping(vol));
        }
    }
    Ok(Value::Mapping(m))
}

pub(crate) fn long_volume(m: &Mapping, ctx: &PathContext) -> Result<Value, String> {
    let mut m = m.clone();
    let source = m.get("source").and_then(scalar_text);
    let kind = match m.get("type").and_then(scalar_text) {
        Some(t) => t,
        None => {
            let t = if source.as_deref().is_some_and(is_path_source) {
                "bind"
            } else {
                "volume"
            };
            m.insert(s("type"), s(t));
            t.to_string()
        }
    };
    if !m.contains_key("target") {
        return Err("target is required".into());
    }
    if kind == "bind" {
        match source {
            Some(src) => {
                m.insert(s("source"), s(ctx.resolve(&src)));
            }
            None => return Err("a bind mount needs a source".into()),
        }
        if let Some(Value::Mapping(b)) = m.get_mut("bind")
            && !b.contains_key("create_host_path")
        {
            b.insert(s("create_host_path"), Value::Bool(true));
        }
    }
    if let Some(Value::Mapping(v)) = m.get_mut("volume") {
        update(v, "labels", |l| to_string_map(l, false));
    }
    Ok(Value::Mapping(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn ctx() -> PathContext<'static> {
        PathContext {
            base_dir: Path::new("/proj"),
            file_dir: Path::new("/proj"),
            home: Some("/root"),
            file: "f",
            resolve_paths: true,
        }
    }

    fn y(v: &Value) -> String {
        yaml_serde::to_string(v).unwrap()
    }

    #[test]
    fn ports() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            y(&p[0]),
            "mode: ingress\nhost_ip: 127.0.0.1\ntarget: 80\npublished: '8080'\nprotocol: udp\n"
        );
        assert_eq!(parse_port("3000-3002:4000-4002").unwrap().len(), 3);
        assert_eq!(parse_port("80").unwrap()[0].get("published"), None);
        let p = parse_port("8000-8010:80").unwrap();
        assert_eq!(p[0]["published"].as_str(), Some("8000-8010"));
        let p = parse_port("[::1]:53:53/udp").unwrap();
        assert_eq!(p[0]["host_ip"].as_str(), Some("::1"));
        assert!(parse_port("80:70000").is_err());
        assert!(parse_port("80/foo").is_err());
        assert!(parse_port("1-3:4-5").is_err());
    }

    #[test]
    fn volumes() {
        let v = parse_volume("./data:/data:ro,z", &ctx()).unwrap();
        assert_eq!(v["source"].as_str(), Some("/proj/data"));
        assert_eq!(v["read_only"].as_bool(), Some(true));
        assert_eq!(v["bind"]["selinux"].as_str(), Some("z"));
        let v = parse_volume("db:/var/lib/db", &ctx()).unwrap();
        assert_eq!(v["type"].as_str(), Some("volume"));
        let v = parse_volume("/cache", &ctx()).unwrap();
        assert!(v.get("source").is_none());
        let v = parse_volume("~/x:/x", &ctx()).unwrap();
        assert_eq!(v["source"].as_str(), Some("/root/x"));
        assert!(parse_volume("a:/b:bogus", &ctx()).is_ok());
        assert!(parse_volume("ab:/b:ro:x", &ctx()).is_err());
        // One letter and a colon is a Windows drive, as in compose v2.
        assert_eq!(
            parse_volume("a:/b", &ctx()).unwrap()["target"].as_str(),
            Some("a:/b")
        );
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split("sh -c 'echo hi there'").unwrap(),
            vec!["sh", "-c", "echo hi there"]
        );
        assert_eq!(
            shell_split(r#"a "b \"c\"" d\ e"#).unwrap(),
            vec!["a", "b \"c\"", "d e"]
        );
        assert!(shell_split("'open").is_err());
    }
}
