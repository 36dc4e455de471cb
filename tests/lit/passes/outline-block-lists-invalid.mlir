// RUN: sattn-opt %s -split-input-file --sattn-specialize --sattn-outline-kernels -verify-diagnostics
// A block-set argument whose lengths nothing fixes cannot be normalised.

func.func @never_attended(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>,
                          %bs: !sattn.blocks<bq = 64, bk = 64, heads = 8> {sattn.name = "blocks"}) -> tensor<?x8x?x64xbf16> {
  // expected-error @+1 {{uses block-set input 'blocks', but no attention consumes the result, so its lengths are unknown}}
  %u = sattn.union %bs, %bs : !sattn.blocks<bq = 64, bk = 64, heads = 8>
  %o = sattn.attention %q, %k, %v : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
