#!/bin/sh
# Image build benchmark (run as root): the same FROM-scratch busybox Dockerfile (two RUN and
# two COPY steps) built by rcompose and, when a Docker daemon answers, by `docker build`:
# a cold build (--no-cache), a rebuild with everything cached, and a rebuild after one copied
# file changed. Prints seconds per case and the docker/rcompose ratios; asserts nothing.
# Usage: benches/build.sh [ROUNDS]   (default 3; RCOMPOSE_BIN=… to use another binary)
set -eu
ROUNDS=${1:-3}
cd "$(dirname "$0")/.."
if [ -z "${RCOMPOSE_BIN:-}" ]; then
    cargo build --release --bin rcompose >/dev/null
    RCOMPOSE_BIN=$(pwd)/target/release/rcompose
fi
WORK=$(mktemp -d /tmp/rc-bench-build.XXXXXX)
TAG="rcbench-build-$$"
cleanup() {
    grep " $WORK" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    if [ "${HAVE_DOCKER:-0}" = 1 ]; then docker rmi -f "$TAG" >/dev/null 2>&1 || true; fi
    case "$WORK" in /tmp/rc-bench-build.*) rm -rf "$WORK" ;; esac
}
trap cleanup EXIT
HAVE_DOCKER=0
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then HAVE_DOCKER=1; fi

CTX="$WORK/ctx"
mkdir -p "$CTX/rootfs/bin" "$CTX/rootfs/tmp"
cp /bin/busybox "$CTX/rootfs/bin/busybox"
for a in sh mkdir cat echo seq; do ln -s busybox "$CTX/rootfs/bin/$a"; done
echo one > "$CTX/app.txt"
cat > "$CTX/Dockerfile" <<'DF'
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
RUN mkdir -p /out && for i in $(seq 1 50); do echo $i > /out/$i; done
COPY app.txt /app/
RUN cat /app/app.txt > /app/copy
CMD ["cat", "/app/copy"]
DF

now() { date +%s.%N; }
# time_of CMD…: seconds the command took (its output discarded).
time_of() { s=$(now); "$@" >/dev/null 2>&1; e=$(now); echo "$e - $s" | bc; }
rc() { "$RCOMPOSE_BIN" --root "$WORK/root" --run-root "$WORK/run" image build -t "$TAG" "$@" "$CTX"; }
dk() { DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -t "$TAG" "$@" "$CTX"; }

rc >/dev/null 2>&1 # warm-up (page cache, store directories)
[ "$HAVE_DOCKER" = 1 ] && dk >/dev/null 2>&1
printf '%-8s %-10s %10s %10s %8s\n' round case rcompose docker ratio
i=1
while [ "$i" -le "$ROUNDS" ]; do
    for case in cold cached changed; do
        case $case in
            cold) flags=--no-cache ;;
            cached) flags= ;;
            changed) echo "round $i" > "$CTX/app.txt"; flags= ;;
        esac
        r=$(time_of rc $flags)
        d=-
        ratio=-
        if [ "$HAVE_DOCKER" = 1 ]; then
            [ "$case" = changed ] && echo "round $i docker" > "$CTX/app.txt"
            d=$(time_of dk $flags)
            ratio=$(printf '%.2f' "$(echo "scale=4; $d / $r" | bc)")
            d=$(printf '%.3f' "$d")
        fi
        printf '%-8s %-10s %10.3f %10s %8s\n' "$i" "$case" "$r" "$d" "$ratio"
    done
    i=$((i + 1))
done
