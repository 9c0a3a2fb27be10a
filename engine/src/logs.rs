//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`.
//! The monitor writes them; `logs` reads them with `--tail`, `--since`, `--until` and follows.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends log lines for one container; partial lines are buffered per stream until a
/// newline arrives (or `flush_partial` at exit), as docker does.
pub struct LogWriter {
    /// `None` for the `none` logging driver: output is read (the container must not block
    /// on a full pipe) and dropped.
    file: Option<File>,
    path: PathBuf,
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|source| LogError::Io {
                path: path.into(),
                source,
            })?;
        // A crash (power loss) can leave half a line at the end: end it, so the entries
        // appended now stay readable instead of being glued onto the torn one.
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > 0 {
            use std::os::unix::fs::FileExt;
            let mut last = [0u8; 1];
            if file.read_at(&mut last, len - 1).is_ok() && last[0] != b'\n' {
                let _ = file.write_all(b"\n");
            }
        }
        Ok(Self {
            file: Some(file),
            path: path.into(),
            pending: [vec![], vec![]],
        })
    }

    /// A writer that keeps nothing (logging driver `none`).
    pub fn discard() -> Self {
        Self {
            file: None,
            path: PathBuf::new(),
            pending: [vec![], vec![]],
        }
    }

    /// Records bytes read from the container; `stderr` selects the stream.
    pub fn write(&mut self, stderr: bool, data: &[u8]) -> Result<(), LogError> {
        if self.file.is_none() {
            return Ok(());
        }
        let idx = usize::from(stderr);
        self.pending[idx].extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(pos) = self.pending[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending[idx].drain(..=pos).collect();
            encode(&mut out, &line, stderr);
        }
        // Docker splits lines longer than 16 KiB.
        while self.pending[idx].len() >= 16 * 1024 {
            let chunk: Vec<u8> = self.pending[idx].drain(..16 * 1024).collect();
            encode(&mut out, &chunk, stderr);
        }
        self.append(&out)
    }

    /// Writes what is left of unterminated lines.
    pub fn flush_partial(&mut self) -> Result<(), LogError> {
        let mut out = Vec::new();
        for idx in 0..2 {
            if !self.pending[idx].is_empty() {
                let rest = std::mem::take(&mut self.pending[idx]);
                encode(&mut out, &rest, idx == 1);
            }
        }
        self.append(&out)
    }

    fn append(&mut self, out: &[u8]) -> Result<(), LogError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if out.is_empty() {
            return Ok(());
        }
        file.write_all(out).map_err(|source| LogError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn encode(out: &mut Vec<u8>, line: &[u8], stderr: bool) {
    let e = LogEntry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: if stderr { "stderr" } else { "stdout" }.into(),
        time: crate::container::model::now_rfc3339(),
    };
    if serde_json::to_writer(&mut *out, &e).is_ok() {
        out.push(b'\n');
    }
}

/// Options of `logs`.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// RFC 3339 bounds (compared as strings, which works for our fixed UTC format).
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Reads the entries matching `opts`; returns them and the byte offset to follow from.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<(Vec<LogEntry>, u64), LogError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((vec![], 0)),
        Err(source) => {
            return Err(LogError::Io {
                path: path.into(),
                source,
            });
        }
    };
    let mut reader = BufReader::new(f);
    let mut entries = vec![];
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| LogError::Io {
                path: path.into(),
                source,
            })?;
        if n == 0 || !line.ends_with(b"\n") {
            break;
        }
        offset += n as u64;
        // Bytes, not text: a line torn by a crash may not even be UTF-8; it is skipped.
        if let Ok(e) = serde_json::from_slice::<LogEntry>(&line)
            && matches(&e, opts)
        {
            entries.push(e);
        }
    }
    if let Some(t) = opts.tail {
        let skip = entries.len().saturating_sub(t);
        entries.drain(..skip);
    }
    Ok((entries, offset))
}

/// Complete entries appended after `offset`; returns them and the new offset.
pub fn read_from(
    path: &Path,
    offset: u64,
    opts: &ReadOptions,
) -> Result<(Vec<LogEntry>, u64), LogError> {
    let io = |source| LogError::Io {
        path: path.into(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut reader = BufReader::new(f);
    let mut entries = vec![];
    let mut off = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 || !line.ends_with(b"\n") {
            break;
        }
        off += n as u64;
        if let Ok(e) = serde_json::from_slice::<LogEntry>(&line)
            && matches(&e, opts)
        {
            entries.push(e);
        }
    }
    Ok((entries, off))
}

fn matches(e: &LogEntry, opts: &ReadOptions) -> bool {
    opts.since
        .as_ref()
        .is_none_or(|s| e.time.as_str() >= s.as_str())
        && opts
            .until
            .as_ref()
            .is_none_or(|u| e.time.as_str() < u.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_docker_json_lines_and_reads_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(false, b"one\ntw").unwrap();
        w.write(true, b"err\n").unwrap();
        w.write(false, b"o\n").unwrap();
        w.write(false, b"partial").unwrap();
        w.flush_partial().unwrap();
        let (all, off) = read(&p, &ReadOptions::default()).unwrap();
        let logs: Vec<_> = all
            .iter()
            .map(|e| (e.log.as_str(), e.stream.as_str()))
            .collect();
        assert_eq!(
            logs,
            [
                ("one\n", "stdout"),
                ("err\n", "stderr"),
                ("two\n", "stdout"),
                ("partial", "stdout")
            ]
        );
        assert_eq!(off, std::fs::metadata(&p).unwrap().len());
        let (tail, _) = read(
            &p,
            &ReadOptions {
                tail: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tail[0].log, "partial");
        let raw = std::fs::read_to_string(&p).unwrap();
        assert!(raw.starts_with("{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\""));
    }

    #[test]
    fn a_torn_last_line_does_not_spoil_later_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(false, b"before\n").unwrap();
        drop(w);
        // What a power loss can leave: half an entry, cut inside a multi-byte character.
        let mut torn = br#"{"log":"caf"#.to_vec();
        torn.push(0xc3);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(&torn)
            .unwrap();
        let mut w = LogWriter::open(&p).unwrap();
        w.write(true, b"after\n").unwrap();
        let (entries, _) = read(&p, &ReadOptions::default()).unwrap();
        let logs: Vec<&str> = entries.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logs, ["before\n", "after\n"]);
    }
}
