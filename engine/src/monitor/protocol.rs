//! The attach stream between a client (`run` in the foreground, `attach`, `start -a`) and the
//! monitor, over a unix stream socket. Every message is a frame: kind (1 byte), payload length
//! (u32 big endian), payload.

use std::io::{self, Read, Write};

/// Monitor → client: bytes the container wrote on stdout (or the terminal).
pub const STDOUT: u8 = 1;
/// Monitor → client: bytes the container wrote on stderr.
pub const STDERR: u8 = 2;
/// Monitor → client: the container exited; payload is the exit code (i32 BE). Last frame.
pub const EXIT: u8 = 3;
/// Client → monitor: bytes for the container's stdin.
pub const STDIN: u8 = 0;
/// Client → monitor: the client's stdin reached end of file.
pub const STDIN_EOF: u8 = 4;
/// Client → monitor: terminal size, rows and cols (u16 BE each).
pub const RESIZE: u8 = 5;

pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode(kind, payload))
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head[..1]) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut head[1..])?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 16 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Incremental decoder for the monitor's non-blocking reads.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Some((kind, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_incrementally() {
        let mut bytes = encode(STDOUT, b"hello");
        bytes.extend(encode(EXIT, &7i32.to_be_bytes()));
        let mut d = Decoder::default();
        d.push(&bytes[..3]);
        assert!(d.next_frame().is_none());
        d.push(&bytes[3..]);
        assert_eq!(d.next_frame(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(d.next_frame(), Some((EXIT, 7i32.to_be_bytes().to_vec())));
        let mut r = &bytes[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap().1, b"hello");
    }
}
