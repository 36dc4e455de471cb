//===- Lowered.h - a variant lowered to kernel IR and its launch plan -----===//
//
// For unit tests that need what the GPU runtime would run, without a GPU:
// the variant through the lowering pipeline for one arch, its kernel-level
// function and the Plan read from it.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <catch2/catch.hpp>

#include "passes/Passes.h"
#include "runtime/gpu/PlanFromIR.h"
#include "sattn/sattn.h"
#include "tools/RegisterSattn.h"

#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

namespace sattn::testing {

/// Lowers a variant and returns (module, plan).
struct Lowered {
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  gpu::Plan plan;
  mlir::func::FuncOp func;
  explicit Lowered(const Variant &v, const char *arch = "sm_80") : Lowered(v.text(), arch) {}
  explicit Lowered(const std::string &text, const char *arch = "sm_80") {
    mlir::DialectRegistry registry;
    registerSattnDialects(registry);
    ctx.appendDialectRegistry(registry);
    module = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
    REQUIRE(module);
    mlir::PassManager pm(&ctx);
    LowerToKernelsOptions options; // default: the tunable mma.sync kernel of non-Hopper GPUs
    options.arch = arch;
    buildLowerToKernelsPipeline(pm, options);
    REQUIRE(mlir::succeeded(pm.run(*module)));
    func = *module->getOps<mlir::func::FuncOp>().begin();
    plan = gpu::planFromIR(func);
  }
  const gpu::Launch &attention() const {
    for (const gpu::Launch &l : plan.launches)
      if (l.deviceTemplate == "attn_fwd_mma" || l.deviceTemplate == "attn_fwd_wgmma" ||
          l.deviceTemplate == "attn_fwd")
        return l;
    FAIL("no prefill attention launch");
    return plan.launches.front();
  }
};

} // namespace sattn::testing
