#!/usr/bin/env bash
# Fails if any sattn tool needs a shared library beyond the C runtime
# (design §9): the bundle must run on a GPU machine with no LLVM, MLIR, fmt
# or libstdc++ of our version installed.
set -euo pipefail
allowed='^(linux-vdso|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|ld-linux)'
status=0
for tool in "$@"; do
  while read -r lib _; do
    [ -z "$lib" ] && continue
    if ! [[ "$lib" =~ $allowed ]] && ! [[ "$lib" == /lib64/ld-linux* ]]; then
      echo "error: $(basename "$tool") links $lib dynamically"
      status=1
    fi
  done < <(ldd "$tool" | sed 's/^[[:space:]]*//')
  [ "$status" -eq 0 ] && echo "ok: $(basename "$tool") needs only the C runtime"
done
exit "$status"
