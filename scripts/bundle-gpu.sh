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
# The same suite on the portable kernels (mma.sync), which Hopper runs too.
SATTN_TEST_ARCH=sm_80 "$bin/sattn-gpu-tests" "$@" || gpu_rc=1
python3 "$here/scripts/make_npy.py" "$work/q.npy" 2,8,1000,64 --seed 1
python3 "$here/scripts/make_npy.py" "$work/k.npy" 2,2,1000,64 --seed 2
python3 "$here/scripts/make_npy.py" "$work/v.npy" 2,2,1000,64 --seed 3
# The warm pass uses another sequence length: it must hit the cache anyway.
python3 "$here/scripts/make_npy.py" "$work/q2.npy" 1,8,777,64 --seed 4
python3 "$here/scripts/make_npy.py" "$work/k2.npy" 1,2,777,64 --seed 5
python3 "$here/scripts/make_npy.py" "$work/v2.npy" 1,2,777,64 --seed 6
. "$here/scripts/bundle-lib.sh" # list_input
printf '%-16s %-6s %-10s %-10s %-9s %-10s %-9s\n' variant pass rel_err gpu_ms cache nvrtc_ms load_ms
fail=0
for f in "$here"/examples/*.mlir; do
  name="$(basename "$f" .mlir)"
  # Decode variants (a prompt, the cache, decode queries) run below.
  grep -q 'sattn.name = "prompt"' "$f" && continue
  for pass in cold warm; do
    sfx=""; [ "$pass" = warm ] && sfx=2
    if [ "$pass" = warm ]; then extra="$(list_input "$f" 1 777 2)"; else extra="$(list_input "$f" 2 1000 "")"; fi
    json="$("$bin/sattn-run" "$f" --device=gpu --check --json \
      --inputs "q=$work/q$sfx.npy,k=$work/k$sfx.npy,v=$work/v$sfx.npy$extra" --out "$work/$name.npy" 2>&1)" || { fail=1; echo "$json"; }
    get() { sed -n "s/.*\"$1\": \"\\{0,1\\}\\([^,\"]*\\).*/\\1/p" <<<"$json" | head -1; }
    printf '%-16s %-6s %-10.3g %-10.4f %-9s %-10.1f %-9.1f\n' "$name" "$pass" "$(get rel_err)" \
      "$(get total_ms)" "$(get disk_cache)" "$(get nvrtc_ms)" "$(get load_ms)"
  done
done
# The pattern library (32 / 8 heads, D = 128), one cold run each at a length
# off the block. Top-k budgets (MInference's 100 blocks, Quest's 64 pages) need
# more keys than that: k = 4 here.
python3 "$here/scripts/make_npy.py" "$work/pq.npy" 1,32,520,128 --seed 11
python3 "$here/scripts/make_npy.py" "$work/pk.npy" 1,8,520,128 --seed 12
python3 "$here/scripts/make_npy.py" "$work/pv.npy" 1,8,520,128 --seed 13
for f in "$here"/examples/patterns/*.mlir; do
  name="$(basename "$f" .mlir)"
  sed -E 's/\{k = [0-9]+ : i64/{k = 4 : i64/' "$f" > "$work/$name.mlir"
  json="$("$bin/sattn-run" "$work/$name.mlir" --device=gpu --check --json \
    --inputs "q=$work/pq.npy,k=$work/pk.npy,v=$work/pv.npy" --out "$work/$name.npy" 2>&1)" || { fail=1; echo "$json"; }
  get() { sed -n "s/.*\"$1\": \"\{0,1\}\([^,\"]*\).*/\1/p" <<<"$json" | head -1; }
  printf '%-24s %-10.3g %-10.4f %-8s\n' "$name" "$(get rel_err)" "$(get total_ms)" "$(get density)"
done
# OmniSparse decode (32 / 8 heads, D = 128): slim the cache from the prompt's
# last rows, decode one query per sequence over the kept tokens.
python3 "$here/scripts/make_npy.py" "$work/dp.npy" 2,32,100,128 --seed 7
python3 "$here/scripts/make_npy.py" "$work/dk.npy" 2,8,3000,128 --seed 8
python3 "$here/scripts/make_npy.py" "$work/dv.npy" 2,8,3000,128 --seed 9
python3 "$here/scripts/make_npy.py" "$work/dq.npy" 2,32,1,128 --seed 10
json="$("$bin/sattn-run" "$here/examples/omnisparse_decode.mlir" --device=gpu --check --json \
  --inputs "prompt=$work/dp.npy,k=$work/dk.npy,v=$work/dv.npy,q=$work/dq.npy" --out "$work/od.npy" 2>&1)" \
  || { fail=1; echo "$json"; }
echo "omnisparse_decode: $(tr -d '\n' <<<"$json" | head -c 600)"
rm -rf "$work"
# Python package on torch CUDA tensors, with torch and triton imported first.
py_rc=0
if [ -f "$here/scripts/gpu_torch_check.py" ]; then
  python3 "$here/scripts/gpu_torch_check.py"; py_rc=$?
fi
# The benchmark evaluator against the CPU reference at small sizes.
if [ -f "$here/scripts/gpu_evaluator_check.py" ]; then
  python3 "$here/scripts/gpu_evaluator_check.py" --sattn-run "$bin/sattn-run" || py_rc=1
fi
echo "gpu tests rc=$gpu_rc examples rc=$fail python rc=$py_rc"
exit $((gpu_rc | fail | py_rc))
