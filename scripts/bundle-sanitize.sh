#!/usr/bin/env bash
# Runs inside a bundle on a GPU machine: compute-sanitizer memcheck,
# racecheck and synccheck over every example at a small odd size (B=2,
# S=333, GQA 8/2), on the GPU's own kernels (wgmma on Hopper: TMA,
# mbarriers, persistent CTAs). Prints one line per (example, tool).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
export SATTN_CACHE_DIR="$work/cache"
cs="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
[ -x "$cs" ] || { echo "compute-sanitizer not found"; exit 1; }
for t in q k v; do
  h=8; [ "$t" = q ] || h=2
  python3 "$here/scripts/make_npy.py" "$work/$t.npy" "2,$h,333,64" --seed 11
done
# A block list for examples/block_mask.mlir (64x64 blocks: 6 rows of 8 slots).
python3 "$here/scripts/make_npy.py" "$work/blocks.npy" 2,8,6,8 --dtype i4 --range=-1,5 --seed 12
. "$here/scripts/bundle-lib.sh" # decode_inputs
fail=0
for f in "$here"/examples/*.mlir; do
  name="$(basename "$f" .mlir)"
  inputs="q=$work/q.npy,k=$work/k.npy,v=$work/v.npy"
  grep -q 'sattn.name = "blocks"' "$f" && inputs="$inputs,blocks=$work/blocks.npy"
  dec="$(decode_inputs "$f" 2 333)"; [ -n "$dec" ] && inputs="$dec"
  # Compile once outside the sanitizer (NVRTC under it is slow).
  "$here/bin/sattn-run" "$f" --device=gpu --inputs "$inputs" --out "$work/o.npy" >/dev/null 2>&1
  for tool in memcheck racecheck synccheck; do
    log="$work/$name-$tool.log"
    "$cs" --tool "$tool" --error-exitcode 9 "$here/bin/sattn-run" "$f" --device=gpu \
      --inputs "$inputs" --out "$work/o.npy" > "$log" 2>&1
    rc=$?
    summary="$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard" "$log" | tail -1)"
    printf '%-14s %-10s rc=%d  %s\n' "$name" "$tool" "$rc" "$summary"
    if [ "$rc" -ne 0 ]; then fail=1; grep -E "Error|error|Hazard|hazard" "$log" | head -8; fi
  done
done
rm -rf "$work"
echo "sanitize rc=$fail"
exit $fail
