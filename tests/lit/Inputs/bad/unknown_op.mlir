func.func @f(%q: tensor<?x4x?x16xbf16>) {
  %o = sattn.atention %q
}
