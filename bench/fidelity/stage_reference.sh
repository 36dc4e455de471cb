#!/usr/bin/env bash
# Stages the Python files of the XAttention reference (mit-han-lab/x-attention)
# that `xattn_estimate` needs, for bench/fidelity/xattention_fidelity.py.
# They are exported from a bare git copy of that repository and never
# committed here: the default destination lies under build/, which git ignores.
#
#   bash bench/fidelity/stage_reference.sh GIT_DIR [OUT_DIR]   (OUT_DIR default: build/ext/x-attention)
#
# Exported: xattn/__init__.py and xattn/src/{Xattention,utils,kernels}.py
# (xattn_estimate, find_blocks_chunked, the Triton kernels), plus REVISION
# holding the commit they come from. Xattention.py also imports
# block_sparse_attn (a CUDA extension, used only by Xattention_prefill's
# attention step); the fidelity script stubs it rather than editing the files.
set -euo pipefail
git_dir="${1:?usage: stage_reference.sh GIT_DIR [OUT_DIR]}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${2:-$root/build/ext/x-attention}"
files=(xattn/__init__.py xattn/src/Xattention.py xattn/src/utils.py xattn/src/kernels.py)

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
rm -rf "$out/xattn"
mkdir -p "$out"
# A snapshot whose largest blobs are absent makes git archive print
# "invalid object" for those (unrelated) files; what counts is that ours arrive.
git --git-dir="$git_dir" archive HEAD "${files[@]}" | tar -x -C "$out"
for f in "${files[@]}"; do
  [ -f "$out/$f" ] || { echo "stage_reference: $f missing after export" >&2; exit 1; }
done
echo "$rev" > "$out/REVISION"
echo "staged x-attention $rev: ${files[*]} -> $out"
