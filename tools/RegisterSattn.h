//===- RegisterSattn.h - dialects and passes every sattn tool loads -------===//
//
// One place that lists what a sattn tool registers (Triton's
// RegisterTritonDialects.h pattern), so sattn-opt, sattn-run and the
// library agree on what IR they accept.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "dialect/SattnDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace sattn {

inline void registerSattnDialects(mlir::DialectRegistry &registry) {
  registry.insert<SattnDialect, mlir::func::FuncDialect>();
}

inline void registerSattnPassesAll() {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  registerSattnPassesAndPipelines();
}

} // namespace sattn
