#!/usr/bin/env bash
# Fails unless libsattn.so exports only the C ABI (`sattn_*`) and needs only
# the C runtime (design §9): no LLVM, MLIR, libstdc++ or libgcc_s symbols may
# leak into a process that holds its own (PyTorch with Triton).
# Usage: check-exports.sh path/to/libsattn.so
set -euo pipefail
lib="$1"
status=0

leaked="$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 } NF == 2 { print $2 }' \
          | grep -v '^sattn_' || true)"
if [ -n "$leaked" ]; then
  echo "error: $(basename "$lib") exports symbols outside the C ABI:"
  echo "$leaked" | head -20 | sed 's/^/  /'
  echo "  ($(echo "$leaked" | wc -l) in all)"
  status=1
fi
count="$(nm -D --defined-only "$lib" | grep -c ' sattn_' || true)"
if [ "$count" -eq 0 ]; then
  echo "error: $(basename "$lib") exports no sattn_ function"
  status=1
fi

allowed='^(linux-vdso|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|ld-linux|/lib64/ld-linux)'
while read -r dep _; do
  [ -z "$dep" ] && continue
  if ! [[ "$dep" =~ $allowed ]]; then
    echo "error: $(basename "$lib") links $dep dynamically"
    status=1
  fi
done < <(ldd "$lib" | sed 's/^[[:space:]]*//')

[ "$status" -eq 0 ] && echo "ok: $(basename "$lib") exports $count sattn_ symbols and needs only the C runtime"
exit "$status"
