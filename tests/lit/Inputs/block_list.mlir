// Input of the tool tests: causal attention over a block set given as input,
// 4 query heads over 2 KV heads, one list per KV group, 16x16 blocks.
func.func @block_list(%q: tensor<?x4x?x16xbf16>, %k: tensor<?x2x?x16xbf16>, %v: tensor<?x2x?x16xbf16>,
                      %blocks: !sattn.blocks<bq = 16, bk = 16, heads = 2> {sattn.name = "blocks"})
    -> tensor<?x4x?x16xbf16> {
  %o = sattn.attention %q, %k, %v blocks %blocks : !sattn.blocks<bq = 16, bk = 16, heads = 2> {causal}
      : tensor<?x4x?x16xbf16>, tensor<?x2x?x16xbf16>, tensor<?x2x?x16xbf16> -> tensor<?x4x?x16xbf16>
  return %o : tensor<?x4x?x16xbf16>
}
