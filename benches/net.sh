#!/bin/sh
# Network benchmark (run as root from the workspace root):
#   DNS lookup latency from inside a container namespace, and HTTP through a port published on
#   127.0.0.1, for rcompose and, when a Docker daemon with a busybox image is available, for
#   Docker on the same machine with the same client (net/examples/netbench.rs).
# Usage: benches/net.sh [-n DNS_QUERIES] [-r HTTP_REQUESTS] [--mb BIG_FILE_MIB]
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin rcompose -p rcompose >/dev/null
cargo build --release -p rcompose-net --example netbench >/dev/null
BENCH=target/release/examples/netbench
echo "== rcompose"
"$BENCH" full --bin target/release/rcompose "$@"

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "== docker: no running Docker daemon here, comparison skipped"
    exit 0
fi
if ! docker image inspect busybox >/dev/null 2>&1; then
    echo "== docker: no local busybox image (docker load one), comparison skipped"
    exit 0
fi
echo "== docker"
NET="rcbench$$"
WEB="rcbench-web$$"
CLI="rcbench-cli$$"
cleanup() { docker rm -f "$WEB" "$CLI" >/dev/null 2>&1 || true; docker network rm "$NET" >/dev/null 2>&1 || true; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
docker network create --subnet 10.231.201.0/24 "$NET" >/dev/null
docker run -d --name "$WEB" --network "$NET" -p "127.0.0.1:$PORT:80" busybox \
    sh -c 'mkdir -p /www && echo ok > /www/index.html && head -c 67108864 /dev/zero > /www/big && httpd -f -p 80 -h /www' >/dev/null
docker run -d --name "$CLI" --network "$NET" busybox sleep 3600 >/dev/null
sleep 1
PID=$(docker inspect -f '{{.State.Pid}}' "$CLI")
echo "docker DNS (embedded resolver 127.0.0.11):"
"$BENCH" dns --netns "/proc/$PID/ns/net" --server 127.0.0.11 --name "$WEB" "$@"
echo "docker published port 127.0.0.1:$PORT:"
"$BENCH" http --port "$PORT" "$@"
