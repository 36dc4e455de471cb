#!/usr/bin/env bash
# Builds a self-contained folder to copy to a GPU machine that has no
# LLVM/MLIR installed (design §9): the statically linked tools, the
# examples, the GPU test binary, libsattn.so with the Python package, the
# .npy input generator and the smoke/GPU test scripts.
# Usage: bash scripts/bundle.sh [OUT_DIR]   (default: build/bundle)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
out="${1:-$SATTN_BUILD/bundle}"
rm -rf "$out"
mkdir -p "$out/bin" "$out/examples" "$out/scripts"
for t in tools/sattn-opt tools/sattn-run tools/sattn-compile tools/sattn-tune tests/gpu/sattn-gpu-tests bench/sattn-bench-jit; do
  cp "$SATTN_BUILD/$t" "$out/bin/"
  strip "$out/bin/$(basename "$t")"
done
cp "$SATTN_ROOT"/examples/*.mlir "$out/examples/"
mkdir -p "$out/examples/patterns" && cp "$SATTN_ROOT"/examples/patterns/*.mlir "$out/examples/patterns/"
cp "$SATTN_ROOT/scripts/make_npy.py" "$SATTN_ROOT"/scripts/bundle-*.sh "$out/scripts/"
cp -r "$SATTN_ROOT/python" "$out/python"
rm -rf "$out/python/build" "$out/python"/*.egg-info
cp "$SATTN_BUILD/runtime/capi/libsattn.so" "$out/python/sattn/"
strip --strip-unneeded "$out/python/sattn/libsattn.so"
bash "$SATTN_ROOT/runtime/capi/check-exports.sh" "$out/python/sattn/libsattn.so"
cp "$SATTN_ROOT/tests/python/gpu_torch_check.py" "$SATTN_ROOT/tests/python/gpu_evaluator_check.py" \
  "$SATTN_ROOT/tests/python/gpu_autograd_check.py" "$out/scripts/"
mkdir -p "$out/examples/python" && cp "$SATTN_ROOT"/examples/python/*.py "$out/examples/python/"
mkdir -p "$out/bench/kernels" && cp "$SATTN_ROOT"/bench/*.py "$out/bench/" && cp "$SATTN_ROOT"/bench/kernels/*.py "$out/bench/kernels/"
mkdir -p "$out/bench/fidelity" && cp "$SATTN_ROOT"/bench/fidelity/*.py "$SATTN_ROOT"/bench/fidelity/*.sh "$out/bench/fidelity/"
bash "$SATTN_ROOT/tests/check-static.sh" "$out"/bin/*
du -sh "$out"
