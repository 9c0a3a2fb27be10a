#!/bin/sh
# Times `rcompose config` on a generated 300-service compose file (every service with ports,
# volumes, environment, depends_on and a healthcheck). Target: under 50 ms per run on the CI
# machine. Prints the timings; does not assert.
#
# Usage: benches/config-300.sh [RUNS]   (default 20 runs after one warm-up)
set -eu

RUNS="${1:-20}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rcompose-bench-XXXXXX")"
trap 'rm -rf -- "$WORK"' EXIT INT TERM

echo "building release binary..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin rcompose)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rcompose"

FILE="$WORK/compose.yaml"
{
    echo "name: bench"
    echo "services:"
    i=0
    while [ "$i" -lt 300 ]; do
        echo "  svc$i:"
        echo "    image: registry.local/app:$i"
        echo "    ports:"
        echo "      - \"$((10000 + i)):80\""
        echo "      - \"127.0.0.1:$((20000 + i)):9000/udp\""
        echo "    volumes:"
        echo "      - ./data/svc$i:/data"
        echo "      - shared:/shared:ro"
        echo "    environment:"
        echo "      - SERVICE_INDEX=$i"
        echo "      - LOG_LEVEL=\${LOG_LEVEL:-info}"
        echo "      - DATABASE_URL=postgres://db:5432/app$i"
        if [ "$i" -gt 0 ]; then
            echo "    depends_on:"
            echo "      svc$((i - 1)):"
            echo "        condition: service_healthy"
        fi
        echo "    healthcheck:"
        echo "      test: [\"CMD\", \"wget\", \"-qO-\", \"http://localhost/health\"]"
        echo "      interval: 10s"
        echo "      timeout: 2s"
        echo "      retries: 3"
        echo "      start_period: 1m"
        i=$((i + 1))
    done
    echo "volumes:"
    echo "  shared:"
} > "$FILE"

echo "file: $(wc -l < "$FILE") lines, 300 services" >&2
"$BIN" -f "$FILE" config > "$WORK/out.yaml"   # warm-up and sanity check
echo "output: $(wc -l < "$WORK/out.yaml") lines" >&2

total=0
min=""
max=0
n=0
while [ "$n" -lt "$RUNS" ]; do
    start=$(date +%s%N)
    "$BIN" -f "$FILE" config > /dev/null
    end=$(date +%s%N)
    us=$(( (end - start) / 1000 ))
    total=$((total + us))
    [ -z "$min" ] || [ "$us" -lt "$min" ] && min=$us
    [ "$us" -gt "$max" ] && max=$us
    n=$((n + 1))
done
avg=$((total / RUNS))
printf 'rcompose config, 300 services: avg %d.%03d ms, min %d.%03d ms, max %d.%03d ms over %d runs (target < 50 ms)\n' \
    $((avg / 1000)) $((avg % 1000)) $((min / 1000)) $((min % 1000)) $((max / 1000)) $((max % 1000)) "$RUNS"
