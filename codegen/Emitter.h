//===- Emitter.h - kernel-level IR to CUDA C++ ----------------------------===//
//
// Turns the launches of a lowered variant into one CUDA C++ module: per
// launch, a config struct of its compile-time constants and an extern "C"
// __global__ wrapper that instantiates the device template with it. The
// emitter chooses templates and constants only; the work lives in
// codegen/device/ (design §5).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <string>
#include <vector>

namespace sattn::codegen {

/// How a device template is launched: its parameter block and CTA size.
struct TemplateInfo {
  const char *name;                    ///< device template, e.g. "attn_fwd"
  const char *paramsType;              ///< struct of codegen/device/params.cuh
  const char *threadsEnum;             ///< constant of params.cuh giving blockDim.x
  const char *header;                  ///< the device header that defines it
  const char *minBlocksEnum = nullptr; ///< optional occupancy hint for __launch_bounds__
  /// When set, __launch_bounds__ comes from this class template of the
  /// config instead: Trait<cfg>::threads, Trait<cfg>::min_blocks (the CTA
  /// shape depends on the constants, e.g. attn_fwd_wgmma's consumer count).
  const char *launchTrait = nullptr;
};

/// The device enum (codegen/device/types.cuh) a string-valued launch
/// constant becomes (`DTYPE` -> "DType", `LAZY` -> "Lazy", ...), or nullptr.
const char *enumTypeOf(llvm::StringRef constant);

/// The templates the device library implements, or nullptr.
const TemplateInfo *lookupTemplate(llvm::StringRef name);

/// The names of the kernels the emitter writes beside launch kernel
/// `kernel` of template `templ` (phases its launcher runs, or entry points
/// outside the plan such as kv_slim's compaction), in launch order.
/// `flag(name)`: the launch's bool constant `name` (companions that exist
/// only for some configurations, e.g. HAS_VSLASH).
std::vector<std::string> companionKernels(llvm::StringRef templ, llvm::StringRef kernel,
                                          llvm::function_ref<bool(llvm::StringRef)> flag);

/// Emits the CUDA C++ of every launch of `func` (kernel-level IR, after
/// sattn-outline-kernels) as one module. Fails with a diagnostic on the
/// offending launch.
mlir::FailureOr<std::string> emitCuda(mlir::func::FuncOp func);

/// The same kernels as one module per launch, in launch order (each with
/// its companion kernels and only the headers it uses): the runtime
/// compiles them in parallel and caches each on its own, so a cold compile
/// waits for the slowest kernel rather than for all of them, and a kernel
/// shared by two variants compiles once.
mlir::FailureOr<std::vector<std::string>> emitCudaParts(mlir::func::FuncOp func);

} // namespace sattn::codegen
