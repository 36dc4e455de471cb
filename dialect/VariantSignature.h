//===- VariantSignature.h - names of a variant's function arguments -------===//
//
// A variant is one func.func; tools bind `.npy` inputs to its arguments by
// name (`--inputs q=Q.npy,...`). An argument is named by its `sattn.name`
// attribute, else by position: q, k, v, then arg3, arg4, ...
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <string>

namespace sattn {

std::string argName(mlir::func::FuncOp func, unsigned index);

} // namespace sattn
