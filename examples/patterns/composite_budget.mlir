// A pattern none of the published methods uses, written as IR only (no new
// kernel code; docs/patterns/composite_budget.md): UniSparse's composite-token
// estimate (granularities 16 and 64, weighted 1 : 2 towards the coarse one)
// drives OmniSparse's head-level budget. Per 128-row block each query head
// needs k_h blocks to reach 0.9 of its estimated mass; the flattest head's
// k = max_h k_h is shared by all heads of the row, and every head keeps its
// own top-k blocks (sink and diagonal forced). GQA 32/8, D = 128.
func.func @composite_budget(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
    %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %qp16 = sattn.pool mean %q group 16 : tensor<?x32x?x128xbf16> -> tensor<?x32x?x128xf32>
  %kp16 = sattn.pool mean %k group 16 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %s16 = sattn.scores %qp16, %kp16 of %q, %k {q_group = 16 : i64, k_group = 16 : i64, causal}
      : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32>, tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> !sattn.scores<bq = 128, bk = 128, heads = 32>
  %qp64 = sattn.pool mean %q group 64 : tensor<?x32x?x128xbf16> -> tensor<?x32x?x128xf32>
  %kp64 = sattn.pool mean %k group 64 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %s64 = sattn.scores %qp64, %kp64 of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32>, tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> !sattn.scores<bq = 128, bk = 128, heads = 32>
  %s = sattn.mean_scores %s16, %s64 {weights = array<f64: 1.0, 2.0>} : !sattn.scores<bq = 128, bk = 128, heads = 32>
  %b = sattn.head_budget flattest %s {tau = 0.9 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 32> -> !sattn.budget<bq = 128, heads = 1>
  %bs = sattn.select_blocks topk %s budget %b : !sattn.budget<bq = 128, heads = 1>
      {forced = #sattn.forced<sink = 1, diagonal = true>} : !sattn.scores<bq = 128, bk = 128, heads = 32> -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 32> {causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
