#!/bin/sh
# Image build benchmark (run as root): one FROM-scratch busybox Dockerfile of ten steps
# (3 COPY, 2 RUN, 5 metadata) and one context, built by rcompose and, when a Docker daemon
# answers, by Docker's classic builder (DOCKER_BUILDKIT=0) and by BuildKit
# (DOCKER_BUILDKIT=1, built into Docker 20.10): a cold build (--no-cache), a rebuild with
# everything cached, and a rebuild after one copied file changed. Each case runs ROUNDS
# times, interleaved; prints the median seconds per case and builder, and the ratios
# classic/rcompose and buildkit/rcompose. Asserts nothing.
# Usage: benches/build.sh [ROUNDS]   (default 5; RCOMPOSE_BIN=… to use another binary,
# DOCKER=… for another docker client)
set -eu
ROUNDS=${1:-5}
cd "$(dirname "$0")/.."
if [ -z "${RCOMPOSE_BIN:-}" ]; then
    cargo build --release --bin rcompose >/dev/null
    RCOMPOSE_BIN=${CARGO_TARGET_DIR:-$(pwd)/target}/release/rcompose
fi
# Docker 20.10's own client: a newer client may refuse the classic builder.
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker || true)}
WORK=$(mktemp -d /tmp/rc-bench-build.XXXXXX)
TAG="rcbench-build-$$"
cleanup() {
    # RUN on the default bridge leaves it (as docker0): take it with the root.
    "${RCOMPOSE_BIN:-rcompose}" --root "$WORK/root" --run-root "$WORK/run" network prune -f >/dev/null 2>&1 || true
    grep " $WORK" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    if [ "${HAVE_DOCKER:-0}" = 1 ]; then "$DOCKER" rmi -f "$TAG" >/dev/null 2>&1 || true; fi
    case "$WORK" in /tmp/rc-bench-build.*) rm -rf "$WORK" ;; esac
}
trap cleanup EXIT
HAVE_DOCKER=0
if [ -n "$DOCKER" ] && "$DOCKER" info >/dev/null 2>&1; then HAVE_DOCKER=1; fi

CTX="$WORK/ctx"
mkdir -p "$CTX/rootfs/bin" "$CTX/rootfs/tmp"
cp /bin/busybox "$CTX/rootfs/bin/busybox"
for a in sh mkdir cat echo seq; do ln -s busybox "$CTX/rootfs/bin/$a"; done
echo one > "$CTX/app.txt"
echo two > "$CTX/conf.txt"
cat > "$CTX/Dockerfile" <<'DF'
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
WORKDIR /app
RUN mkdir -p /out && for i in $(seq 1 50); do echo $i > /out/$i; done
COPY app.txt /app/
RUN cat /app/app.txt > /app/copy
COPY conf.txt /etc/conf.txt
LABEL bench=build
EXPOSE 8080
CMD ["cat", "/app/copy"]
DF

now() { date +%s.%N; }
# time_of CMD…: seconds the command took (its output discarded; a failure stops the run).
time_of() {
    s=$(now)
    "$@" >"$WORK/out" 2>&1 || { cat "$WORK/out" >&2; echo "failed: $*" >&2; exit 1; }
    e=$(now)
    echo "$e - $s" | bc
}
# RUN steps on each builder's default network (a bridge), unless Docker's bridge is gone
# (deleted on this host): then every builder uses the host's (NET=… to choose).
NET=${NET:-default}
if [ "$HAVE_DOCKER" = 1 ] && ! ip link show docker0 >/dev/null 2>&1 && [ "$NET" = default ]; then
    NET=host
fi
rc() { "$RCOMPOSE_BIN" --root "$WORK/root" --run-root "$WORK/run" image build --network="$NET" -t "$TAG" "$@" "$CTX"; }
classic() { DOCKER_BUILDKIT=0 "$DOCKER" build --network="$NET" -t "$TAG" "$@" "$CTX"; }
buildkit() { DOCKER_BUILDKIT=1 "$DOCKER" build --network="$NET" -t "$TAG" "$@" "$CTX"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

BUILDERS=rc
[ "$HAVE_DOCKER" = 1 ] && BUILDERS="rc classic buildkit"
for b in $BUILDERS; do $b >/dev/null 2>&1; done # warm-up (page cache, store, base state)

i=1
while [ "$i" -le "$ROUNDS" ]; do
    for case in cold cached changed; do
        for b in $BUILDERS; do
            case $case in
                cold) flags=--no-cache ;;
                cached) flags= ;;
                changed) echo "round $i $b" > "$CTX/app.txt"; flags= ;;
            esac
            time_of $b $flags >> "$WORK/$case.$b"
        done
    done
    i=$((i + 1))
done

echo "# image build: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cpus ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# 10-step Dockerfile FROM scratch (busybox), RUN --network=$NET, median of $ROUNDS rounds, seconds; docker: ${DOCKER:-none} $([ "$HAVE_DOCKER" = 1 ] && "$DOCKER" version --format '{{.Server.Version}}')"
printf '%-8s %9s %9s %9s %9s %9s\n' case rcompose classic buildkit classic/rc buildkit/rc
for case in cold cached changed; do
    r=$(median < "$WORK/$case.rc")
    if [ "$HAVE_DOCKER" = 1 ]; then
        c=$(median < "$WORK/$case.classic")
        k=$(median < "$WORK/$case.buildkit")
        printf '%-8s %9.3f %9.3f %9.3f %9.1fx %9.1fx\n' "$case" "$r" "$c" "$k" \
            "$(echo "scale=3; $c / $r" | bc)" "$(echo "scale=3; $k / $r" | bc)"
    else
        printf '%-8s %9.3f %9s %9s %9s %9s\n' "$case" "$r" - - - -
    fi
done
