//===- Passes.h - sattn pass declarations and registration ----------------===//
//
// Declarations generated from Passes.td, plus the named pipeline of
// design §4 (`sattn-lower-to-kernels`).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "dialect/SattnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace sattn {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Options of the whole lowering pipeline (forwarded to sattn-specialize).
struct LowerToKernelsOptions : mlir::PassPipelineOptions<LowerToKernelsOptions> {
  Option<std::string> dtype{*this, "dtype", llvm::cl::desc("bf16 or fp16 (empty: keep)"),
                            llvm::cl::init("")};
  Option<int64_t> maxKvBlocks{*this, "max-kv-blocks",
                              llvm::cl::desc("bound on blocks per list (0: ceil(Skv/bk))"),
                              llvm::cl::init(0)};
  Option<std::string> arch{*this, "arch",
                           llvm::cl::desc("target GPU architecture (sm_90a, sm_80, ...)"),
                           llvm::cl::init("sm_90a")};
  Option<bool> fuseEstimation{
      *this, "fuse-estimation",
      llvm::cl::desc("fuse sattn.scores into its per-row selections (no scores grid)"),
      llvm::cl::init(true)};
};

/// canonicalize → fuse-static-masks → canonicalize → specialize → outline.
void buildLowerToKernelsPipeline(mlir::OpPassManager &pm, const LowerToKernelsOptions &options);

/// Registers every sattn pass and the named pipeline.
void registerSattnPassesAndPipelines();

} // namespace sattn
