//===- InputBinding.h - bind .npy files and --param values to a variant ---===//
#pragma once

#include "runtime/reference/Values.h"
#include "tools/RunOptions.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <memory>
#include <vector>

namespace sattn::tools {

/// Reads every input named in `opts` and checks it against the variant's
/// argument types: rank, static dimensions, element kind, batch and
/// sequence agreement between arguments, finite values. Q/K/V-like inputs
/// are rounded to `dtype` (bf16 or fp16). Throws ToolError on any mismatch.
std::vector<std::shared_ptr<ref::Tensor>>
bindInputs(mlir::func::FuncOp func, const RunOptions &opts, const std::string &dtype);

/// Sets attribute NAME on every sattn op that declares it (`--param`).
/// Throws ToolError when no op declares NAME or VALUE does not parse.
void applyParams(mlir::func::FuncOp func, const RunOptions &opts);

} // namespace sattn::tools
