func.func @f(%q: tensor<?x4x?x16xbf16>, %k: tensor<?x2x?x16xbf16>) -> tensor<?x4x?x16xbf16> {
  %o = sattn.attention %q, %k, %k {causal, windw = 3 : i64} : tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16> -> tensor<?x4x?x16xbf16>
  return %o : tensor<?x4x?x16xbf16>
}
