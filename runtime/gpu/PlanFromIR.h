//===- PlanFromIR.h - extract a Plan from kernel-level IR ----------------===//
#pragma once

#include "runtime/gpu/Plan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace sattn::gpu {

/// Throws GpuError when `func` is not kernel-level IR of a variant.
Plan planFromIR(mlir::func::FuncOp func);

} // namespace sattn::gpu
