#!/usr/bin/env bash
# Pull + unpack throughput: rcompose vs `skopeo copy` (to a directory, no unpacking) as the
# anchor, in the same run, from a throwaway docker-registry on 127.0.0.1.
#
# The image has 4 layers, ~100 MB unpacked (half random, half compressible text), built as
# an OCI layout, loaded into a seed store and pushed. Timings are wall clock of one cold
# pull each into empty destinations. Needs docker-registry, python3; skopeo if present
# (apt-get install skopeo) for the anchor.
#
#   benches/pull.sh                 # uses target/release/rcompose (builds it if missing)
#   RCOMPOSE=path/to/rcompose benches/pull.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RCOMPOSE:-target/release/rcompose}
if [[ ! -x $BIN ]]; then
    cargo build --release --bin rcompose
fi
command -v docker-registry >/dev/null || { echo "docker-registry is not installed (apt-get install docker-registry)"; exit 1; }

work=$(mktemp -d /tmp/rcompose-bench.XXXXXX)
reg_pid=
cleanup() {
    [[ -n $reg_pid ]] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
    case $work in /tmp/rcompose-bench.*) rm -rf -- "$work" ;; esac
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done

ref="127.0.0.1:$port/bench:1"
python3 - "$work/layout" "$ref" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out, ref = sys.argv[1], sys.argv[2]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d, len(data)
layers, diffs = [], []
for i in range(4):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in ((f"layer{i}/random.bin", os.urandom(12_500_000)),
                           (f"layer{i}/text.txt", (f"line {i} of compressible text\n" * 450_000).encode()[:12_500_000])):
            info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, n = put(gzip.compress(raw, compresslevel=1))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cn = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                       "layers": layers}).encode()
md, mn = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": mn, "annotations": {"io.containerd.image.name": ref}}]},
          open(os.path.join(out, "index.json"), "w"))
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
tar -cf "$work/layout.tar" -C "$work/layout" .
export DOCKER_CONFIG="$work/docker-config" RCOMPOSE_REGISTRY_CONFIG="$work/none.json"
"$BIN" --root "$work/seed" image load -q -i "$work/layout.tar"
"$BIN" --root "$work/seed" image push -q "$ref" >/dev/null

compressed=$(du -cb "$work"/layout/blobs/sha256/* | tail -1 | cut -f1)
now() { date +%s.%N; }
# calc EXPR [DECIMALS]: floating point via awk (no bc needed).
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
t0=$(now)
"$BIN" --root "$work/pull" image pull -q "$ref" >/dev/null
t1=$(now)
unpacked=$(du -sb "$work/pull/layers" | cut -f1)
rc_secs=$(calc "$t1 - $t0")
mb() { calc "$1 / 1000000" 1; }
rate() { calc "$1 / 1000000 / $2" 1; }
printf 'image: %s MB compressed, %s MB unpacked, 4 layers\n' "$(mb "$compressed")" "$(mb "$unpacked")"
printf 'rcompose pull+unpack: %.2f s  %s MB/s (compressed)  %s MB/s (unpacked)\n' \
    "$rc_secs" "$(rate "$compressed" "$rc_secs")" "$(rate "$unpacked" "$rc_secs")"
if command -v skopeo >/dev/null; then
    t0=$(now)
    skopeo copy -q --src-tls-verify=false "docker://$ref" "dir:$work/skopeo"
    t1=$(now)
    sk_secs=$(calc "$t1 - $t0")
    printf 'skopeo copy to dir:   %.2f s  %s MB/s (compressed, no unpacking)\n' \
        "$sk_secs" "$(rate "$compressed" "$sk_secs")"
    printf 'ratio rcompose/skopeo time: %s\n' "$(calc "$rc_secs / $sk_secs" 2)"
else
    echo "skopeo not installed (apt-get install skopeo): no anchor this run"
fi
