// FlexPrefill (Lai et al., ICLR 2025; docs/patterns/flexprefill.md). The
// exact causal attention of the last 128 queries gives per head a vertical
// line (mass per key) and a slash line (mass per distance); each line's
// budget is the number of keys (distances) covering gamma = 0.9 of it, in
// units of 128, at least 8 blocks (1024 tokens). Block 0 and the diagonal
// plus the best other columns and diagonals form the vertical-slash set. A
// head whose pooled estimate (mean of the last queries against the
// block-mean keys) lies within sqrt-JSD 0.1 of its pooled vertical mass is
// query-aware: its line budgets drop to the minimum and it adds the blocks
// of one head-wide cumulative threshold over pooled block scores.
// Block-sparse causal attention. GQA 32 query / 8 KV heads, D = 128.
func.func @flexprefill(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                       %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %qp = sattn.pool mean %q group 128 : tensor<?x32x?x128xbf16> -> tensor<?x32x?x128xf32>
  %kp = sattn.pool mean %k group 128 : tensor<?x8x?x128xbf16> -> tensor<?x8x?x128xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 128 : i64, k_group = 128 : i64, causal}
      : tensor<?x32x?x128xf32>, tensor<?x8x?x128xf32>, tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> !sattn.scores<bq = 128, bk = 128, heads = 32>
  %qa = sattn.select_blocks cumulative %s per head {tau = 0.9 : f64}
      : !sattn.scores<bq = 128, bk = 128, heads = 32> -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
  %bs = sattn.vertical_slash %q, %k aware %qa, %kp
      {last = 128 : i64, gamma = 0.9 : f64, min_blocks = 8 : i64, jsd = 0.1 : f64}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
        aware !sattn.blocks<bq = 128, bk = 128, heads = 32>, tensor<?x8x?x128xf32>
      -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 32> {causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
