//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`.
//! The monitor writes them, rotating files with docker's `max-size`/`max-file` scheme;
//! `logs` reads them with `--tail`, `--since`, `--until` and follows across rotations.

mod files;
mod options;

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use files::rotated as rotated_path;
pub use options::{LOG_OPTIONS, Rotation};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("invalid log option {key}={value:?}: {hint}")]
    InvalidOption {
        key: String,
        value: String,
        hint: String,
    },
    #[error("unknown log option {key:?} for the {driver} logging driver: {hint}")]
    UnknownOption {
        key: String,
        driver: String,
        hint: String,
    },
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
    rotation: Rotation,
    /// Bytes in the current file.
    size: u64,
    /// Present when the log rotates (`max-size` set).
    lock: Option<files::WriterLock>,
}

impl LogWriter {
    /// Opens (or creates) the current file at `path`, appending after what is there.
    pub fn open(path: &Path, rotation: Rotation) -> Result<Self, LogError> {
        // 0600: whatever the container prints (passwords included) is for root only.
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| LogError::Io {
                path: path.into(),
                source,
            })?;
        // A crash (power loss) can leave half a line at the end: end it, so the entries
        // appended now stay readable instead of being glued onto the torn one.
        let mut len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len > 0 {
            use std::os::unix::fs::FileExt;
            let mut last = [0u8; 1];
            if file.read_at(&mut last, len - 1).is_ok()
                && last[0] != b'\n'
                && file.write_all(b"\n").is_ok()
            {
                len += 1;
            }
        }
        let lock = match rotation.max_size {
            Some(_) => Some(files::WriterLock::open(path)?),
            None => None,
        };
        Ok(Self {
            file: Some(file),
            path: path.into(),
            pending: [vec![], vec![]],
            rotation,
            size: len,
            lock,
        })
    }

    /// A writer that keeps nothing (logging driver `none`).
    pub fn discard() -> Self {
        Self {
            file: None,
            path: PathBuf::new(),
            pending: [vec![], vec![]],
            rotation: Rotation::default(),
            size: 0,
            lock: None,
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

    /// Writes whole entries (`out` holds complete lines), moving on to a fresh file first
    /// whenever the next entry would take the current one past `max-size`. A file holds at
    /// least one entry, so an entry larger than `max-size` still gets written.
    fn append(&mut self, out: &[u8]) -> Result<(), LogError> {
        if self.file.is_none() || out.is_empty() {
            return Ok(());
        }
        let Some(max) = self.rotation.max_size else {
            return self.write_raw(out);
        };
        let mut rest = out;
        while !rest.is_empty() {
            let mut take = 0usize;
            for line in rest.split_inclusive(|b| *b == b'\n') {
                let fits = self.size + (take + line.len()) as u64 <= max;
                if !fits && (take > 0 || self.size > 0) {
                    break;
                }
                take += line.len();
            }
            if take > 0 {
                self.write_raw(&rest[..take])?;
                rest = &rest[take..];
            }
            if !rest.is_empty()
                && let Err(e) = self.rotate()
            {
                // Keep the output rather than the size limit.
                self.write_raw(rest)?;
                return Err(e);
            }
        }
        Ok(())
    }

    fn write_raw(&mut self, data: &[u8]) -> Result<(), LogError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(data).map_err(|source| LogError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// Docker's scheme: the current file becomes `.1` (older ones shift up, the oldest
    /// beyond `max-file` is dropped) and writing continues in a fresh file.
    fn rotate(&mut self) -> Result<(), LogError> {
        let Some(lock) = &self.lock else {
            return Ok(());
        };
        let fresh_path = files::fresh_path(&self.path);
        let _guard = lock.lock()?;
        let fresh = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&fresh_path)
            .map_err(files::io_err(&fresh_path))?;
        files::rotate(
            &self.path,
            &fresh_path,
            self.rotation.max_file.saturating_sub(1),
        )?;
        self.file = Some(fresh);
        self.size = 0;
        Ok(())
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

/// Where a follower stands: the file it reads, recognised by inode (which survives the
/// renames of a rotation) and first entry, and the byte offset after the last complete
/// entry it has. The default means "before everything": the start of the oldest file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub ino: u64,
    /// [`files::LogFile::head`] of that file when it was read; 0 if it was still empty.
    pub head: u64,
    pub offset: u64,
}

impl Position {
    fn at(f: &files::LogFile, offset: u64) -> Result<Self, LogError> {
        Ok(Self {
            ino: f.ino,
            head: f.head()?,
            offset,
        })
    }

    fn is_in(&self, f: &files::LogFile) -> Result<bool, LogError> {
        Ok(self.ino != 0 && f.ino == self.ino && (self.head == 0 || f.head()? == self.head))
    }
}

/// Reads the entries matching `opts` from all the log's files, oldest first; returns them
/// and the position to follow from. A missing log reads as empty.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<(Vec<LogEntry>, Position), LogError> {
    let mut files = files::snapshot(path)?;
    let mut pos = None;
    let mut chunks = vec![];
    let mut have = 0usize;
    // Newest first, so `--tail` stops once it has enough instead of parsing every file.
    for f in files.iter_mut().rev() {
        let mut got = vec![];
        let offset = read_entries(f, 0, opts, &mut got)?;
        if pos.is_none() {
            pos = Some(Position::at(f, offset)?);
        }
        have += got.len();
        chunks.push(got);
        if opts.tail.is_some_and(|t| have >= t) {
            break;
        }
    }
    let mut entries: Vec<LogEntry> = chunks.into_iter().rev().flatten().collect();
    if let Some(t) = opts.tail {
        let skip = entries.len().saturating_sub(t);
        entries.drain(..skip);
    }
    Ok((entries, pos.unwrap_or_default()))
}

/// Complete entries written after `pos`; returns them and the new position. After a
/// rotation the rest of the followed file (now `.1`, `.2` …) comes first, then the newer
/// files from their start; a file replaced in place (shorter than `pos`) is read from its
/// start, and so is everything still there when the followed file is gone. Fails when the
/// current file does not exist (the container was removed).
pub fn read_from(
    path: &Path,
    pos: Position,
    opts: &ReadOptions,
) -> Result<(Vec<LogEntry>, Position), LogError> {
    let mut files = files::snapshot(path)?;
    if files.last().is_none_or(|f| f.path != path) {
        return Err(files::io_err(path)(io::ErrorKind::NotFound.into()));
    }
    let mut found = None;
    for (i, f) in files.iter().enumerate() {
        if pos.is_in(f)? {
            found = Some(i);
            break;
        }
    }
    let (start, mut offset) = match found {
        Some(i) if files[i].len >= pos.offset => (i, pos.offset),
        Some(i) => (i, 0),
        None => (0, 0),
    };
    let mut entries = vec![];
    let mut new = pos;
    for f in &mut files[start..] {
        let end = read_entries(f, offset, opts, &mut entries)?;
        new = Position::at(f, end)?;
        offset = 0;
    }
    Ok((entries, new))
}

/// Appends the complete entries of `f` from `offset` matching `opts`; returns the offset
/// after the last complete line (an unterminated one is still being written).
fn read_entries(
    f: &mut files::LogFile,
    offset: u64,
    opts: &ReadOptions,
    entries: &mut Vec<LogEntry>,
) -> Result<u64, LogError> {
    let path = f.path.clone();
    f.file
        .seek(SeekFrom::Start(offset))
        .map_err(files::io_err(&path))?;
    let mut reader = BufReader::new(&mut f.file);
    let mut off = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(files::io_err(&path))?;
        if n == 0 || !line.ends_with(b"\n") {
            break;
        }
        off += n as u64;
        // Bytes, not text: a line torn by a crash may not even be UTF-8; it is skipped.
        if let Ok(e) = serde_json::from_slice::<LogEntry>(&line)
            && matches(&e, opts)
        {
            entries.push(e);
        }
    }
    Ok(off)
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
        let mut w = LogWriter::open(&p, Rotation::default()).unwrap();
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
        assert_eq!(off.offset, std::fs::metadata(&p).unwrap().len());
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
        let mut w = LogWriter::open(&p, Rotation::default()).unwrap();
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
        let mut w = LogWriter::open(&p, Rotation::default()).unwrap();
        w.write(true, b"after\n").unwrap();
        let (entries, _) = read(&p, &ReadOptions::default()).unwrap();
        let logs: Vec<&str> = entries.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logs, ["before\n", "after\n"]);
    }
    fn rotating(max_size: u64, max_file: u32) -> Rotation {
        Rotation {
            max_size: Some(max_size),
            max_file,
        }
    }

    /// One entry's size on disk for `text` (the timestamp has a fixed width).
    fn entry_len(text: &str) -> u64 {
        let mut out = vec![];
        encode(&mut out, text.as_bytes(), false);
        out.len() as u64
    }

    fn texts(entries: &[LogEntry]) -> Vec<String> {
        entries.iter().map(|e| e.log.clone()).collect()
    }

    fn line(i: usize) -> String {
        format!("line {i:04}\n")
    }

    /// The log's files that exist, current first.
    fn log_files(p: &Path) -> Vec<PathBuf> {
        std::iter::once(p.to_path_buf())
            .chain((1..10).map(|n| rotated_path(p, n)))
            .filter(|f| f.exists())
            .collect()
    }

    #[test]
    fn rotates_before_an_entry_would_pass_max_size() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let one = entry_len(&line(0));
        // Exactly three entries fit: the fourth starts a new file.
        let mut w = LogWriter::open(&p, rotating(3 * one, 3)).unwrap();
        for i in 0..3 {
            w.write(false, line(i).as_bytes()).unwrap();
        }
        assert_eq!(log_files(&p), std::slice::from_ref(&p));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 3 * one);
        w.write(false, line(3).as_bytes()).unwrap();
        assert_eq!(log_files(&p), [p.clone(), rotated_path(&p, 1)]);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), one);
        assert_eq!(
            std::fs::metadata(rotated_path(&p, 1)).unwrap().len(),
            3 * one
        );
        // Many entries in one write are split across files at entry boundaries, and only
        // max-file files are kept: 3 × 3 entries, the oldest 3 + 4 … dropped.
        let batch: String = (4..20).map(line).collect();
        w.write(false, batch.as_bytes()).unwrap();
        let files = log_files(&p);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 3 * one, "{f:?}");
        }
        let (all, _) = read(&p, &ReadOptions::default()).unwrap();
        let want: Vec<String> = (12..20).map(line).collect();
        assert_eq!(texts(&all), want);
        assert!(!files::fresh_path(&p).exists());
    }

    #[test]
    fn an_entry_larger_than_max_size_gets_a_file_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let mut w = LogWriter::open(&p, rotating(10, 2)).unwrap();
        w.write(false, b"a\nb\n").unwrap();
        assert_eq!(log_files(&p).len(), 2);
        let (all, _) = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(texts(&all), ["a\n", "b\n"]);
    }

    #[test]
    fn max_file_one_replaces_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let one = entry_len(&line(0));
        let mut w = LogWriter::open(&p, rotating(2 * one, 1)).unwrap();
        let (_, start) = read(&p, &ReadOptions::default()).unwrap();
        for i in 0..5 {
            w.write(false, line(i).as_bytes()).unwrap();
        }
        assert_eq!(log_files(&p), std::slice::from_ref(&p));
        let (all, _) = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(texts(&all), [line(4)]);
        // A follower whose file was replaced starts over in the new one.
        let (more, _) = read_from(&p, start, &ReadOptions::default()).unwrap();
        assert_eq!(texts(&more), [line(4)]);
    }

    #[test]
    fn reopening_continues_the_size_count_of_the_current_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let one = entry_len(&line(0));
        let mut w = LogWriter::open(&p, rotating(2 * one, 2)).unwrap();
        w.write(false, line(0).as_bytes()).unwrap();
        drop(w);
        // A new monitor (restart after a crash) appends one more, then must rotate.
        let mut w = LogWriter::open(&p, rotating(2 * one, 2)).unwrap();
        w.write(false, line(1).as_bytes()).unwrap();
        assert_eq!(log_files(&p).len(), 1);
        w.write(false, line(2).as_bytes()).unwrap();
        assert_eq!(log_files(&p).len(), 2);
    }

    #[test]
    fn tail_and_bounds_read_across_files_oldest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let one = entry_len(&line(0));
        let mut w = LogWriter::open(&p, rotating(4 * one, 5)).unwrap();
        for i in 0..10 {
            w.write(i % 3 == 0, line(i).as_bytes()).unwrap();
        }
        assert_eq!(log_files(&p).len(), 3);
        let (all, pos) = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(texts(&all), (0..10).map(line).collect::<Vec<_>>());
        assert_eq!(pos.offset, std::fs::metadata(&p).unwrap().len());
        for t in [0, 1, 2, 3, 5, 9, 10, 50] {
            let (tail, _) = read(
                &p,
                &ReadOptions {
                    tail: Some(t),
                    ..Default::default()
                },
            )
            .unwrap();
            let want: Vec<String> = (10usize.saturating_sub(t)..10).map(line).collect();
            assert_eq!(texts(&tail), want, "tail {t}");
        }
        // `--until` before the first entry: nothing, whichever file it would be in.
        let (none, _) = read(
            &p,
            &ReadOptions {
                until: Some("1970-01-01T00:00:00Z".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_follower_keeps_up_across_rotations_without_loss_or_repeats() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let one = entry_len(&line(0));
        let mut w = LogWriter::open(&p, rotating(3 * one, 4)).unwrap();
        w.write(false, line(0).as_bytes()).unwrap();
        let (first, mut pos) = read(&p, &ReadOptions::default()).unwrap();
        let mut seen = texts(&first);
        let mut next = 1;
        // Polls between writes of 0 … 5 entries: within a file, right at a rotation, across
        // one rotation and across two (the followed file is then `.2`).
        for burst in [2, 0, 1, 3, 5, 4, 6, 1, 2, 7] {
            for _ in 0..burst {
                w.write(false, line(next).as_bytes()).unwrap();
                next += 1;
            }
            let (more, p2) = read_from(&p, pos, &ReadOptions::default()).unwrap();
            seen.extend(texts(&more));
            pos = p2;
        }
        assert_eq!(seen, (0..next).map(line).collect::<Vec<_>>());
        // A partial line is not taken until complete.
        w.write(false, b"half").unwrap();
        let (more, p2) = read_from(&p, pos, &ReadOptions::default()).unwrap();
        assert!(more.is_empty());
        w.write(false, b" done\n").unwrap();
        let (more, _) = read_from(&p, p2, &ReadOptions::default()).unwrap();
        assert_eq!(texts(&more), ["half done\n"]);
    }

    #[test]
    fn a_follower_that_fell_behind_resumes_at_the_oldest_file_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let one = entry_len(&line(0));
        let mut w = LogWriter::open(&p, rotating(2 * one, 2)).unwrap();
        w.write(false, line(0).as_bytes()).unwrap();
        let (_, pos) = read(&p, &ReadOptions::default()).unwrap();
        for i in 1..9 {
            w.write(false, line(i).as_bytes()).unwrap();
        }
        let (more, _) = read_from(&p, pos, &ReadOptions::default()).unwrap();
        assert_eq!(texts(&more), (6..9).map(line).collect::<Vec<_>>());
    }

    #[test]
    fn following_a_removed_log_fails_and_a_missing_one_reads_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let (none, pos) = read(&p, &ReadOptions::default()).unwrap();
        assert!(none.is_empty());
        assert_eq!(pos, Position::default());
        assert!(read_from(&p, pos, &ReadOptions::default()).is_err());
        let mut w = LogWriter::open(&p, Rotation::default()).unwrap();
        w.write(false, b"x\n").unwrap();
        // The log appeared after the first read: the follower takes it from the start.
        let (more, _) = read_from(&p, pos, &ReadOptions::default()).unwrap();
        assert_eq!(texts(&more), ["x\n"]);
    }

    #[test]
    fn a_follower_polling_beside_the_writer_stays_in_order_without_repeats() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c-json.log");
        let one = entry_len(&line(0));
        let total = 3000;
        let mut w = LogWriter::open(&p, rotating(7 * one, 3)).unwrap();
        let (_, mut pos) = read(&p, &ReadOptions::default()).unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..total {
                w.write(false, line(i).as_bytes()).unwrap();
            }
        });
        let mut seen = vec![];
        let last = line(total - 1);
        let mut polls = 0;
        while seen.last() != Some(&last) {
            let (more, p2) = read_from(&p, pos, &ReadOptions::default()).unwrap();
            seen.extend(texts(&more));
            pos = p2;
            polls += 1;
            assert!(polls < 10_000_000, "follower never saw the last line");
        }
        writer.join().unwrap();
        // The follower may fall more than max-file files behind and lose the dropped ones
        // (as docker's does), but what it prints is in order, without repeats.
        let numbers: Vec<usize> = seen
            .iter()
            .map(|l| l.trim_start_matches("line ").trim().parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }
}
