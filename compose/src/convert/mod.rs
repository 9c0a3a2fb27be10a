//! Other engines' formats for the same project (`rcompose convert`, `rcompose stack deploy`).

pub mod kubernetes;
pub mod swarm;

/// One thing the other engine cannot express, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Empty for top-level objects.
    pub service: String,
    pub key: String,
    pub why: String,
}

/// Standard base64 with padding: Kubernetes `data` and the Docker API's secret and config data.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
