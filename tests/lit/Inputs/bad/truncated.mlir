func.func @f(%q: tensor<?x4x?x16xbf16>) {
  %o = sattn.attention %q,
