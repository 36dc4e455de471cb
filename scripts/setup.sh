#!/usr/bin/env bash
# Installs everything sattn needs on a fresh Debian 12 machine, then
# configures and builds it. Sourced by main.sh and test.sh; safe to rerun.
#
# Packages (by Debian name): LLVM/MLIR 22 static libraries and tools
# (TableGen, lit, FileCheck), Catch2, fmt, zstd/zlib static archives,
# CMake and Ninja. CUDA 13 (nvcc, NVRTC) is expected to be installed already.
set -euo pipefail

SATTN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SATTN_BUILD="${SATTN_BUILD:-$SATTN_ROOT/build}"
PACKAGES=(libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools catch2 libfmt-dev
          libzstd-dev zlib1g-dev cmake ninja-build python3 python3-pip g++)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Python tooling for the Python package's tests (PyPI).
python3 -c 'import numpy, pytest' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check "numpy>=1.22" "pytest>=7"

jobs="$(nproc)"
mkdir -p "$SATTN_BUILD"
cmake -S "$SATTN_ROOT" -B "$SATTN_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$SATTN_BUILD/configure.log" 2>&1 \
  || { cat "$SATTN_BUILD/configure.log"; exit 1; }
ninja -C "$SATTN_BUILD" -j "$jobs"
