// RUN: sattn-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(sattn-fuse-static-masks),canonicalize)' | FileCheck %s
// A static block set becomes the attention's block_pattern; no index list
// is left.

// CHECK-LABEL: func.func @window_pattern
// CHECK-NOT: sattn.static_blocks
// CHECK: sattn.attention %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}} {block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true, window = 256, sinks = 64>, causal}
func.func @window_pattern(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %bs = sattn.static_blocks %q, %k {causal, window = 256 : i64, sinks = 64 : i64}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// A pattern that covers the attention's own mask is dropped entirely by the
// canonicaliser that follows.
// CHECK-LABEL: func.func @covered_pattern
// CHECK-NOT: block_pattern
// CHECK: sattn.attention %{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}} {causal, window = 32 : i64}
func.func @covered_pattern(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = sattn.attention %q, %k, %v {causal, window = 32 : i64, block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true>}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// A selected (dynamic) block set is not static: left alone.
// CHECK-LABEL: func.func @dynamic_untouched
// CHECK: sattn.attention {{.*}} blocks %arg3
// CHECK-NOT: block_pattern
func.func @dynamic_untouched(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %bs: !sattn.blocks<bq = 64, bk = 64, heads = 4>) -> tensor<?x4x?x64xbf16> {
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
