// OmniSparse decode (docs/patterns/omnisparse.md, semantics §11-12): score
// every cached token by the exact attention of the prompt's last 64 queries
// (summed over each GQA group), keep per KV head the fewest tokens reaching
// tau = 0.95 plus 4 sinks and the 64 most recent tokens, then attend the
// decode queries only to the kept tokens. GQA 32 query / 8 KV heads, D = 128.
func.func @omnisparse_decode(%prompt: tensor<?x32x?x128xbf16> {sattn.name = "prompt"},
                             %k: tensor<?x8x?x128xbf16> {sattn.name = "k"},
                             %v: tensor<?x8x?x128xbf16> {sattn.name = "v"},
                             %q: tensor<?x32x1x128xbf16> {sattn.name = "q"})
    -> (tensor<?x32x1x128xbf16>, tensor<?x32x?xf32>) {
  %ts = sattn.kv_slim %prompt, %k {observe = 64 : i64, tau = 0.95 : f64, sinks = 4 : i64, recent = 64 : i64}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16> -> !sattn.tokens<heads = 8>
  %o, %lse = sattn.decode_attention %q, %k, %v tokens %ts : !sattn.tokens<heads = 8>
      : tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>
      -> tensor<?x32x1x128xbf16>, tensor<?x32x?xf32>
  return %o, %lse : tensor<?x32x1x128xbf16>, tensor<?x32x?xf32>
}
