// MInference block-sparse head (Jiang et al., 2024; docs/patterns/minference.md):
// Q and K mean-pooled over 64 tokens, causal pooled scores over 64 x 64
// blocks, top-100 blocks per query block (sink and diagonal blocks forced and
// counted), block-sparse causal attention. GQA 32/8, D = 128.
func.func @minference_block_sparse(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
    %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %qp64 = sattn.pool mean %q group 64 : tensor<?x32x?x128xbf16> -> tensor<?x32x?x128xf32>
  %kp64 = sattn.pool mean %k group 64 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %s64 = sattn.scores %qp64, %kp64 of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32>, tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> !sattn.scores<bq = 64, bk = 64, heads = 32>
  %bs = sattn.select_blocks topk %s64 {k = 100 : i64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 64, bk = 64, heads = 32> -> !sattn.blocks<bq = 64, bk = 64, heads = 32>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 32> {causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
