//===- ShapeFacts.h - static facts of [B, H, S, D] tensors ----------------===//
//
// Small helpers shared by verifiers, passes and the interpreter to read the
// static dimensions of the rank-4 Q/K/V tensors. kDynamic marks a dimension
// that is only known at run time (batch and sequence lengths usually are).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"

#include <cstdint>

namespace sattn {

/// The four dimensions of a Q/K/V-like tensor; mlir::ShapedType::kDynamic
/// where unknown.
struct Bhsd {
  int64_t batch, heads, seq, dim;
  static Bhsd of(mlir::Type t);
};

/// True when both are static and differ.
bool staticMismatch(int64_t a, int64_t b);

/// Checks that Q and K/V agree: batch and head dim equal, heads static and
/// Hq % Hkv == 0, K and V of equal shape. Emits on `op` and fails otherwise.
mlir::LogicalResult verifyQkv(mlir::Operation *op, mlir::Type q, mlir::Type k, mlir::Type v = {});

/// Checks that a head-dim-style dimension is static; emits and fails if not.
mlir::LogicalResult verifyStaticHeads(mlir::Operation *op, llvm::StringRef what, mlir::Type t);

/// Checks 0 <= value <= 1 for a probability-like attribute.
mlir::LogicalResult verifyUnitInterval(mlir::Operation *op, llvm::StringRef name, double value);

/// Rejects attributes the op does not declare (a misspelt `windw` would
/// otherwise be kept silently as a discardable attribute). Dialect-prefixed
/// names (`foo.bar`) stay allowed for annotations.
mlir::LogicalResult verifyKnownAttributes(mlir::Operation *op);

} // namespace sattn
