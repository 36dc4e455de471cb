// RUN: sattn-opt %s -split-input-file --sattn-specialize --sattn-outline-kernels="fuse-estimation=false" | FileCheck %s
// RUN: not sattn-opt %s -split-input-file --sattn-outline-kernels -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOSPEC
// Every semantic op becomes a launch in program order; the workspace plan
// lists what the function does not return. (Estimation fused into its
// selections, the default, is checked in fuse-estimation.mlir.)

// CHECK-LABEL: func.func @omni_like
// CHECK-SAME: sattn.workspace = [{bytes = "B*4*cdiv(S_q,64)*64*4", producer = "k0_pool", result = 0 : i64}
// CHECK-SAME: {bytes = "B*4*cdiv(S_q,128)*cdiv(S_k,128)*4", producer = "k2_block_scores", result = 0 : i64}
// CHECK-SAME: {bytes = "B*1*cdiv(S_q,128)*4", producer = "k3_head_budget", result = 0 : i64}
// CHECK-SAME: {bytes = "B*4*cdiv(S_q,128)*(1+cdiv(S_k,128))*4", producer = "k4_select_topk", result = 0 : i64}
// CHECK-SAME: {bytes = "B*2*cdiv(S_k,64)*64*4", producer = "k5_pool", result = 0 : i64}
// CHECK-SAME: {bytes = "B*4*(1+S_q)*4", producer = "k6_classify_queries", result = 0 : i64}
// CHECK: %[[QP:.*]] = sattn.launch "k0_pool" = "pool" {{{.*}}GROUP = 64 : i64{{.*}}KIND = "mean"
// CHECK: %[[KP:.*]] = sattn.launch "k1_pool" = "pool"
// CHECK: %[[S:.*]] = sattn.launch "k2_block_scores" = "block_scores" {BK = 128 : i64, BOUND = false, BQ = 128 : i64, CAUSAL = true, {{.*}}SCALE = 1.250000e-01 : f64}(%[[QP]], %[[KP]], %arg0, %arg1)
// CHECK: %[[B:.*]] = sattn.launch "k3_head_budget" = "head_budget" {{{.*}}CAUSAL = true{{.*}}F_DIAG = true{{.*}}SHARE = "flattest"{{.*}}}(%[[S]])
// CHECK: %[[BS:.*]] = sattn.launch "k4_select_topk" = "select_topk" {{{.*}}HAS_BUDGET = true{{.*}}K = -1 : i64{{.*}}}(%[[S]], %[[B]])
// classify_queries: the keys mean-pooled first (operand k only), then classified.
// CHECK: %[[KP2:.*]] = sattn.launch "k5_pool" = "pool" {{{.*}}GROUP = 64 : i64, HEADS = 4 : i64, HEAD_DIM = 64 : i64, IN_HEADS = 2 : i64, KIND = "mean"{{.*}}}(%arg1) : (tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xf32>
// CHECK: %[[QS:.*]] = sattn.launch "k6_classify_queries" = "classify_queries" {{{.*}}THETA = {{[0-9.e+-]+}} : f64{{.*}}}(%arg0, %arg1, %[[KP2]])
// Query sets run on the wgmma kernel (packed rows, one consumer: no ping-pong).
// CHECK: %[[O:.*]]:2 = sattn.launch "k7_attn_fwd_wgmma" = "attn_fwd_wgmma" {{{.*}}HAS_BLOCKS = true, HAS_LSE = true, HAS_PATTERN = false, HAS_QUERIES = true{{.*}}PINGPONG = 0{{.*}}}(%arg0, %arg1, %arg2, %[[BS]], %[[QS]])
// CHECK-NOT: sattn.attention
// CHECK-NOT: sattn.select_blocks
// CHECK: return %[[O]]#0, %[[O]]#1
func.func @omni_like(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %b = sattn.head_budget flattest %s {tau = 0.95 : f64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 128, heads = 1>
  %bs = sattn.select_blocks topk %s budget %b : !sattn.budget<bq = 128, heads = 1> {forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %qs = sattn.classify_queries %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.queries<heads = 4>
  %o, %lse = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> queries %qs : !sattn.queries<heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// -----

// kv_slim is three kernels: the observation rows' LSE, their exact per-token
// scores, then the per-head selection; LSE and scores are workspace.
// CHECK-LABEL: func.func @decode_slim
// CHECK-SAME: {bytes = "B*4*64*4", producer = "k0_kv_slim_lse", result = 0 : i64}, {bytes = "B*2*S_k*4", producer = "k1_kv_slim_scores", result = 0 : i64}, {bytes = "B*2*(1+S_k)*4", producer = "k2_kv_slim_select", result = 0 : i64}
// CHECK: %[[LSE:.*]] = sattn.launch "k0_kv_slim_lse" = "kv_slim_lse" {{{.*}}OBSERVE = 64 : i64{{.*}}}(%arg0, %arg1) : ({{.*}}) -> tensor<?x4x?xf32>
// CHECK: %[[SC:.*]] = sattn.launch "k1_kv_slim_scores" = "kv_slim_scores" {{{.*}}OBSERVE = 64 : i64{{.*}}}(%arg0, %arg1, %[[LSE]]) : ({{.*}}) -> tensor<?x2x?xf32>
// CHECK: %[[TS:.*]] = sattn.launch "k2_kv_slim_select" = "kv_slim_select" {{{.*}}}(%arg0, %arg1, %[[LSE]], %[[SC]])
// CHECK: sattn.launch "k3_decode_attn" = "decode_attn" {{{.*}}HAS_TOKENS = true{{.*}}PAGED = false{{.*}}}(%arg2, %arg1, %arg3, %[[TS]])
// CHECK-NOT: sattn.kv_slim
func.func @decode_slim(%qp: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %q: tensor<?x4x1x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x1x64xbf16> {
  %ts = sattn.kv_slim %qp, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.tokens<heads = 2>
  %o = sattn.decode_attention %q, %k, %v tokens %ts : !sattn.tokens<heads = 2>
      : tensor<?x4x1x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x1x64xbf16>
  return %o : tensor<?x4x1x64xbf16>
}

// -----

// NOSPEC: error: run sattn-specialize before sattn-outline-kernels (the function has no sattn.spec)
func.func @unspecialised(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = sattn.attention %q, %k, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
