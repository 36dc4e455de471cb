#!/usr/bin/env bash
# The main job of the README: install and build, then take one variant
# through the compiler and run it.
#   1. show the variant (semantic IR),
#   2. lower it with sattn-opt --sattn-lower-to-kernels and show the
#      kernel-level IR (launches, constants, workspace plan, cache key),
#   3. run it with sattn-run on random inputs: on the GPU when this build
#      has a GPU runtime and a GPU is present, otherwise on the float64 CPU
#      reference, printing the JSON report.
# Usage: bash scripts/main.sh [VARIANT.mlir] [SEQ_LEN] [BATCH]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
variant="${1:-$SATTN_ROOT/examples/topk_blocks.mlir}"
seq="${2:-1024}"
batch="${3:-1}"
bin="$SATTN_BUILD/tools"
work="$SATTN_BUILD/main-job"
mkdir -p "$work"

echo "== 1. variant: $variant"
cat "$variant"

echo
echo "== 2. lowered: sattn-opt --sattn-lower-to-kernels"
"$bin/sattn-opt" "$variant" --sattn-lower-to-kernels

if grep -q 'sattn.name = "prompt"' "$variant"; then
  # A decode variant (examples/omnisparse_decode.mlir): the prompt's last 64
  # rows, a cache of SEQ_LEN tokens and one decode query per sequence.
  hq=$(grep -o '%prompt: tensor<?x[0-9]*' "$variant" | head -1 | sed 's/.*x//')
  dim=$(grep -o '%prompt: tensor<?x[0-9]*x?x[0-9]*' "$variant" | head -1 | sed 's/.*x//')
  hkv=$(grep -o '%k: tensor<?x[0-9]*' "$variant" | head -1 | sed 's/.*x//')
  echo
  echo "== 3. inputs: random prompt rows [$batch, $hq, 64, $dim], cache k/v [$batch, $hkv, $seq, $dim], decode q [$batch, $hq, 1, $dim]"
  python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/prompt.npy" "$batch,$hq,64,$dim" --seed 5
  python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/k.npy" "$batch,$hkv,$seq,$dim" --seed 2
  python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/v.npy" "$batch,$hkv,$seq,$dim" --seed 3
  python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/q.npy" "$batch,$hq,1,$dim" --seed 1
  inputs="prompt=$work/prompt.npy,k=$work/k.npy,v=$work/v.npy,q=$work/q.npy"
else
  # Shapes come from the variant's signature: heads and head dim of q and k.
  read -r hq hkv dim < <(sed -n 's/.*%q: tensor<?x\([0-9]*\)x?x\([0-9]*\)x.*%k: tensor<?x\([0-9]*\)x.*/\1 \3 \2/p' "$variant" | head -1)
  echo
  echo "== 3. inputs: random q [$batch, $hq, $seq, $dim], k/v [$batch, $hkv, $seq, $dim]"
  python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/q.npy" "$batch,$hq,$seq,$dim" --seed 1
  python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/k.npy" "$batch,$hkv,$seq,$dim" --seed 2
  python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/v.npy" "$batch,$hkv,$seq,$dim" --seed 3
  inputs="q=$work/q.npy,k=$work/k.npy,v=$work/v.npy"
  # A block set given as input (examples/block_mask.mlir): random lists of 8
  # KV blocks per (batch, head, query block), -1 = unused slot (semantics §14).
  if read -r name bq bk sh < <(sed -n 's/.*%[A-Za-z0-9_]*: !sattn.blocks<bq = \([0-9]*\), bk = \([0-9]*\), heads = \([0-9]*\)> {sattn.name = "\([A-Za-z0-9_]*\)"}.*/\4 \1 \2 \3/p' "$variant" | head -1) && [ -n "$name" ]; then
    nqb=$(( (seq + bq - 1) / bq )) nkb=$(( (seq + bk - 1) / bk ))
    echo "   $name: random int32 [$batch, $sh, $nqb, 8] lists of KV blocks in [-1, $((nkb - 1))]"
    python3 "$SATTN_ROOT/scripts/make_npy.py" "$work/$name.npy" "$batch,$sh,$nqb,8" --dtype i4 \
      --range=-1,$((nkb - 1)) --seed 4
    inputs="$inputs,$name=$work/$name.npy"
  fi

fi

device=cpu
if "$bin/sattn-run" --help | grep -q 'device=cpu|gpu' && command -v nvidia-smi >/dev/null \
   && nvidia-smi -L >/dev/null 2>&1 && [ -x "$bin/sattn-compile" ]; then
  device=gpu
fi
echo
if [ "$device" = cpu ]; then
  echo "== 4. run on the CPU reference (float64; no GPU runtime or no GPU here)"
else
  echo "== 4. run on the GPU"
fi
"$bin/sattn-run" "$variant" --device="$device" --inputs "$inputs" \
  --out "$work/o.npy" --check --json --dump-selection "$work/selection"
echo "wrote $work/o.npy and the selection in $work/selection/"
