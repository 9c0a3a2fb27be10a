#!/bin/bash
# Side by side, in one run on this machine: rcompose, Docker and Podman (when installed and
# working) on the same work with the same FROM-scratch busybox image, and docker-compose /
# podman-compose on the same compose files. Prints medians and the ratios the speed targets
# are stated in (issue 14). Nothing here is asserted: it measures.
#
#   container run --rm --network none IMG true       (N runs each)
#   container run --rm IMG true                      (the default bridge; N runs each)
#   up -d / down of 10 and of 100 independent services, and of a 100-service fan-out
#   (one service that 99 depend on)                  (ROUNDS rounds each)
#   the monitor's RSS (and conmon's / containerd-shim's for comparison)
#
# Usage: benches/side-by-side.sh [N] [ROUNDS] [OTHER_ROUNDS]   (as root; default 30 runs,
# 3 compose rounds for rcompose, OTHER_ROUNDS (default ROUNDS) for docker-compose/podman-compose,
# whose 100-service rounds take minutes)
# RCOMPOSE_BIN=path measures a given binary instead of building the release one.
# BIG=300 adds `up -d` of 300 services plus `ps` and `logs` over them (rcompose only).
set -eu
N=${1:-30}
ROUNDS=${2:-3}
OTHER_ROUNDS=${3:-$ROUNDS}
cd "$(dirname "$0")/.."
if [ -z "${RCOMPOSE_BIN:-}" ]; then
    cargo build --release --quiet --bin rcompose
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/rcompose
else
    BIN=$RCOMPOSE_BIN
fi
WORK=$(mktemp -d /tmp/rc-side-XXXXXX)
R=(--root "$WORK/root" --run-root "$WORK/run")
PROJ="rcside$$"
IMG=rcside-busybox:latest
export RCOMPOSE_DNS_UPSTREAM=none
mkdir -p "$WORK/run" "$WORK/proj"
# The run root is /run on a real host: a tmpfs. Mirror that here.
mount -t tmpfs -o mode=0700 rcompose-bench "$WORK/run"

have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
have_podman() { command -v podman >/dev/null 2>&1 && podman --runtime runc info >/dev/null 2>&1; }
# Podman raises RLIMIT_NOFILE/NPROC above this host's hard limits unless told otherwise.
PODMAN_RUN=(podman --runtime runc run --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
DC=""
if have_docker; then
    if command -v docker-compose >/dev/null 2>&1; then DC="docker-compose"
    elif docker compose version >/dev/null 2>&1; then DC="docker compose"; fi
fi
PC=""
if have_podman && command -v podman-compose >/dev/null 2>&1; then PC="podman-compose"; fi

cleanup() {
    set +e
    (cd "$WORK/proj" && "$BIN" "${R[@]}" -p "$PROJ" down -t 0 >/dev/null 2>&1)
    if [ -n "$DC" ]; then (cd "$WORK/proj" && $DC -p "$PROJ" down -t 0 >/dev/null 2>&1); fi
    if [ -n "$PC" ]; then (cd "$WORK/proj" && $PC -p "$PROJ" down -t 0 >/dev/null 2>&1); fi
    for id in $("$BIN" "${R[@]}" container ps -aq 2>/dev/null); do
        "$BIN" "${R[@]}" container rm -f "$id" >/dev/null 2>&1
    done
    # The default bridge outlives its containers (as docker0): take it with the root.
    "$BIN" "${R[@]}" network prune -f >/dev/null 2>&1
    have_docker && docker network rm "${PROJ}_default" >/dev/null 2>&1
    have_docker && docker rmi "$IMG" >/dev/null 2>&1
    have_podman && podman rmi "$IMG" >/dev/null 2>&1
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    case "$WORK" in /tmp/rc-side-*) rm -rf "${WORK:?}" ;; esac
}
trap cleanup EXIT

# The image: Debian's static busybox in a FROM-scratch root, loaded into every engine.
FS=$WORK/fs
mkdir -p "$FS/bin" "$FS/etc" "$FS/tmp" "$FS/www" "$FS/proc"
cp /bin/busybox "$FS/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$FS/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$FS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$FS/etc/group"
echo ok > "$FS/www/index.html"
tar -C "$FS" -cf "$WORK/fs.tar" .
"$BIN" "${R[@]}" image import "$FS" "$IMG" -c 'CMD ["sh"]' -c 'ENV PATH=/bin' >/dev/null
have_docker && docker import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' "$WORK/fs.tar" "$IMG" >/dev/null
have_podman && podman import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' "$WORK/fs.tar" "$IMG" >/dev/null

declare -A MED
# Waits until the host has been idle (at least 85% of CPU time) for two seconds in a row, at
# most a minute, so what the previous step left running (docker-compose's teardown, a
# container still stopping) does not run into the next measurement. Says so if it gave up.
settle() {
    local quiet=0 waited=0 a b
    while [ "$quiet" -lt 2 ] && [ "$waited" -lt 60 ]; do
        a=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat)
        sleep 1
        b=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat)
        if awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y);
                exit !((y[2] - x[2]) * 100 >= 85 * (y[1] - x[1])) }'; then
            quiet=$((quiet + 1))
        else
            quiet=0
        fi
        waited=$((waited + 1))
    done
    [ "$quiet" -ge 2 ] || echo "  (the host was still busy after a minute: load $(cut -d' ' -f1 /proc/loadavg))"
}

# Median wall time (ms) of "$@" over N runs after one warm-up, each run timed alone (perl:
# fork + exec, no shell in between). Stores it in MED[$key] and prints a line.
timeit() {
    local key=$1 label=$2
    shift 2
    settle
    if ! "$@" >/dev/null 2>&1; then
        printf '  %-34s failed: %s\n' "$label" "$*"
        return
    fi
    local out
    out=$(perl -MTime::HiRes=time -e '
        my $n = shift; my @t;
        open(my $o, ">&", STDOUT); open(STDOUT, ">", "/dev/null"); open(STDERR, ">", "/dev/null");
        for (1 .. $n) { my $s = time; system(@ARGV); push @t, (time - $s) * 1000; }
        @t = sort { $a <=> $b } @t;
        printf $o "%.1f %.1f\n", $t[int($n / 2)], $t[int($n * 0.9)];' "$N" "$@")
    MED[$key]=${out% *}
    printf '  %-34s median %7.1f ms   p90 %7.1f ms\n' "$label" "${out% *}" "${out#* }"
}

ratio() { # $1 $2: keys; prints "x.y×" = $2 / $1
    if [ -n "${MED[$1]:-}" ] && [ -n "${MED[$2]:-}" ]; then
        perl -e 'printf "%.1fx", $ARGV[1] / $ARGV[0]' "${MED[$1]}" "${MED[$2]}"
    else
        echo "n/a"
    fi
}

echo "# side-by-side: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# rcompose $("$BIN" version 2>/dev/null | head -1 || echo '?')"
have_docker && echo "# docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)${DC:+, $DC $($DC version --short 2>/dev/null || true)}"
have_podman && echo "# podman $(podman --version | awk '{print $3}') (--runtime runc)${PC:+, $PC}"

echo "container run --rm --network none IMG true ($N runs)"
timeit rc_none rcompose "$BIN" "${R[@]}" container run --rm --network none "$IMG" true
have_docker && timeit docker_none docker docker run --rm --network none "$IMG" true
have_podman && timeit podman_none podman "${PODMAN_RUN[@]}" --rm --network none "$IMG" true
timeit floor "unshare+chroot (floor)" unshare -fpmn --mount-proc="$FS/proc" chroot "$FS" /bin/true

echo "container run --rm IMG true, default bridge ($N runs)"
timeit rc_bridge rcompose "$BIN" "${R[@]}" container run --rm "$IMG" true
have_docker && timeit docker_bridge docker docker run --rm "$IMG" true
have_podman && timeit podman_bridge podman "${PODMAN_RUN[@]}" --rm "$IMG" true

# Compose: services are busybox httpd servers that exit on SIGTERM.
write_compose() { # $1 = services, $2 = indep|fanout, $3 = subnet
    {
        echo "services:"
        local i=1
        while [ "$i" -le "$1" ]; do
            echo "  s$i:"
            echo "    image: $IMG"
            echo "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait\"]"
            if [ "$2" = fanout ] && [ "$i" -gt 1 ]; then echo "    depends_on: [s1]"; fi
            i=$((i + 1))
        done
        echo "networks:"
        echo "  default:"
        echo "    ipam:"
        echo "      config: [{subnet: $3}]"
    } > "$WORK/proj/compose.yaml"
}

# ROUNDS rounds of `up -d` then `down`; MED[$key_up], MED[$key_down] in ms.
compose_rounds() { # $1 = rounds, $2 = key, $3 = label, $4.. = command prefix
    local rounds=$1 key=$2 label=$3
    shift 3
    local ups="" downs="" r=0 t0 t1 t2
    while [ "$r" -lt "$rounds" ]; do
        settle
        t0=$(date +%s%N)
        # docker-compose 1.29 has hung on the 100-service fan-out: give up after 3 minutes.
        if ! (cd "$WORK/proj" && timeout 180 "$@" up -d >"$WORK/out" 2>&1); then
            printf '  %-34s up -d failed or timed out: %s\n' "$label" "$(tail -3 "$WORK/out")"
            (cd "$WORK/proj" && "$@" down -t 0 >/dev/null 2>&1) || true
            return
        fi
        t1=$(date +%s%N)
        (cd "$WORK/proj" && "$@" down -t 10 >"$WORK/out" 2>&1) || true
        t2=$(date +%s%N)
        ups="$ups $(((t1 - t0) / 1000000))"
        downs="$downs $(((t2 - t1) / 1000000))"
        r=$((r + 1))
    done
    local med='my @v = sort { $a <=> $b } @ARGV; print $v[int(@v / 2)]'
    MED[${key}_up]=$(perl -e "$med" $ups)
    MED[${key}_down]=$(perl -e "$med" $downs)
    printf '  %-34s up -d %8.2f s   down %8.2f s   (median of %d)\n' "$label" \
        "$(perl -e "print ${MED[${key}_up]} / 1000")" "$(perl -e "print ${MED[${key}_down]} / 1000")" "$rounds"
}

# SHAPES="10 indep,100 fanout" picks the compose shapes (default: all three; empty: none).
IFS=, read -r -a shapes <<< "${SHAPES-10 indep,100 indep,100 fanout}"
for shape in "${shapes[@]}"; do
    set -- $shape
    # Each engine its own subnet: another engine's network may outlive its `down` briefly.
    write_compose "$1" "$2" 10.236.16.0/22
    echo "compose: $1 services ($2), up -d and down"
    # One untimed round first: page cache, the firewall table.
    (cd "$WORK/proj" && "$BIN" "${R[@]}" -p "$PROJ" up -d >/dev/null 2>&1 && "$BIN" "${R[@]}" -p "$PROJ" down -t 10 >/dev/null 2>&1) || true
    compose_rounds "$ROUNDS" "rc_$1_$2" rcompose "$BIN" "${R[@]}" -p "$PROJ"
    write_compose "$1" "$2" 10.236.20.0/22
    [ -n "$DC" ] && compose_rounds "$OTHER_ROUNDS" "dc_$1_$2" "$DC" $DC -p "$PROJ"
    write_compose "$1" "$2" 10.236.24.0/22
    [ -n "$PC" ] && compose_rounds "$OTHER_ROUNDS" "pc_$1_$2" "$PC" $PC -p "$PROJ"
done

if [ -n "${BIG:-}" ]; then
    write_compose "$BIG" indep 10.236.16.0/22
    echo "compose: $BIG services (rcompose only)"
    (cd "$WORK/proj" && "$BIN" "${R[@]}" -p "$PROJ" up -d >/dev/null 2>&1 && "$BIN" "${R[@]}" -p "$PROJ" down -t 10 >/dev/null 2>&1) || true
    settle
    t0=$(date +%s%N)
    (cd "$WORK/proj" && "$BIN" "${R[@]}" -p "$PROJ" up -d >/dev/null 2>&1)
    t1=$(date +%s%N)
    printf '  %-34s %8.2f s\n' "up -d" "$(perl -e "print(($t1 - $t0) / 1e9)")"
    (cd "$WORK/proj" && timeit big_ps "ps" "$BIN" "${R[@]}" -p "$PROJ" ps -a)
    (cd "$WORK/proj" && timeit big_logs "logs" "$BIN" "${R[@]}" -p "$PROJ" logs)
    settle
    t0=$(date +%s%N)
    (cd "$WORK/proj" && "$BIN" "${R[@]}" -p "$PROJ" down -t 10 >/dev/null 2>&1)
    t1=$(date +%s%N)
    printf '  %-34s %8.2f s\n' "down" "$(perl -e "print(($t1 - $t0) / 1e9)")"
fi

echo "memory of the per-container helper (RSS, one detached sleeping container)"
rss() { awk '/^Rss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null; }
"$BIN" "${R[@]}" container run -d --name rss --network none "$IMG" sleep 60 >/dev/null
sleep 1 # steady state: the monitor gives back its start-up pages once the container runs
ID=$("$BIN" "${R[@]}" container inspect -f '{{.Id}}' rss)
MON=$(sed -n 's/.*"monitor_pid": *\([0-9]*\).*/\1/p' "$WORK/root/containers/$ID/state.json")
MED[rss_rc]=$(rss "$MON")
printf '  %-34s %6s kB\n' "rcompose monitor" "${MED[rss_rc]}"
"$BIN" "${R[@]}" container rm -f rss >/dev/null
if have_docker; then
    c=$(docker run -d --network none "$IMG" sleep 60)
    sleep 1
    shim=$(pgrep -f "containerd-shim.*-id $c" | head -1 || true)
    [ -n "$shim" ] && printf '  %-34s %6s kB\n' "docker containerd-shim" "$(rss "$shim")"
    docker rm -f "$c" >/dev/null
fi
if have_podman; then
    c=$("${PODMAN_RUN[@]}" -d --network none "$IMG" sleep 60)
    sleep 1
    conmon=$(pgrep -f "conmon.*-c $c" | head -1 || true)
    [ -n "$conmon" ] && printf '  %-34s %6s kB\n' "podman conmon" "$(rss "$conmon")"
    podman rm -f "$c" >/dev/null
fi

echo "ratios (other / rcompose; targets from issue 14)"
printf '  %-52s %s\n' "run --rm --network none: docker (target >= 15x)" "$(ratio rc_none docker_none)"
printf '  %-52s %s\n' "run --rm --network none: podman" "$(ratio rc_none podman_none)"
printf '  %-52s %s\n' "run --rm default bridge: docker (target >= 8x)" "$(ratio rc_bridge docker_bridge)"
printf '  %-52s %s\n' "run --rm default bridge: podman" "$(ratio rc_bridge podman_bridge)"
printf '  %-52s %s\n' "bridge - none, rcompose (ms; target <= 10)" \
    "$(perl -e 'printf "%.1f", $ARGV[1] - $ARGV[0]' "${MED[rc_none]:-0}" "${MED[rc_bridge]:-0}")"
for s in 10_indep 100_indep 100_fanout; do
    printf '  %-52s %s\n' "up -d $s: $DC (100: target >= 10x)" "$(ratio "rc_${s}_up" "dc_${s}_up")"
    [ -n "$PC" ] && printf '  %-52s %s\n' "up -d $s: $PC" "$(ratio "rc_${s}_up" "pc_${s}_up")"
done
printf '  %-52s %s\n' "up -d 100 / up -d 10, rcompose (target <= 6x)" "$(ratio rc_10_indep_up rc_100_indep_up)"
printf '  %-52s %s\n' "monitor RSS (target <= 1536 kB)" "${MED[rss_rc]:-?} kB"
