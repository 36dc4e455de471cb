#!/usr/bin/env bash
# Stages the Python files of a reference implementation that the fidelity
# scripts import, exported from a bare git copy of its repository and never
# committed here: the default destination lies under build/, which git ignores.
#
#   bash bench/fidelity/stage_reference.sh GIT_DIR [OUT_DIR]
#
# The repository is recognised by its files:
#   mit-han-lab/x-attention  -> build/ext/x-attention: xattn/__init__.py and
#       xattn/src/{Xattention,utils,kernels}.py (xattn_estimate,
#       find_blocks_chunked, the Triton kernels). Xattention.py imports
#       block_sparse_attn (a CUDA extension, used only by the attention step);
#       xattention_fidelity.py stubs it rather than editing the files.
#   bytedance/FlexPrefill    -> build/ext/flexprefill:
#       flex_prefill/ops/flex_prefill_attention.py (get_active_blocks and its
#       helpers); it imports transformers only to pick a flash-attention
#       function, which flexprefill_fidelity.py stubs when absent.
# REVISION holds the commit the files come from.
set -euo pipefail
git_dir="${1:?usage: stage_reference.sh GIT_DIR [OUT_DIR]}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
has() { git --git-dir="$git_dir" cat-file -e "HEAD:$1" 2>/dev/null; }
if has xattn/src/Xattention.py; then
  name=x-attention top=xattn
  files=(xattn/__init__.py xattn/src/Xattention.py xattn/src/utils.py xattn/src/kernels.py)
elif has flex_prefill/ops/flex_prefill_attention.py; then
  name=flexprefill top=flex_prefill
  files=(flex_prefill/ops/flex_prefill_attention.py)
else
  echo "stage_reference: $git_dir is neither mit-han-lab/x-attention nor bytedance/FlexPrefill" >&2
  exit 1
fi
out="${2:-$root/build/ext/$name}"

rev="$(git --git-dir="$git_dir" rev-parse HEAD)"
# Third-party code must not end up in a commit: refuse a destination inside
# this work tree that git would track.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mkdir -p "$out"
  case "$(cd "$out" && pwd)/" in
    "$root"/*) git -C "$root" check-ignore -q "$out" ||
      { echo "stage_reference: $out is inside the work tree but not git-ignored" >&2; exit 1; } ;;
  esac
fi
rm -rf "${out:?}/$top"
mkdir -p "$out"
# A snapshot whose largest blobs are absent makes git archive print
# "invalid object" for those (unrelated) files; what counts is that ours arrive.
git --git-dir="$git_dir" archive HEAD "${files[@]}" | tar -x -C "$out"
for f in "${files[@]}"; do
  [ -f "$out/$f" ] || { echo "stage_reference: $f missing after export" >&2; exit 1; }
done
echo "$rev" > "$out/REVISION"
echo "staged $name $rev: ${files[*]} -> $out"
