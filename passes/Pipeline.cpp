//===- Pipeline.cpp - the named sattn-lower-to-kernels pipeline -----------===//
//
// Design §4: canonicalize → fuse-static-masks → canonicalize → specialize
// → outline-kernels. Canonicalisation runs again after fusion so block
// sets made redundant by it disappear before the cache key is taken.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace sattn {

void buildLowerToKernelsPipeline(OpPassManager &pm, const LowerToKernelsOptions &options) {
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createSattnFuseStaticMasks());
  pm.addPass(createCanonicalizerPass());
  SattnSpecializeOptions spec;
  spec.dtype = options.dtype;
  spec.maxKvBlocks = options.maxKvBlocks;
  spec.arch = options.arch;
  pm.addPass(createSattnSpecialize(spec));
  SattnOutlineKernelsOptions outline;
  outline.fuseEstimation = options.fuseEstimation;
  pm.addPass(createSattnOutlineKernels(outline));
}

void registerSattnPassesAndPipelines() {
  registerSattnPasses();
  PassPipelineRegistration<LowerToKernelsOptions>(
      "sattn-lower-to-kernels", "Lower a sattn variant to specialised kernel-level IR (design §4)",
      buildLowerToKernelsPipeline);
}

} // namespace sattn
