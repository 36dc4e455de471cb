// RUN: sattn-opt %s -split-input-file --sattn-specialize -verify-diagnostics
// RUN: not sattn-opt %s -split-input-file --sattn-specialize="dtype=fp8" 2>&1 | FileCheck %s

// Test: two attentions of one variant must agree on their facts.
func.func @mixed(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>, %q2: tensor<?x8x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x8x?x64xbf16>) {
  %o = sattn.attention %q, %k, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  // expected-error @+1 {{all attention ops of a variant must share heads, head dim and element type}}
  %o2 = sattn.attention %q2, %k, %k : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x8x?x64xbf16>
  return %o, %o2 : tensor<?x4x?x64xbf16>, tensor<?x8x?x64xbf16>
}

// -----

// Test: only bf16 and fp16 can be bound (second RUN line).
// CHECK: error: dtype must be bf16 or fp16, got 'fp8'
func.func @one(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = sattn.attention %q, %k, %k : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16> -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
