// StreamingLLM-style attention: each query sees the first 64 keys (attention
// sinks) and a sliding window of the last 256 keys, causally. Written as a
// static block set over 64x64 blocks plus the exact token mask. The block
// set adds nothing the mask does not already imply, so canonicalisation
// drops it and the kernel evaluates the mask as predicates: no index list
// is ever built.
func.func @sinks_window(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                        %v: tensor<?x2x?x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %bs = sattn.static_blocks %q, %k {causal, window = 256 : i64, sinks = 64 : i64}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 8>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 8>
      {causal, window = 256 : i64, sinks = 64 : i64}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
