// Dense causal attention: every query row sees every earlier key (aligned
// bottom-right). 8 query heads share 2 KV heads (GQA), head dim 64; batch
// and sequence lengths are dynamic. Also returns the log-sum-exp, which
// backward passes and split-KV merges need.
func.func @dense_causal(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                        %v: tensor<?x2x?x64xbf16>)
    -> (tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) {
  %o, %lse = sattn.attention %q, %k, %v {causal}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  return %o, %lse : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
}
