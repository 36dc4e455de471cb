# Shared by the bundle scripts (sourced, not run): they set $here (the
# bundle root) and $work (a scratch folder) before calling these.

# A block set given as input (examples/block_mask.mlir): random lists of 8 KV
# blocks per (batch, head, query block), -1 = unused slot. Prints the extra
# ",NAME=FILE" for --inputs, or nothing when the variant has no such input.
list_input() { # VARIANT BATCH SEQ TAG
  local spec name bq bk sh
  spec="$(sed -n 's/.*%[A-Za-z0-9_]*: !sattn.blocks<bq = \([0-9]*\), bk = \([0-9]*\), heads = \([0-9]*\)> {sattn.name = "\([A-Za-z0-9_]*\)"}.*/\4 \1 \2 \3/p' "$1" | head -1)"
  [ -n "$spec" ] || return 0
  read -r name bq bk sh <<<"$spec"
  python3 "$here/scripts/make_npy.py" "$work/$name$4.npy" "$2,$sh,$(( ($3 + bq - 1) / bq )),8" \
    --dtype i4 --range=-1,$(( ($3 + bk - 1) / bk - 1 )) --seed 7
  printf ',%s=%s' "$name" "$work/$name$4.npy"
}

# A decode variant (examples/omnisparse_decode.mlir: inputs prompt, k, v, q;
# 32 query / 8 KV heads, D = 128): random inputs with a cache of SEQ tokens,
# the prompt's last 64 rows and one decode query per sequence. Prints the
# whole --inputs value, or nothing when the variant takes q, k, v.
decode_inputs() { # VARIANT BATCH SEQ
  grep -q 'sattn.name = "prompt"' "$1" || return 0
  python3 "$here/scripts/make_npy.py" "$work/dp.npy" "$2,32,64,128" --seed 21
  python3 "$here/scripts/make_npy.py" "$work/dk.npy" "$2,8,$3,128" --seed 22
  python3 "$here/scripts/make_npy.py" "$work/dv.npy" "$2,8,$3,128" --seed 23
  python3 "$here/scripts/make_npy.py" "$work/dq.npy" "$2,32,1,128" --seed 24
  printf 'prompt=%s,k=%s,v=%s,q=%s' "$work/dp.npy" "$work/dk.npy" "$work/dv.npy" "$work/dq.npy"
}
