// RUN: sattn-opt %s -split-input-file -verify-diagnostics
// One case per verifier message of the sattn dialect (each opened by a
// `// Test:` line saying what it checks).

// Test: scores types need positive block sizes
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{!sattn.scores bq must be positive, got 0}}
  %x = sattn.static_blocks %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 0, bk = 128, heads = 4>
  return
}

// -----

// Test: block set types need positive heads
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{!sattn.blocks heads must be positive, got 0}}
  %x = sattn.static_blocks %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 64, bk = 64, heads = 0>
  return
}

// -----

// Test: budget types need positive bq
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{!sattn.budget bq must be positive, got -1}}
  %b = sattn.head_budget none %s {tau = 0.5 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = -1, heads = 4>
  return
}

// -----

// Test: query set types need positive heads
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{!sattn.queries heads must be positive, got 0}}
  %x = sattn.classify_queries %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.queries<heads = 0>
  return
}

// -----

// Test: token set types need positive heads
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{!sattn.tokens heads must be positive, got 0}}
  %x = sattn.kv_slim %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.tokens<heads = 0>
  return
}

// -----

// Test: forced block counts are non-negative
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{#sattn.forced sink and local must be non-negative, got sink = -1, local = 0}}
  %x = sattn.select_blocks topk %s {k = 2 : i64, forced = #sattn.forced<sink = -1>} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: block pattern check: #sattn.block_pattern block sizes must be positive
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{#sattn.block_pattern block sizes must be positive}}
  %o = sattn.attention %q, %k, %v {causal, block_pattern = #sattn.block_pattern<bq = 0, bk = 64>} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: block pattern check: #sattn.block_pattern window and sinks must be non-negative
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{#sattn.block_pattern window and sinks must be non-negative}}
  %o = sattn.attention %q, %k, %v {causal, block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true, window = -2>} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: block pattern check: #sattn.block_pattern window needs causal
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{#sattn.block_pattern window needs causal}}
  %o = sattn.attention %q, %k, %v {causal, block_pattern = #sattn.block_pattern<bq = 64, bk = 64, window = 128>} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: block pattern check: #sattn.block_pattern sinks need a window
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{#sattn.block_pattern sinks need a window}}
  %o = sattn.attention %q, %k, %v {causal, block_pattern = #sattn.block_pattern<bq = 64, bk = 64, causal = true, sinks = 4>} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: head counts must be static
func.func @f(%q: tensor<?x?x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{q must have a static head count (dimension 1)}}
  %o = sattn.attention %q, %k, %v : tensor<?x?x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x?x?x64xbf16>
  return
}

// -----

// Test: head dim must be static
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x?xbf16>, %v: tensor<?x2x?x?xbf16>) {
  // expected-error @+1 {{k must have a static head dim (dimension 3)}}
  %o = sattn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x2x?x?xbf16>, tensor<?x2x?x?xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: batch of q and k must agree
func.func @f(%q: tensor<2x4x8x64xbf16>, %k: tensor<3x2x8x64xbf16>, %v: tensor<3x2x8x64xbf16>) {
  // expected-error @+1 {{batch of q (2) and k (3) differ}}
  %o = sattn.attention %q, %k, %v : tensor<2x4x8x64xbf16>, tensor<3x2x8x64xbf16>, tensor<3x2x8x64xbf16> -> tensor<2x4x8x64xbf16>
  return
}

// -----

// Test: head dims must agree
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x128xbf16>, %v: tensor<?x2x?x128xbf16>) {
  // expected-error @+1 {{head dim of q (64) and k (128) differ}}
  %o = sattn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x2x?x128xbf16>, tensor<?x2x?x128xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: GQA ratio must be whole
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x3x?x64xbf16>, %v: tensor<?x3x?x64xbf16>) {
  // expected-error @+1 {{query heads (4) must be a multiple of KV heads (3)}}
  %o = sattn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x3x?x64xbf16>, tensor<?x3x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: k and v have one shape
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x9x64xbf16>) {
  // expected-error @+1 {{k and v must have the same shape}}
  %o = sattn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x9x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: k and v have one element type
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xf16>) {
  // expected-error @+1 {{k and v must have the same element type}}
  %o = sattn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: q and k have one element type
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xf16>) {
  // expected-error @+1 {{q and k must have the same element type}}
  %o = sattn.attention %q, %k, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: Q/K/V must be bf16 or f16
func.func @f(%q: tensor<?x4x?x64xf32>, %k: tensor<?x2x?x64xf32>) {
  // expected-error @+1 {{operand #0 must be 4D tensor of bfloat16 type or 16-bit float values}}
  %o = sattn.attention %q, %k, %k : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32> -> tensor<?x4x?x64xf32>
  return
}

// -----

// Test: pooling keeps batch, heads, head dim
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result must keep the batch, heads and head dim of the input}}
  %x = sattn.pool mean %q group 4 : tensor<?x4x?x64xbf16> -> tensor<?x2x?x64xf32>
  return
}

// -----

// Test: pooled length is cdiv(S, group)
func.func @f(%q: tensor<1x4x100x64xbf16>) {
  // expected-error @+1 {{result has 3 rows but pooling 100 tokens in groups of 64 gives 2}}
  %x = sattn.pool mean %q group 64 : tensor<1x4x100x64xbf16> -> tensor<1x4x3x64xf32>
  return
}

// -----

// Test: pool group must be positive
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{attribute 'group' failed to satisfy constraint}}
  %x = sattn.pool mean %q group 0 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: scale must be positive
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{scale must be positive}}
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, scale = -1.0 : f64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: q_group divides bq
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{q_group = 64 must divide the query block bq = 32}}
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 32, bk = 128, heads = 4>
  return
}

// -----

// Test: k_group divides bk
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{k_group = 64 must divide the KV block bk = 96}}
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 96, heads = 4>
  return
}

// -----

// Test: scores have one row per query head
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{result has 2 heads; scores have one row per query head (4)}}
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 2>
  return
}

// -----

// Test: q_group agrees with the pool op
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{q_group = 32 but q_pooled pools groups of 64}}
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 32 : i64, k_group = 64 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: k_group agrees with the pool op
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{k_group = 32 but k_pooled pools groups of 64}}
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 32 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: pooled q must come from q
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{q_pooled must have the batch, heads and head dim of q}}
  %s = sattn.scores %kp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64} : tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: pooled length agrees with q_group
func.func @f(%qp: tensor<1x4x5x64xf32>, %kp: tensor<1x2x4x64xf32>, %q: tensor<1x4x256x64xbf16>, %k: tensor<1x2x256x64xbf16>) {
  // expected-error @+1 {{q_pooled has 5 rows but pooling 256 tokens in groups of 64 gives 4}}
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64} : tensor<1x4x5x64xf32>, tensor<1x2x4x64xf32>, tensor<1x4x256x64xbf16>, tensor<1x2x256x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: tau in [0, 1]
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{tau = 1.500000e+00 must lie in [0, 1]}}
  %b = sattn.head_budget none %s {tau = 1.5 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 128, heads = 4>
  return
}

// -----

// Test: budget rows match scores rows
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{budget bq = 64 differs from scores bq = 128}}
  %b = sattn.head_budget none %s {tau = 0.5 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 64, heads = 4>
  return
}

// -----

// Test: flattest shares one budget
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{share = flattest gives a budget with heads = 1, not 4}}
  %b = sattn.head_budget flattest %s {tau = 0.5 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 128, heads = 4>
  return
}

// -----

// Test: selection keeps the block sizes
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{result blocks 64x64 differ from the scores' 128x128}}
  %x = sattn.select_blocks topk %s {k = 2 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 64, bk = 64, heads = 4>
  return
}

// -----

// Test: group selection divides heads
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{result heads (3) must divide the scores' heads (4)}}
  %x = sattn.select_blocks topk %s {k = 2 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 3>
  return
}

// -----

// Test: static budget is non-negative
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{budget k = -1 must be non-negative}}
  %x = sattn.select_blocks topk %s {k = -1 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: budget given once
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %b = sattn.head_budget flattest %s {tau = 0.9 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 128, heads = 1>
  // expected-error @+1 {{give the budget either as attribute k or as an operand, not both}}
  %x = sattn.select_blocks topk %s budget %b : !sattn.budget<bq = 128, heads = 1> {k = 2 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: topk needs a budget
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{topk needs a budget: attribute k or a !sattn.budget operand}}
  %x = sattn.select_blocks topk %s : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: topk takes no tau
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{tau is meaningless for topk; use rule cumulative}}
  %x = sattn.select_blocks topk %s {k = 2 : i64, tau = 0.5 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: cumulative needs tau
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{cumulative needs attribute tau}}
  %x = sattn.select_blocks cumulative %s : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: budget rows match the scores
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %b = sattn.head_budget flattest %s {tau = 0.9 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 128, heads = 1>
  %s2 = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 64, bk = 128, heads = 4>
  // expected-error @+1 {{budget bq = 128 differs from scores bq = 64}}
  %x = sattn.select_blocks topk %s2 budget %b : !sattn.budget<bq = 128, heads = 1> : !sattn.scores<bq = 64, bk = 128, heads = 4> -> !sattn.blocks<bq = 64, bk = 128, heads = 4>
  return
}

// -----

// Test: budget heads are 1 or all
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %c: !sattn.budget<bq = 128, heads = 2>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  %b = sattn.head_budget none %s {tau = 0.9 : f64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.budget<bq = 128, heads = 4>
  %s2 = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 64, heads = 4>
  // expected-error @+1 {{budget heads must be 1 (shared) or 4, got 2}}
  %x = sattn.select_blocks topk %s2 budget %c : !sattn.budget<bq = 128, heads = 2> : !sattn.scores<bq = 128, bk = 64, heads = 4> -> !sattn.blocks<bq = 128, bk = 64, heads = 4>
  return
}

// -----

// Test: a window needs causal
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{window = 64 needs causal (a window ends at the query's position)}}
  %x = sattn.static_blocks %q, %k {window = 64 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: sinks need a window
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{sinks = 4 need a window (without one every key is visible)}}
  %x = sattn.static_blocks %q, %k {causal, sinks = 4 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: block sets are per head or per group
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result has 3 heads; expected the query heads (4) or the KV heads (2)}}
  %x = sattn.static_blocks %q, %k {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 128, bk = 128, heads = 3>
  return
}

// -----

// Test: theta in [0, 1]
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{theta = 2.000000e+00 must lie in [0, 1]}}
  %x = sattn.classify_queries %q, %k {theta = 2.0 : f64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.queries<heads = 4>
  return
}

// -----

// Test: query sets are per query head
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result has 2 heads; a query set has one entry per query head (4)}}
  %x = sattn.classify_queries %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.queries<heads = 2>
  return
}

// -----

// Test: attention returns q's type
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result type 'tensor<?x4x?x64xf16>' must equal the type of q 'tensor<?x4x?x64xbf16>'}}
  %o = sattn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xf16>
  return
}

// -----

// Test: lse has q's rows
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{lse must have shape [B, 4, Sq] of q}}
  %o, %l = sattn.attention %q, %k, %v : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?xf32>
  return
}

// -----

// Test: block set or pattern, not both
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %bs = sattn.static_blocks %q, %k {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{takes a block set or a block_pattern, not both}}
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 128, bk = 128, heads = 4> {causal, block_pattern = #sattn.block_pattern<bq = 64, bk = 64>} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: attention block set heads
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %bs: !sattn.blocks<bq = 64, bk = 64, heads = 1>) {
  // expected-error @+1 {{block set has 1 heads; expected the query heads (4) or the KV heads (2)}}
  %o = sattn.attention %q, %k, %v blocks %bs : !sattn.blocks<bq = 64, bk = 64, heads = 1> {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: attention query set heads
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %qs: !sattn.queries<heads = 2>) {
  // expected-error @+1 {{query set must have one entry per query head (4)}}
  %o = sattn.attention %q, %k, %v queries %qs : !sattn.queries<heads = 2> {causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: attention window needs causal
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{window = 16 needs causal}}
  %o = sattn.attention %q, %k, %v {window = 16 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: kv_slim keeps tokens per KV head
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result has 4 heads; KV slimming keeps tokens per KV head (2)}}
  %x = sattn.kv_slim %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.tokens<heads = 4>
  return
}

// -----

// Test: segments are ranges
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %seg: tensor<?x?x3xi32>) {
  // expected-error @+1 {{segments must be [B, n, 2] ranges of [start, end)}}
  %x = sattn.kv_slim %q, %k segments %seg : tensor<?x?x3xi32> : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.tokens<heads = 2>
  return
}

// -----

// Test: segments have one row per batch entry
func.func @f(%q: tensor<2x4x9x64xbf16>, %k: tensor<2x2x9x64xbf16>, %seg: tensor<3x?x2xi32>) {
  // expected-error @+1 {{segments must have one row per batch entry}}
  %x = sattn.kv_slim %q, %k segments %seg : tensor<3x?x2xi32> : tensor<2x4x9x64xbf16>, tensor<2x2x9x64xbf16> -> !sattn.tokens<heads = 2>
  return
}

// -----

// Test: kv_slim tau in [0, 1]
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{tau = -5.000000e-01 must lie in [0, 1]}}
  %x = sattn.kv_slim %q, %k {tau = -0.5 : f64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.tokens<heads = 2>
  return
}

// -----

// Test: a paged cache needs both operands
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x16x64xbf16>, %t: tensor<?x?xi32>) {
  // expected-error @+1 {{a paged cache needs both a page table and sequence lengths}}
  %o = "sattn.decode_attention"(%q, %k, %k, %t) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 0>}> : (tensor<?x4x?x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x?xi32>) -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: pages share head dim
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x3x16x64xbf16>, %t: tensor<?x?xi32>, %l: tensor<?xi32>) {
  // expected-error @+1 {{pages must have the head dim of q and a head count dividing the query heads}}
  %o = sattn.decode_attention %q, %k, %k pages %t, %l : tensor<?x?xi32>, tensor<?xi32> : tensor<?x4x?x64xbf16>, tensor<?x3x16x64xbf16>, tensor<?x3x16x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: paged k and v share a shape
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x16x64xbf16>, %v: tensor<?x2x8x64xbf16>, %t: tensor<?x?xi32>, %l: tensor<?xi32>) {
  // expected-error @+1 {{k and v must have the same shape}}
  %o = sattn.decode_attention %q, %k, %v pages %t, %l : tensor<?x?xi32>, tensor<?xi32> : tensor<?x4x?x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x2x8x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: page table rows are batch entries
func.func @f(%q: tensor<2x4x1x64xbf16>, %k: tensor<?x2x16x64xbf16>, %t: tensor<3x?xi32>, %l: tensor<?xi32>) {
  // expected-error @+1 {{page table must have one row per batch entry}}
  %o = sattn.decode_attention %q, %k, %k pages %t, %l : tensor<3x?xi32>, tensor<?xi32> : tensor<2x4x1x64xbf16>, tensor<?x2x16x64xbf16>, tensor<?x2x16x64xbf16> -> tensor<2x4x1x64xbf16>
  return
}

// -----

// Test: decode returns q's type
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result type must equal the type of q}}
  %o = sattn.decode_attention %q, %k, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x1x64xbf16>
  return
}

// -----

// Test: decode token set per KV head
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %t: !sattn.tokens<heads = 4>) {
  // expected-error @+1 {{token set must have one entry per KV head (2)}}
  %o = sattn.decode_attention %q, %k, %k tokens %t : !sattn.tokens<heads = 4> : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: decode lse shape
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{lse must have shape [B, 4, Sq] of q}}
  %o, %l = sattn.decode_attention %q, %k, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x2x?xf32>
  return
}

// -----

// Test: launches are named
func.func @f(%q: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{needs a kernel name and a device template}}
  %o = sattn.launch "" = "pool" {} (%q) : (tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: misspelt attributes are rejected, not kept as discardable ones.
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{has no attribute 'windw' (it takes: }}
  %o = sattn.attention %q, %k, %k {causal, windw = 3 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}

// -----

// Test: unions check attributes too.
func.func @f(%a: !sattn.blocks<bq = 64, bk = 64, heads = 4>) {
  // expected-error @+1 {{'sattn.union' op has no attribute 'k' (it takes: none)}}
  %u = sattn.union %a, %a {k = 1 : i64} : !sattn.blocks<bq = 64, bk = 64, heads = 4>
  return
}

// -----

// Test: the antidiagonal stride must divide both block sizes
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{'sattn.antidiag_scores' op stride = 12 must divide both block sizes (bq = 128, bk = 128)}}
  %s = sattn.antidiag_scores %q, %k {stride = 12 : i64, causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: antidiagonal scores have one row per query head
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{'sattn.antidiag_scores' op result has 2 heads; scores have one row per query head (4)}}
  %s = sattn.antidiag_scores %q, %k {stride = 8 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 2>
  return
}

// -----

// Test: mean_scores takes two to four grids
func.func @f(%a: !sattn.scores<bq = 64, bk = 64, heads = 4>) {
  // expected-error @+1 {{'sattn.mean_scores' op takes 2 to 4 score grids, got 1}}
  %m = sattn.mean_scores %a : !sattn.scores<bq = 64, bk = 64, heads = 4>
  return
}

// -----

// Test: mean_scores weights match the inputs and are positive
func.func @f(%a: !sattn.scores<bq = 64, bk = 64, heads = 4>) {
  // expected-error @+1 {{'sattn.mean_scores' op has 3 weights for 2 inputs}}
  %m = sattn.mean_scores %a, %a {weights = array<f64: 1.0, 2.0, 3.0>} : !sattn.scores<bq = 64, bk = 64, heads = 4>
  return
}

// -----

func.func @f(%a: !sattn.scores<bq = 64, bk = 64, heads = 4>) {
  // expected-error @+1 {{'sattn.mean_scores' op weights must be positive and finite, got 0}}
  %m = sattn.mean_scores %a, %a {weights = array<f64: 1.0, 0.0>} : !sattn.scores<bq = 64, bk = 64, heads = 4>
  return
}

// -----

// Test: mean_scores grids share one type
func.func @f(%a: !sattn.scores<bq = 64, bk = 64, heads = 4>, %b: !sattn.scores<bq = 128, bk = 128, heads = 4>) {
  // expected-error @+1 {{'sattn.mean_scores' op requires the same type for all operands and results}}
  %m = "sattn.mean_scores"(%a, %b) : (!sattn.scores<bq = 64, bk = 64, heads = 4>, !sattn.scores<bq = 128, bk = 128, heads = 4>) -> !sattn.scores<bq = 64, bk = 64, heads = 4>
  return
}

// -----

// Test: causal and non-causal estimates cannot be averaged
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  %c = sattn.antidiag_scores %q, %k {stride = 8 : i64, causal} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 64, bk = 64, heads = 4>
  %n = sattn.antidiag_scores %q, %k {stride = 8 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 64, bk = 64, heads = 4>
  // expected-error @+1 {{'sattn.mean_scores' op mixes causal and non-causal scores}}
  %m = sattn.mean_scores %c, %n : !sattn.scores<bq = 64, bk = 64, heads = 4>
  return
}

// -----

// Test: slack extends a cumulative prefix only
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{slack is meaningless for topk (it extends a cumulative prefix)}}
  %x = sattn.select_blocks topk %s {k = 2 : i64, slack = 1 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: slack is not negative
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 64 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %kp = sattn.pool mean %k group 64 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %s = sattn.scores %qp, %kp of %q, %k {q_group = 64 : i64, k_group = 64 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 128, bk = 128, heads = 4>
  // expected-error @+1 {{attribute 'slack' failed to satisfy constraint}}
  %x = sattn.select_blocks cumulative %s {tau = 0.5 : f64, slack = -1 : i64} : !sattn.scores<bq = 128, bk = 128, heads = 4> -> !sattn.blocks<bq = 128, bk = 128, heads = 4>
  return
}

// -----

// Test: a Quest bound needs the group minimum and maximum
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 1 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %lo = sattn.pool mean %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %hi = sattn.pool max %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{bound: k_pooled must be the key groups' minimum (sattn.pool min), got sattn.pool mean}}
  %s = sattn.scores %qp, %lo bound %hi of %q, %k {k_group = 16 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32> bound tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 16, bk = 16, heads = 4>
  return
}

// -----

// Test: the bound's maximum pools the same groups
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>) {
  %qp = sattn.pool mean %q group 1 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  %lo = sattn.pool min %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  %hi = sattn.pool max %k group 8 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{k_group = 16 but k_max pools groups of 8}}
  %s = sattn.scores %qp, %lo bound %hi of %q, %k {k_group = 16 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32> bound tensor<?x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 16, bk = 16, heads = 4>
  return
}

// -----

// Test: the bound's minimum and maximum have one type
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %lo: tensor<?x2x?x64xf32>, %hi: tensor<1x2x?x64xf32>) {
  %qp = sattn.pool mean %q group 1 : tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xf32>
  // expected-error @+1 {{bound: k_max has type 'tensor<1x2x?x64xf32>' but k_pooled (the group minimum) has 'tensor<?x2x?x64xf32>'}}
  %s = sattn.scores %qp, %lo bound %hi of %q, %k {k_group = 16 : i64, causal} : tensor<?x4x?x64xf32>, tensor<?x2x?x64xf32> bound tensor<1x2x?x64xf32>, tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.scores<bq = 16, bk = 16, heads = 4>
  return
}

// -----

// Test: a per-head prefix takes no budget
func.func @f(%s: !sattn.scores<bq = 16, bk = 16, heads = 4>) {
  // expected-error @+1 {{scope = head takes no budget, k, cap or slack}}
  %b = sattn.select_blocks cumulative %s per head {tau = 0.9 : f64, k = 3 : i64} : !sattn.scores<bq = 16, bk = 16, heads = 4> -> !sattn.blocks<bq = 16, bk = 16, heads = 4>
  return
}

// -----

// Test: a per-head prefix is per query head
func.func @f(%s: !sattn.scores<bq = 16, bk = 16, heads = 4>) {
  // expected-error @+1 {{scope = head selects per query head: result heads (2) must equal the scores' heads (4)}}
  %b = sattn.select_blocks cumulative %s per head {tau = 0.9 : f64} : !sattn.scores<bq = 16, bk = 16, heads = 4> -> !sattn.blocks<bq = 16, bk = 16, heads = 2>
  return
}

// -----

// Test: vertical-slash sets are per query head
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result has 2 heads; vertical-slash sets are per query head (4)}}
  %b = sattn.vertical_slash %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 16, bk = 16, heads = 2>
  return
}

// -----

// Test: vertical-slash gamma is a fraction
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{gamma}}
  %b = sattn.vertical_slash %q, %k {gamma = 1.5 : f64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.blocks<bq = 16, bk = 16, heads = 4>
  return
}

// -----

// Test: the query-aware test needs the block-mean keys
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %qa: !sattn.blocks<bq = 16, bk = 16, heads = 4>) {
  %kp = sattn.pool max %k group 16 : tensor<?x2x?x64xbf16> -> tensor<?x2x?x64xf32>
  // expected-error @+1 {{k_pooled must be the keys mean-pooled in groups of bk = 16}}
  %b = sattn.vertical_slash %q, %k aware %qa, %kp : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> aware !sattn.blocks<bq = 16, bk = 16, heads = 4>, tensor<?x2x?x64xf32> -> !sattn.blocks<bq = 16, bk = 16, heads = 4>
  return
}

// -----

// Test: the aware set has the result's blocks
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %qa: !sattn.blocks<bq = 32, bk = 16, heads = 4>, %kp: tensor<?x2x?x64xf32>) {
  // expected-error @+1 {{aware set}}
  %b = sattn.vertical_slash %q, %k aware %qa, %kp : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> aware !sattn.blocks<bq = 32, bk = 16, heads = 4>, tensor<?x2x?x64xf32> -> !sattn.blocks<bq = 16, bk = 16, heads = 4>
  return
}

// -----

// Test: a token-level vertical-slash set is per query head
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{result has 2 heads; vertical-slash sets are per query head (4)}}
  %s = sattn.vslash %q, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.vslash<bq = 64, heads = 2>
  return
}

// -----

// Test: the diagonal slash is always kept
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) {
  // expected-error @+1 {{local_slashes}}
  %s = sattn.vslash %q, %k {local_slashes = 0 : i64} : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16> -> !sattn.vslash<bq = 64, heads = 4>
  return
}

// -----

// Test: a vertical-slash type has a positive query block
func.func @f(%s: !sattn.vslash<bq = 0, heads = 4>) {
  // expected-error @-1 {{!sattn.vslash bq must be positive}}
  return
}

// -----

// Test: an attention over a vertical-slash set is causal and has no other set
func.func @f(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %v: tensor<?x2x?x64xbf16>, %s: !sattn.vslash<bq = 64, heads = 4>) {
  // expected-error @+1 {{a vertical-slash set needs `causal`}}
  %o = sattn.attention %q, %k, %v vslash %s : !sattn.vslash<bq = 64, heads = 4> : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return
}
