//===- VariantSignature.h - names and geometry of a variant's arguments ---===//
//
// A variant is one func.func; tools bind `.npy` inputs to its arguments by
// name (`--inputs q=Q.npy,...`). An argument is named by its `sattn.name`
// attribute, else by position: q, k, v, then arg3, arg4, ...
//
// A block-set argument (`!sattn.blocks`, a user list) has no lengths of its
// own: the q and k of the attention that consumes it fix Sq and Skv, hence
// nQB and nKB (docs/semantics.md §14). blockSetLengths finds them.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <string>
#include <utility>

namespace sattn {

std::string argName(mlir::func::FuncOp func, unsigned index);

/// The (q, k) tensors a computed scores or block-set value is defined over,
/// from its producer (scores, static_blocks, select_blocks, union, ...).
/// Null values for a function argument or an unknown producer.
std::pair<mlir::Value, mlir::Value> definingLengths(mlir::Value v);

/// The (q, k) whose lengths fix the geometry of the block set used at
/// `use`: an attention's own q and k; for union / intersect the other
/// operand's producer, else the users of their result. Null when nothing
/// fixes them (the value is never attended).
std::pair<mlir::Value, mlir::Value> blockSetLengths(mlir::OpOperand &use);

/// definingLengths(v), else the first use of v that fixes them.
std::pair<mlir::Value, mlir::Value> blockSetLengths(mlir::Value v);

} // namespace sattn
