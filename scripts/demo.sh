#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds skit and runs a sample pipeline end to end:
# a generated 8 MiB file through 16 passthrough nodes, each in its own sandboxed worker.
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
