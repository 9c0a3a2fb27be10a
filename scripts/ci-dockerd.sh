#!/usr/bin/env bash
# Installs Debian's docker.io and starts dockerd when it is not running, for CI and for
# developers who want to run the tests next to Docker. Leaves FORWARD at DROP, as Docker does
# on a host where it had to enable forwarding.
set -euo pipefail

if ! command -v dockerd >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi
if ! pgrep -x dockerd >/dev/null; then
  log=/var/log/rcompose-ci-dockerd.log
  setsid -f dockerd >"$log" 2>&1 </dev/null
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -20 "$log" >&2; exit 1; }
fi
iptables -w -P FORWARD DROP
echo "ci-dockerd: dockerd runs; iptables FORWARD policy: $(iptables -w -S FORWARD | head -1)"
