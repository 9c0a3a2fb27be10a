//! The DNS server process (`rcompose __dns`): one for all networks of a state root. It listens
//! (UDP and TCP, port 53) on the gateway of every DNS-enabled network that has containers,
//! answers from the table, forwards other names upstream, and reloads when the state changes
//! (SIGHUP from `rcompose`, plus a poll of the generation file as a fallback). Sockets of
//! networks that stay are kept across reloads, so no query is dropped. When no network has
//! needed it for a couple of seconds it exits.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use super::control::{DnsError, Paths, read_generation, release_hangup, upstreams};
use super::message::{Reply, answer, error};
use super::table::DnsTable;
use crate::store::Store;

const POLL: Duration = Duration::from_secs(1);
/// How long a server with nothing to serve stays before it exits. Starting one costs a
/// container start on a user-defined network ~5 ms (an exec, a runtime, the first load), so
/// a script running one `run --rm` after another, or a `down` followed by an `up`, found a
/// server gone and started the next one each time.
const LINGER: Duration = Duration::from_secs(2);
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

struct Shared {
    table: RwLock<Arc<DnsTable>>,
    rotate: AtomicUsize,
    upstreams: Vec<SocketAddr>,
}

impl Shared {
    fn table(&self) -> Arc<DnsTable> {
        self.table.read().map(|t| t.clone()).unwrap_or_default()
    }

    fn reply(&self, packet: &[u8], listen: Ipv4Addr, source: Ipv4Addr) -> Reply {
        let rotate = self.rotate.fetch_add(1, Ordering::Relaxed);
        answer(
            &self.table(),
            packet,
            listen,
            source,
            rotate,
            !self.upstreams.is_empty(),
        )
    }
}

/// Runs the server until no network needs it. Blocking; builds its own runtime.
pub fn run(root: &Path, run_root: &Path) -> Result<(), DnsError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DnsError::Io)?;
    rt.block_on(serve(root.to_path_buf(), Paths::new(run_root)))
}

fn load(store: &Store, paths: &Paths) -> Result<(u64, DnsTable), DnsError> {
    // Generation first: what we load is at least as new as the number we report.
    let generation = read_generation(&paths.dir);
    let mut networks = store.load_all()?;
    networks.retain(|n| n.dns && !n.endpoints.is_empty());
    Ok((generation, DnsTable::from_networks(&networks)))
}

async fn serve(root: PathBuf, paths: Paths) -> Result<(), DnsError> {
    let store = Store::open(&root)?;
    std::fs::create_dir_all(&paths.dir).map_err(DnsError::Io)?;
    std::fs::write(&paths.pid, std::process::id().to_string()).map_err(DnsError::Io)?;
    let shared = Arc::new(Shared {
        table: RwLock::new(Arc::new(DnsTable::default())),
        rotate: AtomicUsize::new(0),
        upstreams: upstreams(),
    });
    let mut hup = signal(SignalKind::hangup()).map_err(DnsError::Io)?;
    let mut term = signal(SignalKind::terminate()).map_err(DnsError::Io)?;
    // Started by `DnsControl::notify` with SIGHUP blocked: safe to receive it from now on.
    release_hangup()?;
    let mut listeners: HashMap<Ipv4Addr, Vec<JoinHandle<()>>> = HashMap::new();
    let mut loaded = u64::MAX;
    // Since when the table has been empty.
    let mut idle_since: Option<Instant> = None;
    loop {
        // The state root was removed under us (a test's temporary root, a wiped install):
        // no command can reach or stop this server any more, so it stops itself.
        if !store.dir().is_dir() {
            tracing::warn!("{} is gone; stopping", store.dir().display());
            break;
        }
        let generation = read_generation(&paths.dir);
        let missing = shared
            .table()
            .listen_addresses()
            .iter()
            .any(|a| !listeners.contains_key(a));
        let linger_over = idle_since.is_some_and(|t| t.elapsed() >= LINGER);
        if generation != loaded || missing || linger_over {
            let (generation, table) = match load(&store, &paths) {
                Ok(loaded) => loaded,
                // A broken state file must not take DNS down for every network: keep
                // answering from the last good table and try again on the next change.
                Err(e) => {
                    tracing::warn!("reload failed, keeping the previous table: {e}");
                    tokio::select! {
                        _ = hup.recv() => {}
                        _ = term.recv() => break,
                        _ = tokio::time::sleep(POLL) => {}
                    }
                    continue;
                }
            };
            if table.networks.is_empty() {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= LINGER {
                    if should_exit(&store, &paths)? {
                        break;
                    }
                    // A container came meanwhile: the next change reloads it.
                    idle_since = None;
                }
            } else {
                idle_since = None;
            }
            let wanted = table.listen_addresses();
            if let Ok(mut t) = shared.table.write() {
                *t = Arc::new(table);
            }
            listeners.retain(|addr, tasks| {
                let keep = wanted.contains(addr);
                if !keep {
                    tasks.iter().for_each(|t| t.abort());
                }
                keep
            });
            let new: Vec<Ipv4Addr> = wanted
                .iter()
                .filter(|a| !listeners.contains_key(a))
                .copied()
                .collect();
            for addr in new.iter() {
                match bind(*addr, shared.clone()).await {
                    Ok(tasks) => {
                        listeners.insert(*addr, tasks);
                    }
                    // Typically the bridge is not up yet; the next poll retries.
                    Err(e) => tracing::warn!("cannot listen on {addr}:53: {e}"),
                }
            }
            loaded = generation;
            let _ = std::fs::write(&paths.loaded, loaded.to_string());
        }
        tokio::select! {
            _ = hup.recv() => {}
            _ = term.recv() => break,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    for t in listeners.values().flatten() {
        t.abort();
    }
    // Only our own pid file: should_exit removed it under the lock already, and a command may
    // have started the next server since, whose file this must not delete.
    let ours = std::process::id().to_string();
    if std::fs::read_to_string(&paths.pid).is_ok_and(|p| p.trim() == ours) {
        let _ = std::fs::remove_file(&paths.pid);
    }
    Ok(())
}

/// Under the state lock, so that no `rcompose` command adds a container between our decision
/// and the removal of the pid file (it would signal a server that is going away).
fn should_exit(store: &Store, paths: &Paths) -> Result<bool, DnsError> {
    let _lock = store.lock()?;
    let (_, table) = load(store, paths)?;
    if table.networks.is_empty() {
        let _ = std::fs::remove_file(&paths.pid);
        return Ok(true);
    }
    Ok(false)
}

async fn bind(addr: Ipv4Addr, shared: Arc<Shared>) -> std::io::Result<Vec<JoinHandle<()>>> {
    let sa = SocketAddrV4::new(addr, 53);
    let udp = Arc::new(UdpSocket::bind(sa).await?);
    let tcp_socket = TcpSocket::new_v4()?;
    tcp_socket.set_reuseaddr(true)?;
    tcp_socket.bind(sa.into())?;
    let tcp = tcp_socket.listen(128)?;
    Ok(vec![
        tokio::spawn(udp_loop(udp, addr, shared.clone())),
        tokio::spawn(tcp_loop(tcp, addr, shared)),
    ])
}

async fn udp_loop(sock: Arc<UdpSocket>, listen: Ipv4Addr, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = sock.recv_from(&mut buf).await else {
            // Never spin on a persistent error.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let SocketAddr::V4(peer4) = peer else {
            continue;
        };
        let packet = buf[..len].to_vec();
        match shared.reply(&packet, listen, *peer4.ip()) {
            Reply::Local(bytes) => {
                let _ = sock.send_to(&bytes, peer).await;
            }
            Reply::Forward { id } => {
                let (sock, shared) = (sock.clone(), shared.clone());
                tokio::spawn(async move {
                    let bytes = forward_udp(&shared.upstreams, &packet)
                        .await
                        .unwrap_or_else(|| error(id, ResponseCode::ServFail));
                    let _ = sock.send_to(&bytes, peer).await;
                });
            }
            Reply::Drop => {}
        }
    }
}

async fn forward_udp(upstreams: &[SocketAddr], packet: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.send_to(packet, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((len, _))) =
            tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv_from(&mut buf)).await
        {
            buf.truncate(len);
            return Some(buf);
        }
    }
    None
}

async fn tcp_loop(listener: TcpListener, listen: Ipv4Addr, shared: Arc<Shared>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors, say: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let SocketAddr::V4(peer4) = peer else {
            continue;
        };
        tokio::spawn(tcp_conn(stream, listen, *peer4.ip(), shared.clone()));
    }
}

async fn tcp_conn(mut stream: TcpStream, listen: Ipv4Addr, source: Ipv4Addr, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        if tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len))
            .await
            .map_or(true, |r| r.is_err())
        {
            return;
        }
        let mut packet = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut packet).await.is_err() {
            return;
        }
        let bytes = match shared.reply(&packet, listen, source) {
            Reply::Local(b) => b,
            Reply::Forward { id } => forward_tcp(&shared.upstreams, &packet)
                .await
                .unwrap_or_else(|| error(id, ResponseCode::ServFail)),
            Reply::Drop => return,
        };
        let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&bytes);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn forward_tcp(upstreams: &[SocketAddr], packet: &[u8]) -> Option<Vec<u8>> {
    for up in upstreams {
        let attempt = async {
            let mut s = TcpStream::connect(up).await.ok()?;
            let mut out = (packet.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(packet);
            s.write_all(&out).await.ok()?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.ok()?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf).await.ok()?;
            Some(buf)
        };
        if let Ok(Some(b)) = tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            return Some(b);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake upstream on loopback: answers every packet with its own bytes reversed.
    async fn fake_upstream() -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                let mut reply = buf[..n].to_vec();
                reply.reverse();
                let _ = sock.send_to(&reply, peer).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn forwarding_relays_the_upstream_reply_and_skips_dead_upstreams() {
        let live = fake_upstream().await;
        // Nothing listens on the first one: the send fails or the wait times out, then the
        // second answers.
        let dead: SocketAddr = {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.local_addr().unwrap()
        };
        let reply = forward_udp(&[dead, live], b"abc").await;
        assert_eq!(reply.as_deref(), Some(&b"cba"[..]));
        assert_eq!(forward_udp(&[], b"abc").await, None);
    }
}
