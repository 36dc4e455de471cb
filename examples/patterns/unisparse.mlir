// UniSparse (Liu et al., 2025, arXiv 2512.14082; docs/patterns/unisparse.md):
// composite tokens are Q and K mean-pooled at two granularities (32 and 64
// tokens; design §10 names 16 and 64, but the 16-token grid selects no
// better and costs most of the estimate: docs/patterns/unisparse.md); each
// granularity gives causal block scores over 128 x 128 blocks
// (softmax of pooled Q . pooled K^T / sqrt(D), summed into blocks), and the
// block score is their mean. Per query block keep the sink and diagonal
// blocks, then the largest others until tau = 0.9 of the estimated mass;
// block-sparse causal attention. GQA 32 query / 8 KV heads, D = 128.
func.func @unisparse(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
    %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %qp32 = sattn.pool mean %q group 32 : tensor<?x32x?x128xbf16> -> tensor<?x32x?x128xf32>
  %kp32 = sattn.pool mean %k group 32 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %s32 = sattn.scores %qp32, %kp32 of %q, %k {q_group = 32 : i64, k_group = 32 : i64, causal}
      : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32>, tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> !sattn.scores<bq = 128, bk = 128, heads = 32>
  %qp64 = sattn.pool mean %q group 64 : tensor<?x32x?x128xbf16> -> tensor<?x32x?x128xf32>
  %kp64 = sattn.pool mean %k group 64 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %s64 = sattn.scores %qp64, %kp64 of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32>, tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> !sattn.scores<bq = 128, bk = 128, heads = 32>
  %s = sattn.mean_scores %s32, %s64 : !sattn.scores<bq = 128, bk = 128, heads = 32>
  %bs = sattn.select_blocks cumulative %s {tau = 0.9 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 32> -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 32> {causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
