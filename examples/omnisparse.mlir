// OmniSparse prefill (docs/patterns/omnisparse.md; design §10 defaults),
// causal, GQA 8 query / 2 KV heads, D = 64. Three mechanisms in one variant:
//  - query selection: a row whose estimated attention (mean-pooled keys in
//    groups of 64) puts >= 0.9 of its mass on the 64 sinks + the last 1024
//    keys is lazy and attends only there; every 8th lazy row stays active;
//  - head budget: per head the fewest 128-key blocks reaching 0.95 of the
//    estimated mass; the flattest head's count is shared by the heads of the
//    row, and every head keeps its own top blocks (sink and diagonal forced);
//  - active rows attend to their head's blocks.
// On the GPU: estimation kernels, classify_queries (tensor cores), and one
// attention launch (attn_fwd_wgmma on Hopper) in which active rows are
// packed 64 per tile over their blocks and lazy rows over sinks + window.
func.func @omnisparse(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x8x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x8x?x64xbf16> -> tensor<?x8x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 8>
  %b = sattn.head_budget flattest %s {tau = 0.95 : f64, forced = #sattn.forced<sink = 1, diagonal = true>} : !sattn.scores<bq = 128, bk = 128, heads = 8> -> !sattn.budget<bq = 128, heads = 1>
  %bs = sattn.select_blocks topk %s budget %b : !sattn.budget<bq = 128, heads = 1> {forced = #sattn.forced<sink = 1, diagonal = true>} : !sattn.scores<bq = 128, bk = 128, heads = 8> -> !sattn.blocks<bq = 128, bk = 128, heads = 8>
  %qs = sattn.classify_queries %q, %k {key_group = 64 : i64, window = 1024 : i64, sinks = 64 : i64, theta = 0.9 : f64, keep_every = 8 : i64} : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.queries<heads = 8>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 8> queries %qs : !sattn.queries<heads = 8> {causal, lazy_window = 1024 : i64, lazy_sinks = 64 : i64} : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
