// Input of the tool tests: decode over a KV cache slimmed per KV head from
// the prompt's last queries, with a visual segment.
func.func @decode_slim(%prompt: tensor<?x4x?x16xbf16> {sattn.name = "prompt"},
                       %k: tensor<?x2x?x16xbf16> {sattn.name = "k"},
                       %v: tensor<?x2x?x16xbf16> {sattn.name = "v"},
                       %q: tensor<?x4x1x16xbf16> {sattn.name = "q"},
                       %seg: tensor<?x?x2xi32> {sattn.name = "segments"}) -> tensor<?x4x1x16xbf16> {
  %ts = sattn.kv_slim %prompt, %k segments %seg : tensor<?x?x2xi32> {observe = 8 : i64, tau = 0.8 : f64, sinks = 2 : i64, recent = 8 : i64}
      : tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16> -> !sattn.tokens<heads = 2>
  %o = sattn.decode_attention %q, %k, %v tokens %ts : !sattn.tokens<heads = 2>
      : tensor<?x4x1x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16> -> tensor<?x4x1x16xbf16>
  return %o : tensor<?x4x1x16xbf16>
}
