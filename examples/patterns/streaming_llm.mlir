// StreamingLLM (Xiao et al., 2024; docs/patterns/streaming_llm.md): every
// query attends to the first 4 keys (attention sinks) and a causal window of
// the last 4096 keys. No estimation: the mask becomes an in-kernel predicate
// and fully masked tiles are skipped. Decode: patterns::streaming over the
// cache with Sq = 1 is the same mask (bottom-right aligned). GQA 32/8, D = 128.
func.func @streaming_llm(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
    %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %o = sattn.attention %q, %k, %v {causal, window = 4096 : i64, sinks = 4 : i64}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
