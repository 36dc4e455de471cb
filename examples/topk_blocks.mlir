// Top-k block-sparse attention from pooled scores: keys and queries are
// mean-pooled in groups of 64, 128x128 block scores are estimated causally,
// every row keeps the sink block, the diagonal and the 6 best other blocks.
func.func @topk_blocks(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                       %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %bs = sattn.select_blocks topk %s {k = 8 : i64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
