// RUN: sattn-opt %s -split-input-file --sattn-specialize --sattn-outline-kernels | FileCheck %s
// A block-set argument is a user list (semantics §14): before anything else
// a blocks_from_list launch turns it into the sorted counts + indices form,
// reading q and k for the lengths, and every use reads its result instead.

// CHECK-LABEL: func.func @per_group
// CHECK-SAME: %arg3: !sattn.blocks<bq = 128, bk = 64, heads = 2> {sattn.name = "blocks"}
// CHECK-SAME: sattn.workspace = [{bytes = "B*2*cdiv(S_q,128)*(1+cdiv(S_k,64))*4", producer = "k0_blocks_from_list", result = 0 : i64}]
// CHECK-NEXT: %[[L:.*]] = sattn.launch "k0_blocks_from_list" = "blocks_from_list" {BK = 64 : i64, BQ = 128 : i64, DTYPE = "bf16", HEADS = 8 : i64, HEAD_DIM = 64 : i64, KV_HEADS = 2 : i64, SET_HEADS = 2 : i64}(%arg3, %arg0, %arg1) : (!sattn.blocks<bq = 128, bk = 64, heads = 2>, tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>) -> !sattn.blocks<bq = 128, bk = 64, heads = 2>
// CHECK-NEXT: %[[O:.*]] = sattn.launch "k1_attn_fwd_wgmma" = "attn_fwd_wgmma" {{{.*}}HAS_BLOCKS = true{{.*}}SET_BK = 64 : i64, SET_BQ = 128 : i64, SET_HEADS = 2 : i64{{.*}}}(%arg0, %arg1, %arg2, %[[L]])
// CHECK-NEXT: return %[[O]]
func.func @per_group(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>,
                     %bs: !sattn.blocks<bq = 128, bk = 64, heads = 2> {sattn.name = "blocks"}) -> tensor<?x8x?x64xbf16> {
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 64, heads = 2> {causal}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}

// -----

// A union with a computed set: the list's lengths are the static set's; the
// union's workspace entry is sized from them too.
// CHECK-LABEL: func.func @union_static
// CHECK-SAME: {bytes = "B*8*cdiv(S_q,64)*(1+cdiv(S_k,64))*4", producer = "k0_blocks_from_list", result = 0 : i64}
// CHECK-SAME: {bytes = "B*8*cdiv(S_q,64)*(1+cdiv(S_k,64))*4", producer = "k1_static_blocks", result = 0 : i64}
// CHECK-SAME: {bytes = "B*8*cdiv(S_q,64)*(1+cdiv(S_k,64))*4", producer = "k2_block_set_union", result = 0 : i64}
// CHECK-NEXT: %[[L:.*]] = sattn.launch "k0_blocks_from_list" = "blocks_from_list" {{.*}}(%arg3, %arg0, %arg1)
// CHECK-NEXT: %[[S:.*]] = sattn.launch "k1_static_blocks" = "static_blocks"
// CHECK-NEXT: %[[U:.*]] = sattn.launch "k2_block_set_union" = "block_set_union" {{.*}}(%[[L]], %[[S]])
// CHECK-NEXT: sattn.launch "k3_attn_fwd_wgmma" = "attn_fwd_wgmma" {{.*}}(%arg0, %arg1, %arg2, %[[U]])
func.func @union_static(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>,
                        %user: !sattn.blocks<bq = 64, bk = 64, heads = 8>) -> tensor<?x8x?x64xbf16> {
  %w = sattn.static_blocks %q, %k {causal, window = 256 : i64}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 8>
  %u = sattn.union %user, %w : !sattn.blocks<bq = 64, bk = 64, heads = 8>
  %o = sattn.attention %q, %k, %v blocks %u : !sattn.blocks<bq = 64, bk = 64, heads = 8> {causal}
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}

// -----

// Two lists intersected: the lengths come from the attention the result
// reaches. One list attended over two key tensors gets one launch per (q, k).
// CHECK-LABEL: func.func @two_lists
// CHECK-SAME: {bytes = "B*8*cdiv(S_q,64)*(1+cdiv(S_k,64))*4", producer = "k0_blocks_from_list", result = 0 : i64}, {bytes = "B*8*cdiv(S_q,64)*(1+cdiv(S_arg3,64))*4", producer = "k1_blocks_from_list", result = 0 : i64}
// CHECK-NEXT: %[[A:.*]] = sattn.launch "k0_blocks_from_list" = "blocks_from_list" {{.*}}(%arg4, %arg0, %arg1)
// CHECK-NEXT: %[[A2:.*]] = sattn.launch "k1_blocks_from_list" = "blocks_from_list" {{.*}}(%arg4, %arg0, %arg3)
// CHECK-NEXT: %[[B:.*]] = sattn.launch "k2_blocks_from_list" = "blocks_from_list" {{.*}}(%arg5, %arg0, %arg1)
// CHECK-NEXT: %[[I:.*]] = sattn.launch "k3_block_set_intersect" = "block_set_intersect" {{.*}}(%[[A]], %[[B]])
// CHECK-NEXT: sattn.launch "k4_attn_fwd_wgmma" = "attn_fwd_wgmma" {{.*}}(%arg0, %arg1, %arg2, %[[I]])
// CHECK-NEXT: sattn.launch "k5_attn_fwd_wgmma" = "attn_fwd_wgmma" {{.*}}(%arg0, %arg3, %arg3, %[[A2]])
func.func @two_lists(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>,
                     %k2: tensor<?x2x?x64xbf16>,
                     %a: !sattn.blocks<bq = 64, bk = 64, heads = 8>,
                     %b: !sattn.blocks<bq = 64, bk = 64, heads = 8>) -> (tensor<?x8x?x64xbf16>, tensor<?x8x?x64xbf16>) {
  %i = sattn.intersect %a, %b : !sattn.blocks<bq = 64, bk = 64, heads = 8>
  %o = sattn.attention %q, %k, %v blocks %i : !sattn.blocks<bq = 64, bk = 64, heads = 8>
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  %o2 = sattn.attention %q, %k2, %k2 blocks %a : !sattn.blocks<bq = 64, bk = 64, heads = 8>
      : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o, %o2 : tensor<?x8x?x64xbf16>, tensor<?x8x?x64xbf16>
}

// -----

// An unused list needs no launch.
// CHECK-LABEL: func.func @unused
// CHECK-NOT: blocks_from_list
// CHECK: return
func.func @unused(%q: tensor<?x8x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>,
                  %bs: !sattn.blocks<bq = 64, bk = 64, heads = 8>) -> tensor<?x8x?x64xbf16> {
  %o = sattn.attention %q, %k, %v : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o : tensor<?x8x?x64xbf16>
}
