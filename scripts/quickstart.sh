#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running stack: host packages, a release build installed
# as /usr/local/bin/rcompose, the busybox:local image, and examples/quickstart up and checked.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release
install -m 0755 target/release/rcompose /usr/local/bin/rcompose
if ! rcompose image inspect busybox:local >/dev/null 2>&1; then
  examples/make-busybox-image.sh rcompose >/dev/null
fi
cd examples/quickstart
rcompose up -d --wait
port="${QUICKSTART_PORT:-8080}"
echo
echo "web answers on http://127.0.0.1:${port}/: $(wget -qO- "http://127.0.0.1:${port}/")"
sleep 4
echo "the client reaches it by name:"
rcompose logs --no-log-prefix client | tail -1
echo
echo "next: cd examples/quickstart && rcompose ps / rcompose logs -f / rcompose down"
