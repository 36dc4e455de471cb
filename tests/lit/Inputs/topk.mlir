// Input of the tool tests: top-k of 16x16 blocks from pooled scores.
func.func @topk(%q: tensor<?x4x?x16xbf16>, %k: tensor<?x2x?x16xbf16>, %v: tensor<?x2x?x16xbf16>) -> tensor<?x4x?x16xbf16> {
  %qp = sattn.pool mean %q group 8 : tensor<?x4x?x16xbf16> -> tensor<?x4x?x16xf32>
  %kp = sattn.pool mean %k group 8 : tensor<?x2x?x16xbf16> -> tensor<?x2x?x16xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 8 : i64, k_group = 8 : i64, causal}
      : tensor<?x4x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16> -> !sattn.scores<bq = 16, bk = 16, heads = 4>
  %bs = sattn.select_blocks topk %s {k = 3 : i64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 16, bk = 16, heads = 4> -> !sattn.blocks<bq = 16, bk = 16, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 16, bk = 16, heads = 4> {causal}
      : tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16> -> tensor<?x4x?x16xbf16>
  return %o : tensor<?x4x?x16xbf16>
}
