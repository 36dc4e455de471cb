#!/usr/bin/env bash
# Builds and runs the attn_fwd_wgmma check on a Hopper GPU (nvcc 13.x):
# isolated wgmma units, GPU-reference validation, 16 attention configs x 17
# shapes (vs a naive fp32 GPU reference, attn_fwd_mma alongside), then dense
# timing at B = 1, H = 32, S = 16384. Ends with a compact table.
#   bash bench/kernels/run.sh            (from the repository root or anywhere)
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$HERE/bin"
LOG="$HERE/run.log"
mkdir -p "$BIN"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }

NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
say "== build ($("$NVCC" --version | tail -1))"
T0=$(date +%s)
if ! "$NVCC" -std=c++17 -O2 -lineinfo -gencode=arch=compute_90a,code=sm_90a \
    -I"$ROOT/codegen/device" -I"$ROOT" -Xptxas -v "$HERE/wgmma_check.cu" -o "$BIN/wgmma_check" -lcuda \
    > "$BIN/build.log" 2>&1; then
  grep -E "error" "$BIN/build.log" | head -30 | tee -a "$LOG"
  say "BUILD FAILED"
  exit 1
fi
# Resource summary of the wgmma kernels (registers / spills / serialization).
python3 - "$BIN/build.log" <<'EOF' | tee -a "$LOG" || true
import re, sys
cur = None; st = None; rows = []
for line in open(sys.argv[1]):
    m = re.search(r"Compiling entry function '(\w+)'", line)
    if m: cur = m.group(1)
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores", line)
    if m: st = m.groups()
    m = re.search(r"Used (\d+) registers", line)
    if m and cur and cur.startswith("_Z7k_wgmma"):
        rows.append((int(m.group(1)), int(st[0]), int(st[1])))
ser = sum(1 for l in open(sys.argv[1]) if re.search(r"C75\d\d", l) and "k_wgmma" in l)
if rows:
    print("build: %d wgmma kernels, registers %d..%d, max stack %d B, max spill %d B, "
          "serialization warnings %d" % (len(rows), min(r[0] for r in rows),
          max(r[0] for r in rows), max(r[1] for r in rows), max(r[2] for r in rows), ser))
EOF
say "build: $(( $(date +%s) - T0 )) s"

nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader 2>/dev/null | tee -a "$LOG"

run() { # timeout-guarded run; output to log and screen
  local t=$1; shift
  timeout -k 5 "$t" "$BIN/wgmma_check" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then say "TIMEOUT $* (hang?)"; fi
  return "$rc"
}

say "== units"
run 30 --unit; UNIT_RC=$?
if grep -qE "needs a compute capability|driver version is insufficient|no CUDA-capable" "$LOG"; then
  say "no usable Hopper GPU here: stopping"
  exit 1
fi
say "== reference check"
run 60 --refcheck
FAILED_TESTS=()
# Both load paths of attn_fwd_wgmma: TMA (default) and the producer's
# cp.async path (SATTN_NO_TMA=1; misaligned layouts take it in both runs).
# A third pass forces 5 persistent CTAs, so each runs many work items.
# A fourth does the same with static round-robin items instead of the counter.
for mode in tma notma grid5 static5; do
  notma=0; grid=0; static=0
  [ "$mode" = notma ] && notma=1
  [ "$mode" = grid5 ] && grid=5
  [ "$mode" = static5 ] && grid=5 && static=1
  say "== attention tests ($mode)"
  for t in $("$BIN/wgmma_check" --list); do
    SATTN_NO_TMA=$notma SATTN_WGMMA_GRID=$grid SATTN_WGMMA_STATIC=$static run 45 --test "$t" || FAILED_TESTS+=("$t/$mode")
    if grep -q "^TIMEOUT" "$LOG"; then say "a test hung: skipping the remaining tests"; break 2; fi
  done
done
if grep -q "^TIMEOUT" "$LOG"; then
  say "== bench skipped (hang above)"
else
  say "== bench (TMA)"
  run 120 --bench
  say "== bench (SATTN_NO_TMA=1)"
  SATTN_NO_TMA=1 run 120 --bench
fi

# On failures: one memcheck run of the unit kernels (kept short: 60 s cap).
if command -v compute-sanitizer >/dev/null 2>&1 && { [ "$UNIT_RC" -ne 0 ] || [ ${#FAILED_TESTS[@]} -gt 0 ]; }; then
  say "== compute-sanitizer --unit (failure diagnosis)"
  timeout -k 5 60 compute-sanitizer --tool memcheck --print-limit 5 "$BIN/wgmma_check" --unit 2>&1 \
    | grep -vE "^\s*$" | tail -25 | tee -a "$LOG"
fi

[ -n "${OUT:-}" ] && [ -d "${OUT:-}" ] && cp "$LOG" "$OUT/wgmma_check.log" 2>/dev/null

echo
echo "================================ summary ================================"
grep -E "^build:" "$LOG"
grep -E "^(UNIT|REFCHECK) " "$LOG" | cut -c1-120
grep -E "^RESULT " "$LOG" | sed 's/^RESULT //' | cut -c1-130
grep -E "^BENCH " "$LOG" | sed 's/^BENCH //; s/  */ /g'
grep -E "^BENCH_NOTMA " "$LOG" | sed 's/  */ /g'
grep -E "^(TIMEOUT|CUDA error|BUILD FAILED)" "$LOG" | head -10
P=$(grep -cE "^(UNIT|REFCHECK|RESULT) .* pass" "$LOG")
F=$(grep -cE "^(UNIT|REFCHECK|RESULT) .* FAIL|^TIMEOUT|^CUDA error" "$LOG")
echo "wgmma: $P passed, $F failed (total $(( $(date +%s) - T0 )) s)"
