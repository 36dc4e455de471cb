// Block-sparse attention over a block mask the caller supplies at run time
// (as FlexAttention's BlockMask): input `blocks` is int32 [B, 8, cdiv(Sq, 64), cap]
// and lists, for every (batch, head, 64-row query block), the 64-key KV
// blocks it attends, -1 for unused slots, in any order (docs/semantics.md
// §14). The causal mask still applies inside the chosen blocks.
//   sattn-run examples/block_mask.mlir --inputs q=Q.npy,k=K.npy,v=V.npy,blocks=B.npy --out O.npy
func.func @block_mask(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                      %v: tensor<?x2x?x64xbf16>,
                      %blocks: !sattn.blocks<bq = 64, bk = 64, heads = 8> {sattn.name = "blocks"})
    -> tensor<?x8x?x64xbf16> {
  %o = sattn.attention %q, %k, %v blocks %blocks : !sattn.blocks<bq = 64, bk = 64, heads = 8> {causal}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
