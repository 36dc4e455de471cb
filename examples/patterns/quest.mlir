// Quest (Tang et al., ICML 2024, "Quest: Query-Aware Sparsity for Efficient
// Long-Context LLM Inference"; docs/patterns/quest.md): the KV cache in pages
// of 16 keys, each page summarised by the elementwise min and max of its
// keys; a query's logit with any key of a page is at most
// scale · Σ_d max(q_d · min_d, q_d · max_d) (semantics §4c), and each query
// block keeps its own page (the diagonal) plus the pages with the largest
// bounds, 64 in all (1024 tokens). A decode method: one query per step over
// the cache (Sq = 1; bottom-right aligned causality). Here the bounds are
// pooled from the cache on every call; patterns::quest with boundsAsInputs
// takes them as inputs kept beside the cache. GQA 32/8, D = 128.
func.func @quest(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
    %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %qp = sattn.pool mean %q group 1 : tensor<?x32x?x128xbf16> -> tensor<?x32x?x128xf32>
  %kmin = sattn.pool min %k group 16 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %kmax = sattn.pool max %k group 16 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %u = sattn.scores %qp, %kmin bound %kmax of %q, %k {k_group = 16 : i64, causal}
      : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32> bound tensor<?x8x?x128xf32>,
        tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16> -> !sattn.scores<bq = 16, bk = 16, heads = 32>
  %bs = sattn.select_blocks topk %u {k = 64 : i64, forced = #sattn.forced<diagonal = true>}
      : !sattn.scores<bq = 16, bk = 16, heads = 32> -> !sattn.blocks<bq = 16, bk = 16, heads = 32>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 16, bk = 16, heads = 32> {causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
