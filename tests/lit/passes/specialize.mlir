// RUN: sattn-opt %s -split-input-file --sattn-specialize | FileCheck %s
// RUN: sattn-opt %s -split-input-file --sattn-specialize="dtype=fp16 max-kv-blocks=16" | FileCheck %s --check-prefix=FP16

// The facts become sattn.spec; the key is a SHA-256 of the function, so a
// different dtype gives a different key.
// CHECK-LABEL: func.func @topk
// CHECK-SAME: sattn.spec = {arch = "sm_90a", dtype = "bf16", head_dim = 64 : i64, heads = 4 : i64, key = "[[KEY:[0-9a-f]{64}]]", kv_heads = 2 : i64}
// CHECK: sattn.select_blocks topk {{.*}} {cap = 2 : i64, forced = #sattn.forced<sink = 1, diagonal = true>, k = 2 : i64}
// CHECK: sattn.select_blocks cumulative
// CHECK-NOT: cap
// CHECK: return
// FP16-LABEL: func.func @topk
// FP16-SAME: (%{{.*}}: tensor<?x4x?x64xf16>, %{{.*}}: tensor<?x2x?x64xf16>, %{{.*}}: tensor<?x2x?x64xf16>) -> tensor<?x4x?x64xf16>
// FP16-SAME: dtype = "fp16"
// FP16: sattn.pool mean {{.*}} : tensor<?x4x?x64xf16> -> tensor<?x4x?x64xf32>
// FP16: sattn.select_blocks cumulative {{.*}} {cap = 16 : i64
// FP16: sattn.attention {{.*}} -> tensor<?x4x?x64xf16>
func.func @topk(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal}
      : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %a = sattn.select_blocks topk %s {k = 2 : i64, forced = #sattn.forced<sink = 1, diagonal = true>}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %b = sattn.select_blocks cumulative %s {tau = 0.9 : f64}
      : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %u = sattn.union %a, %b : !sattn.blocks<bq = 128, bk = 128, heads = 4>
  %o = sattn.attention %q, %k, %v blocks %u : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal}
      : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
