#!/usr/bin/env bash
# Runs inside a bundle on a GPU machine: the measurements that CPU-only
# sessions left pending (docs/performance.md, 2026-12-07 eighth and ninth),
# most important first, each step under its own time limit so that one
# device call (<= 10 min) brings back whatever finished. Logs and JSON go
# to $OUT (the device tool's output folder; default: a temporary folder),
# the last lines of each step to stdout.
#   bash scripts/bundle-pending.sh 1   # backward A/B, tests, training bench (~8 min)
#   bash scripts/bundle-pending.sh 2   # UniSparse granularities, never-run checks (~9 min)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here" || exit 1
export SATTN_LIB="$here/python/sattn/libsattn.so" PYTHONPATH="$here/python"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
step() { # LIMIT_S NAME CMD...: runs CMD, its output in $OUT/NAME.log
  local t=$1 n=$2 s rc
  shift 2
  echo "=== $n"
  s=$(date +%s)
  timeout "$t" "$@" >"$OUT/$n.log" 2>&1
  rc=$?
  echo "rc=$rc $(($(date +%s) - s)) s"
  tail -n "${TAILN:-6}" "$OUT/$n.log"
}
nvidia-smi --query-gpu=name --format=csv,noheader
bwd=(python3 bench/kernels/bwd_time.py --seq 16384 --dims "64,128" --causal "1,0" --reps 5)
case "${1:-1}" in
1)
  # dQ by TMA reductions (1: conflict-free staging, 2: plain), the
  # overlapped schedule, against the red.global fast mode; gradients
  # checked against cuDNN's in each (rel_err_* in the rows).
  TAILN=4 step 70 tma1 env SATTN_BACKWARD_DQ_TMA=1 "${bwd[@]}" --atomic --cudnn
  TAILN=4 step 50 ovtma1 env SATTN_BACKWARD_DQ_TMA=1 SATTN_BACKWARD_OVERLAP=1 "${bwd[@]}" --atomic --cudnn
  TAILN=4 step 45 red "${bwd[@]}" --atomic
  TAILN=4 step 45 tma2 env SATTN_BACKWARD_DQ_TMA=2 "${bwd[@]}" --atomic
  TAILN=4 step 45 ovdet env SATTN_BACKWARD_OVERLAP=1 "${bwd[@]}"
  TAILN=5 step 70 bwdtests env SATTN_BACKWARD_DQ_TMA=1 SATTN_BACKWARD_OVERLAP=1 \
    "SATTN_BWD_CASES=dense,causal,blocks per group" bin/sattn-gpu-tests "[backward]"
  TAILN=14 step 110 train env SATTN_BACKWARD_DQ_TMA=1 SATTN_BACKWARD_OVERLAP=1 \
    python3 bench/bench_train.py --seqs 16384 --dims 64,128 --masks causal,full,sparse \
    --densities 0.2 --impls sattn,sattn_atomic,sdpa_cudnn,flex --reps 5 --no-check --no-png \
    --json "$OUT/train.json"
  ;;
2)
  # UniSparse at granularities {32, 64} against the default {16, 64}.
  TAILN=9 step 230 unisparse python3 bench/bench_patterns.py --seqs 131072 --reps 3 \
    --patterns unisparse@0.94,unisparse@0.975,unisparse_g32@0.94,unisparse_g32@0.97,unisparse_g32@0.975,unisparse_g64@0.97,unisparse_g64@0.975 \
    --json "$OUT/unisparse-g32.json"
  TAILN=3 step 40 empty bin/sattn-gpu-tests "empty sequences*"
  TAILN=6 step 60 torchcheck python3 scripts/gpu_torch_check.py
  TAILN=6 step 60 fwd python3 bench/kernels/fwd_time.py --seq 16384 --dims 64,128 --causal 1,0 \
    --reps 10 --cudnn
  TAILN=8 step 90 decode python3 bench/kernels/decode_sweep.py --ctx 131072 --batch 1 \
    --splits auto,16,33,48 --modes 1 --stages auto --reps 30
  TAILN=3 step 60 rowpad env SATTN_ROW_PAD=3 bin/sattn-gpu-tests "GQA*,sliding window*"
  ;;
3)
  # The whole backward suite with both switches (~4 min).
  TAILN=5 step 300 bwdall env SATTN_BACKWARD_DQ_TMA=1 SATTN_BACKWARD_OVERLAP=1 \
    bin/sattn-gpu-tests "[backward]"
  ;;
*)
  echo "usage: bash scripts/bundle-pending.sh 1|2|3" >&2
  exit 2
  ;;
esac
