//===- GpuRun.h - sattn-run's GPU device: upload, run, download -----------===//
#pragma once

#include "runtime/gpu/Executor.h"
#include "runtime/reference/Values.h"

#include "mlir/IR/BuiltinOps.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sattn::tools {

struct GpuRunResult {
  std::vector<std::shared_ptr<ref::Tensor>> results; ///< O (and LSE) as float64
  std::vector<std::pair<std::string, double>> phaseMs;
  gpu::CompileInfo compile;
  gpu::SelectionSets selection;                ///< the sets the attention used
  std::map<std::string, gpu::HostValue> dumps; ///< every intermediate, with dumpSelection
  std::string device;                          ///< GPU name
  bool fusedEstimation = false; ///< some sattn.scores ran fused into its selections
};

/// Lowers a copy of the variant, compiles it (through the disk cache) and
/// runs it on the GPU with `args` (already rounded to the variant dtype).
/// `arch` overrides the kernel family chosen for this GPU (tests use
/// "sm_80" to run the portable kernels on a Hopper GPU too);
/// `fuseEstimation` = false keeps every sattn.scores a launch of its own
/// (its grid then shows in the dumps).
GpuRunResult runOnGpu(mlir::ModuleOp semantic, const std::string &dtype,
                      const std::vector<std::shared_ptr<ref::Tensor>> &args, bool dumpSelection,
                      const std::string &arch = "", bool fuseEstimation = true);

} // namespace sattn::tools
