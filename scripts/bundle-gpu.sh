#!/usr/bin/env bash
# Runs inside a bundle on a GPU machine: the GPU test suite, then every
# example through sattn-run --device=gpu --check (cold and warm cache),
# printing a table last.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/bin"
work="$(mktemp -d)"
export SATTN_CACHE_DIR="$work/cache"
nvidia-smi -L 2>/dev/null | head -1
"$bin/sattn-gpu-tests" "$@"
gpu_rc=$?
python3 "$here/scripts/make_npy.py" "$work/q.npy" 2,8,1000,64 --seed 1
python3 "$here/scripts/make_npy.py" "$work/k.npy" 2,2,1000,64 --seed 2
python3 "$here/scripts/make_npy.py" "$work/v.npy" 2,2,1000,64 --seed 3
printf '%-16s %-6s %-10s %-10s %-9s %-10s %-9s\n' variant pass rel_err gpu_ms cache nvrtc_ms load_ms
fail=0
for f in "$here"/examples/*.mlir; do
  name="$(basename "$f" .mlir)"
  for pass in cold warm; do
    json="$("$bin/sattn-run" "$f" --device=gpu --check --json \
      --inputs "q=$work/q.npy,k=$work/k.npy,v=$work/v.npy" --out "$work/$name.npy" 2>&1)" || { fail=1; echo "$json"; }
    get() { sed -n "s/.*\"$1\": \"\\{0,1\\}\\([^,\"]*\\).*/\\1/p" <<<"$json" | head -1; }
    printf '%-16s %-6s %-10.3g %-10.4f %-9s %-10.1f %-9.1f\n' "$name" "$pass" "$(get rel_err)" \
      "$(get total_ms)" "$(get disk_cache)" "$(get nvrtc_ms)" "$(get load_ms)"
  done
done
rm -rf "$work"
echo "gpu tests rc=$gpu_rc examples rc=$fail"
exit $((gpu_rc | fail))
