// RUN: sattn-opt %s | sattn-opt | FileCheck %s
// RUN: sattn-opt %s --mlir-print-op-generic | sattn-opt | FileCheck %s
// Every semantic op and type prints and parses back unchanged.

// CHECK-LABEL: func.func @estimate_and_select
func.func @estimate_and_select(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                               %v: tensor<?x2x?x64xbf16>)
    -> (tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>) {
  // CHECK: %[[QP:.*]] = sattn.pool mean %{{.*}} group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  // CHECK: %[[KP:.*]] = sattn.pool max %{{.*}} group 16
  %kp = sattn.pool max %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // CHECK: sattn.pool min
  %kmin = sattn.pool min %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  // CHECK: %[[S:.*]] = sattn.scores %[[QP]], %[[KP]] of {{.*}} {causal, k_group = 16 : i64, q_group = 64 : i64, scale = {{[0-9.e+-]+}} : f64} : {{.*}} -> <bq = 128, bk = 64, heads = 4>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 16 : i64, causal, scale = 0.125 : f64}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> !sattn.scores<bq = 128, bk = 64, heads = 4>
  // CHECK: sattn.scores %[[QP]], %{{.*}} bound %[[KP]] of {{.*}} {causal, k_group = 16 : i64, q_group = 64 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32> bound tensor<?x2x?x64xf32>, {{.*}} -> <bq = 128, bk = 64, heads = 4>
  %lo = sattn.pool min %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %ub = sattn.scores %qp, %lo bound %kp of %q, %k {q_group = 64 : i64, k_group = 16 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32> bound tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> !sattn.scores<bq = 128, bk = 64, heads = 4>
  // CHECK: %[[B:.*]] = sattn.head_budget flattest %[[S]] {forced = #sattn.forced<sink = 1, local = 2, diagonal = true>, tau = {{[0-9.e+-]+}} : f64} : <bq = 128, bk = 64, heads = 4> -> <bq = 128, heads = 1>
  %b = sattn.head_budget flattest %s {tau = 0.95 : f64, forced = #sattn.forced<sink = 1, local = 2, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 64, heads = 4> -> !sattn.budget<bq = 128, heads = 1>
  // CHECK: sattn.head_budget none %[[S]] {tau = {{[0-9.e+-]+}} : f64} : <bq = 128, bk = 64, heads = 4> -> <bq = 128, heads = 4>
  %bh = sattn.head_budget none %s {tau = 0.5 : f64}
      : !sattn.scores<bq = 128, bk = 64, heads = 4> -> !sattn.budget<bq = 128, heads = 4>
  // CHECK: %[[T:.*]] = sattn.select_blocks topk %[[S]] budget %[[B]] : !sattn.budget<bq = 128, heads = 1> : <bq = 128, bk = 64, heads = 4> -> <bq = 128, bk = 64, heads = 4>
  %t = sattn.select_blocks topk %s budget %b : !sattn.budget<bq = 128, heads = 1>
      : !sattn.scores<bq = 128, bk = 64, heads = 4> -> !sattn.blocks<bq = 128, bk = 64, heads = 4>
  // CHECK: %[[C:.*]] = sattn.select_blocks cumulative %[[S]] {k = 6 : i64, tau = {{[0-9.e+-]+}} : f64} : <bq = 128, bk = 64, heads = 4> -> <bq = 128, bk = 64, heads = 2>
  %c = sattn.select_blocks cumulative %s {tau = 0.9 : f64, k = 6 : i64}
      : !sattn.scores<bq = 128, bk = 64, heads = 4> -> !sattn.blocks<bq = 128, bk = 64, heads = 2>
  // CHECK: sattn.select_blocks cumulative %[[S]] {slack = 1 : i64, tau = {{[0-9.e+-]+}} : f64}
  %slack = sattn.select_blocks cumulative %s {tau = 0.9 : f64, slack = 1 : i64}
      : !sattn.scores<bq = 128, bk = 64, heads = 4> -> !sattn.blocks<bq = 128, bk = 64, heads = 4>
  // CHECK: sattn.select_blocks topk %[[S]] {cap = 4 : i64, k = 4 : i64}
  %capped = sattn.select_blocks topk %s {k = 4 : i64, cap = 4 : i64}
      : !sattn.scores<bq = 128, bk = 64, heads = 4> -> !sattn.blocks<bq = 128, bk = 64, heads = 4>
  // CHECK: %[[W:.*]] = sattn.static_blocks %{{.*}}, %{{.*}} {causal, sinks = 64 : i64, window = 512 : i64} : {{.*}} -> <bq = 128, bk = 64, heads = 4>
  %w = sattn.static_blocks %q, %k {causal, window = 512 : i64, sinks = 64 : i64}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 128, bk = 64, heads = 4>
  // CHECK: %[[U:.*]] = sattn.union %[[T]], %[[W]] : <bq = 128, bk = 64, heads = 4>
  %u = sattn.union %t, %w : !sattn.blocks<bq = 128, bk = 64, heads = 4>
  // CHECK: %[[I:.*]] = sattn.intersect %[[U]], %[[W]] : <bq = 128, bk = 64, heads = 4>
  %i = sattn.intersect %u, %w : !sattn.blocks<bq = 128, bk = 64, heads = 4>
  // CHECK: %[[QS:.*]] = sattn.classify_queries {{.*}} {keep_every = 4 : i64, key_group = 32 : i64, sinks = 16 : i64, theta = {{[0-9.e+-]+}} : f64, window = 256 : i64} : {{.*}} -> <heads = 4>
  %qs = sattn.classify_queries %q, %k {key_group = 32 : i64, window = 256 : i64, sinks = 16 : i64, theta = 0.8 : f64, keep_every = 4 : i64}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.queries<heads = 4>
  // CHECK: %{{.*}}, %[[LSE:.*]] = sattn.attention {{.*}} blocks %[[I]] : !sattn.blocks<bq = 128, bk = 64, heads = 4> queries %[[QS]] : !sattn.queries<heads = 4> lazy zero {causal, lazy_sinks = 8 : i64, lazy_window = 128 : i64} : {{.*}} -> tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
  %o, %lse = sattn.attention %q, %k, %v blocks %i : !sattn.blocks<bq = 128, bk = 64, heads = 4>
      queries %qs : !sattn.queries<heads = 4> lazy zero {causal, lazy_window = 128 : i64, lazy_sinks = 8 : i64}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>
}

// CHECK-LABEL: func.func @masks_and_patterns
func.func @masks_and_patterns(%q: tensor<2x8x100x128xf16>, %k: tensor<2x8x300x128xf16>,
                              %v: tensor<2x8x300x128xf16>) -> tensor<2x8x100x128xf16> {
  // CHECK: sattn.attention {{.*}} {block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true, window = 256>, causal, sinks = 4 : i64, window = 128 : i64}
  %o = sattn.attention %q, %k, %v {causal, window = 128 : i64, sinks = 4 : i64,
      block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true, window = 256>}
      : tensor<2x8x100x128xf16>, tensor<2x8x300x128xf16>, tensor<2x8x300x128xf16> -> tensor<2x8x100x128xf16>
  return %o : tensor<2x8x100x128xf16>
}

// CHECK-LABEL: func.func @decode
func.func @decode(%qp: tensor<?x8x?x128xbf16>, %kp: tensor<?x2x?x128xbf16>,
                  %q: tensor<?x8x1x128xbf16>, %k: tensor<?x2x?x128xbf16>, %v: tensor<?x2x?x128xbf16>,
                  %seg: tensor<?x?x2xi32>, %pk: tensor<?x2x16x128xbf16>, %pv: tensor<?x2x16x128xbf16>,
                  %table: tensor<?x?xi32>, %lens: tensor<?xi32>)
    -> (tensor<?x8x1x128xbf16>, tensor<?x8x1x128xbf16>, tensor<?x8x1xf32>) {
  // CHECK: %[[TS:.*]] = sattn.kv_slim %{{.*}}, %{{.*}} segments %{{.*}} : tensor<?x?x2xi32> {observe = 32 : i64, recent = 16 : i64, sinks = 2 : i64, tau = {{[0-9.e+-]+}} : f64} : {{.*}} -> <heads = 2>
  %ts = sattn.kv_slim %qp, %kp segments %seg : tensor<?x?x2xi32> {observe = 32 : i64, tau = 0.9 : f64, sinks = 2 : i64, recent = 16 : i64}
      : tensor<?x8x?x128xbf16>, tensor<?x2x?x128xbf16> -> !sattn.tokens<heads = 2>
  // CHECK: sattn.decode_attention {{.*}} tokens %[[TS]] : !sattn.tokens<heads = 2> : {{.*}} -> tensor<?x8x1x128xbf16>
  %o = sattn.decode_attention %q, %k, %v tokens %ts : !sattn.tokens<heads = 2>
      : tensor<?x8x1x128xbf16>, tensor<?x2x?x128xbf16>, tensor<?x2x?x128xbf16> -> tensor<?x8x1x128xbf16>
  // CHECK: sattn.decode_attention {{.*}} pages %{{.*}}, %{{.*}} : tensor<?x?xi32>, tensor<?xi32> {scale = {{[0-9.e+-]+}} : f64} : {{.*}} -> tensor<?x8x1x128xbf16>, tensor<?x8x1xf32>
  %po, %plse = sattn.decode_attention %q, %pk, %pv pages %table, %lens : tensor<?x?xi32>, tensor<?xi32> {scale = 0.5 : f64}
      : tensor<?x8x1x128xbf16>, tensor<?x2x16x128xbf16>, tensor<?x2x16x128xbf16> -> tensor<?x8x1x128xbf16>, tensor<?x8x1xf32>
  return %o, %po, %plse : tensor<?x8x1x128xbf16>, tensor<?x8x1x128xbf16>, tensor<?x8x1xf32>
}

// CHECK-LABEL: func.func @kernel_level
func.func @kernel_level(%q: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xf32> {
  // CHECK: sattn.launch "k0_pool" = "pool" {GROUP = 64 : i64}(%{{.*}}) : (tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xf32>
  %0 = sattn.launch "k0_pool" = "pool" {GROUP = 64 : i64} (%q) : (tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xf32>
  return %0 : tensor<?x4x?x64xf32>
}
