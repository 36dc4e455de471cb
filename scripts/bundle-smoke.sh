#!/usr/bin/env bash
# Runs inside a bundle (scripts/bundle.sh) on any x86-64 Linux machine:
# every example is lowered and run on the CPU reference; prints a table.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/bin"
work="$(mktemp -d)"
echo "machine: $(uname -srm); $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"
for t in "$bin"/*; do
  echo "$(basename "$t"): $(ldd "$t" | awk '{print $1}' | tr '\n' ' ')"
done
python3 "$here/scripts/make_npy.py" "$work/q.npy" 2,8,700,64 --seed 1
python3 "$here/scripts/make_npy.py" "$work/k.npy" 2,2,700,64 --seed 2
python3 "$here/scripts/make_npy.py" "$work/v.npy" 2,2,700,64 --seed 3
. "$here/scripts/bundle-lib.sh" # list_input
fail=0
printf '%-20s %-8s %-9s %-8s %-10s\n' variant lower launches run density
for f in "$here"/examples/*.mlir; do
  name="$(basename "$f" .mlir)"
  if lowered="$("$bin/sattn-opt" "$f" --sattn-lower-to-kernels 2>&1)"; then lower=ok; else lower=FAIL; fail=1; fi
  launches="$(grep -c 'sattn.launch' <<<"$lowered")"
  extra="$(list_input "$f" 2 700 "")"
  inputs="q=$work/q.npy,k=$work/k.npy,v=$work/v.npy$extra"
  dec="$(decode_inputs "$f" 2 700)"; [ -n "$dec" ] && inputs="$dec"
  if json="$("$bin/sattn-run" "$f" --inputs "$inputs" --out "$work/$name.npy" --json 2>&1)"; then
    run=ok
  else
    run=FAIL; fail=1; echo "$json"
  fi
  density="$(sed -n 's/.*"density": \([0-9.]*\).*/\1/p' <<<"$json" | cut -c1-6)"
  printf '%-20s %-8s %-9s %-8s %-10s\n' "$name" "$lower" "$launches" "$run" "$density"
done
rm -rf "$work"
exit "$fail"
