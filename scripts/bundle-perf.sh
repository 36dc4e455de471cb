#!/usr/bin/env bash
# Runs inside a bundle on a GPU machine: JIT latency, then tuning of the
# benchmark's dense variants, then the SDPA comparison with the tuned
# database. Full outputs go to $1 (default: a temporary folder).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
export SATTN_CACHE_DIR="$out/cache"
echo "== JIT latency"
"$here/bin/sattn-bench-jit"
echo "== tuning"
export PYTHONPATH="$here/python${PYTHONPATH:+:$PYTHONPATH}"
for d in 64 128; do
  for causal in True False; do
    f="$out/dense_d${d}_${causal}.mlir"
    python3 -c "import sattn; open('$f','w').write(sattn.patterns.dense(32, 32, $d, causal=$causal))"
    "$here/bin/sattn-tune" "$f" --seq 4096,16384 | grep -- '->'
  done
done
echo "== benchmark (tuned)"
python3 "$here/bench/bench_attention.py" --seqs 4096,16384 --dims 64,128 --reps 20 \
  --json "$out/bench.json" --png "$out/bench.png"
