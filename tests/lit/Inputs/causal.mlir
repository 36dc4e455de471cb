// Input of the tool tests: dense causal attention, 4 query heads over 2 KV heads.
func.func @causal(%q: tensor<?x4x?x16xbf16>, %k: tensor<?x2x?x16xbf16>, %v: tensor<?x2x?x16xbf16>)
    -> (tensor<?x4x?x16xbf16>, tensor<?x4x?xf32>) {
  %o, %lse = sattn.attention %q, %k, %v {causal}
      : tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16> -> tensor<?x4x?x16xbf16>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x16xbf16>, tensor<?x4x?xf32>
}
