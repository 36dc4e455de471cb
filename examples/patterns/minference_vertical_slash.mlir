// MInference vertical-slash (Jiang et al., NeurIPS 2024; microsoft/MInference;
// docs/patterns/minference.md): the exact causal attention of the last 64
// queries, summed per key (vertical) and per distance (slash). Per head keep
// the first 30 keys and the 1000 best columns in all, the distances 0..99 and
// the 6096 best slashes in all; each slash is a band of 64 distances through
// every 64-row query block. One causal attention launch reads the bands as
// key ranges and the columns as gathered keys, at token granularity
// (semantics §12b). GQA 32 query / 8 KV heads, D = 128.
func.func @minference_vertical_slash(%q: tensor<?x32x?x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                                     %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x?x128xbf16> {
  %vs = sattn.vslash %q, %k {last = 64 : i64, vertical = 1000 : i64, slash = 6096 : i64,
                             sink_columns = 30 : i64, local_slashes = 100 : i64}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16> -> !sattn.vslash<bq = 64, heads = 32>
  %o = sattn.attention %q, %k, %v vslash %vs : !sattn.vslash<bq = 64, heads = 32> {causal}
      : tensor<?x32x?x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16> -> tensor<?x32x?x128xbf16>
  return %o : tensor<?x32x?x128xbf16>
}
