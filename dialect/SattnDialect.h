//===- SattnDialect.h - the sattn dialect, types, attributes, ops ---------===//
//
// The one header that users of the dialect include: it pulls in the
// generated declarations of the dialect, its enums, types, attributes and
// ops, in dependency order.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialect/SattnDialect.h.inc"
#include "dialect/SattnEnums.h.inc"

#define GET_TYPEDEF_CLASSES
#include "dialect/SattnTypes.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/SattnAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialect/SattnOps.h.inc"

namespace sattn {
/// Whether a block-score value is causal: read from the op that made it
/// (scores, antidiag_scores, or mean_scores of causal operands); nullopt
/// for a value whose producer does not say (a function argument).
std::optional<bool> scoresCausal(mlir::Value scores);
} // namespace sattn
