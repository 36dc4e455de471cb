// Top-k block-sparse attention from pooled scores: queries and keys are
// mean-pooled in groups of 32, 64x64 block scores are estimated causally
// from the pooled tokens, and every query block keeps the sink block, its
// diagonal block and the best others up to 4 blocks in all (per head).
func.func @topk_blocks(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                       %v: tensor<?x2x?x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %qp = sattn.pool mean %q group 32 : tensor<?x8x?x64xbf16> -> tensor<?x8x?x64xf32>
  %kp = sattn.pool mean %k group 32 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 32 : i64, k_group = 32 : i64, causal}
      : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> !sattn.scores<bq = 64, bk = 64, heads = 8>
  %bs = sattn.select_blocks topk %s {k = 4 : i64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 64, bk = 64, heads = 8> -> !sattn.blocks<bq = 64, bk = 64, heads = 8>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 8> {causal}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
