// Input of the tool tests: decode over a paged cache of 8-token pages.
func.func @decode_paged(%q: tensor<?x4x2x16xbf16>, %k: tensor<?x2x8x16xbf16>, %v: tensor<?x2x8x16xbf16>,
                        %table: tensor<?x?xi32> {sattn.name = "table"}, %lens: tensor<?xi32> {sattn.name = "lens"})
    -> tensor<?x4x2x16xbf16> {
  %o = sattn.decode_attention %q, %k, %v pages %table, %lens : tensor<?x?xi32>, tensor<?xi32>
      : tensor<?x4x2x16xbf16>, tensor<?x2x8x16xbf16>, tensor<?x2x8x16xbf16> -> tensor<?x4x2x16xbf16>
  return %o : tensor<?x4x2x16xbf16>
}
