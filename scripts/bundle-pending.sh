#!/usr/bin/env bash
# Runs inside a bundle on a GPU machine: the checks and measurements still
# pending (docs/performance.md, 2026-12-07 tenth and 2026-12-08
# eleventh), most important first,
# each step under its own time limit so that one
# device call (<= 10 min) brings back whatever finished. Logs and JSON go
# to $OUT (the device tool's output folder; default: a temporary folder),
# the last lines of each step to stdout.
# First, in this order: git apply docs/experiments/pool-vec.patch
# docs/experiments/bwd-early-release.patch docs/experiments/bwd-dq-split.patch
# docs/experiments/bwd-stmatrix.patch docs/experiments/bwd-qdo-tma.patch;
# bash scripts/bundle.sh.
#   bash scripts/bundle-pending.sh 1   # pool-vec.patch: pooling tests and times (~5 min)
#   bash scripts/bundle-pending.sh 2   # the backward patches: [backward] suite, times, dQ split (~8 min)
#   bash scripts/bundle-pending.sh 3   # training step; never run: sm_80 backward, vertical-slash training (~9 min)
#   bash scripts/bundle-pending.sh 4   # ncu: where the fast dK/dV kernel's warps stall (~2 min)
#   bash scripts/bundle-pending.sh 5   # the core of 1 and 2 in one call (~9 min)
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
# Every GPU test that pools (steps 1 and 5).
pooltests=(bin/sattn-gpu-tests
  "UniSparse*,composite-token budget*,top-k and cumulative*,Quest*,MInference block-sparse*")
case "${1:-1}" in
1)
  # docs/experiments/pool-vec.patch (git apply it first; not yet run on a
  # GPU): the pool kernel's 16-byte loads (several rows per CTA) and two
  # pools of one input in one launch (GROUP2). Every test that pools, with
  # aligned and unaligned rows, then the pool times in the UniSparse /
  # MInference estimates, paired and (SATTN_FUSE_ESTIMATION=0) unpaired.
  TAILN=3 step 120 pooltests "${pooltests[@]}"
  TAILN=3 step 60 poolpad env SATTN_ROW_PAD=3 bin/sattn-gpu-tests "UniSparse*,Quest*"
  TAILN=6 step 90 poolbench python3 bench/bench_patterns.py --seqs 32768,131072 --reps 5 \
    --patterns unisparse@0.973,minference_block_sparse --json "$OUT/pool-bench.json"
  TAILN=4 step 45 poolunpaired env SATTN_FUSE_ESTIMATION=0 python3 bench/bench_patterns.py \
    --seqs 32768 --reps 5 --patterns unisparse@0.973 --json "$OUT/pool-bench-unpaired.json"
  ;;
2)
  # bwd-early-release.patch (the fast mode releases the Q/dO stage before
  # its dQ, LSE / delta come by cp.async) and bwd-stmatrix.patch (dS by
  # stmatrix), not yet run on a GPU. The whole [backward] suite (TMA dQ by
  # default), then the times against cuDNN (2026-12-07 tenth without the
  # patch: D128 full 29.13 ms, causal 15.07, D64 19.09 / 9.66). Then the
  # dQ split by head-dim halves (bwd-dq-split.patch, opt-in
  # SATTN_BACKWARD_DQ_SPLIT=1, D 128 only): times and the tests again.
  TAILN=5 step 200 bwdtests bin/sattn-gpu-tests "[backward]"
  TAILN=4 step 45 bwd "${bwd[@]}" --atomic --cudnn
  TAILN=4 step 45 bwdsplit env SATTN_BACKWARD_DQ_SPLIT=1 "${bwd[@]}" --atomic
  TAILN=4 step 45 bwd2 "${bwd[@]}" --atomic
  TAILN=5 step 200 bwdtestssplit env SATTN_BACKWARD_DQ_SPLIT=1 bin/sattn-gpu-tests "[backward]"
  # Q / dO by TMA (bwd-qdo-tma.patch, opt-in SATTN_BACKWARD_QDO_TMA=1).
  TAILN=4 step 40 bwdqdo env SATTN_BACKWARD_QDO_TMA=1 "${bwd[@]}" --atomic
  ;;
3)
  # The training step (deterministic times: without the patches D128 full
  # 33.3, causal 16.9-17.0, D64 22.5 / 11.4-11.5), then what never ran on
  # a GPU: the sm_80 backward kernels, the vertical-slash training bench.
  TAILN=4 step 45 bwddet "${bwd[@]}"
  TAILN=4 step 45 bwddetqdo env SATTN_BACKWARD_QDO_TMA=1 "${bwd[@]}"
  TAILN=14 step 110 train python3 bench/bench_train.py --seqs 16384 --dims 64,128 \
    --masks causal,full,sparse --densities 0.2 --impls sattn_atomic,sdpa_cudnn,flex --reps 5 \
    --no-check --no-png --json "$OUT/train.json"
  TAILN=5 step 220 bwd80 env SATTN_TEST_ARCH=sm_80 bin/sattn-gpu-tests "[backward]"
  TAILN=10 step 150 vslash python3 bench/bench_train_vslash.py --json "$OUT/train-vslash.json"
  ;;
4)
  # The fast dK/dV kernel (D 128, full, S 8k) under ncu: speed of light,
  # warp states and the source lines holding most stall samples -- which of
  # the FA3 comparison's remaining differences to take next.
  TAILN=80 step 150 ncubwd ncu --target-processes all -k regex:sattn_bwd_dkdv --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
    --section ComputeWorkloadAnalysis --section SourceCounters \
    python3 bench/kernels/bwd_time.py --seq 8192 --dims 128 --causal 0 --reps 1 --atomic
  # The same kernel's stall samples per SASS instruction (CSV, read offline).
  TAILN=2 step 120 ncubwdsrc ncu --target-processes all -k regex:sattn_bwd_dkdv --launch-count 1 \
    --section SourceCounters --section WarpStateStats --page source --print-source sass --csv \
    python3 bench/kernels/bwd_time.py --seq 8192 --dims 128 --causal 0 --reps 1 --atomic
  ;;
5)
  # One call's worth of the most important checks of 1 and 2 (when the
  # device comes once): the backward suite and times, the two opt-in
  # backward switches (dQ split, Q / dO by TMA: times each, then the tests
  # with both), the pooling tests and the UniSparse 32k estimate.
  TAILN=5 step 170 bwdtests bin/sattn-gpu-tests "[backward]"
  TAILN=4 step 45 bwd "${bwd[@]}" --atomic --cudnn
  TAILN=4 step 40 bwdsplit env SATTN_BACKWARD_DQ_SPLIT=1 "${bwd[@]}" --atomic
  TAILN=4 step 40 bwdqdo env SATTN_BACKWARD_QDO_TMA=1 "${bwd[@]}" --atomic
  TAILN=5 step 100 bwdtestsopt env SATTN_BACKWARD_DQ_SPLIT=1 SATTN_BACKWARD_QDO_TMA=1 \
    SATTN_BWD_CASES="D128,fp16,causal,blocks per group,queries" bin/sattn-gpu-tests "[backward]"
  TAILN=3 step 100 pooltests "${pooltests[@]}"
  TAILN=6 step 45 poolbench python3 bench/bench_patterns.py --seqs 32768 --reps 5 \
    --patterns unisparse@0.973 --json "$OUT/pool-bench.json"
  ;;
*)
  echo "usage: bash scripts/bundle-pending.sh 1|2|3|4|5" >&2
  exit 2
  ;;
esac
