// Input of the tool tests: lazy/active query rows plus a flattest-head
// shared budget feeding a top-k, all on 16x16 blocks.
func.func @budget_queries(%q: tensor<?x4x?x16xbf16>, %k: tensor<?x2x?x16xbf16>, %v: tensor<?x2x?x16xbf16>)
    -> (tensor<?x4x?x16xbf16>, tensor<?x4x?xf32>) {
  %qp = sattn.pool mean %q group 16 : tensor<?x4x?x16xbf16> -> tensor<?x4x?x16xf32>
  %kp = sattn.pool mean %k group 16 : tensor<?x2x?x16xbf16> -> tensor<?x2x?x16xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 16 : i64, k_group = 16 : i64, causal}
      : tensor<?x4x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16> -> !sattn.scores<bq = 16, bk = 16, heads = 4>
  %b = sattn.head_budget flattest %s {tau = 0.9 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 16, bk = 16, heads = 4> -> !sattn.budget<bq = 16, heads = 1>
  %bs = sattn.select_blocks topk %s budget %b : !sattn.budget<bq = 16, heads = 1> {forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 16, bk = 16, heads = 4> -> !sattn.blocks<bq = 16, bk = 16, heads = 4>
  %qs = sattn.classify_queries %q, %k {key_group = 8 : i64, window = 16 : i64, sinks = 8 : i64, theta = 0.5 : f64, keep_every = 4 : i64}
      : tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16> -> !sattn.queries<heads = 4>
  %o, %lse = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 16, bk = 16, heads = 4> queries %qs : !sattn.queries<heads = 4>
      {causal, lazy_window = 16 : i64, lazy_sinks = 8 : i64}
      : tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16> -> tensor<?x4x?x16xbf16>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x16xbf16>, tensor<?x4x?xf32>
}
