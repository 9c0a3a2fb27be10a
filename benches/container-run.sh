#!/bin/sh
# Container start latency: `rcompose container run --rm --network none IMG true`, compared in
# the same run with Docker and Podman (Debian's docker.io / podman) when they are installed,
# and with a raw `unshare … chroot true` floor. Also reports the monitor's memory (RSS).
#
# Usage: benches/container-run.sh [iterations]   (as root; builds the release binary)
set -eu
N=${1:-50}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin rcompose
BIN=$PWD/target/release/rcompose
TMP=$(mktemp -d /tmp/rc-bench-XXXXXX)
R="--root $TMP/root --run-root $TMP/run"
# The run root is /run on a real host: a tmpfs. Mirror that here.
mkdir -p "$TMP/run"
mount -t tmpfs -o mode=0700 rcompose-bench "$TMP/run"
cleanup() {
    for id in $($BIN $R container ps -aq 2>/dev/null); do $BIN $R container rm -f "$id" >/dev/null 2>&1 || true; done
    grep -o "$TMP[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# A FROM-scratch busybox image (Debian busybox-static).
FS=$TMP/rootfs
mkdir -p "$FS/bin" "$FS/etc" "$FS/tmp" "$FS/proc" "$FS/sys" "$FS/dev"
cp /bin/busybox "$FS/bin/busybox"
for a in sh true sleep cat echo; do ln -s busybox "$FS/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$FS/etc/passwd"
echo 'root:x:0:' > "$FS/etc/group"
$BIN $R image import "$FS" bench:latest -c 'CMD ["sh"]' >/dev/null

# ms per run of "$@", averaged over N runs after one warm-up.
timeit() {
    "$@" >/dev/null 2>&1 || { echo "n/a (failed: $*)"; return; }
    start=$(date +%s%N)
    i=0
    while [ $i -lt "$N" ]; do "$@" >/dev/null 2>&1; i=$((i + 1)); done
    end=$(date +%s%N)
    echo "$(( (end - start) / N / 1000 ))" | awk '{ printf "%.1f ms\n", $1 / 1000 }'
}

echo "container run --rm --network none IMG true, mean of $N runs"
printf '%-28s %s\n' "rcompose" "$(timeit $BIN $R container run --rm --network none bench:latest true)"
printf '%-28s %s\n' "unshare+chroot (floor)" "$(timeit unshare -fpmn --mount-proc=$FS/proc chroot "$FS" /bin/true)"
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    tar -C "$FS" -c . | docker import -c 'CMD ["sh"]' - rcompose-bench:latest >/dev/null
    printf '%-28s %s\n' "docker" "$(timeit docker run --rm --network none rcompose-bench:latest true)"
    docker rmi rcompose-bench:latest >/dev/null 2>&1 || true
else
    printf '%-28s %s\n' "docker" "not installed"
fi
if command -v podman >/dev/null 2>&1; then
    tar -C "$FS" -c . | podman import -c 'CMD ["sh"]' - rcompose-bench:latest >/dev/null
    printf '%-28s %s\n' "podman" "$(timeit podman run --rm --network none rcompose-bench:latest true)"
    podman rmi rcompose-bench:latest >/dev/null 2>&1 || true
else
    printf '%-28s %s\n' "podman" "not installed"
fi

# Monitor memory: one detached container, RSS of its monitor process.
$BIN $R container run -d --name rss --network none bench:latest sleep 60 >/dev/null
sleep 1 # steady state: the monitor gives back its start-up pages once the container runs
ID=$($BIN $R container inspect -f '{{.Id}}' rss)
MON=$(sed -n 's/.*"monitor_pid": \([0-9]*\).*/\1/p' "$TMP/root/containers/$ID/state.json")
printf '%-28s %s kB\n' "monitor RSS" "$(awk '/VmRSS/ { print $2 }' /proc/"$MON"/status)"
$BIN $R container rm -f rss >/dev/null
