// RUN: sattn-opt %s -split-input-file -canonicalize | FileCheck %s
// Canonicalisation (design §4.1): fold unions/intersections of static
// patterns, drop block sets that keep everything the attention allows,
// turn top-k over every block into a static block set.

// CHECK-LABEL: func.func @drop_dense_blocks
// CHECK-NOT: sattn.static_blocks
// CHECK: %[[O:.*]] = sattn.attention %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}} {causal} :
// CHECK: return %[[O]]
func.func @drop_dense_blocks(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %d = sattn.static_blocks %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %d : !sattn.blocks<bq = 64, bk = 64, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// A causal block set under a windowed attention keeps everything the window
// allows: dropped. A window block set under a causal attention is not.
// CHECK-LABEL: func.func @covering_only
// CHECK: %[[W:.*]] = sattn.static_blocks {{.*}} {causal, window = 128 : i64}
// CHECK: sattn.attention {{.*}} {causal, window = 64 : i64}
// CHECK: sattn.attention {{.*}} blocks %[[W]] : {{.*}} {causal}
func.func @covering_only(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>) {
  %c = sattn.static_blocks %q, %k {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %w = sattn.static_blocks %q, %k {causal, window = 128 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %a = sattn.attention %q, %k, %v blocks %c : !sattn.blocks<bq = 64, bk = 64, heads = 4> {causal, window = 64 : i64}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  %b = sattn.attention %q, %k, %v blocks %w : !sattn.blocks<bq = 64, bk = 64, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %a, %b : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
}

// -----

// CHECK-LABEL: func.func @fold_static_pairs
// CHECK-DAG: %[[C:.*]] = sattn.static_blocks {{.*}} {causal} :
// CHECK-DAG: %[[W:.*]] = sattn.static_blocks {{.*}} {causal, window = 256 : i64} :
// CHECK-NOT: sattn.union
// CHECK-NOT: sattn.intersect
// CHECK: return %[[C]], %[[W]], %[[C]]
func.func @fold_static_pairs(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>)
    -> (!sattn.blocks<bq = 64, bk = 64, heads = 4>, !sattn.blocks<bq = 64, bk = 64, heads = 4>, !sattn.blocks<bq = 64, bk = 64, heads = 4>) {
  %c = sattn.static_blocks %q, %k {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %w = sattn.static_blocks %q, %k {causal, window = 256 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %u = sattn.union %w, %c : !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %i = sattn.intersect %c, %w : !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %self = sattn.union %c, %c : !sattn.blocks<bq = 64, bk = 64, heads = 4>
  return %u, %i, %self : !sattn.blocks<bq = 64, bk = 64, heads = 4>, !sattn.blocks<bq = 64, bk = 64, heads = 4>, !sattn.blocks<bq = 64, bk = 64, heads = 4>
}

// -----

// union(dense, x) = dense; intersect(dense, x) = x.
// CHECK-LABEL: func.func @dense_operand
// CHECK: %[[D:.*]] = sattn.static_blocks
// CHECK-NOT: sattn.union
// CHECK-NOT: sattn.intersect
// CHECK: return %[[D]], %arg2
func.func @dense_operand(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %x: !sattn.blocks<bq = 64, bk = 64, heads = 4>)
    -> (!sattn.blocks<bq = 64, bk = 64, heads = 4>, !sattn.blocks<bq = 64, bk = 64, heads = 4>) {
  %d = sattn.static_blocks %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %u = sattn.union %x, %d : !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %i = sattn.intersect %d, %x : !sattn.blocks<bq = 64, bk = 64, heads = 4>
  return %u, %i : !sattn.blocks<bq = 64, bk = 64, heads = 4>, !sattn.blocks<bq = 64, bk = 64, heads = 4>
}

// -----

// topk with k = ceil(1000/128) = 8 over a static 1000-key sequence keeps
// every visible block: the attention needs no block set at all. With k = 7
// the selection stays.
// CHECK-LABEL: func.func @topk_everything
// CHECK-NOT: sattn.select_blocks
// CHECK: sattn.attention %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}} {causal}
// CHECK-LABEL: func.func @topk_not_everything
// CHECK: sattn.select_blocks topk
func.func @topk_everything(%q: tensor<1x4x1000x64xbf16>, %k: tensor<1x2x1000x64xbf16>, %v: tensor<1x2x1000x64xbf16>) -> tensor<1x4x1000x64xbf16> {
  %qp = sattn.pool mean %q group 64 : tensor<1x4x1000x64xbf16> -> tensor<1x4x16x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<1x2x1000x64xbf16> -> tensor<1x2x16x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<1x4x16x64xf32>, tensor<1x2x16x64xf32>, tensor<1x4x1000x64xbf16>, tensor<1x2x1000x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %bs = sattn.select_blocks topk %s {k = 8 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<1x4x1000x64xbf16>, tensor<1x2x1000x64xbf16>, tensor<1x2x1000x64xbf16> -> tensor<1x4x1000x64xbf16>
  return %o : tensor<1x4x1000x64xbf16>
}
func.func @topk_not_everything(%q: tensor<1x4x1000x64xbf16>, %k: tensor<1x2x1000x64xbf16>, %v: tensor<1x2x1000x64xbf16>) -> tensor<1x4x1000x64xbf16> {
  %qp = sattn.pool mean %q group 64 : tensor<1x4x1000x64xbf16> -> tensor<1x4x16x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<1x2x1000x64xbf16> -> tensor<1x2x16x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<1x4x16x64xf32>, tensor<1x2x16x64xf32>, tensor<1x4x1000x64xbf16>, tensor<1x2x1000x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %bs = sattn.select_blocks topk %s {k = 7 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<1x4x1000x64xbf16>, tensor<1x2x1000x64xbf16>, tensor<1x2x1000x64xbf16> -> tensor<1x4x1000x64xbf16>
  return %o : tensor<1x4x1000x64xbf16>
}

// -----

// Pooling in groups of one with an unchanged type is the identity.
// CHECK-LABEL: func.func @pool_identity
// CHECK-NOT: sattn.pool
// CHECK: return %arg0
func.func @pool_identity(%k: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %p = sattn.pool mean %k group 1 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xbf16>
  return %p : tensor<?x2x?x64xbf16>
}
