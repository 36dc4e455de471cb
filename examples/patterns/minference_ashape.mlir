// MInference A-shape (Jiang et al., 2024; docs/patterns/minference.md): 128
// sink keys plus a causal window of 3968 keys, as an in-kernel predicate
// (static pattern, no index lists). GQA 32/8, D = 128.
func.func @minference_ashape(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
    %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %o = sattn.attention %q, %k, %v {causal, window = 3968 : i64, sinks = 128 : i64}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
