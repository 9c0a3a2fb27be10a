#!/bin/sh
# Compose benchmark (run as root from anywhere): `up -d` and `down` of a 10-service depends_on
# chain of busybox httpd services (SIGTERM-aware: a shell traps TERM), timed over N rounds,
# with docker-compose (Debian's 1.29 or `docker compose`) on the same stack when a Docker daemon
# with a busybox image is available.
# Usage: benches/compose-up.sh [ROUNDS]   (default 5)
set -eu
ROUNDS=${1:-5}
cd "$(dirname "$0")/.."
cargo build --release --bin rcompose >/dev/null
BIN=$(pwd)/target/release/rcompose
WORK=$(mktemp -d /tmp/rc-bench-compose.XXXXXX)
ROOT="$WORK/root"
RUN="$WORK/run"
PROJ="rcbench$$"
export RCOMPOSE_DNS_UPSTREAM=none
rc() { "$BIN" --root "$ROOT" --run-root "$RUN" -p "$PROJ" "$@"; }
cleanup() {
    (cd "$WORK/proj" 2>/dev/null && rc down -v -t 0 >/dev/null 2>&1) || true
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        (cd "$WORK/proj" 2>/dev/null && $DC -p "$PROJ" down -v -t 0 >/dev/null 2>&1) || true
    fi
    # Unmount anything left under our work dir, then remove it (guarded: only our mktemp dir).
    grep " $WORK" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    case "$WORK" in /tmp/rc-bench-compose.*) rm -rf "$WORK" ;; esac
}
DC="docker-compose"
trap cleanup EXIT

# A FROM-scratch busybox image (Debian's busybox-static).
FS="$WORK/fs"
mkdir -p "$FS/bin" "$FS/etc" "$FS/tmp" "$FS/www" "$WORK/proj"
cp /bin/busybox "$FS/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$FS/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$FS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$FS/etc/group"
echo ok > "$FS/www/index.html"
"$BIN" --root "$ROOT" image import "$FS" busybox:bench -c 'CMD ["sh"]' -c 'ENV PATH=/bin' >/dev/null

write_compose() { # $1 = image
    {
        echo "services:"
        i=1
        while [ $i -le 10 ]; do
            echo "  s$i:"
            echo "    image: $1"
            echo "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait\"]"
            if [ $i -gt 1 ]; then echo "    depends_on: [s$((i - 1))]"; fi
            i=$((i + 1))
        done
        echo "networks:"
        echo "  default:"
        echo "    ipam:"
        echo "      config: [{subnet: 10.239.$(( $$ % 200 )).0/24}]"
    } > "$WORK/proj/compose.yaml"
}

now() { date +%s.%N; }
# Median of the numbers on stdin.
median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); printf "%.3f", (NR%2 ? a[m] : (a[m]+a[m+1])/2)}'; }

bench() { # $1 = label, $2.. = command prefix
    label=$1; shift
    ups=""; downs=""
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        t0=$(now)
        if ! "$@" up -d >"$WORK/out" 2>&1; then
            echo "$label: up -d failed:" >&2; cat "$WORK/out" >&2; exit 1
        fi
        t1=$(now)
        if ! "$@" down -t 10 >"$WORK/out" 2>&1; then
            echo "$label: down failed:" >&2; cat "$WORK/out" >&2; exit 1
        fi
        t2=$(now)
        up=$(echo "$t1 - $t0" | bc); down=$(echo "$t2 - $t1" | bc)
        printf '%-16s round %2d: up -d %6.3fs   down %6.3fs\n' "$label" $((r + 1)) "$up" "$down"
        ups="$ups $up"; downs="$downs $down"
        r=$((r + 1))
    done
    up=$(echo "$ups" | tr ' ' '\n' | grep . | median)
    down=$(echo "$downs" | tr ' ' '\n' | grep . | median)
    printf '%-16s median: up -d %6ss   down %6ss   (%s rounds)\n' "$label" "$up" "$down" "$ROUNDS"
    RESULT="$up $down"
}

cd "$WORK/proj"
write_compose busybox:bench
# One untimed round first: page cache, the DNS server, the firewall table.
rc up -d >/dev/null 2>&1 && rc down -t 10 >/dev/null 2>&1
bench rcompose rc
RC_RESULT=$RESULT

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    if ! command -v docker-compose >/dev/null 2>&1; then DC="docker compose"; fi
    (cd "$FS" && tar -c . > "$WORK/fs.tar")
    docker import "$WORK/fs.tar" rcbench-busybox:latest >/dev/null
    write_compose rcbench-busybox:latest
    $DC -p "$PROJ" up -d >/dev/null 2>&1 && $DC -p "$PROJ" down -t 10 >/dev/null 2>&1
    bench "$DC" $DC -p "$PROJ"
    docker rmi rcbench-busybox:latest >/dev/null 2>&1 || true
    set -- $RC_RESULT $RESULT
    printf 'ratio (docker / rcompose): up -d %.1fx   down %.1fx\n' \
        "$(echo "$3 / $1" | bc -l)" "$(echo "$4 / $2" | bc -l)"
else
    echo "docker-compose: no running Docker daemon here, comparison skipped"
fi
