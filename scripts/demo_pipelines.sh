#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds skit and runs sample pipelines end to end, without
# the server: the Ogg/Opus volume boost on a sample clip (levels measured before and after),
# and 8 MiB through 16 passthrough nodes, each in its own sandboxed worker process. (The web
# UI demo, `skit serve`, is scripts/demo.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
cmake --preset release >/dev/null
cmake --build build/release -j"$(nproc)" --target skit

skit=build/release/cli/skit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c $((8 << 20)) /dev/urandom >"$work/input.bin"

echo "== skit nodes"
"$skit" nodes | grep -E '^[a-z]+::' || true
echo
echo "== skit run samples/pipelines/oneshot/volume_boost.yml (gain 2.0 on samples/audio/speech.ogg)"
"$skit" run samples/pipelines/oneshot/volume_boost.yml \
  --input samples/audio/speech.ogg --output "$work/louder.ogg" --stats "$work/boost.json"
level() { ffmpeg -hide_banner -nostats -i "$1" -af volumedetect -f null - 2>&1 | sed -n 's/.*mean_volume: //p'; }
echo "ok: mean volume $(level samples/audio/speech.ogg) -> $(level "$work/louder.ogg") ($work/louder.ogg, $(ffprobe -v error -show_entries format=duration -of csv=p=0 "$work/louder.ogg") s)"
echo
echo "== skit run samples/pipelines/oneshot/passthrough_chain_16.yml --placement per-node"
"$skit" run samples/pipelines/oneshot/passthrough_chain_16.yml \
  --input "$work/input.bin" --output "$work/output.bin" \
  --placement per-node --stats "$work/stats.json"
cmp "$work/input.bin" "$work/output.bin"
python3 - "$work/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
pids = {n["worker_pid"] for n in s["nodes"]}
print(f"ok: 8 MiB copied byte-identical through {len(s['nodes'])} nodes in "
      f"{s['workers']} worker processes ({len(pids)} distinct pids) in {s['wall_seconds']:.2f} s")
for n in s["nodes"][:3] + s["nodes"][-1:]:
    print(f"  {n['id']:8} {n['kind']:24} pid {n['worker_pid']:>7}  in {n['bytes_in']:>8}  out {n['bytes_out']:>8}  {n['state']}")
PY
