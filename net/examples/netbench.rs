//! Network benchmark driver for benches/net.sh (run as root).
//!
//! `netbench full [-n QUERIES] [-r REQUESTS] [--mb SIZE]` builds a throw-away state root, a
//! network, two namespaces standing in for containers (busybox httpd in one, published on
//! 127.0.0.1), and measures DNS latency from inside a namespace and HTTP through the published
//! port. Everything is removed at the end.
//!
//! `netbench dns --netns PATH --server IP --name NAME [-n N]` and
//! `netbench http --port PORT [-r N] [--path /big]` measure an existing setup (e.g. Docker's),
//! so the script compares both with the same client.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcompose_net::{AttachRequest, CreateRequest, Networks, ports};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn arg(args: &[String], key: &str) -> Option<String> {
    args.iter()
        .position(|a| a == key)
        .and_then(|i| args.get(i + 1).cloned())
}

fn num(args: &[String], key: &str, default: usize) -> usize {
    arg(args, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("full") => full(&args),
        Some("dns") => {
            let netns = PathBuf::from(arg(&args, "--netns").ok_or("--netns PATH")?);
            let server: Ipv4Addr = arg(&args, "--server").ok_or("--server IP")?.parse()?;
            let name = arg(&args, "--name").ok_or("--name NAME")?;
            report_dns(&dns_latency(&netns, server, &name, num(&args, "-n", 2000))?);
            Ok(())
        }
        Some("http") => {
            let port: u16 = arg(&args, "--port").ok_or("--port PORT")?.parse()?;
            http_bench(
                port,
                num(&args, "-r", 500),
                &arg(&args, "--path").unwrap_or("/big".into()),
            )
        }
        _ => Err("usage: netbench full|dns|http …".into()),
    }
}

struct Ns {
    name: String,
    procs: Vec<Child>,
}

impl Ns {
    fn new(name: String) -> Res<Ns> {
        if !Command::new("ip")
            .args(["netns", "add", &name])
            .status()?
            .success()
        {
            return Err(format!("ip netns add {name} failed").into());
        }
        Ok(Ns {
            name,
            procs: Vec::new(),
        })
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

struct Cleanup<'a> {
    nets: &'a Networks,
    network: String,
    ids: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.nets.detach_all(id);
        }
        let _ = self.nets.remove(&self.network);
    }
}

fn full(args: &[String]) -> Res<()> {
    // SAFETY: single-threaded at this point.
    unsafe { std::env::set_var("RCOMPOSE_DNS_UPSTREAM", "none") };
    let tmp = tempfile::tempdir()?;
    let nets = Networks::open(&tmp.path().join("root"), &tmp.path().join("run"))?
        .with_helper_exe(arg(args, "--bin").ok_or("--bin path/to/rcompose")?);
    let network = format!("bench{}", std::process::id());
    nets.create(CreateRequest {
        name: network.clone(),
        subnet: Some("10.231.200.0/24".parse()?),
        ..Default::default()
    })?;
    let mut guard = Cleanup {
        nets: &nets,
        network: network.clone(),
        ids: Vec::new(),
    };
    let mut server = Ns::new(format!("rcbench-s{}", std::process::id()))?;
    let client = Ns::new(format!("rcbench-c{}", std::process::id()))?;
    let mut attach = |ns: &Ns, name: &str| -> Res<rcompose_net::Attachment> {
        let id = format!("{name}-{}", ns.name);
        guard.ids.push(id.clone());
        Ok(nets.attach(
            &network,
            AttachRequest {
                container_id: id,
                container_name: name.into(),
                netns_path: ns.path(),
                ..Default::default()
            },
        )?)
    };
    attach(&server, "web")?;
    let c = attach(&client, "client")?;
    let www = tmp.path().join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("index.html"), "ok")?;
    std::fs::write(www.join("big"), vec![b'x'; num(args, "--mb", 64) << 20])?;
    server.procs.push(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &server.name,
                "busybox",
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
            ])
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    nets.publish_ports(
        &network,
        &format!("web-{}", server.name),
        &ports::parse(&format!("127.0.0.1:{port}:80"))?,
    )?;
    std::thread::sleep(Duration::from_millis(300));

    println!("rcompose DNS (A query for a container name from inside a namespace):");
    report_dns(&dns_latency(
        &client.path(),
        c.gateway,
        "web",
        num(args, "-n", 2000),
    )?);
    println!("rcompose published port 127.0.0.1:{port} (DNAT):");
    http_bench(port, num(args, "-r", 500), "/big")?;
    drop(guard);
    Ok(())
}

fn dns_latency(netns: &Path, server: Ipv4Addr, name: &str, n: usize) -> Res<Vec<Duration>> {
    let file = std::fs::File::open(netns)?;
    let name = name.to_string();
    std::thread::spawn(move || -> Result<Vec<Duration>, String> {
        // SAFETY: enters the namespace on this thread only.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("setns: {}", std::io::Error::last_os_error()));
        }
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(n);
        let mut buf = [0u8; 1500];
        for i in 0..n {
            let id = (i % 65536) as u16;
            let mut q = id.to_be_bytes().to_vec();
            q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
            for l in name.split('.') {
                q.push(l.len() as u8);
                q.extend_from_slice(l.as_bytes());
            }
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            let t = Instant::now();
            sock.send_to(&q, SocketAddrV4::new(server, 53))
                .map_err(|e| e.to_string())?;
            let (len, _) = sock
                .recv_from(&mut buf)
                .map_err(|e| format!("query {i}: {e}"))?;
            if len < 12 || buf[3] & 0x0f != 0 {
                return Err(format!("query {i}: bad reply"));
            }
            out.push(t.elapsed());
        }
        Ok(out)
    })
    .join()
    .map_err(|_| "dns thread panicked")?
    .map_err(Into::into)
}

fn report_dns(samples: &[Duration]) {
    let mut s = samples.to_vec();
    s.sort();
    let pct = |p: f64| s[((s.len() as f64 * p) as usize).min(s.len() - 1)].as_secs_f64() * 1e6;
    let mean = s.iter().map(Duration::as_secs_f64).sum::<f64>() / s.len() as f64 * 1e6;
    println!(
        "  {} queries: mean {mean:.0} us, p50 {:.0} us, p99 {:.0} us",
        s.len(),
        pct(0.5),
        pct(0.99)
    );
}

fn get(port: u16, path: &str) -> Res<usize> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    Ok(body.len())
}

fn http_bench(port: u16, requests: usize, big: &str) -> Res<()> {
    let t = Instant::now();
    for _ in 0..requests {
        get(port, "/")?;
    }
    let rps = requests as f64 / t.elapsed().as_secs_f64();
    println!("  {requests} sequential small requests: {rps:.0} req/s");
    let t = Instant::now();
    let bytes = get(port, big)?;
    let mbps = bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    println!("  one {} MiB download: {mbps:.0} MiB/s", bytes >> 20);
    Ok(())
}
