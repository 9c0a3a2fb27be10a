#!/usr/bin/env bash
# Installs the host packages rcompose and its tests need on Debian 12. Idempotent and quiet.
set -euo pipefail

packages=(
  pkg-config libseccomp-dev   # youki's libcontainer links libseccomp
  busybox-static              # the FROM-scratch test image
  docker-registry             # local registry for pull/push tests
  systemd                     # systemd-socket-activate: the API service under socket activation (tests/api_docker.rs)
  docker-compose              # docker-compose 1.29, a client of the API server (tests/api_compose.rs; the docker CLI comes with docker.io, scripts/ci-dockerd.sh)
  nftables iproute2           # firewall and netlink tooling used by tests to inspect state
  iptables                    # accepts for our bridges where Docker/ufw/firewalld drop forwarding
  tini                        # tini-static for --init
  debootstrap                 # image bootstrap: Debian base images from Debian's packages
  jq curl openssl python3     # scripts, benchmarks; registry tests (token server, htpasswd)
  chromium chromium-driver    # tests/dashboard.rs drives the dashboard in headless Chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian package enables a registry service; tests start their own on 127.0.0.1.
echo "setup: host packages present"
