#!/bin/sh
# Container start latency: `rcompose container run --rm --network none IMG true`, compared in
# the same run with Docker and Podman (Debian's docker.io / podman) when they are installed,
# and with a raw `unshare … chroot true` floor. Also reports the monitor's memory (RSS).
#
# Usage: benches/container-run.sh [iterations]   (as root; builds the release binary)
set -eu
N=${1:-50}
cd "$(dirname "$0")/.."
# RCOMPOSE_BIN=path measures a given binary instead of building the release one.
if [ -z "${RCOMPOSE_BIN:-}" ]; then
    cargo build --release --quiet --bin rcompose
fi
BIN=${RCOMPOSE_BIN:-$PWD/target/release/rcompose}
TMP=$(mktemp -d /tmp/rc-bench-XXXXXX)
R="--root $TMP/root --run-root $TMP/run"
# The run root is /run on a real host: a tmpfs. Mirror that here.
mkdir -p "$TMP/run"
mount -t tmpfs -o mode=0700 rcompose-bench "$TMP/run"
cleanup() {
    for id in $($BIN $R container ps -aq 2>/dev/null); do $BIN $R container rm -f "$id" >/dev/null 2>&1 || true; done
    $BIN $R network rm benchnet >/dev/null 2>&1 || true
    $BIN $R network prune -f >/dev/null 2>&1 || true
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

# Median, 90th percentile and mean wall time of "$@" over N runs after one warm-up. Each
# run is timed alone (perl: fork + exec, no shell in between), so the spread is visible.
timeit() {
    "$@" >/dev/null 2>&1 || { echo "n/a (failed: $*)"; return; }
    perl -MTime::HiRes=time -e '
        my $n = shift; my @t;
        open(STDOUT, ">", "/dev/null"); open(STDERR, ">", "/dev/null");
        for (1 .. $n) { my $s = time; system(@ARGV); push @t, (time - $s) * 1000; }
        @t = sort { $a <=> $b } @t; my $sum = 0; $sum += $_ for @t;
        printf OUT "median %.1f ms  p90 %.1f ms  mean %.1f ms\n",
            $t[int($n / 2)], $t[int($n * 0.9)], $sum / $n;
        BEGIN { open(OUT, ">&", STDOUT) }' "$N" "$@"
}

echo "container run --rm --network none IMG true, $N runs"
printf '%-28s %s\n' "rcompose" "$(timeit $BIN $R container run --rm --network none bench:latest true)"
# Per-container network setup: the default bridge, and a user network (as compose uses).
export RCOMPOSE_DNS_UPSTREAM=none
$BIN $R network create --subnet 10.239.$(($$ % 200)).0/24 benchnet >/dev/null
printf '%-28s %s\n' "rcompose --network bridge" "$(timeit $BIN $R container run --rm bench:latest true)"
printf '%-28s %s\n' "rcompose --network benchnet" "$(timeit $BIN $R container run --rm --network benchnet bench:latest true)"
$BIN $R network rm benchnet >/dev/null
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
    # runc: crun refuses this host's hybrid cgroups; and Podman raises RLIMIT_NOFILE/NPROC
    # above this host's hard limits unless told otherwise (as in side-by-side.sh).
    printf '%-28s %s\n' "podman" "$(timeit podman --runtime runc run --ulimit nofile=1024:1024 \
        --ulimit nproc=1024:1024 --rm --network none rcompose-bench:latest true)"
    podman rmi rcompose-bench:latest >/dev/null 2>&1 || true
else
    printf '%-28s %s\n' "podman" "not installed"
fi

# Where the time goes: with PHASES=1, per-phase medians of the `--network none` run from the
# engine's RCOMPOSE_TIMING trace (each line: ms since the previous mark, in start order).
if [ "${PHASES:-0}" = 1 ]; then
    i=0
    while [ $i -lt "$N" ]; do
        f=$TMP/phases.$i
        perl -MTime::HiRes=time -e 'my $f = shift; my $s = time; system(@ARGV);
            open(F, ">>", $f); printf F "0 %d cli.begin\n0 %d cli.end\n", $s * 1e6, time * 1e6;' \
            "$f" env RCOMPOSE_TIMING="$f" $BIN $R container run --rm --network none bench:latest true \
            >/dev/null 2>&1
        i=$((i + 1))
    done
    echo "phases of container run --rm --network none (median ms since the previous mark):"
    perl -e '
        my (%d, @order, %seen);
        for my $f (@ARGV) {
            open(my $h, "<", $f) or next;
            my @r = sort { $a->[0] <=> $b->[0] } map { my @x = split; @x == 3 ? [$x[1], $x[2]] : () } <$h>;
            my $prev = $r[0][0];
            for (@r) { push @{$d{$_->[1]}}, ($_->[0] - $prev) / 1000; $prev = $_->[0];
                       push @order, $_->[1] unless $seen{$_->[1]}++; }
        }
        for my $k (@order) { my @v = sort { $a <=> $b } @{$d{$k}};
                             printf "  %-30s %7.2f\n", $k, $v[int(@v / 2)]; }' "$TMP"/phases.*
fi

# Monitor memory: one detached container, RSS of its monitor process.
$BIN $R container run -d --name rss --network none bench:latest sleep 60 >/dev/null
sleep 1 # steady state: the monitor gives back its start-up pages once the container runs
ID=$($BIN $R container inspect -f '{{.Id}}' rss)
MON=$(sed -n 's/.*"monitor_pid": \([0-9]*\).*/\1/p' "$TMP/root/containers/$ID/state.json")
printf '%-28s %s kB\n' "monitor RSS" "$(awk '/VmRSS/ { print $2 }' /proc/"$MON"/status)"
$BIN $R container rm -f rss >/dev/null
