#!/usr/bin/env bash
# Placement benchmark: the same pipelines with --placement grouped and per-node, beside `cat`
# doing the same byte copy. Prints a table and a one-line summary.
set -euo pipefail
cd "$(dirname "$0")/.."
skit=${SKIT:-build/release/cli/skit}
mib=${PLACEMENT_MIB:-256}
runs=${PLACEMENT_RUNS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c $((mib << 20)) /dev/urandom >"$work/in.bin"

# median wall seconds and median CPU seconds (user+sys of the command and its children)
measure() {
  local walls=() cpus=()
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" >/dev/null 2>&1
    read -r w u s <"$work/time"
    walls+=("$w")
    cpus+=("$(echo "$u + $s" | bc)")
  done
  local mw mc
  mw=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
  mc=$(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
  echo "$mw $mc"
}

read -r cat_w cat_c < <(measure sh -c "cat '$work/in.bin' > '$work/cat.bin'")
printf '%-34s %8s %8s %10s\n' "case ($mib MiB, median of $runs)" "wall s" "cpu s" "wall/cat"
printf '%-34s %8s %8s %10s\n' "cat (baseline copy)" "$cat_w" "$cat_c" "1.00"
declare -A wall
for pipeline in http_passthrough passthrough_chain_16; do
  for placement in grouped per-node; do
    read -r w c < <(measure "$skit" run "samples/pipelines/oneshot/$pipeline.yml" -q \
      -i "$work/in.bin" -o "$work/out.bin" --placement "$placement")
    wall[$pipeline/$placement]=$w
    printf '%-34s %8s %8s %10.2f\n' "$pipeline $placement" "$w" "$c" "$(echo "$w / $cat_w" | bc -l)"
  done
done
cmp -s "$work/in.bin" "$work/out.bin" || { echo "placement: output differs"; exit 1; }
ratio=$(echo "${wall[passthrough_chain_16/per-node]} / ${wall[passthrough_chain_16/grouped]}" | bc -l)
printf 'placement: chain16 %s MiB grouped %ss, per-node %ss (per-node/grouped %.2fx), cat %ss\n' \
  "$mib" "${wall[passthrough_chain_16/grouped]}" "${wall[passthrough_chain_16/per-node]}" "$ratio" "$cat_w"
