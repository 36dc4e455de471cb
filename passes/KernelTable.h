//===- KernelTable.h - which device template runs each semantic op --------===//
//
// The single place that maps a semantic op to the device template(s) of
// codegen/device/ that implement it, and to their compile-time constants.
// The outliner asks it; codegen later instantiates exactly these names.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "dialect/SattnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace sattn {

struct KernelSpec {
  std::string deviceTemplate;
  mlir::DictionaryAttr consts;
  /// Which of the op's operands the launch takes (empty: all of them, then
  /// the results of the op's earlier launches).
  llvm::SmallVector<unsigned, 2> operands = {};
};

/// The templates and constants of `op` under the variant facts `spec`
/// (heads, kv_heads, head_dim, dtype). kv_slim yields three kernels (LSE of
/// the observation rows, scores, selection), classify_queries two (pool
/// the keys, classify); every other op one. Fails with a diagnostic on `op` for
/// ops that are not semantic sattn ops.
mlir::FailureOr<llvm::SmallVector<KernelSpec, 2>> kernelsFor(mlir::Operation *op,
                                                             mlir::DictionaryAttr spec);

/// Whether `s` can be fused into its consumers (design §4.6, "fused
/// estimation"): dot-product logits on the two-pass tensor-core scores
/// kernel, not returned, and every use a per-query-head select_blocks (topk
/// or cumulative, rows not head-wide) reading it as its scores, or a
/// head_budget. Then each consumer becomes one fusedSelectKernel launch and
/// the scores grid is never built.
bool fusableScores(ScoresOp s, mlir::DictionaryAttr spec);

/// The fused launch of `consumer` (select_blocks or head_budget) over the
/// scores `s`: scores_select_topk / scores_select_cumulative /
/// scores_head_budget with both ops' constants. Its operands are those of
/// `s`, then the consumer's other operands.
mlir::FailureOr<KernelSpec> fusedSelectKernel(mlir::Operation *consumer, ScoresOp s,
                                              mlir::DictionaryAttr spec);

/// The kernel that turns a user block list bound to a block-set argument of
/// type `t` into the normalised counts + indices form (semantics §14).
KernelSpec blockListKernel(BlocksType t, mlir::DictionaryAttr spec);

} // namespace sattn
