#!/usr/bin/env bash
# Runs inside a bundle on a GPU machine: the checks and measurements still
# pending (docs/performance.md, 2026-12-07 tenth), most important first,
# each step under its own time limit so that one
# device call (<= 10 min) brings back whatever finished. Logs and JSON go
# to $OUT (the device tool's output folder; default: a temporary folder),
# the last lines of each step to stdout.
#   bash scripts/bundle-pending.sh 1   # pool-vec.patch: pooling tests and times (~5 min)
#   bash scripts/bundle-pending.sh 2   # bwd-early-release.patch: [backward] suite, times, training step (~6 min)
#   bash scripts/bundle-pending.sh 3   # never run: sm_80 backward, vertical-slash training (~7 min)
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
  # docs/experiments/pool-vec.patch (git apply it first; not yet run on a
  # GPU): the pool kernel's 16-byte loads (several rows per CTA) and two
  # pools of one input in one launch (GROUP2). Every test that pools, with
  # aligned and unaligned rows, then the pool times in the UniSparse /
  # MInference estimates, paired and (SATTN_FUSE_ESTIMATION=0) unpaired.
  TAILN=3 step 120 pooltests bin/sattn-gpu-tests \
    "UniSparse*,composite-token budget*,top-k and cumulative*,Quest*,MInference block-sparse*"
  TAILN=3 step 60 poolpad env SATTN_ROW_PAD=3 bin/sattn-gpu-tests "UniSparse*,Quest*"
  TAILN=6 step 90 poolbench python3 bench/bench_patterns.py --seqs 32768,131072 --reps 5 \
    --patterns unisparse@0.973,minference_block_sparse --json "$OUT/pool-bench.json"
  TAILN=4 step 45 poolunpaired env SATTN_FUSE_ESTIMATION=0 python3 bench/bench_patterns.py \
    --seqs 32768 --reps 5 --patterns unisparse@0.973 --json "$OUT/pool-bench-unpaired.json"
  ;;
2)
  # docs/experiments/bwd-early-release.patch (git apply it first; not yet
  # run on a GPU): the fast mode releases the Q/dO stage before its dQ, and
  # LSE / delta come by cp.async.
  # The whole [backward] suite (TMA dQ by default), then the times against
  # cuDNN (2026-12-07 tenth without the patch: D128 full 29.13 ms, causal
  # 15.07, D64 19.09 / 9.66) and the training step.
  TAILN=5 step 240 bwdtests bin/sattn-gpu-tests "[backward]"
  TAILN=4 step 45 bwd "${bwd[@]}" --atomic --cudnn
  # (deterministic without the patch: D128 full 33.3, causal 16.9-17.0,
  # D64 22.5 / 11.4-11.5)
  TAILN=4 step 45 bwddet "${bwd[@]}"
  TAILN=14 step 110 train python3 bench/bench_train.py --seqs 16384 --dims 64,128 \
    --masks causal,full,sparse --densities 0.2 --impls sattn_atomic,sdpa_cudnn,flex --reps 5 \
    --no-check --no-png --json "$OUT/train.json"
  ;;
3)
  # Never run on a GPU: the sm_80 backward kernels, the vertical-slash
  # training bench.
  TAILN=5 step 300 bwd80 env SATTN_TEST_ARCH=sm_80 bin/sattn-gpu-tests "[backward]"
  TAILN=10 step 150 vslash python3 bench/bench_train_vslash.py --json "$OUT/train-vslash.json"
  ;;
*)
  echo "usage: bash scripts/bundle-pending.sh 1|2|3" >&2
  exit 2
  ;;
esac
