// RUN: sattn-opt %s -split-input-file --sattn-specialize --sattn-outline-kernels | FileCheck %s
// RUN: sattn-opt %s -split-input-file --sattn-specialize --sattn-outline-kernels="fuse-estimation=false" | FileCheck %s --check-prefix=OFF
// Fused estimation (codegen/device/fused_select.cuh): a sattn.scores whose
// every use is a per-query-head selection or a head budget launches nothing
// itself; each consumer computes the scores rows it needs in shared memory,
// so the [B, H, nQB, nKB] grid is neither launched nor in the workspace.

// OmniSparse's chain: the flattest-head budget, then every head's top blocks
// under it — two fused launches over the pooled q, k (and q, k for lengths).
// CHECK-LABEL: func.func @omni_chain
// CHECK-SAME: sattn.workspace = [{bytes = "B*4*cdiv(S_q,64)*64*4", producer = "k0_pool", result = 0 : i64}, {bytes = "B*2*cdiv(S_k,64)*64*4", producer = "k1_pool", result = 0 : i64}, {bytes = "B*1*cdiv(S_q,128)*4", producer = "k2_scores_head_budget", result = 0 : i64}, {bytes = "B*4*cdiv(S_q,128)*(1+cdiv(S_k,128))*4", producer = "k3_scores_select_topk", result = 0 : i64}]
// CHECK: %[[QP:.*]] = sattn.launch "k0_pool"
// CHECK: %[[KP:.*]] = sattn.launch "k1_pool"
// CHECK-NOT: block_scores
// CHECK: %[[B:.*]] = sattn.launch "k2_scores_head_budget" = "scores_head_budget" {BK = 128 : i64, BOUND = false, BQ = 128 : i64, CAUSAL = true, {{.*}}K_GROUP = 64 : i64, Q_GROUP = 64 : i64, SCALE = 1.250000e-01 : f64, SHARE = "flattest", TAU = {{.*}}}(%[[QP]], %[[KP]], %arg0, %arg1) : {{.*}} -> !sattn.budget<bq = 128, heads = 1>
// CHECK: %[[BS:.*]] = sattn.launch "k3_scores_select_topk" = "scores_select_topk" {{{.*}}HAS_BUDGET = true{{.*}}K_GROUP = 64 : i64{{.*}}OUT_HEADS = 4 : i64, Q_GROUP = 64 : i64{{.*}}}(%[[QP]], %[[KP]], %arg0, %arg1, %[[B]])
// CHECK: sattn.launch "k4_attn_fwd_wgmma" = "attn_fwd_wgmma" {{.*}}(%arg0, %arg1, %arg2, %[[BS]])
// OFF-LABEL: func.func @omni_chain
// OFF: %[[S:.*]] = sattn.launch "k2_block_scores" = "block_scores"
// OFF: sattn.launch "k3_head_budget" = "head_budget" {{.*}}(%[[S]])
// OFF: sattn.launch "k4_select_topk" = "select_topk" {{.*}}(%[[S]],
func.func @omni_chain(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %b = sattn.head_budget flattest %s {tau = 0.95 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 128, heads = 1>
  %bs = sattn.select_blocks topk %s budget %b : !sattn.budget<bq = 128, heads = 1> {forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// Cumulative per query head (FlexPrefill-like 128-token pooling): fused.
// CHECK-LABEL: func.func @cumulative
// CHECK-NOT: block_scores
// CHECK: sattn.launch "k2_scores_select_cumulative" = "scores_select_cumulative" {{{.*}}TAU = 9.000000e-01 : f64}
func.func @cumulative(%q: tensor<?x4x?x128xbf16>, %k: tensor<?x4x?x128xbf16>, %v: tensor<?x4x?x128xbf16>) -> tensor<?x4x?x128xbf16> {
  %qp = sattn.pool mean %q group 128 : tensor<?x4x?x128xbf16> -> tensor<?x4x?x128xf32>
  %kp = sattn.pool mean %k group 128 : tensor<?x4x?x128xbf16> -> tensor<?x4x?x128xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 128 : i64, k_group = 128 : i64, causal}
      : tensor<?x4x?x128xf32>, tensor<?x4x?x128xf32>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %bs = sattn.select_blocks cumulative %s {tau = 0.9 : f64}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16> -> tensor<?x4x?x128xbf16>
  return %o : tensor<?x4x?x128xbf16>
}

// -----

// Not fused: 16-token query pooling has 8 pooled rows per 128-block, where
// block_scores takes its one-pass kernel (the fused form would add a GEMM
// pass), and a per-GQA-group set (a row averages the group's heads).
// CHECK-LABEL: func.func @not_fused
// CHECK: "k2_block_scores" = "block_scores"
// CHECK: "k3_select_topk" = "select_topk"
// CHECK: "k7_block_scores" = "block_scores"
// CHECK: "k8_select_topk" = "select_topk" {{{.*}}OUT_HEADS = 2 : i64
func.func @not_fused(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>) {
  %qp = sattn.pool mean %q group 16 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 16 : i64, k_group = 16 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %bs = sattn.select_blocks topk %s {k = 4 : i64}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  %qp2 = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp2 = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s2 = sattn.scores %qp2, %kp2 of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %bs2 = sattn.select_blocks topk %s2 {k = 4 : i64}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 2>
  %o2 = sattn.attention %q, %k, %v blocks %bs2 : !sattn.blocks<bq = 128, bk = 128, heads = 2> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o, %o2 : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
}

// -----

// Not fused: a scores grid that other ops read as a whole (mean_scores).
// CHECK-LABEL: func.func @shared_grid
// CHECK: "k2_block_scores" = "block_scores"
// CHECK: "mean_scores"
func.func @shared_grid(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %m = sattn.mean_scores %s, %s : !sattn.scores<bq = 128, bk = 128, heads = 4>
  %bs = sattn.select_blocks topk %m {k = 4 : i64}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
