// XAttention (Xu et al., 2025; docs/patterns/xattention.md): estimate each
// 128 x 128 block by strided antidiagonal sums (stride 8: one dot product of
// 8 reversed queries with 8 keys is one antidiagonal of an 8 x 8 tile), take
// a softmax over each regrouped row, sum into blocks, then keep per query
// block the sink block, the diagonal block and the largest others until
// tau = 0.9 of the row's estimated mass; block-sparse causal attention.
// GQA 32 query / 8 KV heads, D = 128.
func.func @xattention(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                      %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %s = sattn.antidiag_scores %q, %k {stride = 8 : i64, causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> !sattn.scores<bq = 128, bk = 128, heads = 32>
  %bs = sattn.select_blocks cumulative %s {tau = 0.9 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 32> -> !sattn.blocks<bq = 128, bk = 128, heads = 32>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 32> {causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
