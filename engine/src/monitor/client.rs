//! The client side of the monitor's attach socket (foreground `run`, `start -a`, `attach`)
//! and the byte pump of an exec'd process's PTY (`exec -t`). The caller owns the terminal
//! (raw mode, signals, window size) and hands in its input and outputs; nothing here knows
//! it is a terminal.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::protocol;

/// How an attach session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys.
    Detached,
    /// The monitor went away without reporting an exit.
    Lost,
}

/// Watches a byte stream for the detach sequence.
struct DetachMatcher {
    keys: Vec<u8>,
    pos: usize,
}

impl DetachMatcher {
    fn feed(&mut self, b: u8) -> bool {
        if self.keys.is_empty() {
            return false;
        }
        if b == self.keys[self.pos] {
            self.pos += 1;
            if self.pos == self.keys.len() {
                return true;
            }
        } else {
            self.pos = usize::from(b == self.keys[0]);
        }
        false
    }
}

/// Runs an attach session on `stream` until the container exits or the user detaches.
/// `window` (rows, columns) is sent first for a TTY. With `input`, its bytes go to the
/// container's stdin from a thread of their own (EOF is passed on); the `detach_keys`
/// sequence in it ends the session. The container's stdout and stderr frames go to `out`
/// and `err`, flushed at once.
pub fn attach(
    stream: UnixStream,
    window: Option<(u16, u16)>,
    input: Option<(Box<dyn Read + Send>, Vec<u8>)>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<AttachEnd> {
    let detached = Arc::new(AtomicBool::new(false));
    let mut writer = stream.try_clone()?;
    if let Some((rows, cols)) = window {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        let _ = protocol::write_frame(&mut writer, protocol::RESIZE, &p);
    }
    if let Some((mut input, keys)) = input {
        let detached = detached.clone();
        let shut = stream.try_clone()?;
        // Detached: a blocking read of the caller's input cannot be interrupted; the thread
        // ends with the process.
        std::thread::spawn(move || {
            let mut m = DetachMatcher { keys, pos: 0 };
            let mut buf = [0u8; 4096];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = protocol::write_frame(&mut writer, protocol::STDIN_EOF, &[]);
                        return;
                    }
                    Ok(n) => n,
                };
                // Bytes up to a possible detach prefix are sent; a full match detaches.
                if buf[..n].iter().any(|b| m.feed(*b)) {
                    detached.store(true, Ordering::SeqCst);
                    let _ = shut.shutdown(Shutdown::Both);
                    return;
                }
                if protocol::write_frame(&mut writer, protocol::STDIN, &buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
    let mut reader = stream;
    loop {
        match protocol::read_frame(&mut reader) {
            Ok(Some((protocol::STDOUT, data))) => {
                let _ = out.write_all(&data);
                let _ = out.flush();
            }
            Ok(Some((protocol::STDERR, data))) => {
                let _ = err.write_all(&data);
                let _ = err.flush();
            }
            Ok(Some((protocol::EXIT, data))) if data.len() == 4 => {
                return Ok(AttachEnd::Exited(i32::from_be_bytes([
                    data[0], data[1], data[2], data[3],
                ])));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Ok(if detached.load(Ordering::SeqCst) {
                    AttachEnd::Detached
                } else {
                    AttachEnd::Lost
                });
            }
        }
    }
}

/// Copies an exec'd process's PTY `master` to `out` until the process closed it (EIO once
/// the last slave fd is gone), and `input` into the PTY from a thread of its own.
pub fn pump_pty(
    master: std::fs::File,
    input: Option<Box<dyn Read + Send>>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if let Some(mut input) = input {
        let mut w = master.try_clone()?;
        // Detached, as in `attach`: the read of the caller's input blocks.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 || w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let mut r = master;
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_sequence_matches_across_reads_and_restarts() {
        let mut m = DetachMatcher {
            keys: vec![16, 17],
            pos: 0,
        };
        assert!(!m.feed(16));
        assert!(m.feed(17));
        let mut m = DetachMatcher {
            keys: vec![16, 17],
            pos: 0,
        };
        assert!(!m.feed(16) && !m.feed(16));
        assert!(m.feed(17), "a repeated first key keeps the match going");
        let mut m = DetachMatcher {
            keys: vec![16, 17],
            pos: 0,
        };
        assert!(!m.feed(16) && !m.feed(b'x') && !m.feed(16));
        assert!(m.feed(17), "another byte restarts the match");
        assert!(
            !DetachMatcher {
                keys: vec![],
                pos: 0
            }
            .feed(0)
        );
    }

    #[test]
    fn frames_reach_the_outputs_and_the_exit_code_ends_the_session() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        protocol::write_frame(&mut theirs, protocol::STDOUT, b"out").unwrap();
        protocol::write_frame(&mut theirs, protocol::STDERR, b"err").unwrap();
        protocol::write_frame(&mut theirs, protocol::EXIT, &7i32.to_be_bytes()).unwrap();
        let (mut out, mut err) = (vec![], vec![]);
        let end = attach(ours, None, None, &mut out, &mut err).unwrap();
        assert_eq!(end, AttachEnd::Exited(7));
        assert_eq!((out.as_slice(), err.as_slice()), (&b"out"[..], &b"err"[..]));
        drop(theirs);
    }
}
